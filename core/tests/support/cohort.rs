//! A simulated cohort: a server-written roster and several devices exchanging changes directly.

#![allow(dead_code)]

use std::sync::Arc;

use automerge::ActorId;
use automerge::transaction::CommitOptions;
use chrono::NaiveDate;
use microcohort_core::docs::{DocId, cohort, genesis};
use microcohort_core::domain::roster::{CohortSize, Member, MemberRole};
use microcohort_core::{Client, ManualClock};

pub const COHORT: &str = "c1";
pub const FACILITATOR: &str = "fac";

pub fn server_actor() -> ActorId {
    ActorId::from(b"microcohort-server-actor".as_slice())
}

pub fn learner_id(i: usize) -> String {
    format!("u{i:02}")
}

/// The cohort document's changes as the server would write them: `learners` learners and one
/// facilitator, all joined before the program started.
pub fn roster_changes(learners: usize) -> Vec<Vec<u8>> {
    let mut am = genesis(&DocId::cohort(COHORT)).with_actor(server_actor());
    let joined = NaiveDate::from_ymd_opt(2026, 2, 20).unwrap();
    let size = CohortSize { min: 10, max: 12 };
    for i in 0..learners {
        let member = Member {
            user_id: learner_id(i),
            display_name: format!("Learner {i}"),
            role: MemberRole::Learner,
            time_zone: "Europe/Berlin".into(),
            day_start: Default::default(),
            joined_on: joined,
            left_on: None,
            paused_on: None,
        };
        cohort::add_member(&mut am, &member, size).unwrap();
    }
    let facilitator = Member {
        user_id: FACILITATOR.into(),
        display_name: "Facilitator".into(),
        role: MemberRole::Facilitator,
        time_zone: "Europe/Berlin".into(),
        day_start: Default::default(),
        joined_on: joined,
        left_on: None,
        paused_on: None,
    };
    cohort::add_member(&mut am, &facilitator, size).unwrap();
    am.commit_with(CommitOptions::default().with_time(0));
    am.get_changes(&[]).into_iter().map(|c| c.raw_bytes().to_vec()).collect()
}

/// One device per user (learners then the facilitator), all on the same movable clock.
pub fn cohort_devices(learners: usize, now: &str) -> (Vec<Client>, ManualClock) {
    let clock = ManualClock::new(super::at(now));
    let roster = roster_changes(learners);
    let users: Vec<String> = (0..learners).map(learner_id).chain([FACILITATOR.to_owned()]).collect();
    let devices = users
        .iter()
        .map(|user| {
            let client = Client::open_in_memory(Arc::new(clock.clone())).unwrap();
            client.import_default_prompt_pack().unwrap();
            client.enroll(super::enrollment("Europe/Berlin")).unwrap();
            client.join_cohort(COHORT, user).unwrap();
            client.receive_changes(&DocId::cohort(COHORT).to_string(), &roster).unwrap();
            client
        })
        .collect();
    (devices, clock)
}

/// Sends `from`'s changes of a document that `to` lacks.
pub fn send(from: &Client, to: &Client, doc: &str) {
    let heads = to.doc_heads(doc).unwrap();
    let changes = from.changes_since(doc, &heads).unwrap();
    to.receive_changes(doc, &changes).unwrap();
}

/// Everyone exchanges a document with everyone.
pub fn sync_all(devices: &[Client], doc: &str) {
    for a in devices {
        for b in devices {
            if !std::ptr::eq(a, b) {
                send(a, b, doc);
            }
        }
    }
}

pub fn week_doc(week: u32) -> String {
    DocId::week(COHORT, week).to_string()
}

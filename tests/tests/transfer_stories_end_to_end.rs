//! Transfer stories: a learner shares, offline, how she applied a practice at work with the
//! program team; the next sync takes it to the server once, the program lead reads it in the
//! report with the prompt it came from (never her private reflection), a facilitator sees her
//! own cohorts' stories only, and a story about someone else's log is refused.

use std::path::Path;

use chrono::Utc;
use microcohort_core::domain::practice::{PracticeOutcome, TransferEvidence, TransferKind};
use microcohort_core::store::stories::StoryState;
use microcohort_core::sync::wire::{self, SyncRequest, SyncResponse, WireStory};
use microcohort_core::{Client, Error, ManualClock};
use microcohort_tests::{
    Backend, ServerProcess, TestData, admin, http_get, lead_get, member_device, on_both_backends, program_under_way,
    raw_join, raw_post, user_id_of,
};
use serde_json::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");
const REFLECTION: &str = "PRIVATE: I was nervous the whole time";

on_both_backends!(a_shared_story_reaches_the_program_team_and_nothing_private_goes_with_it);

fn lead_report(server: &ServerProcess, data: &Path) -> (Value, String) {
    let report = lead_get(SERVER, server, data, "/v1/programs/p1/report");
    (serde_json::from_str(&report).unwrap(), lead_get(SERVER, server, data, "/dashboard/programs/p1"))
}

fn practise(device: &Client, clock: &ManualClock, transfer: Option<&str>) -> uuid::Uuid {
    let session = device.start_practice(None).unwrap();
    clock.advance(chrono::Duration::minutes(10));
    let outcome = PracticeOutcome {
        duration_secs: Some(600),
        reflection: REFLECTION.into(),
        transfer: transfer.map(|note| TransferEvidence {
            kind: TransferKind::AppliedAtWork,
            note: note.into(),
            link: Some("https://example.org/notes".into()),
        }),
    };
    device.finish_practice(session.id, &outcome).unwrap().id
}

fn a_shared_story_reaches_the_program_team_and_nothing_private_goes_with_it(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 8, &["c1", "c2"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let clock = ManualClock::new(Utc::now());
    let ana = member_device(SERVER, &server, data.path(), &clock, "Ana", "learner");
    let ben = member_device(SERVER, &server, data.path(), &clock, "Ben", "learner");
    let cy = Client::open_in_memory(std::sync::Arc::new(clock.clone())).unwrap();
    let code = admin(SERVER, data.path(), &["invite", "--cohort", "c2", "--name", "Cy"]);
    cy.join_server(&server.url(), &code, "phone", "UTC").unwrap();

    // Offline: Ana shares her story; sharing again keeps the one story.
    let log = practise(&ana, &clock, Some("Asked the quiet colleague first in our stand-up"));
    assert_eq!(ana.share_transfer_story(log).unwrap(), StoryState::Pending);
    assert_eq!(ana.share_transfer_story(log).unwrap(), StoryState::Pending);
    // A practice without transfer evidence has no story to share.
    let plain = practise(&ben, &clock, None);
    assert!(matches!(ben.share_transfer_story(plain), Err(Error::Domain(_))));
    let other = practise(&cy, &clock, Some("Used the pause before answering a client"));
    cy.share_transfer_story(other).unwrap();

    // The next sync takes the log and the story together; a second sync sends nothing again.
    ana.sync_now().unwrap();
    assert_eq!(ana.transfer_story(log).unwrap(), Some(StoryState::Shared));
    ana.sync_now().unwrap();
    cy.sync_now().unwrap();
    ben.sync_now().unwrap();

    let (report, page) = lead_report(&server, data.path());
    let stories = report["stories"].as_array().unwrap();
    assert_eq!(stories.len(), 2, "{stories:?}");
    let prompt = ana.today().unwrap().prompt.unwrap().prompt;
    let mine = stories.iter().find(|s| s["display_name"] == "Ana").expect("Ana's story");
    assert_eq!(mine["note"], "Asked the quiet colleague first in our stand-up");
    assert_eq!(
        (mine["prompt_id"].as_str(), mine["prompt_title"].as_str()),
        (Some(prompt.id.as_str()), Some(prompt.title.as_str()))
    );
    assert_eq!((mine["kind"].as_str(), mine["cohort_id"].as_str()), (Some("applied_at_work"), Some("c1")));
    assert_eq!(mine["link"], "https://example.org/notes");
    let everything = report.to_string();
    assert!(!everything.contains("nervous") && !page.contains("nervous"), "the private reflection never goes with it");
    assert!(page.contains("Transfer stories") && page.contains("Asked the quiet colleague first"));

    // A facilitator of c1 reads c1's stories only.
    let fay = raw_join(&server, &admin(SERVER, data.path(), &["add-facilitator", "--cohort", "c1", "--name", "Fay"]));
    let bearer = format!("Bearer {}", fay.device_token);
    let (status, _, body) = http_get(server.address, "/v1/programs/p1/report", &[("Authorization", &bearer)]);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> =
        seen["stories"].as_array().unwrap().iter().filter_map(|s| s["display_name"].as_str()).collect();
    assert_eq!(names, ["Ana"]);

    // Someone else's log, or one the server never saw, is refused by name; nothing is stored.
    let mallory = raw_join(&server, &admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", "Mal"]));
    let evidence = TransferEvidence { kind: TransferKind::Portfolio, note: "Mine now".into(), link: None };
    let unknown = uuid::Uuid::now_v7().to_string();
    let request = SyncRequest {
        stories: vec![
            WireStory { log_id: log.to_string(), evidence: evidence.clone() },
            WireStory { log_id: unknown.clone(), evidence },
        ],
        ..Default::default()
    };
    let (status, _, body) = raw_post(server.address, "/v1/sync", Some(&mallory.device_token), &wire::encode(&request));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: SyncResponse = wire::decode(&body).unwrap();
    assert!(answer.stories_acked.is_empty());
    let reasons: Vec<(&str, &str)> =
        answer.stories_refused.iter().map(|r| (r.id.as_str(), r.reason.as_str())).collect();
    assert_eq!(reasons, [(log.to_string().as_str(), "not_yours"), (unknown.as_str(), "unknown_log")]);
    // A link that is not a web address is refused with the field named.
    let bad = SyncRequest {
        stories: vec![WireStory {
            log_id: unknown,
            evidence: TransferEvidence {
                kind: TransferKind::Portfolio,
                note: "x".into(),
                link: Some("javascript:alert(1)".into()),
            },
        }],
        ..Default::default()
    };
    let (status, _, body) = raw_post(server.address, "/v1/sync", Some(&mallory.device_token), &wire::encode(&bad));
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("transfer.link"), "{}", String::from_utf8_lossy(&body));
    // Her own log, sent through her membership of another program, is refused there: a story
    // belongs to the program its practice was done in.
    let start = (Utc::now().date_naive() - chrono::Days::new(3)).to_string();
    let p2 = ["create-program", "--id", "p2", "--title", "Second program", "--start", &start, "--time-zone", "UTC"];
    admin(SERVER, data.path(), &p2);
    admin(SERVER, data.path(), &["create-cohort", "--id", "c3", "--program", "p2", "--title", "Other"]);
    let ana_id = user_id_of(SERVER, data.path(), "c1", "Ana");
    let invite = admin(SERVER, data.path(), &["invite", "--cohort", "c3", "--name", "Ana", "--user", &ana_id]);
    let ana_in_p2 = raw_join(&server, &invite);
    let evidence = TransferEvidence { kind: TransferKind::AppliedAtWork, note: "Told twice".into(), link: None };
    let request = SyncRequest { stories: vec![WireStory { log_id: log.to_string(), evidence }], ..Default::default() };
    let (status, _, body) =
        raw_post(server.address, "/v1/sync", Some(&ana_in_p2.device_token), &wire::encode(&request));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: SyncResponse = wire::decode(&body).unwrap();
    let reasons: Vec<(&str, &str)> =
        answer.stories_refused.iter().map(|r| (r.id.as_str(), r.reason.as_str())).collect();
    assert_eq!(reasons, [(log.to_string().as_str(), "other_program")]);

    let (report, _) = lead_report(&server, data.path());
    assert_eq!(report["stories"].as_array().unwrap().len(), 2, "still Ana's and Cy's only");
    assert!(!report.to_string().contains("Told twice"));
}

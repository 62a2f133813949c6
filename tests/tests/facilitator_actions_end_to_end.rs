//! A facilitator acts from the phone over a real server: a hidden entry disappears on every
//! peer's device (its author sees why), comes back when shown again; an endorsement shows on
//! every device; an announcement reaches the cohort and a private note only its member's
//! devices, each notified once; a learner who stopped practising hands her reviews to the others.
//! Learners and wrong input are refused, nothing is written.

use std::sync::Arc;

use chrono::Utc;
use microcohort_core::domain::facilitation::FacilitatorAction;
use microcohort_core::domain::notifications::NotificationKind;
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::sync::wire::{self, FACILITATOR_ACTIONS_PATH};
use microcohort_core::{Client, EntryRef, Error, FeedbackInput, ManualClock};
use microcohort_tests::{
    Backend, ServerProcess, TestData, admin, member_device, on_both_backends, program_under_way, raw_join, raw_post,
    without_quiet_hours,
};

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

on_both_backends!(a_facilitator_moderates_and_messages_from_the_phone);

fn device(server: &ServerProcess, data: &TestData, clock: &ManualClock, name: &str, role: &str) -> Client {
    let client = member_device(SERVER, server, data.path(), clock, name, role);
    without_quiet_hours(&client);
    client
}

fn feedback_keys(client: &Client, week: u32) -> Vec<String> {
    client.week_rows(week).unwrap().feedback.into_iter().map(|f| f.meta.key).collect()
}

fn told(client: &Client, kind: NotificationKind) -> usize {
    client.notification_plan(7).unwrap().iter().filter(|n| n.kind == kind).count()
}

fn a_facilitator_moderates_and_messages_from_the_phone(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 6, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let clock = ManualClock::new(Utc::now());
    let fay = device(&server, &data, &clock, "Fay", "facilitator");
    let ana = device(&server, &data, &clock, "Ana", "learner");
    let ben = device(&server, &data, &clock, "Ben", "learner");
    let cy = device(&server, &data, &clock, "Cy", "learner");
    let ana_tablet = Client::open_in_memory(Arc::new(clock.clone())).unwrap();
    ana_tablet.link_device(&ana.create_device_link().unwrap().payload, "tablet", "UTC").unwrap();
    without_quiet_hours(&ana_tablet);
    let everyone = [&fay, &ana, &ben, &cy, &ana_tablet];
    let sync_all = || {
        for client in everyone {
            client.sync_now().unwrap();
        }
    };

    clock.advance(chrono::Duration::minutes(1));
    let session = ana.start_practice(None).unwrap();
    clock.advance(chrono::Duration::minutes(12));
    let log = ana.finish_practice(session.id, &PracticeOutcome { duration_secs: Some(700), ..Default::default() });
    let shared = ana.share_practice(log.unwrap().id, "Listening first", "I waited before answering").unwrap();
    sync_all();
    let input = |body: &str| FeedbackInput { body: body.into(), suggestion: None, criteria: vec![0] };
    let rude = ben.give_feedback(&shared, &input("This is worthless, like you.")).unwrap();
    let kind = cy.give_feedback(&shared, &input("The pause gave them room to think.")).unwrap();
    ben.sync_now().unwrap();
    cy.sync_now().unwrap();
    sync_all();
    assert_eq!(feedback_keys(&ana, shared.week).len(), 2);

    // Only a facilitator acts; she hides Ben's feedback and endorses Cy's.
    assert!(matches!(ana.hide_entry(&rude, "no"), Err(Error::FacilitatorOnly)));
    assert!(matches!(cy.send_note("x", "hi"), Err(Error::FacilitatorOnly)));
    fay.hide_entry(&rude, "A personal attack: please keep feedback on the work").unwrap();
    fay.endorse_feedback(&kind).unwrap();
    sync_all();
    for peer in [&ana, &cy, &ana_tablet] {
        assert_eq!(feedback_keys(peer, shared.week), [kind.key.as_str()], "hidden on every peer's device");
        let endorsed = peer.week_rows(shared.week).unwrap().feedback.into_iter().find(|f| f.meta.key == kind.key);
        let fay_id = fay.my_user_id().unwrap();
        assert_eq!(endorsed.unwrap().endorsed_by.as_deref(), Some(fay_id.as_str()));
    }
    let own = ben.week_rows(shared.week).unwrap().feedback.into_iter().find(|f| f.meta.key == rude.key).unwrap();
    assert_eq!(own.meta.hidden.as_deref(), Some("A personal attack: please keep feedback on the work"));
    assert!(feedback_keys(&fay, shared.week).contains(&rude.key), "the facilitator still sees what she hid");
    // Nobody can reply to what is hidden.
    assert!(matches!(cy.reply(&rude, None, "agree"), Err(Error::UnknownEntry { .. })));

    fay.show_entry(&rude).unwrap();
    ana.sync_now().unwrap();
    assert_eq!(feedback_keys(&ana, shared.week).len(), 2, "shown again");

    // An announcement to the cohort, a private note (a nudge) to Ana alone.
    fay.announce("No critique on Thursday: we meet on Friday at the same time.").unwrap();
    fay.send_note(&ana.my_user_id().unwrap(), "I missed your practice yesterday. Ten minutes today?").unwrap();
    sync_all();
    for member in [&ana, &ben, &cy, &ana_tablet] {
        let announcements = member.announcements().unwrap();
        assert_eq!(announcements.len(), 1);
        assert_eq!((announcements[0].from.as_str(), announcements[0].private), ("Fay", false));
    }
    for hers in [&ana, &ana_tablet] {
        let notes = hers.notes_to_me().unwrap();
        assert_eq!(notes.len(), 1, "the note reached both of her devices");
        assert!(notes[0].body.starts_with("I missed your practice"));
        assert_eq!(told(hers, NotificationKind::NoteFromFacilitator), 1);
        assert_eq!(told(hers, NotificationKind::NoteFromFacilitator), 0, "told once");
        hers.sync_now().unwrap();
        assert_eq!(told(hers, NotificationKind::NoteFromFacilitator), 0, "not again after a sync");
    }
    for other in [&ben, &cy] {
        assert!(other.notes_to_me().unwrap().is_empty(), "a note is for its member only");
        assert_eq!(told(other, NotificationKind::Announcement), 1);
    }
    // The note is in no document the cohort holds.
    let cohort_bytes: Vec<u8> = ben.changes_since("cohort:c1", &[]).unwrap().concat();
    let needle = b"I missed your practice";
    assert!(!cohort_bytes.windows(needle.len()).any(|w| w == needle));

    // Cy stopped practising: once the facilitator marks it, her reviews go to the others on every
    // device, each piece of work keeping two reviewers; marked back, she reviews again.
    let cy_id = cy.my_user_id().unwrap();
    fay.pause_member(&cy_id).unwrap();
    for client in [&ana, &ben, &cy] {
        client.sync_now().unwrap();
        let assignments = client.review_assignments(shared.week).unwrap();
        assert!(assignments.iter().all(|a| !a.reviewers.contains(&cy_id)), "{assignments:?}");
        assert!(assignments.iter().all(|a| a.practitioner == cy_id || a.reviewers.len() >= 2), "{assignments:?}");
    }
    fay.resume_member(&cy_id).unwrap();
    ana.sync_now().unwrap();
    assert!(ana.review_assignments(shared.week).unwrap().iter().any(|a| a.reviewers.contains(&cy_id)));

    // Straight to the server: a learner's token is refused; wrong input names its field or is
    // not found; a repeated announcement is kept once.
    let mal = raw_join(&server, &admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", "Mal"]));
    let gus = raw_join(
        &server,
        &admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--role", "facilitator", "--name", "Gus"]),
    );
    let post = |token: &str, action: &FacilitatorAction| {
        let (status, _, body) = raw_post(server.address, FACILITATOR_ACTIONS_PATH, Some(token), &wire::encode(action));
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let hide = |entry: &EntryRef| FacilitatorAction::Hide {
        week: entry.week,
        entry: entry.key.clone(),
        reason: "spam".into(),
    };
    assert_eq!(post(&mal.device_token, &hide(&kind)).0, 403);
    let missing = EntryRef { week: shared.week, key: "nobody/nothing".into() };
    assert_eq!(post(&gus.device_token, &hide(&missing)).0, 404);
    let stranger = FacilitatorAction::Note { id: "n9".into(), member: "stranger".into(), body: "hi".into() };
    let (status, text) = post(&gus.device_token, &stranger);
    assert!(status == 400 && text.contains("member"), "{status} {text}");
    let again = FacilitatorAction::Announce { id: "a-once".into(), body: "Bring a notebook".into() };
    assert_eq!(post(&gus.device_token, &again).0, 204);
    assert_eq!(post(&gus.device_token, &again).0, 204);
    ana.sync_now().unwrap();
    assert_eq!(ana.announcements().unwrap().len(), 2, "a repeated announcement is kept once");
    assert_eq!(feedback_keys(&ana, shared.week).len(), 2, "the refused hides wrote nothing");
}

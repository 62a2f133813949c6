//! Cohort members working offline on their own devices and merging: sharing, structured
//! feedback, threads, ratings, retractions, the co-written synthesis, roles and late entries.

mod support;

use chrono::Duration;
use microcohort_core::docs::DocId;
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::domain::roles::WeeklyRole;
use microcohort_core::domain::roster::SizeStatus;
use microcohort_core::policy::RejectReason;
use microcohort_core::{Client, EntryRef, Error, FeedbackInput, Lateness, WorkKind};
use support::at;
use support::cohort::{COHORT, FACILITATOR, cohort_devices, send, sync_all, week_doc};

fn practise_and_share(device: &Client, title: &str) -> EntryRef {
    let session = device.start_practice(None).unwrap();
    let log = device
        .finish_practice(session.id, &PracticeOutcome { duration_secs: Some(700), ..Default::default() })
        .unwrap();
    device.share_practice(log.id, title, "I asked two open questions before offering any advice.").unwrap()
}

fn feedback(body: &str, suggestion: Option<&str>) -> FeedbackInput {
    FeedbackInput { body: body.into(), suggestion: suggestion.map(Into::into), criteria: vec![0, 2] }
}

#[test]
fn members_share_give_feedback_reply_and_rate_offline_then_converge() {
    // Week 1, Tuesday 10 March, 08:00 Berlin.
    let (devices, clock) = cohort_devices(3, "2026-03-10T07:00:00Z");
    let (ana, ben, cai) = (&devices[0], &devices[1], &devices[2]);
    let week = week_doc(1);

    let shared = practise_and_share(ana, "Listening before fixing");
    assert_eq!(shared.week, 1);
    send(ana, ben, &week);
    clock.advance(Duration::hours(2));
    let fb = ben
        .give_feedback(&shared, &feedback("You waited before advising.", Some("Name the feeling you heard.")))
        .unwrap();
    let fb2 = {
        send(ana, cai, &week);
        cai.give_feedback(&shared, &feedback("Clear example.", None)).unwrap()
    };
    // Ana gets both, replies in Ben's thread, Ben answers her reply, Ana rates Ben's feedback.
    send(ben, ana, &week);
    send(cai, ana, &week);
    let reply = ana.reply(&fb, None, "Thanks, I will try naming it.").unwrap();
    send(ana, ben, &week);
    let nested = ben.reply(&fb, Some(&reply), "Tell us how it went at the critique.").unwrap();
    send(ben, ana, &week);
    ana.rate_feedback(&fb, 5).unwrap();
    ana.rate_feedback(&fb, 4).unwrap(); // changing one's mind edits the same rating

    sync_all(&devices, &week);
    let rows = ana.week_rows(1).unwrap();
    for other in &devices[1..] {
        assert_eq!(other.week_rows(1).unwrap(), rows);
        assert_eq!(other.doc_heads(&week).unwrap(), ana.doc_heads(&week).unwrap());
    }
    assert_eq!(rows.submissions.len(), 1);
    assert_eq!(rows.feedback.iter().map(|f| f.meta.key.clone()).collect::<Vec<_>>().len(), 2);
    let ben_feedback = rows.feedback.iter().find(|f| f.meta.key == fb.key).unwrap();
    assert_eq!(ben_feedback.suggestion.as_deref(), Some("Name the feeling you heard."));
    assert_eq!(ben_feedback.criteria, vec![0, 2]);
    assert!(rows.feedback.iter().any(|f| f.meta.key == fb2.key && f.suggestion.is_none()));
    let thread: Vec<_> = rows.replies.iter().filter(|r| r.feedback == fb.key).collect();
    assert_eq!(thread.len(), 2);
    assert!(thread.iter().any(|r| r.meta.key == nested.key && r.parent.as_deref() == Some(reply.key.as_str())));
    assert_eq!(rows.ratings.len(), 1);
    assert_eq!((rows.ratings[0].score, rows.ratings[0].counted), (4, true));
}

#[test]
fn only_the_submission_author_rates_and_only_authors_edit_or_retract() {
    let (devices, _) = cohort_devices(3, "2026-03-10T07:00:00Z");
    let (ana, ben, cai) = (&devices[0], &devices[1], &devices[2]);
    let week = week_doc(1);
    let shared = practise_and_share(ana, "My practice");
    sync_all(&devices, &week);
    let fb = ben.give_feedback(&shared, &feedback("Nice.", None)).unwrap();
    sync_all(&devices, &week);

    let err = cai.rate_feedback(&fb, 3).unwrap_err();
    assert!(matches!(&err, Error::NotYourSubmission(key) if *key == fb.key), "{err:?}");
    assert!(err.to_string().contains("only the submission's author"), "{err}");
    assert!(ana.rate_feedback(&fb, 0).unwrap_err().to_string().contains("score"));
    assert!(ben.give_feedback(&shared, &feedback("  ", None)).unwrap_err().to_string().contains("body"));
    assert!(matches!(ana.give_feedback(&shared, &feedback("self praise", None)), Err(Error::Domain(_))));

    assert!(matches!(cai.edit_entry(&fb, "rewritten by someone else"), Err(Error::NotYourEntry(_))));
    assert!(matches!(cai.retract_entry(&shared), Err(Error::NotYourEntry(_))));
    ben.edit_entry(&fb, "Nice: you paused before advising.").unwrap();
    ben.retract_entry(&fb).unwrap();
    sync_all(&devices, &week);
    let rows = ana.week_rows(1).unwrap();
    let retracted = rows.feedback.iter().find(|f| f.meta.key == fb.key).expect("a retraction stays visible");
    assert!(retracted.meta.retracted);
    assert_eq!(retracted.body, "Nice: you paused before advising.");
    assert!(retracted.meta.edited_at.is_some());
}

#[test]
fn a_practice_is_shared_once_and_its_submission_names_its_log() {
    let (devices, clock) = cohort_devices(2, "2026-03-10T07:00:00Z");
    let (ana, ben) = (&devices[0], &devices[1]);
    let week = week_doc(1);
    let session = ana.start_practice(None).unwrap();
    let log =
        ana.finish_practice(session.id, &PracticeOutcome { duration_secs: Some(600), ..Default::default() }).unwrap();
    let first = ana.share_practice(log.id, "Listening first", "I waited before answering.").unwrap();
    // A double tap, a retry after a crash, or the next day: the same submission.
    let again = ana.share_practice(log.id, "Listening first", "I waited before answering.").unwrap();
    clock.advance(Duration::days(1));
    let next_day = ana.share_practice(log.id, "Another title", "Another body").unwrap();
    assert_eq!((&again, &next_day), (&first, &first));
    sync_all(&devices, &week);
    let rows = ben.week_rows(1).unwrap();
    assert_eq!(rows.submissions.len(), 1, "{:?}", rows.submissions);
    let shared = &rows.submissions[0];
    assert_eq!(shared.practice_log.as_deref(), Some(log.id.to_string().as_str()), "linked to its log");
    assert_eq!(shared.title, "Listening first");
    assert_eq!(ana.practice_submission(log.id, log.local_date).unwrap(), Some(first));
    // Another practice is another submission.
    let other = practise_and_share(ana, "A second practice");
    assert_ne!(other.key, next_day.key);
}

#[test]
fn synthesizers_co_write_the_synthesis_and_others_are_refused() {
    // Week 5 (rotation) runs 5–11 April; 6 April 10:00 Berlin.
    let (devices, _) = cohort_devices(6, "2026-04-06T08:00:00Z");
    let week = week_doc(5);
    let roles = devices[0].week_roles(5).unwrap();
    assert!(roles.rotation);
    let synthesizers: Vec<&Client> =
        devices.iter().filter(|d| roles.role_of(&user_of(d, &devices)) == Some(WeeklyRole::Synthesizer)).collect();
    assert_eq!(synthesizers.len(), 2);
    let outsider = devices.iter().find(|d| roles.role_of(&user_of(d, &devices)) == Some(WeeklyRole::Reviewer)).unwrap();

    synthesizers[0].edit_synthesis(5, 0, 0, "We learned to pause.").unwrap();
    synthesizers[1].edit_synthesis(5, 0, 0, "Week 5: ").unwrap(); // concurrent, offline
    let facilitator = devices.last().unwrap();
    facilitator.edit_synthesis(5, 0, 0, "").unwrap(); // an empty edit changes nothing
    let heads_before = outsider.doc_heads(&week).unwrap();
    let err = outsider.edit_synthesis(5, 0, 0, "sneaky").unwrap_err();
    assert!(matches!(&err, Error::Rejected(r) if r.reason == RejectReason::RoleRequired), "{err}");
    assert!(outsider.synthesis(5).unwrap().is_empty(), "a refused change leaves nothing behind");
    assert_eq!(outsider.doc_heads(&week).unwrap(), heads_before, "not even in memory");
    assert!(outsider.changes_since(&week, &heads_before).unwrap().is_empty(), "and nothing to upload");

    sync_all(&devices, &week);
    let text = devices[0].synthesis(5).unwrap();
    assert!(text.contains("We learned to pause.") && text.contains("Week 5: "), "{text}");
    assert!(devices.iter().all(|d| d.synthesis(5).unwrap() == text));
    // Unicode positions count characters: an edit after an emoji lands after it.
    synthesizers[0].edit_synthesis(5, 0, 0, "🌱").unwrap();
    synthesizers[0].edit_synthesis(5, 1, 0, "!").unwrap();
    assert!(synthesizers[0].synthesis(5).unwrap().starts_with("🌱!"));
    assert!(synthesizers[0].edit_synthesis(5, 10_000, 0, "x").is_err());
}

fn user_of(device: &Client, devices: &[Client]) -> String {
    let index = devices.iter().position(|d| std::ptr::eq(d, device)).unwrap();
    if index == devices.len() - 1 { FACILITATOR.to_owned() } else { support::cohort::learner_id(index) }
}

#[test]
fn every_device_computes_the_same_roles_and_review_assignments() {
    let (devices, _) = cohort_devices(12, "2026-04-06T08:00:00Z");
    let first = devices[0].review_assignments(5).unwrap();
    assert!(devices.iter().all(|d| d.review_assignments(5).unwrap() == first));
    assert!(first.iter().all(|a| a.reviewers.len() >= 2 && !a.reviewers.contains(&a.practitioner)));
    assert_eq!(devices[0].my_role(5).unwrap(), devices[1].week_roles(5).unwrap().role_of("u00"));
    assert_eq!(devices.last().unwrap().my_role(5).unwrap(), Some(WeeklyRole::Facilitator));
    assert_eq!(devices[0].cohort_size_status().unwrap(), SizeStatus::Ok);
    let (small, _) = cohort_devices(4, "2026-04-06T08:00:00Z");
    assert_eq!(small[0].cohort_size_status().unwrap(), SizeStatus::BelowMinimum { learners: 4, min: 10 });
}

#[test]
fn feedback_after_the_window_closes_is_kept_and_its_lateness_waits_for_the_server() {
    let (devices, clock) = cohort_devices(3, "2026-03-10T07:00:00Z");
    let week = week_doc(1);
    let shared = practise_and_share(&devices[0], "Practice");
    sync_all(&devices, &week);
    // Week 1's critique is Thursday 12 March 17:00 Berlin; the window closes 48 h later.
    let window = devices[1].feedback_window(1).unwrap();
    assert!(window.open);
    assert_eq!(window.closes_at, Some(at("2026-03-14T16:00:00Z")));
    let on_time = devices[1].give_feedback(&shared, &feedback("On time", None)).unwrap();
    clock.set(at("2026-03-15T09:00:00Z"));
    assert!(!devices[2].feedback_window(1).unwrap().open);
    let late = devices[2].give_feedback(&shared, &feedback("Late but useful", None)).unwrap();
    sync_all(&devices, &week);
    for device in &devices {
        assert_eq!(device.week_rows(1).unwrap().feedback.len(), 2, "late words are never discarded");
        // Lateness is the server's fact (when it first stored the entry); no server has it yet.
        assert!(device.late_entries(1).unwrap().is_empty(), "an author's clock does not decide");
    }
    let on_author = devices[2].entry_lateness(1).unwrap();
    assert!(on_author.contains(&(late.key.clone(), Lateness::Pending)), "{on_author:?}");
    assert!(devices[0].entry_lateness(1).unwrap().contains(&(on_time.key.clone(), Lateness::OnTime)));
}

#[test]
fn capstones_and_public_reflections_belong_to_the_consolidation_weeks() {
    let (devices, clock) = cohort_devices(3, "2026-03-10T07:00:00Z");
    let err = devices[0].share_work(WorkKind::Capstone, "Capstone", "Plan", None, &[]).unwrap_err();
    assert!(err.to_string().contains("consolidation"), "{err}");
    clock.set(at("2026-05-12T08:00:00Z")); // week 10
    let capstone = devices[0]
        .share_work(
            WorkKind::Capstone,
            "Delegating the release",
            "Three weeks of evidence.",
            None,
            &["https://example.org/deck".into()],
        )
        .unwrap();
    assert_eq!(capstone.week, 10);
    let reflection =
        devices[0].share_work(WorkKind::Reflection, "What changed", "I ask before I tell.", None, &[]).unwrap();
    sync_all(&devices, &week_doc(10));
    let rows = devices[1].week_rows(10).unwrap();
    let kinds: Vec<_> = rows.submissions.iter().map(|s| (s.meta.key.clone(), s.kind.clone())).collect();
    assert!(kinds.contains(&(capstone.key.clone(), "capstone".into())));
    assert!(kinds.contains(&(reflection.key.clone(), "reflection".into())));
    assert_eq!(
        rows.submissions.iter().find(|s| s.meta.key == capstone.key).unwrap().attachments,
        vec!["https://example.org/deck".to_owned()]
    );
    // Peers review them like any submission, and score a capstone on the capstone rubric.
    devices[1].give_feedback(&capstone, &feedback("Strong evidence.", Some("Show the before numbers."))).unwrap();
    let rubric = devices[2].capstone_brief().unwrap().expect("the default pack's capstone").rubric.len();
    let scores: Vec<u32> = (0..rubric).map(|i| 1 + (i % 5) as u32).collect();
    let review = feedback("Honest about what failed.", None);
    let scored = devices[2].give_capstone_feedback(&capstone, &review, &scores).unwrap();
    for (bad, named) in [(&scores[1..], "criteria"), (&[0u32; 5][..rubric.min(5)], "outside 1..=5")] {
        let err = devices[2].give_capstone_feedback(&capstone, &review, bad).unwrap_err();
        assert!(err.to_string().contains(named), "{err}");
    }
    let err = devices[2].give_capstone_feedback(&reflection, &review, &scores).unwrap_err();
    assert!(err.to_string().contains("for capstones"), "{err}");
    sync_all(&devices, &week_doc(10));
    let rows = devices[0].week_rows(10).unwrap();
    let row = rows.feedback.iter().find(|f| f.meta.key == scored.key).expect("the scored review");
    assert_eq!(row.scores, scores);
    assert!(rows.feedback.iter().filter(|f| f.meta.key != scored.key).all(|f| f.scores.is_empty()));
}

#[test]
fn the_facilitator_records_attendance_and_learners_cannot() {
    let (devices, _) = cohort_devices(3, "2026-03-13T08:00:00Z");
    let facilitator = devices.last().unwrap();
    facilitator.record_attendance(1, "u00", true).unwrap();
    facilitator.record_attendance(1, "u01", false).unwrap();
    facilitator.record_attendance(1, "u01", true).unwrap(); // corrected
    let err = devices[0].record_attendance(1, "u00", true).unwrap_err();
    assert!(matches!(&err, Error::Rejected(r) if r.reason == RejectReason::RoleRequired), "{err}");
    sync_all(&devices, &week_doc(1));
    let attendance = devices[0].week_rows(1).unwrap().attendance;
    assert_eq!(attendance.len(), 2);
    assert!(attendance.iter().all(|a| a.present));
}

#[test]
fn garbage_from_the_network_changes_nothing() {
    let (devices, _) = cohort_devices(3, "2026-03-10T07:00:00Z");
    let week = week_doc(1);
    let shared = practise_and_share(&devices[0], "Practice");
    let mut changes = devices[0].changes_since(&week, &[]).unwrap();
    let before = devices[1].week_rows(1).unwrap();
    for bad in [vec![0u8; 3], b"not an automerge change at all".to_vec(), changes[0][..changes[0].len() / 2].to_vec()] {
        let err = devices[1].receive_changes(&week, &[bad]).unwrap_err();
        assert!(matches!(err, Error::Document(_)), "{err}");
    }
    // One bad change in a batch refuses the whole batch.
    changes.push(vec![1, 2, 3]);
    assert!(devices[1].receive_changes(&week, &changes).is_err());
    assert_eq!(devices[1].week_rows(1).unwrap(), before);
    assert!(devices[1].receive_changes("week:other-cohort:1", &[]).is_err());
    assert!(devices[1].receive_changes("not a doc id", &[]).is_err());
    changes.pop();
    devices[1].receive_changes(&week, &changes).unwrap();
    assert_eq!(devices[1].week_rows(1).unwrap().submissions[0].meta.key, shared.key);
}

#[test]
fn feedback_arriving_before_its_submission_waits_and_then_shows() {
    let (devices, _) = cohort_devices(3, "2026-03-10T07:00:00Z");
    let (ana, ben, cai) = (&devices[0], &devices[1], &devices[2]);
    let week = week_doc(1);
    let shared = practise_and_share(ana, "Practice");
    send(ana, ben, &week);
    ben.give_feedback(&shared, &feedback("Good", None)).unwrap();
    // Cai receives only Ben's newest change, without the submission it builds on.
    let all = ben.changes_since(&week, &[]).unwrap();
    let report = cai.receive_changes(&week, &all[all.len() - 1..]).unwrap();
    assert!(report.waiting);
    assert!(cai.week_rows(1).unwrap().feedback.is_empty());
    let report = cai.receive_changes(&week, &all).unwrap();
    assert!(!report.waiting);
    let rows = cai.week_rows(1).unwrap();
    assert_eq!((rows.submissions.len(), rows.feedback.len()), (1, 1));
}

#[test]
fn documents_survive_reopening_and_compaction_and_rebuilt_projections_match() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.sqlite");
    let clock = microcohort_core::ManualClock::new(at("2026-03-10T07:00:00Z"));
    let open = || Client::open(&path, std::sync::Arc::new(clock.clone())).unwrap();
    let shared_keys: Vec<String> = {
        let client = open();
        client.import_default_prompt_pack().unwrap();
        client.enroll(support::enrollment("Europe/Berlin")).unwrap();
        client.join_cohort(COHORT, "u00").unwrap();
        client.receive_changes(&DocId::cohort(COHORT).to_string(), &support::cohort::roster_changes(3)).unwrap();
        // 40 entries: more than the 32 chunks that trigger a compaction.
        (0..40)
            .map(|i| client.share_work(WorkKind::Practice, &format!("Practice {i}"), "Body", None, &[]).unwrap().key)
            .collect()
    };
    let client = open();
    let rows = client.week_rows(1).unwrap();
    let mut keys: Vec<String> = rows.submissions.iter().map(|s| s.meta.key.clone()).collect();
    keys.sort();
    let mut expected = shared_keys.clone();
    expected.sort();
    assert_eq!(keys, expected);
    let chunks: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM doc_chunks WHERE doc_id = ?1", [week_doc(1)], |r| r.get(0))
        .unwrap();
    assert!(chunks <= 33, "compacted ({chunks} chunks)");
    client.rebuild_projections().unwrap();
    assert_eq!(client.week_rows(1).unwrap(), rows);
    client.share_work(WorkKind::Practice, "After reopening", "Body", None, &[]).unwrap();
    assert_eq!(client.week_rows(1).unwrap().submissions.len(), 41);
    assert_eq!(client.integrity_check().unwrap(), "ok");
}

#[test]
fn a_document_from_a_newer_schema_is_kept_but_not_edited_or_reprojected() {
    use automerge::ROOT;
    use automerge::transaction::{CommitOptions, Transactable};
    let (devices, _) = cohort_devices(3, "2026-03-10T07:00:00Z");
    let week = week_doc(1);
    practise_and_share(&devices[0], "Before the upgrade");
    let before = devices[0].week_rows(1).unwrap();
    // A newer server bumps the week document's schema.
    let mut newer =
        microcohort_core::docs::genesis(&DocId::week(COHORT, 1)).with_actor(support::cohort::server_actor());
    let changes = devices[0].changes_since(&week, &[]).unwrap();
    for bytes in &changes {
        newer.apply_changes([automerge::Change::try_from(bytes.as_slice()).unwrap()]).unwrap();
    }
    newer.put(ROOT, "schema", 2u64).unwrap();
    newer.put(ROOT, "new_container_from_the_future", "x").unwrap();
    newer.commit_with(CommitOptions::default().with_time(0));
    let heads = devices[0].doc_heads(&week).unwrap();
    let update: Vec<Vec<u8>> = newer.get_changes(&heads).into_iter().map(|c| c.raw_bytes().to_vec()).collect();

    let report = devices[0].receive_changes(&week, &update).unwrap();
    assert!(report.newer_schema);
    let err = devices[0].share_work(WorkKind::Practice, "After", "Body", None, &[]).unwrap_err();
    assert!(err.to_string().contains("update the app"), "{err}");
    assert_eq!(devices[0].week_rows(1).unwrap(), before, "the last rows it understood stay visible");
    // The document is still relayed unchanged to peers.
    send(&devices[0], &devices[1], &week);
    assert_eq!(devices[1].doc_heads(&week).unwrap(), devices[0].doc_heads(&week).unwrap());
}

#[test]
fn listeners_hear_of_local_writes_and_merged_peer_changes_until_they_unsubscribe() {
    use microcohort_core::{ClientEvent, DataChange};
    use std::sync::{Arc, Mutex};

    let (devices, _clock) = cohort_devices(2, "2026-03-10T07:00:00Z");
    let (ana, ben) = (&devices[0], &devices[1]);
    let week = week_doc(1);
    let heard: Arc<Mutex<Vec<ClientEvent>>> = Arc::default();
    let sink = heard.clone();
    let id = ben.subscribe(move |event| sink.lock().unwrap().push(event.clone()));

    let shared = practise_and_share(ana, "Listening before fixing");
    send(ana, ben, &week);
    ben.wait_for_listeners();
    assert_eq!(*heard.lock().unwrap(), vec![ClientEvent::DataChanged(DataChange::Document(week.clone()))]);
    // Receiving the same changes again changes nothing, so nobody is told.
    send(ana, ben, &week);
    ben.wait_for_listeners();
    assert_eq!(heard.lock().unwrap().len(), 1);

    ben.give_feedback(&shared, &feedback("You waited before advising.", None)).unwrap();
    practise_and_share(ben, "My turn");
    ben.wait_for_listeners();
    let events = heard.lock().unwrap().clone();
    assert!(events.contains(&ClientEvent::DataChanged(DataChange::Practice)));
    assert_eq!(
        events.iter().filter(|e| **e == ClientEvent::DataChanged(DataChange::Document(week.clone()))).count(),
        3
    );

    assert!(ben.unsubscribe(id));
    assert!(!ben.unsubscribe(id));
    let count = heard.lock().unwrap().len();
    practise_and_share(ben, "Quietly");
    ben.wait_for_listeners();
    assert_eq!(heard.lock().unwrap().len(), count);
}

#[test]
fn a_listener_is_called_after_the_write_returns_from_one_event_thread() {
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};

    let (devices, _clock) = cohort_devices(2, "2026-03-10T07:00:00Z");
    let ben = &devices[1];
    // The listener blocks until the test lets it go: were it called inside the write, the
    // write below could never return.
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let threads: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = threads.clone();
    ben.subscribe(move |_| {
        seen.lock().unwrap().push(std::thread::current().name().unwrap_or("unnamed").to_owned());
        let _ = released.lock().unwrap().recv();
    });
    let shared = practise_and_share(ben, "Written while a listener is busy");
    assert!(ben.week_rows(shared.week).unwrap().submissions.iter().any(|s| s.meta.key == shared.key));
    drop(release);
    ben.wait_for_listeners();
    let threads = threads.lock().unwrap().clone();
    assert!(threads.len() >= 2, "a practice and a document event: {threads:?}");
    assert!(threads.iter().all(|name| name == "microcohort-events"), "{threads:?}");
}

#[test]
fn feedback_names_only_criteria_of_the_submissions_rubric() {
    let (devices, _) = cohort_devices(2, "2026-03-10T07:00:00Z");
    let shared = practise_and_share(&devices[0], "Listening first");
    let no_rubric = devices[0].share_work(WorkKind::Practice, "A note", "No prompt behind it.", None, &[]).unwrap();
    sync_all(&devices, &week_doc(shared.week));
    let outside = FeedbackInput { body: "Good".into(), suggestion: None, criteria: vec![99] };
    let err = devices[1].give_feedback(&shared, &outside).unwrap_err();
    assert!(err.to_string().contains("criterion 99"), "{err}");
    assert!(devices[1].week_rows(shared.week).unwrap().feedback.is_empty(), "nothing written");
    let err = devices[1].give_feedback(&no_rubric, &feedback("Thanks", None)).unwrap_err();
    assert!(err.to_string().contains("no rubric"), "{err}");
    devices[1].give_feedback(&shared, &feedback("Clear", None)).unwrap();
}

#[test]
fn the_facilitator_writes_and_orders_the_critique_agenda_and_learners_read_it() {
    let (devices, _) = cohort_devices(3, "2026-03-13T08:00:00Z");
    let facilitator = devices.last().unwrap();
    let first = practise_and_share(&devices[0], "First");
    let second = practise_and_share(&devices[1], "Second");
    let third = practise_and_share(&devices[2], "Third");
    sync_all(&devices, &week_doc(first.week));

    let a = facilitator.add_agenda_item(&first, "Open with this one").unwrap();
    let b = facilitator.add_agenda_item(&second, "").unwrap();
    let c = facilitator.add_agenda_item(&third, "If time allows").unwrap();
    facilitator.move_agenda_item(&c, 0).unwrap();
    facilitator.move_agenda_item(&a, 1).unwrap();
    facilitator.remove_agenda_item(&b).unwrap();
    sync_all(&devices, &week_doc(first.week));
    let seen: Vec<(String, String)> =
        devices[0].agenda(first.week).unwrap().into_iter().map(|item| (item.submission, item.note)).collect();
    assert_eq!(
        seen,
        vec![(third.key.clone(), "If time allows".to_owned()), (first.key.clone(), "Open with this one".to_owned())]
    );

    // A learner writes no agenda; an unknown submission or item is named; nothing is written.
    assert!(matches!(devices[0].add_agenda_item(&second, "mine"), Err(Error::FacilitatorOnly)));
    assert!(matches!(devices[0].move_agenda_item(&a, 0), Err(Error::FacilitatorOnly)));
    let missing = EntryRef { week: first.week, key: "u00/nothing".into() };
    assert!(matches!(facilitator.add_agenda_item(&missing, ""), Err(Error::UnknownEntry { what: "submission", .. })));
    assert!(matches!(facilitator.move_agenda_item(&b, 0), Err(Error::UnknownEntry { what: "agenda item", .. })));
    assert_eq!(facilitator.agenda(first.week).unwrap().len(), 2);
}

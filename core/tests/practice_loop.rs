//! The learner's offline daily loop through the `Client`, as the app drives it.

mod support;

use chrono::Duration;
use microcohort_core::domain::blueprint::Phase;
use microcohort_core::domain::practice::{PracticeOutcome, TransferEvidence, TransferKind};
use microcohort_core::domain::reminders::ReminderKind;
use microcohort_core::store::practice::PracticeStatus;
use microcohort_core::store::prompts::ImportOutcome;
use microcohort_core::{DEFAULT_PROMPT_PACK, Error};
use support::{at, date, learner};

fn reflect(text: &str) -> PracticeOutcome {
    PracticeOutcome { reflection: text.into(), ..Default::default() }
}

fn timed(secs: u32) -> PracticeOutcome {
    PracticeOutcome { duration_secs: Some(secs), ..Default::default() }
}

#[test]
fn a_learner_sees_todays_prompt_practises_and_their_streak_grows() {
    // 06:00 UTC = 07:00 Berlin on Monday 2 March, program day 1.
    let (client, clock) = learner("2026-03-02T06:00:00Z");
    let today = client.today().unwrap();
    assert_eq!(today.local_date, date(2026, 3, 2));
    assert_eq!((today.position.program_day, today.position.phase), (1, Phase::Orientation));
    let prompt = today.prompt.clone().expect("a prompt on day 1");
    assert_eq!((prompt.prompt.week, prompt.prompt.day, prompt.completed), (0, 1, false));
    assert!((10..=15).contains(&prompt.prompt.minutes));
    assert_eq!(today.metrics.streak, 0);

    for day in 0..3 {
        let session = client.start_practice(None).unwrap();
        assert_eq!(client.today().unwrap().in_progress.as_ref().map(|s| s.id), Some(session.id));
        clock.advance(Duration::minutes(12));
        let outcome = PracticeOutcome {
            reflection: format!("Day {} went fine", day + 1),
            transfer: Some(TransferEvidence {
                kind: TransferKind::AppliedAtWork,
                note: "Used the opening question in my team meeting".into(),
                link: None,
            }),
            ..Default::default()
        };
        let log = client.finish_practice(session.id, &outcome).unwrap();
        assert_eq!((log.status, log.duration_secs), (PracticeStatus::Completed, Some(720)));
        let after = client.today().unwrap();
        assert!(after.prompt.unwrap().completed);
        assert!(after.in_progress.is_none());
        assert_eq!(after.metrics.streak, day + 1);
        clock.advance(Duration::days(1) - Duration::minutes(12));
    }
    let metrics = client.learner_metrics(None).unwrap();
    assert_eq!((metrics.active_days_7, metrics.minutes_7, metrics.practices_total), (3, 36, 3));
    assert_eq!(client.pending_uploads().unwrap(), 3, "each log waits in the outbox for sync");
    let logs = client.practice_logs().unwrap();
    assert_eq!(logs[0].reflection, "Day 1 went fine");
    assert_eq!(logs[0].transfer.as_ref().unwrap().kind, TransferKind::AppliedAtWork);
}

#[test]
fn finishing_twice_or_an_unknown_practice_is_refused_and_writes_nothing() {
    let (client, clock) = learner("2026-03-02T06:00:00Z");
    let session = client.start_practice(None).unwrap();
    assert!(matches!(client.start_practice(None), Err(Error::PracticeInProgress(id)) if id == session.id));
    clock.advance(Duration::minutes(10));
    client.finish_practice(session.id, &reflect("done")).unwrap();
    let again = client.finish_practice(session.id, &reflect("again")).unwrap_err();
    assert!(matches!(again, Error::PracticeAlreadyFinished(id) if id == session.id), "{again}");
    let unknown = uuid::Uuid::now_v7();
    assert!(matches!(client.finish_practice(unknown, &reflect("x")), Err(Error::UnknownPractice(id)) if id == unknown));
    assert!(matches!(client.start_practice(Some("no-such-prompt")), Err(Error::UnknownPrompt { .. })));
    assert_eq!(client.practice_history().unwrap().len(), 1);
    assert_eq!(client.pending_uploads().unwrap(), 1);
}

#[test]
fn absurd_durations_and_clock_jumps_are_named_and_leave_the_practice_open() {
    let (client, clock) = learner("2026-03-02T06:00:00Z");
    let session = client.start_practice(None).unwrap();
    // The device clock jumps back an hour (manual change, NTP fix...).
    clock.advance(Duration::hours(-1));
    let err = client.finish_practice(session.id, &reflect("")).unwrap_err();
    assert!(err.to_string().contains("moved backwards"), "{err}");
    // Absurd explicit durations.
    for secs in [0, 5 * 60 * 60] {
        let err = client.finish_practice(session.id, &timed(secs)).unwrap_err();
        assert!(err.to_string().contains("duration_secs"), "{err}");
    }
    // Nothing was written; the timer's own duration still finishes it.
    assert!(client.practice_history().unwrap().is_empty());
    assert_eq!(client.pending_uploads().unwrap(), 0);
    let log = client.finish_practice(session.id, &timed(11 * 60)).unwrap();
    assert_eq!(log.duration_secs, Some(660));
}

#[test]
fn a_correction_voids_the_old_log_without_editing_it() {
    let (client, clock) = learner("2026-03-02T06:00:00Z");
    let session = client.start_practice(None).unwrap();
    clock.advance(Duration::minutes(40));
    let first = client.finish_practice(session.id, &reflect("forgot to stop the timer")).unwrap();
    assert_eq!(client.learner_metrics(None).unwrap().minutes_7, 40);

    let fixed = client
        .correct_practice(first.id, &PracticeOutcome { duration_secs: Some(720), ..reflect("really 12 minutes") })
        .unwrap();
    assert_eq!(fixed.corrects, Some(first.id));
    assert_eq!(fixed.local_date, first.local_date);
    let visible = client.practice_logs().unwrap();
    assert_eq!(visible.len(), 1);
    assert_eq!((visible[0].id, visible[0].reflection.as_str()), (fixed.id, "really 12 minutes"));
    let history = client.practice_history().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0], first, "the original row is untouched");
    let metrics = client.learner_metrics(None).unwrap();
    assert_eq!((metrics.minutes_7, metrics.practices_total, metrics.streak), (12, 1, 1));

    let twice = client.correct_practice(first.id, &timed(600)).unwrap_err();
    assert!(matches!(twice, Error::AlreadyCorrected { log, by } if log == first.id && by == fixed.id));
    client.correct_practice(fixed.id, &timed(600)).unwrap();
    assert_eq!(client.learner_metrics(None).unwrap().minutes_7, 10);
    assert_eq!(client.pending_uploads().unwrap(), 3);
}

#[test]
fn an_abandoned_practice_is_kept_but_does_not_count() {
    let (client, clock) = learner("2026-03-02T06:00:00Z");
    let session = client.start_practice(None).unwrap();
    clock.advance(Duration::minutes(3));
    let log = client.abandon_practice(session.id).unwrap();
    assert_eq!(log.status, PracticeStatus::Abandoned);
    let today = client.today().unwrap();
    assert_eq!((today.metrics.streak, today.metrics.active_days_7), (0, 0));
    assert!(!today.prompt.unwrap().completed);
    assert!(today.in_progress.is_none());
    // The learner may start again.
    client.start_practice(None).unwrap();
}

#[test]
fn missed_days_move_on_with_this_weeks_catch_ups() {
    // Week 1 runs 8–14 March. Practise on the 8th, skip the 9th and 10th.
    let (client, clock) = learner("2026-03-08T08:00:00Z");
    let session = client.start_practice(None).unwrap();
    client.finish_practice(session.id, &timed(600)).unwrap();
    clock.set(at("2026-03-11T08:00:00Z"));
    let today = client.today().unwrap();
    let prompt = today.prompt.unwrap().prompt;
    assert_eq!((prompt.week, prompt.day), (1, 4));
    let catch_up: Vec<_> = today.catch_up.iter().map(|p| (p.prompt.week, p.prompt.day)).collect();
    assert_eq!(catch_up, vec![(1, 2), (1, 3)]);
    // Catching up on a missed prompt removes it from the list.
    let missed = today.catch_up[0].prompt.id.clone();
    let session = client.start_practice(Some(&missed)).unwrap();
    client.finish_practice(session.id, &timed(600)).unwrap();
    assert_eq!(client.today().unwrap().catch_up.len(), 1);
}

#[test]
fn a_new_pack_version_keeps_old_logs_on_the_version_they_used() {
    let (client, clock) = learner("2026-03-02T06:00:00Z");
    let session = client.start_practice(None).unwrap();
    let old_log = client.finish_practice(session.id, &timed(600)).unwrap();
    let old_title = client.prompt(&old_log.prompt).unwrap().title;

    assert_eq!(client.import_default_prompt_pack().unwrap().outcome, ImportOutcome::Unchanged);
    let edited = DEFAULT_PROMPT_PACK.replacen(
        &format!("title = \"{old_title}\""),
        "title = \"Arrive and set your intention\"",
        1,
    );
    let conflict = client.import_prompt_pack("edited.toml", &edited).unwrap_err();
    assert!(matches!(conflict, Error::PackVersionConflict { version: 3, .. }), "{conflict}");

    let v4 = edited.replacen("version = 3", "version = 4", 1);
    assert_eq!(client.import_prompt_pack("v4.toml", &v4).unwrap().outcome, ImportOutcome::Imported);
    clock.advance(Duration::hours(1));
    let today = client.today().unwrap().prompt.unwrap();
    assert_eq!((today.prompt_ref.pack_version, today.prompt.title.as_str()), (4, "Arrive and set your intention"));
    let logged = &client.practice_logs().unwrap()[0];
    assert_eq!(logged.prompt.pack_version, 3);
    assert_eq!(client.prompt(&logged.prompt).unwrap().title, old_title);
}

#[test]
fn a_malformed_pack_is_reported_by_file_entry_and_field_and_not_stored() {
    let (client, _) = learner("2026-03-02T06:00:00Z");
    let broken = DEFAULT_PROMPT_PACK.replacen("id = \"everyday-leadership\"", "id = \"broken-pack\"", 1).replacen(
        "minutes = 12",
        "minutes = 0",
        1,
    );
    let err = client.import_prompt_pack("broken.toml", &broken).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("broken.toml: prompt \"") && text.contains("field `minutes`: 0 is outside 1..=60"), "{text}");
    let mut enrollment = support::enrollment("Europe/Berlin");
    enrollment.pack_id = "broken-pack".into();
    // A new version of the enrolled pack that drops a day would leave learners without a prompt.
    let missing_day =
        DEFAULT_PROMPT_PACK.replacen("version = 3", "version = 4", 1).replacen("day = 1\n", "day = 7\n", 1);
    let err = client.import_prompt_pack("v4.toml", &missing_day).unwrap_err();
    assert!(err.to_string().contains("no prompt for program week 0 day 1"), "{err}");
    assert!(matches!(client.enroll(enrollment), Err(Error::UnknownPack(id)) if id == "broken-pack"));
}

#[test]
fn invalid_time_zones_are_refused_and_change_nothing() {
    let (client, _) = learner("2026-03-02T06:00:00Z");
    let err = client.set_time_zone("Europe/Atlantis").unwrap_err();
    assert!(err.to_string().contains("Europe/Atlantis"), "{err}");
    assert_eq!(client.profile().unwrap().time_zone, chrono_tz::Europe::Berlin);
    let err = client.enroll(support::enrollment("GMT+25")).unwrap_err();
    assert!(err.to_string().contains("GMT+25"));
    assert!(client.set_day_start_offset(-60).is_err());
}

#[test]
fn travelling_east_keeps_past_days_and_counts_new_ones_in_the_new_zone() {
    // 21:00 Berlin on 10 March.
    let (client, clock) = learner("2026-03-10T20:00:00Z");
    let session = client.start_practice(None).unwrap();
    client.finish_practice(session.id, &timed(600)).unwrap();
    // Flies to Tokyo; 09:30 on 11 March in Tokyo is still 10 March in Berlin.
    clock.set(at("2026-03-11T00:30:00Z"));
    client.set_time_zone("Asia/Tokyo").unwrap();
    let today = client.today().unwrap();
    assert_eq!((today.local_date, today.time_zone.as_str()), (date(2026, 3, 11), "Asia/Tokyo"));
    assert!(!today.metrics.practised_today);
    let session = client.start_practice(None).unwrap();
    client.finish_practice(session.id, &timed(600)).unwrap();
    let logs = client.practice_logs().unwrap();
    assert_eq!((logs[0].local_date, logs[0].time_zone.as_str()), (date(2026, 3, 10), "Europe/Berlin"));
    assert_eq!((logs[1].local_date, logs[1].time_zone.as_str()), (date(2026, 3, 11), "Asia/Tokyo"));
    assert_eq!(client.today().unwrap().metrics.streak, 2);
}

#[test]
fn a_day_start_offset_counts_a_late_night_practice_for_the_evening_before() {
    // 01:30 Berlin on 11 March.
    let (client, clock) = learner("2026-03-11T00:30:00Z");
    client.set_day_start_offset(180).unwrap();
    assert_eq!(client.today().unwrap().local_date, date(2026, 3, 10));
    let session = client.start_practice(None).unwrap();
    assert_eq!(session.local_date, date(2026, 3, 10));
    client.finish_practice(session.id, &timed(600)).unwrap();
    clock.set(at("2026-03-11T07:00:00Z"));
    let today = client.today().unwrap();
    assert_eq!(today.local_date, date(2026, 3, 11));
    assert_eq!((today.metrics.streak, today.metrics.practised_today), (1, false));
}

#[test]
fn practices_across_the_spring_dst_change_make_an_unbroken_streak() {
    // Berlin springs forward in the night of 28–29 March: the 29th has 23 hours.
    let (client, clock) = learner("2026-03-28T21:30:00Z"); // 22:30 CET on the 28th
    for instant in ["2026-03-28T21:30:00Z", "2026-03-29T21:30:00Z", "2026-03-30T05:30:00Z"] {
        clock.set(at(instant));
        let session = client.start_practice(None).unwrap();
        client.finish_practice(session.id, &timed(600)).unwrap();
    }
    let days: Vec<_> = client.practice_logs().unwrap().iter().map(|l| l.local_date).collect();
    // 21:30 UTC on the 29th is 23:30 CEST: still the 29th.
    assert_eq!(days, vec![date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]);
    assert_eq!(client.today().unwrap().metrics.streak, 3);
}

#[test]
fn a_device_clock_set_years_ahead_does_not_corrupt_todays_streak() {
    let (client, clock) = learner("2026-03-10T07:00:00Z");
    let session = client.start_practice(None).unwrap();
    client.finish_practice(session.id, &timed(600)).unwrap();
    // Clock wrongly set to 2030: outside the program, so no prompt, but a practice can still be
    // logged against a chosen prompt.
    clock.set(at("2030-03-11T07:00:00Z"));
    assert!(client.today().unwrap().prompt.is_none());
    let prompt_id = client.practice_logs().unwrap()[0].prompt.prompt_id.clone();
    let session = client.start_practice(Some(&prompt_id)).unwrap();
    client.finish_practice(session.id, &timed(600)).unwrap();
    // Clock fixed: the stray future day is ignored by today's metrics.
    clock.set(at("2026-03-11T07:00:00Z"));
    let metrics = client.today().unwrap().metrics;
    assert_eq!((metrics.streak, metrics.active_days_7, metrics.practices_total), (1, 1, 1));
}

#[test]
fn reminders_skip_a_practised_day_and_stay_under_the_ios_limit() {
    let (client, clock) = learner("2026-03-09T05:00:00Z"); // 06:00 Berlin, before the 07:30 reminder
    let first = client.reminder_plan(3).unwrap();
    assert!(first.iter().any(|r| r.kind == ReminderKind::Practice && r.local_date == date(2026, 3, 9)));
    let session = client.start_practice(None).unwrap();
    clock.advance(Duration::minutes(12));
    client.finish_practice(session.id, &reflect("")).unwrap();
    let after = client.reminder_plan(3).unwrap();
    assert!(after.iter().all(|r| r.local_date != date(2026, 3, 9)), "no reminder for a day already practised");
    let whole = client.reminder_plan(120).unwrap();
    assert!(whole.len() <= 64);
    assert!(whole.iter().all(|r| r.local_date <= date(2026, 5, 30)), "none after the program ends");
    assert!(client.reminder_plan(0).is_err());
}

#[test]
fn enrolling_with_a_pack_that_misses_program_days_is_refused() {
    let (client, _) = learner("2026-03-02T06:00:00Z");
    let mut longer = support::enrollment("Europe/Berlin");
    longer.blueprint.weeks = 13;
    longer.blueprint.validate().unwrap();
    let err = client.enroll(longer).unwrap_err();
    assert!(err.to_string().contains("no prompt for program week 13 day 1"), "{err}");
}

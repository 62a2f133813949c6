//! A facilitator runs a week's critique from the phone over a real server: she moves it, sets
//! its meeting link and hands it to a learner, and every device's reminders, calendar and roles
//! follow; the learner leading it writes its agenda, another learner cannot (not through the
//! app, nor with a forged change); a wrong time (one the clocks skip, too), lead or link is
//! refused with the field named, and nothing is written.

use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc};
use chrono::{DateTime, Days, NaiveDateTime, NaiveTime, TimeZone, Utc};
use microcohort_core::domain::critique_week::{CritiqueWeek, CritiqueWeekChange};
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::domain::reminders::{PlannedReminder, ReminderDetails};
use microcohort_core::sync::wire::{self, CRITIQUE_WEEKS_PATH, DocPush, DocStatus, SyncRequest, SyncResponse};
use microcohort_core::{Client, Error, ManualClock};
use microcohort_tests::{
    Backend, ServerProcess, TestData, admin, member_device, on_both_backends, program_under_way, raw_join, raw_post,
};
use serde_bytes::ByteBuf;

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");
const WEEK: &str = "week:c1:1";

on_both_backends!(a_moved_peer_led_week_reaches_every_device);

fn device(server: &ServerProcess, data: &TestData, clock: &ManualClock, name: &str, role: &str) -> Client {
    member_device(SERVER, server, data.path(), clock, name, role)
}

fn critique_reminder(client: &Client, week: u32) -> Option<PlannedReminder> {
    client
        .reminder_plan(14)
        .unwrap()
        .into_iter()
        .find(|r| matches!(&r.details, ReminderDetails::Critique { week: w, .. } if *w == week))
}

/// The calendar's instance of a changed week: the event holding a RECURRENCE-ID.
fn changed_instance(calendar: &str) -> Option<String> {
    calendar.split("BEGIN:VEVENT").find(|event| event.contains("RECURRENCE-ID")).map(str::to_owned)
}

fn sequence_of(event: &str) -> u32 {
    let line = event.lines().find(|l| l.starts_with("SEQUENCE:")).expect("a SEQUENCE");
    line["SEQUENCE:".len()..].trim().parse().unwrap()
}

fn ical(at: NaiveDateTime) -> String {
    at.format("%Y%m%dT%H%M%S").to_string()
}

fn a_moved_peer_led_week_reaches_every_device(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    // Today is the first day of week 1; its last day is six days ahead.
    let start: chrono::NaiveDate = program_under_way(SERVER, data.path(), 6, &["c1"]).parse().unwrap();
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let clock = ManualClock::new(Utc::now());
    let fay = device(&server, &data, &clock, "Fay", "facilitator");
    let ana = device(&server, &data, &clock, "Ana", "learner");
    let ben = device(&server, &data, &clock, "Ben", "learner");
    let ana_tablet = Client::open_in_memory(Arc::new(clock.clone())).unwrap();
    ana_tablet.link_device(&ana.create_device_link().unwrap().payload, "tablet", "UTC").unwrap();
    let everyone = [&fay, &ana, &ben, &ana_tablet];
    for client in everyone {
        client.sync_now().unwrap();
    }
    let ana_id = fay.roster().unwrap().members().iter().find(|m| m.display_name == "Ana").unwrap().user_id.clone();
    let regular = critique_reminder(&ana, 1).map(|r| r.fire_at);

    // A learner cannot change the week; the facilitator moves it to the week's last evening.
    let moved_to = NaiveDateTime::new(start + Days::new(12), NaiveTime::from_hms_opt(18, 30, 0).unwrap());
    let change = CritiqueWeekChange {
        week: 1,
        moved_to: Some(moved_to),
        link: Some("https://meet.example/c1-week-1".into()),
        lead: Some(ana_id.clone()),
    };
    assert!(matches!(ana.change_critique_week(&change), Err(Error::FacilitatorOnly)));
    let changed = fay.change_critique_week(&change).unwrap();
    assert_eq!(changed.revision, 1);
    let first_calendar = ana.calendar().unwrap();

    let moved_at: DateTime<Utc> = Utc.from_utc_datetime(&moved_to);
    for client in everyone {
        client.sync_now().unwrap();
        let week = client.critique_week(1).unwrap().expect("the changed week reached every device");
        assert_eq!(week, changed);
        assert_eq!(client.week_roles(1).unwrap().critique_lead.as_deref(), Some(ana_id.as_str()));
        let reminder = critique_reminder(client, 1).expect("a reminder before the moved critique");
        let ReminderDetails::Critique { starts_at, link, .. } = &reminder.details else { unreachable!() };
        assert_eq!(*starts_at, moved_at);
        assert_eq!(link.as_deref(), Some("https://meet.example/c1-week-1"));
        assert_ne!(Some(reminder.fire_at), regular, "the reminder moved with the critique");
        let instance = changed_instance(&client.calendar().unwrap()).expect("the moved week in the calendar");
        assert!(instance.contains(&format!("DTSTART;TZID=UTC:{}", ical(moved_to))), "{instance}");
        assert!(instance.contains("LOCATION:https://meet.example/c1-week-1"), "{instance}");
    }
    assert!(changed_instance(&first_calendar).is_none(), "before the sync, the calendar had no changed week");

    // The learner leading the week writes its agenda; another learner cannot.
    clock.advance(chrono::Duration::minutes(1));
    let session = ben.start_practice(None).unwrap();
    clock.advance(chrono::Duration::minutes(11));
    let outcome = PracticeOutcome { duration_secs: Some(660), ..Default::default() };
    let log = ben.finish_practice(session.id, &outcome).unwrap();
    let shared = ben.share_practice(log.id, "Pausing before replying", "I counted to three").unwrap();
    ben.sync_now().unwrap();
    ana.sync_now().unwrap();
    let item = ana.add_agenda_item(&shared, "Start with Ben's pause").unwrap();
    assert!(matches!(ben.add_agenda_item(&shared, "mine"), Err(Error::FacilitatorOnly)));
    let outcome = ana.sync_now().unwrap();
    assert!(outcome.rejected.is_empty(), "the lead's agenda item was refused: {:?}", outcome.rejected);
    for client in [&fay, &ben, &ana_tablet] {
        client.sync_now().unwrap();
        let agenda = client.agenda(1).unwrap();
        assert_eq!(agenda.iter().map(|a| a.meta.key.as_str()).collect::<Vec<_>>(), [item.key.as_str()]);
    }

    // A forged agenda entry by a learner who does not lead the week is refused by the server.
    let mallory = raw_join(&server, &admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", "Mal"]));
    let mut week = AutoCommit::new();
    for change in fay.changes_since(WEEK, &[]).unwrap() {
        week.apply_changes([automerge::Change::from_bytes(change).unwrap()]).unwrap();
    }
    let heads = week.get_heads();
    week.set_actor(ActorId::random());
    let agenda = week.get(ROOT, "agenda").unwrap().unwrap().1;
    week.put_object(&agenda, format!("{}/a1", mallory.user_id).as_str(), ObjType::Map).unwrap();
    week.commit();
    let forged = week.get_changes(&heads).into_iter().map(|c| ByteBuf::from(c.raw_bytes().to_vec())).collect();
    let request = SyncRequest {
        docs: vec![DocPush {
            doc_id: WEEK.into(),
            known_server_heads: heads.iter().map(|h| ByteBuf::from(h.0.to_vec())).collect(),
            changes: forged,
            client_heads: vec![],
        }],
        ..Default::default()
    };
    let (status, _, body) = raw_post(server.address, "/v1/sync", Some(&mallory.device_token), &wire::encode(&request));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: SyncResponse = wire::decode(&body).unwrap();
    assert!(
        matches!(&answer.docs[0].status, DocStatus::Rejected { reason, .. } if reason == "role_required"),
        "{:?}",
        answer.docs[0].status
    );

    // Moving it again raises the calendar's SEQUENCE on every device.
    let before = sequence_of(&changed_instance(&ana.calendar().unwrap()).unwrap());
    let later = moved_to + chrono::Duration::minutes(30);
    let again = CritiqueWeekChange { week: 1, moved_to: Some(later), ..Default::default() };
    assert_eq!(fay.change_critique_week(&again).unwrap().revision, 2);
    ana.sync_now().unwrap();
    let instance = changed_instance(&ana.calendar().unwrap()).unwrap();
    assert!(sequence_of(&instance) > before, "{instance}");
    assert!(instance.contains(&format!("DTSTART;TZID=UTC:{}", ical(later))), "{instance}");

    // Wrong input, from the app and straight to the server: refused with the field, nothing written.
    let after_program = NaiveDateTime::new(start + Days::new(200), NaiveTime::from_hms_opt(17, 0, 0).unwrap());
    let bad = [
        (CritiqueWeekChange { week: 1, moved_to: Some(after_program), ..Default::default() }, "moved_to"),
        (CritiqueWeekChange { week: 1, lead: Some("someone-else".into()), ..Default::default() }, "lead"),
        (CritiqueWeekChange { week: 1, link: Some("ftp://files".into()), ..Default::default() }, "link"),
        (CritiqueWeekChange { week: 40, ..Default::default() }, "week"),
    ];
    let gus = raw_join(
        &server,
        &admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--role", "facilitator", "--name", "Gus"]),
    );
    for (change, field) in &bad {
        let err = fay.change_critique_week(change).unwrap_err();
        assert!(matches!(&err, Error::Domain(e) if e.to_string().contains(field)), "{field}: {err:?}");
        let (status, _, body) =
            raw_post(server.address, CRITIQUE_WEEKS_PATH, Some(&gus.device_token), &wire::encode(change));
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{field}: {text}");
        assert!(text.contains(field), "{field}: {text}");
    }
    let (status, _, _) =
        raw_post(server.address, CRITIQUE_WEEKS_PATH, Some(&mallory.device_token), &wire::encode(&again));
    assert_eq!(status, 403, "a learner's token cannot change a week");
    let (status, _, _) = raw_post(server.address, CRITIQUE_WEEKS_PATH, Some(&gus.device_token), b"\xff\x00garbage");
    assert_eq!(status, 400);
    fay.sync_now().unwrap();
    let kept: CritiqueWeek = fay.critique_week(1).unwrap().unwrap();
    assert_eq!((kept.revision, kept.moved_to), (2, Some(later)), "nothing was written");

    // Where the clocks change: a program in Berlin whose week 12 holds the start of summer time
    // (28 March 2027). A time the clocks skip is refused by the server; an hour later is kept.
    let berlin =
        ["create-program", "--id", "p2", "--title", "Berlin", "--start", "2027-01-04", "--time-zone", "Europe/Berlin"];
    admin(SERVER, data.path(), &berlin);
    admin(SERVER, data.path(), &["create-cohort", "--id", "c2", "--program", "p2", "--title", "Berlin cohort"]);
    let hana = raw_join(
        &server,
        &admin(SERVER, data.path(), &["invite", "--cohort", "c2", "--role", "facilitator", "--name", "Hana"]),
    );
    let gap = CritiqueWeekChange { week: 12, moved_to: "2027-03-28T02:30:00".parse().ok(), ..Default::default() };
    let (status, _, body) =
        raw_post(server.address, CRITIQUE_WEEKS_PATH, Some(&hana.device_token), &wire::encode(&gap));
    let text = String::from_utf8_lossy(&body);
    assert!(status == 400 && text.contains("moved_to") && text.contains("skip"), "{status} {text}");
    let hour_later = CritiqueWeekChange { moved_to: "2027-03-28T03:30:00".parse().ok(), ..gap };
    let (status, _, body) =
        raw_post(server.address, CRITIQUE_WEEKS_PATH, Some(&hana.device_token), &wire::encode(&hour_later));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

//! The notification plan over a real server: Ben gives Ana feedback, and each of Ana's phones
//! tells her once, on its next plan after the sync that brought it, never again; her reply
//! reaches Ben the same way; reviews she owes come with the time the window closes.

use std::sync::Arc;

use chrono::Utc;
use microcohort_core::domain::notifications::{Notification, NotificationDetails, NotificationKind};
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::{Client, Clock, FeedbackInput, ManualClock};
use microcohort_tests::{
    Backend, ServerProcess, TestData, admin, on_both_backends, program_under_way, without_quiet_hours,
};

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

on_both_backends!(feedback_is_told_once_on_each_of_her_phones);

fn phone(server: &ServerProcess, data: &TestData, clock: &ManualClock, name: &str) -> Client {
    let client = Client::open_in_memory(Arc::new(clock.clone())).unwrap();
    let invite = admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", name]);
    client.join_server(&server.url(), &invite, "phone", "UTC").unwrap();
    without_quiet_hours(&client);
    client
}

fn of_kind(plan: &[Notification], kind: NotificationKind) -> Vec<&Notification> {
    plan.iter().filter(|n| n.kind == kind).collect()
}

fn feedback_is_told_once_on_each_of_her_phones(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    // Today is the first day of week 1 (week 0 has six days): who joins today takes part in it.
    program_under_way(SERVER, data.path(), 6, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let clock = ManualClock::new(Utc::now());
    let ana = phone(&server, &data, &clock, "Ana");
    let ben = phone(&server, &data, &clock, "Ben");
    let cy = phone(&server, &data, &clock, "Cy");
    // Ana's second phone, linked from the first.
    let ana_tablet = Client::open_in_memory(Arc::new(clock.clone())).unwrap();
    ana_tablet.link_device(&ana.create_device_link().unwrap().payload, "tablet", "UTC").unwrap();
    without_quiet_hours(&ana_tablet);

    clock.advance(chrono::Duration::minutes(1));
    let session = ana.start_practice(None).unwrap();
    clock.advance(chrono::Duration::minutes(12));
    let log = ana.finish_practice(session.id, &PracticeOutcome { duration_secs: Some(700), ..Default::default() });
    let shared = ana.share_practice(log.unwrap().id, "Listening first", "I waited before answering").unwrap();
    ana.sync_now().unwrap();
    for client in [&ana, &ana_tablet] {
        let plan = client.notification_plan(7).unwrap();
        assert!(of_kind(&plan, NotificationKind::FeedbackOnMyWork).is_empty(), "no feedback yet: {plan:?}");
    }

    ben.sync_now().unwrap();
    clock.advance(chrono::Duration::minutes(5));
    let input = FeedbackInput { body: "You let the silence work.".into(), suggestion: None, criteria: vec![0] };
    let feedback = ben.give_feedback(&shared, &input).unwrap();
    ben.sync_now().unwrap();

    for client in [&ana, &ana_tablet] {
        client.sync_now().unwrap();
        let plan = client.notification_plan(7).unwrap();
        let told = of_kind(&plan, NotificationKind::FeedbackOnMyWork);
        assert_eq!(told.len(), 1, "{plan:?}");
        assert_eq!(told[0].id, format!("feedback-{}", feedback.key));
        assert_eq!((told[0].week, told[0].entry.as_deref()), (Some(shared.week), Some(feedback.key.as_str())));
        assert!(
            matches!(&told[0].details, NotificationDetails::FeedbackOnMyWork { from, submission_title, .. }
                if from == "Ben" && submission_title == "Listening first"),
            "{:?}",
            told[0].details
        );
        assert!(told[0].fire_at <= clock.now() + chrono::Duration::hours(12), "now, or after quiet hours");
        // Once: neither the next plan nor the one after another sync repeats it.
        assert!(of_kind(&client.notification_plan(7).unwrap(), NotificationKind::FeedbackOnMyWork).is_empty());
        client.sync_now().unwrap();
        assert!(of_kind(&client.notification_plan(7).unwrap(), NotificationKind::FeedbackOnMyWork).is_empty());
    }
    assert!(of_kind(&cy.notification_plan(7).unwrap(), NotificationKind::FeedbackOnMyWork).is_empty(), "not Cy's work");

    // Unread on both of her phones until she looks on one of them and it syncs.
    for client in [&ana, &ana_tablet] {
        let unread = client.unread().unwrap();
        assert_eq!(unread.len(), 1, "{unread:?}");
        assert_eq!((unread[0].entry.as_str(), unread[0].from.as_str()), (feedback.key.as_str(), "Ben"));
    }
    clock.advance(chrono::Duration::minutes(1));
    ana.mark_all_read().unwrap();
    assert!(ana.unread().unwrap().is_empty());
    assert_eq!(ana_tablet.unread().unwrap().len(), 1, "not synced yet");
    ana.sync_now().unwrap();
    ana_tablet.sync_now().unwrap();
    assert!(ana_tablet.unread().unwrap().is_empty(), "read on her phone");

    // Ana replies on her tablet: Ben is told once.
    let reply = ana_tablet.reply(&feedback, None, "Thanks, I'll try it again tomorrow.").unwrap();
    ana_tablet.sync_now().unwrap();
    ben.sync_now().unwrap();
    let plan = ben.notification_plan(7).unwrap();
    let replies = of_kind(&plan, NotificationKind::ReplyToMe);
    assert_eq!(replies.len(), 1, "{plan:?}");
    assert_eq!(replies[0].entry.as_deref(), Some(reply.key.as_str()));
    assert!(of_kind(&ben.notification_plan(7).unwrap(), NotificationKind::ReplyToMe).is_empty());
    let ben_unread = ben.unread().unwrap();
    assert_eq!(ben_unread.iter().map(|u| u.kind).collect::<Vec<_>>(), vec![NotificationKind::ReplyToMe]);

    // Cy owes reviews of this week's work (three learners all review each other): due before
    // the window closes, with that time.
    cy.sync_now().unwrap();
    let plan = cy.notification_plan(7).unwrap();
    let due = of_kind(&plan, NotificationKind::ReviewsDue);
    if let [due] = due.as_slice() {
        let NotificationDetails::ReviewsDue { owed, closes_at, week } = due.details else { panic!("{due:?}") };
        assert_eq!(week, shared.week);
        assert!(owed >= 1 && due.fire_at < closes_at, "{due:?}");
        assert_eq!(Some(closes_at), cy.feedback_window(week).unwrap().closes_at);
    } else {
        panic!("one reviews-due notification for Cy: {plan:?}");
    }
    let next = cy.next_sync_at().unwrap();
    assert!(next > clock.now() && next <= clock.now() + chrono::Duration::hours(16), "{next}");
}

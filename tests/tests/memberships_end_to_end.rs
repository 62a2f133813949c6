//! One device database holds every membership of its person: a facilitator of three cohorts
//! syncs all of them in one round trip, reviews each dashboard and leaves one; a learner in two
//! programs practises in both, and a new phone of hers gets both programs and both histories.

use std::sync::Arc;

use chrono::{Duration, Utc};
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::domain::roster::MemberRole;
use microcohort_core::{Client, Clock, ManualClock};
use microcohort_tests::{Backend, ServerProcess, TestData, admin, on_both_backends, program_under_way};

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

on_both_backends!(
    a_facilitator_of_three_cohorts_uses_one_database,
    a_learner_in_two_programs_keeps_both_on_a_new_phone
);

fn phone(clock: &ManualClock) -> Client {
    Client::open_in_memory(Arc::new(clock.clone())).expect("open a device")
}

fn invite(data: &TestData, cohort: &str, role: &str, name: &str, user: Option<&str>) -> String {
    let mut args = vec!["invite", "--cohort", cohort, "--role", role, "--name", name];
    if let Some(user) = user {
        args.extend(["--user", user]);
    }
    admin(SERVER, data.path(), &args)
}

/// One completed 11-minute practice of today's prompt, now.
fn practise(client: &Client, clock: &ManualClock) -> uuid::Uuid {
    let session = client.start_practice(None).expect("a prompt today");
    clock.set(clock.now() + Duration::minutes(11));
    let outcome = PracticeOutcome { duration_secs: Some(660), reflection: "private".into(), ..Default::default() };
    client.finish_practice(session.id, &outcome).expect("finish").id
}

fn a_facilitator_of_three_cohorts_uses_one_database(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 10, &["c1", "c2", "c3"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let clock = ManualClock::new(Utc::now());

    // Fay joins c1 on her phone, then c2 and c3 on the same database with invites for her.
    let fay = phone(&clock);
    fay.join_server(&server.url(), &invite(&data, "c1", "facilitator", "Fay", None), "Fay's phone", "UTC").unwrap();
    let fay_id = fay.my_user_id().unwrap();
    for cohort in ["c2", "c3"] {
        let joined = fay
            .join_server(&server.url(), &invite(&data, cohort, "facilitator", "Fay", Some(&fay_id)), "ignored", "UTC")
            .unwrap();
        assert_eq!((joined.user_id.as_str(), joined.cohort_id.as_str()), (fay_id.as_str(), cohort));
    }
    assert_eq!(fay.devices().unwrap().len(), 1, "three memberships, one device");
    let memberships = fay.memberships().unwrap();
    let cohorts: Vec<&str> = memberships.iter().map(|m| m.cohort_id.as_str()).collect();
    assert_eq!(cohorts, ["c3", "c1", "c2"], "the last joined is selected, listed first");
    assert!(memberships.iter().all(|m| m.role.as_deref() == Some("facilitator")), "{memberships:?}");

    // A learner in each cohort practises today.
    let mut learners = Vec::new();
    for (cohort, name) in [("c1", "Ann"), ("c2", "Bo"), ("c3", "Cy")] {
        let learner = phone(&clock);
        learner.join_server(&server.url(), &invite(&data, cohort, "learner", name, None), name, "UTC").unwrap();
        practise(&learner, &clock);
        learner.sync_now().unwrap();
        learners.push((cohort, learner.my_user_id().unwrap()));
    }

    // One sync brings all three cohorts: rosters, documents and the learners' logs.
    let outcome = fay.sync_now().unwrap();
    assert!(outcome.memberships_refused.is_empty() && outcome.rejected.is_empty(), "{outcome:?}");
    assert_eq!(outcome.cohort_logs_received, 3, "{outcome:?}");
    let overview = fay.facilitator_overview().unwrap();
    assert_eq!(overview.iter().map(|r| r.cohort_id.as_str()).collect::<Vec<_>>(), ["c1", "c2", "c3"]);
    for (report, (cohort, learner)) in overview.iter().zip(&learners) {
        let member = report.members.iter().find(|m| &m.user_id == learner).expect("the learner on her dashboard");
        assert_eq!((cohort, member.active_days_7), (cohort, 1), "{report:?}");
        let learners = report.members.iter().filter(|m| m.role == MemberRole::Learner).count();
        assert_eq!(learners, 1, "only {cohort}'s learner: {report:?}");
    }

    // One person on one device: she counts once in the facilitator load.
    let load = admin(SERVER, data.path(), &["facilitator-load"]);
    assert_eq!(load, format!("{fay_id}\tFay\t1 programs\t3 cohorts\t3 learners"));

    // The screens follow the selected membership.
    fay.select_membership("c2").unwrap();
    assert_eq!(fay.cohort_dashboard().unwrap().cohort_id, "c2");
    assert!(fay.roster().unwrap().member(&learners[1].1).is_some());
    assert!(fay.select_membership("nowhere").is_err(), "a cohort she is not in is refused");

    // Leaving one (the cohort she joined through) drops it alone; the others keep syncing.
    fay.select_membership("c1").unwrap();
    fay.leave_cohort().unwrap();
    let left: Vec<String> = fay.memberships().unwrap().into_iter().map(|m| m.cohort_id).collect();
    assert_eq!(left, ["c2", "c3"]);
    let outcome = fay.sync_now().unwrap();
    assert!(outcome.memberships_refused.is_empty(), "{outcome:?}");
    assert_eq!(fay.facilitator_overview().unwrap().len(), 2);
    let roster = admin(SERVER, data.path(), &["list-members", "--cohort", "c1"]);
    assert!(roster.lines().any(|l| l.starts_with(&fay_id) && l.contains("left")), "{roster}");
}

fn a_learner_in_two_programs_keeps_both_on_a_new_phone(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 10, &["c1"]);
    let start = Utc::now().date_naive().to_string();
    admin(
        SERVER,
        data.path(),
        &["create-program", "--id", "p2", "--title", "Second", "--start", &start, "--time-zone", "UTC"],
    );
    admin(SERVER, data.path(), &["create-cohort", "--id", "d1", "--program", "p2", "--title", "D1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let clock = ManualClock::new(Utc::now());

    // Ada practises in program p1, then joins p2 on the same phone and practises there too.
    let phone_a = phone(&clock);
    phone_a.join_server(&server.url(), &invite(&data, "c1", "learner", "Ada", None), "phone A", "UTC").unwrap();
    let ada = phone_a.my_user_id().unwrap();
    practise(&phone_a, &clock);
    phone_a.join_server(&server.url(), &invite(&data, "d1", "learner", "Ada", Some(&ada)), "phone A", "UTC").unwrap();
    assert_eq!(phone_a.today().unwrap().position.week, Some(0), "the new program's first week is on screen");
    practise(&phone_a, &clock);
    let outcome = phone_a.sync_now().unwrap();
    assert_eq!(outcome.logs_acked, 2, "each log with its own program: {outcome:?}");
    assert!(outcome.memberships_refused.is_empty(), "{outcome:?}");

    // A second invite for someone else is refused on her phone, and nothing changes.
    let err = phone_a.join_server(&server.url(), &invite(&data, "d1", "learner", "Eve", None), "phone A", "UTC");
    assert!(err.is_err(), "another person's invite on her phone");
    assert_eq!(phone_a.memberships().unwrap().len(), 2);

    // Phone B, linked from A, gets both memberships, both histories and her private text.
    let link = phone_a.create_device_link().unwrap();
    let phone_b = phone(&clock);
    phone_b.link_device(&link.payload, "phone B", "UTC").unwrap();
    let mut cohorts: Vec<String> = phone_b.memberships().unwrap().into_iter().map(|m| m.cohort_id).collect();
    cohorts.sort();
    assert_eq!(cohorts, ["c1", "d1"]);
    let outcome = phone_b.sync_now().unwrap();
    assert_eq!(outcome.history_logs_received, 2, "{outcome:?}");
    assert!(phone_b.practice_history().unwrap().iter().all(|log| log.reflection == "private"));
    for cohort in ["c1", "d1"] {
        phone_b.select_membership(cohort).unwrap();
        phone_a.select_membership(cohort).unwrap();
        let (a, b) = (phone_a.today().unwrap(), phone_b.today().unwrap());
        assert_eq!((b.metrics.streak, b.metrics.active_days_7), (1, 1), "{cohort}: {b:?}");
        assert_eq!(a.metrics, b.metrics, "{cohort}: the same figures on both phones");
        assert!(phone_b.roster().unwrap().member(&ada).is_some(), "{cohort}'s roster on the new phone");
    }
}

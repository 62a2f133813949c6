//! A program with two cohorts and a control arm: the program places learners by a seeded draw
//! (or the operator's choice), control learners practise alone on real devices (no peers, no
//! sharing, no critiques; a forged write is refused by the server), and the report compares the
//! arms with intervals that a computation of this test's own reproduces. Exports show every
//! learner's arm and how she was assigned.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use chrono::{Days, NaiveDate, TimeZone, Utc};
use microcohort_core::domain::arms::{Arm, draw};
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::sync::wire::{self, DocPush, DocStatus, SyncRequest, SyncResponse};
use microcohort_core::{Client, Error, ManualClock};
use microcohort_tests::{
    Backend, ServerProcess, TestData, admin, lead_get, on_both_backends, program_under_way, raw_join, raw_post,
    server_command,
};
use serde_bytes::ByteBuf;
use serde_json::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");
const SEED: u64 = 42;
const LEARNERS: u64 = 12;
/// The program started this many days ago: today is program day 11.
const DAYS_AGO: u64 = 10;

on_both_backends!(a_control_arm_practises_alone_and_the_report_compares_the_arms);

/// Runs `admin` and returns (stdout, stderr, success).
fn run_admin(data: &Path, args: &[&str]) -> (String, String, bool) {
    let output = server_command(SERVER, data).arg("admin").args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_owned();
    (text(&output.stdout), text(&output.stderr), output.status.success())
}

/// A program lead's view at `path`.
fn fetch(server: &ServerProcess, data: &Path, path: &str) -> String {
    lead_get(SERVER, server, data, path)
}

/// The days (program days 1..=10) learner `i` practises: the cohort arm every other day, the
/// control arm every fourth, and every third control learner never.
fn practice_days(i: u64, arm: Arm) -> Vec<u32> {
    (1..=10u32)
        .filter(|d| match arm {
            Arm::Cohort => (u64::from(*d) + i).is_multiple_of(2),
            Arm::Control => !i.is_multiple_of(3) && (u64::from(*d) + i).is_multiple_of(4),
        })
        .collect()
}

/// The Wilson 95 % interval, written out here from its formula.
fn wilson(k: f64, n: f64) -> (f64, f64) {
    let z = 1.959_963_984_540_054_f64;
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

fn a_control_arm_practises_alone_and_the_report_compares_the_arms(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    let start: NaiveDate = program_under_way(SERVER, data.path(), DAYS_AGO, &["c1", "c2"]).parse().unwrap();
    let created = admin(
        SERVER,
        data.path(),
        &["create-cohort", "--id", "k", "--program", "p1", "--title", "Control", "--arm", "control"],
    );
    assert!(created.contains("control arm"), "{created}");
    let server = ServerProcess::start(SERVER, data.path(), &[]);

    // Twelve learners placed by the program's draws from seed 42: balanced blocks of four, the
    // cohort arm's learners spread over its two cohorts.
    let mut learners = Vec::new();
    for i in 0..LEARNERS {
        let name = format!("L{i}");
        let mut args = vec!["invite", "--program", "p1", "--name", &name];
        if i == 0 {
            args.extend(["--seed", "42"]);
        }
        let (code, placed, ok) = run_admin(data.path(), &args);
        assert!(ok, "{placed}");
        let arm = draw(SEED, i);
        assert!(placed.contains(&format!("{} arm", arm.as_str())), "draw {i}: {placed}");
        assert!(placed.contains(&format!("random seed={SEED} draw={i}")), "{placed}");
        learners.push((i, arm, code));
    }
    let control = learners.iter().filter(|(_, arm, _)| *arm == Arm::Control).count();
    assert_eq!(control, 6, "blocks of four keep the arms equal");

    // The seed cannot change after the first draw; the operator's choice needs none.
    let (_, refused, ok) = run_admin(data.path(), &["invite", "--program", "p1", "--name", "X", "--seed", "7"]);
    assert!(!ok && refused.contains("seed 42"), "{refused}");
    let (chosen, placed, ok) =
        run_admin(data.path(), &["invite", "--program", "p1", "--name", "Op", "--arm", "control"]);
    assert!(ok && placed.contains("control arm, cohort k (operator)"), "{placed}");
    // A control arm has no facilitators.
    let (_, refused, ok) = run_admin(data.path(), &["add-facilitator", "--cohort", "k", "--name", "Fay"]);
    assert!(!ok && refused.contains("control arm"), "{refused}");

    // Each learner joins on her own phone and practises on her days, then syncs.
    let mut active: HashMap<String, (Arm, String, Vec<u32>)> = HashMap::new();
    let mut devices = Vec::new();
    for (i, arm, code) in &learners {
        let clock = ManualClock::new(Utc::now());
        let device = Client::open_in_memory(Arc::new(clock.clone())).unwrap();
        let joined = device.join_server(&server.url(), code, "phone", "UTC").unwrap();
        assert_eq!(joined.cohort_id == "k", *arm == Arm::Control);
        assert_eq!(device.memberships().unwrap()[0].arm, *arm);
        admin(
            SERVER,
            data.path(),
            &["set-joined-on", "--cohort", &joined.cohort_id, "--user", &joined.user_id, "--date", &start.to_string()],
        );
        let days = practice_days(*i, *arm);
        for day in &days {
            let date = start + Days::new(u64::from(*day) - 1);
            clock.set(Utc.from_utc_datetime(&date.and_hms_opt(12, 0, 0).unwrap()));
            let session = device.start_practice(None).unwrap();
            clock.advance(chrono::Duration::minutes(11));
            device
                .finish_practice(session.id, &PracticeOutcome { duration_secs: Some(660), ..Default::default() })
                .unwrap();
        }
        clock.set(Utc::now());
        let outcome = device.sync_now().unwrap();
        assert_eq!((outcome.logs_refused, outcome.logs_acked), (0, days.len()));
        active.insert(joined.user_id.clone(), (*arm, joined.cohort_id.clone(), days));
        devices.push((*arm, device));
    }
    let in_cohort = |id: &str| active.values().filter(|(_, c, _)| c == id).count();
    assert_eq!((in_cohort("c1"), in_cohort("c2"), in_cohort("k")), (3, 3, 6), "the roomiest cohort of the arm");
    // A person takes part in one arm: a cohort learner is not invited into the control arm too.
    let (someone, _) = active.iter().find(|(_, (arm, _, _))| *arm == Arm::Cohort).unwrap();
    let (_, refused, ok) = run_admin(data.path(), &["invite", "--cohort", "k", "--name", "Twice", "--user", someone]);
    assert!(!ok && refused.contains("one arm"), "{refused}");

    // On a control learner's phone: the practice loop, nobody else, nothing to share, no critique.
    let (_, alone) =
        devices.iter().find(|(arm, d)| *arm == Arm::Control && !d.practice_logs().unwrap().is_empty()).unwrap();
    for (_, device) in &devices {
        device.sync_now().unwrap();
    }
    assert!(alone.roster().unwrap().members().is_empty(), "no peers: other control learners are not shown");
    let log = alone.practice_logs().unwrap().into_iter().next().expect("a log of hers");
    assert!(matches!(alone.share_practice(log.id, "My practice", "notes"), Err(Error::ControlArm)));
    assert!(!alone.calendar().unwrap().contains("Weekly cohort critique"));
    assert!(
        alone
            .reminder_plan(14)
            .unwrap()
            .iter()
            .all(|r| r.kind == microcohort_core::domain::reminders::ReminderKind::Practice)
    );
    let (_, peer) = devices.iter().find(|(arm, _)| *arm == Arm::Cohort).unwrap();
    assert_eq!(peer.roster().unwrap().members().len(), 3, "a cohort learner sees her cohort");
    assert!(peer.calendar().unwrap().contains("Weekly cohort critique"));

    // A control learner's forged write to a week document is refused (her logs would still count).
    let forger = raw_join(&server, &chosen);
    assert_eq!(forger.arm, Arm::Control);
    let mut week = AutoCommit::new();
    week.put(ROOT, "submissions", "forged").unwrap();
    let changes = week.get_changes(&[]).into_iter().map(|c| ByteBuf::from(c.raw_bytes().to_vec())).collect();
    let request = SyncRequest {
        docs: vec![DocPush { doc_id: "week:k:1".into(), known_server_heads: vec![], changes, client_heads: vec![] }],
        ..Default::default()
    };
    let (status, _, body) = raw_post(server.address, "/v1/sync", Some(&forger.device_token), &wire::encode(&request));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: SyncResponse = wire::decode(&body).unwrap();
    assert!(
        matches!(&answer.docs[0].status, DocStatus::Rejected { reason, .. } if reason == "control_arm"),
        "{:?}",
        answer.docs[0].status
    );

    // The report compares the arms; this test computes the same figures from what it drove.
    let report: Value = serde_json::from_str(&fetch(&server, data.path(), "/v1/programs/p1/report")).unwrap();
    let arms = &report["arms"];
    let program_day = arms["program_day"].as_u64().unwrap() as u32;
    assert_eq!(program_day, DAYS_AGO as u32 + 1);
    for (index, arm) in [Arm::Cohort, Arm::Control].into_iter().enumerate() {
        let figures = &arms["arms"][index];
        assert_eq!(figures["arm"], arm.as_str());
        let days: Vec<&Vec<u32>> = active.values().filter(|(a, _, _)| *a == arm).map(|(_, _, d)| d).collect();
        let n = days.len() as f64;
        assert_eq!(figures["learners"].as_u64(), Some(days.len() as u64));
        let engaged = days.iter().filter(|d| d.iter().any(|day| *day <= 7)).count() as f64;
        let (low, high) = wilson(engaged, n);
        let day7 = &figures["engagement"][0];
        assert_eq!(day7[0], 7);
        for (got, want) in [(&day7[1]["value"], engaged / n), (&day7[1]["low"], low), (&day7[1]["high"], high)] {
            assert!((got.as_f64().unwrap() - want).abs() < 1e-9, "{arm:?} day 7: {got} vs {want}");
        }
        let mean = days.iter().map(|d| d.len() as f64).sum::<f64>() / n;
        let reported = &figures["mean_active_days_60"];
        assert!((reported["value"].as_f64().unwrap() - mean).abs() < 1e-9, "{arm:?}: {reported} vs {mean}");
        assert!(reported["low"].as_f64().unwrap() <= mean && mean <= reported["high"].as_f64().unwrap());
        assert_eq!(figures["retention"].as_array().unwrap().len(), program_day as usize);
    }
    let mean_of = |arm: Arm| {
        let days: Vec<usize> = active.values().filter(|(a, _, _)| *a == arm).map(|(_, _, d)| d.len()).collect();
        days.iter().sum::<usize>() as f64 / days.len() as f64
    };
    let uplift = &arms["uplift"][0];
    assert_eq!(uplift["cohort_id"], "cohort arm");
    let value = uplift["uplift"]["value"].as_f64().unwrap();
    assert!((value - (mean_of(Arm::Cohort) / mean_of(Arm::Control) - 1.0)).abs() < 1e-9, "{uplift}");
    assert!(uplift["uplift"]["low"].as_f64().unwrap() <= value && value <= uplift["uplift"]["high"].as_f64().unwrap());
    assert_eq!(arms["uplift"].as_array().unwrap().len(), 3, "the arm, then c1 and c2");
    assert!(arms["conclusion"].as_str().unwrap().starts_with("Too few learners"), "6 a side: {}", arms["conclusion"]);
    let control_report = report["cohorts"].as_array().unwrap().iter().find(|c| c["cohort_id"] == "k").unwrap();
    assert_eq!(control_report["arm"], "control");
    assert!(control_report["size_status"].is_null(), "a control arm has no size to keep");
    assert!(control_report["members"].as_array().unwrap().iter().all(|m| m["role_this_week"].is_null()), "no roles");

    // The exports: every learner's arm and how she was assigned; the arms side by side.
    let members = fetch(&server, data.path(), "/v1/programs/p1/report.csv");
    let mut rows = members.lines();
    assert!(rows.next().unwrap().starts_with("cohort_id,cohort,arm,assignment,user_id,"));
    for row in rows {
        let fields: Vec<&str> = row.split(',').collect();
        let Some((arm, _, _)) = active.get(fields[4]) else { continue };
        assert_eq!(fields[2], arm.as_str(), "{row}");
        assert!(fields[3].starts_with("random seed=42 draw="), "{row}");
    }
    let csv = fetch(&server, data.path(), "/v1/programs/p1/report.csv?rows=arms");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "group,learners,figure,days,value,low_95,high_95,conclusion");
    assert!(lines[1].starts_with("cohort arm,6,engagement,7,"), "{}", lines[1]);
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("cohort arm,6,uplift_vs_control,{program_day},{value:.3},"))),
        "{csv}"
    );
    let page = fetch(&server, data.path(), "/dashboard/programs/p1");
    assert!(page.contains("Cohort arm against the control arm"), "the dashboard shows the comparison");
}

//! The program report a lead opens: 100 cohorts × 12 learners × 90 days of practice, plus a
//! facilitator each and a week of feedback facts per cohort week. Measures what
//! `GET /v1/programs/{id}/report` does: catch the report tables up (nothing new here), read the
//! facts, compute every cohort's figures and the program's.
//!
//! `cargo bench -p microcohort-server --bench program_report`

use std::path::Path;
use std::sync::Arc;

use chrono::{Days, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use microcohort_core::domain::cohort_metrics::{FeedbackFact, SubmissionFact};
use microcohort_core::sync::wire::WireLog;
use microcohort_server::admin::{NewProgram, create_program};
use microcohort_server::report::program_report;
use microcohort_server::report::sqlite_sql::SqliteSql;
use microcohort_server::report::store::{ReportStore, Viewer};
use microcohort_server::storage::Storage;
use microcohort_server::storage::sqlite::SqliteStorage;
use rusqlite::{Connection, params};

const COHORTS: usize = 100;
const LEARNERS: usize = 12;
const DAYS: u64 = 90;

fn seed(path: &Path) -> ReportStore {
    let storage = SqliteStorage::open(path).unwrap();
    let start = (Utc::now().date_naive() - Days::new(DAYS - 1)).to_string();
    let program = NewProgram {
        id: "p1",
        title: "Everyday Leadership",
        start_date: &start,
        time_zone: "UTC",
        critique_weekday: None,
        critique_time: None,
        feedback_window_hours: None,
        cohort_size: None,
        pack_path: None,
    };
    create_program(&storage, &program).unwrap();
    for c in 0..COHORTS {
        storage.create_cohort(&format!("c{c}"), "p1", &format!("Cohort {c}")).unwrap();
    }
    let reports = ReportStore::new(Box::new(SqliteSql::open(path).unwrap()), Arc::new(storage));

    let mut conn = Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    let mut seq = 0i64;
    for c in 0..COHORTS {
        let cohort = format!("c{c}");
        tx.execute(
            "INSERT INTO members (cohort_id, user_id, display_name, role, time_zone, joined_on) VALUES (?1, ?2, 'Fay', 'facilitator', 'UTC', ?3)",
            params![cohort, format!("f{c}"), start],
        )
        .unwrap();
        for l in 0..LEARNERS {
            let user = format!("u{c}-{l}");
            tx.execute(
                "INSERT INTO members (cohort_id, user_id, display_name, role, time_zone, joined_on) VALUES (?1, ?2, ?3, 'learner', 'Europe/Berlin', ?4)",
                params![cohort, user, format!("Learner {l}"), start],
            )
            .unwrap();
            for day in 0..DAYS {
                // Most learners practise most days; every 5th learner fades after day 30.
                if (l.is_multiple_of(5) && day > 30) || (day + l as u64).is_multiple_of(7) {
                    continue;
                }
                seq += 1;
                let date = (Utc::now().date_naive() - Days::new(DAYS - 1 - day)).to_string();
                let log = WireLog {
                    id: format!("log-{c}-{l}-{day}"),
                    user_id: user.clone(),
                    program_id: "p1".into(),
                    pack_id: "everyday-leadership".into(),
                    pack_version: 1,
                    prompt_id: "w01-d1".into(),
                    started_at: 0,
                    time_zone: "Europe/Berlin".into(),
                    local_date: date,
                    status: "completed".into(),
                    duration_secs: Some(600),
                    transfer_kind: (day % 10 == 0).then(|| "applied_at_work".into()),
                    corrects: None,
                    recorded_at: 0,
                    sealed: None,
                    late_arrival: false,
                };
                tx.execute(
                    "INSERT INTO practice_logs (seq, id, user_id, cohort_id, body, received_at) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                    params![seq, log.id, user, cohort, serde_json::to_string(&log).unwrap()],
                )
                .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    reports.refresh().unwrap();

    // Feedback facts as the background projection stores them: each learner shares weekly and
    // gets two pieces of feedback, half with a suggestion, most rated.
    let tx = conn.transaction().unwrap();
    for c in 0..COHORTS {
        for week in 1..=12u32 {
            let submissions: Vec<SubmissionFact> = (0..LEARNERS)
                .map(|l| SubmissionFact {
                    week,
                    key: format!("u{c}-{l}/s{week}"),
                    author: format!("u{c}-{l}"),
                    kind: "practice".into(),
                    ..Default::default()
                })
                .collect();
            let feedback: Vec<FeedbackFact> = (0..LEARNERS * 2)
                .map(|i| FeedbackFact {
                    week,
                    author: format!("u{c}-{}", (i / 2 + 1 + i % 2) % LEARNERS),
                    submission_author: format!("u{c}-{}", i / 2),
                    has_suggestion: i % 2 == 0,
                    criteria_addressed: (i % 4) as u32,
                    rubric_size: 3,
                    helpfulness: (i % 3 != 0).then_some(3 + (i % 3) as u8),
                    ..Default::default()
                })
                .collect();
            let facts = serde_json::json!({ "submissions": submissions, "feedback": feedback }).to_string();
            tx.execute(
                "INSERT INTO report_weeks (doc_id, cohort_id, upto_seq, facts) VALUES (?1, ?2, 0, ?3)",
                params![format!("week:c{c}:{week}"), format!("c{c}"), facts],
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
    reports
}

fn program_report_bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let reports = seed(&dir.path().join("microcohort.sqlite"));
    let lead = Viewer { program_id: "p1".into(), facilitator: None };
    let report = program_report(&reports.program_facts(&lead).unwrap(), Some("c0"), Utc::now()).unwrap();
    assert_eq!(report.cohorts.len(), COHORTS);
    assert_eq!(report.cohorts[0].program_day as u64, DAYS);
    eprintln!(
        "seeded: {} cohorts, day {}, engagement at day 90 in c1 {:?}",
        report.cohorts.len(),
        report.cohorts[1].program_day,
        report.cohorts[1].engagement.last()
    );

    // Where the time goes, once (the database's page cache is warm after seeding).
    {
        let t = std::time::Instant::now();
        reports.refresh().unwrap();
        let t1 = t.elapsed();
        let facts = reports.program_facts(&lead).unwrap();
        let t2 = t.elapsed();
        program_report(&facts, Some("c0"), Utc::now()).unwrap();
        eprintln!("phases: refresh {t1:?}, facts {:?}, figures {:?}", t2 - t1, t.elapsed() - t2);
    }
    let mut group = c.benchmark_group("program_report");
    group.sample_size(20);
    group.bench_function("100 cohorts x 12 learners x 90 days (refresh + facts + figures)", |b| {
        b.iter(|| {
            reports.refresh().unwrap();
            program_report(&reports.program_facts(&lead).unwrap(), Some("c0"), Utc::now()).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, program_report_bench);
criterion_main!(benches);

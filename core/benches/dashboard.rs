//! The facilitator's offline cohort dashboard for a finished 90-day cohort of 12: every member's
//! practice logs relayed to the device, and 13 weeks of shared practice, feedback and ratings in
//! the projections. Measures `Client::cohort_dashboard` (reads, facts, figures).
//!
//! The rows are written straight into the device database as sync and projection would leave
//! them, so the setup takes seconds rather than the minutes real syncing would.
//!
//! Run: `cargo bench -p microcohort-core --bench dashboard`

use std::sync::Arc;

use chrono::{Days, Utc};
use chrono_tz::Tz;
use criterion::{Criterion, criterion_group, criterion_main};
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::{Client, Enrollment, SystemClock};
use rusqlite::{Connection, params};

const LEARNERS: usize = 12;
const DAYS: u64 = 90;

fn seeded(path: &std::path::Path) -> Client {
    let client = Client::open(path, Arc::new(SystemClock)).unwrap();
    client.import_default_prompt_pack().unwrap();
    let start = Utc::now().date_naive() - Days::new(DAYS - 1);
    let blueprint = Blueprint::default_90_days(start, Tz::UTC);
    client
        .enroll(Enrollment {
            program_id: "p1".into(),
            program_title: "Everyday Leadership".into(),
            pack_id: "everyday-leadership".into(),
            blueprint: blueprint.clone(),
            learner_time_zone: "UTC".into(),
        })
        .unwrap();
    client.join_cohort("c1", "fac").unwrap();

    let mut conn = Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute(
        "INSERT INTO roster (cohort_id, user_id, display_name, role, time_zone, joined_on) VALUES ('c1', 'fac', 'Fay', 'facilitator', 'UTC', ?1)",
        [start.to_string()],
    )
    .unwrap();
    for l in 0..LEARNERS {
        let user = format!("u{l:02}");
        tx.execute(
            "INSERT INTO roster (cohort_id, user_id, display_name, role, time_zone, joined_on) VALUES ('c1', ?1, ?2, 'learner', 'Europe/Berlin', ?3)",
            params![user, format!("Learner {l}"), start.to_string()],
        )
        .unwrap();
        for day in 0..DAYS {
            if (l.is_multiple_of(5) && day > 30) || (day + l as u64).is_multiple_of(7) {
                continue;
            }
            tx.execute(
                "INSERT INTO cohort_practice_logs (id, user_id, program_id, prompt_id, local_date, time_zone, status, duration_secs, transfer_kind, recorded_at)
                 VALUES (?1, ?2, 'p1', 'w01-d1', ?3, 'Europe/Berlin', 'completed', 600, ?4, 0)",
                params![format!("log-{l}-{day}"), user, (start + Days::new(day)).to_string(), (day % 10 == 0).then_some("applied_at_work")],
            )
            .unwrap();
        }
    }
    for week in 0..=blueprint.weeks {
        let doc = format!("week:c1:{week}");
        for l in 0..LEARNERS {
            let author = format!("u{l:02}");
            tx.execute(
                "INSERT INTO submissions (doc_id, week, key, author, kind, title, body, prompt_id, attachments, created_at, retracted, late)
                 VALUES (?1, ?2, ?3, ?4, 'practice', 'What I tried', 'It went well', 'w01-d1', '[]', 0, 0, 0)",
                params![doc, week, format!("{author}/s"), author],
            )
            .unwrap();
            for r in 1..=2 {
                let reviewer = format!("u{:02}", (l + r) % LEARNERS);
                let key = format!("{reviewer}/f{l}");
                tx.execute(
                    "INSERT INTO feedback (doc_id, week, key, author, submission, body, suggestion, criteria, created_at, retracted, late)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'Clear', ?6, '[0, 1]', 0, 0, 0)",
                    params![doc, week, key, reviewer, format!("{author}/s"), (r == 1).then_some("Try it with the team")],
                )
                .unwrap();
                tx.execute(
                    "INSERT INTO ratings (doc_id, week, key, author, feedback, score, counted, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, 0)",
                    params![doc, week, format!("{author}/r{r}"), author, key, 3 + r as i64],
                )
                .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    client
}

fn dashboard(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let client = seeded(&dir.path().join("device.sqlite"));
    let report = client.cohort_dashboard().unwrap();
    assert_eq!(report.members.len(), LEARNERS + 1);
    assert_eq!(report.feedback.given as usize, 13 * LEARNERS * 2);
    assert!(report.members.iter().any(|m| !m.at_risk.is_empty()));

    c.bench_function("cohort dashboard, 90-day cohort of 12", |b| b.iter(|| client.cohort_dashboard().unwrap()));
}

criterion_group!(benches, dashboard);
criterion_main!(benches);

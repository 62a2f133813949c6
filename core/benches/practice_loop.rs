//! Speed targets of the learner's loop (issue: foundation):
//! - finishing a practice: median within 2× of a bare one-row INSERT in its own transaction with
//!   the same pragmas, measured in the same run;
//! - the today screen over 2 years of daily history: median ≤ 1 ms.
//!
//! Run: `cargo bench -p microcohort-core --bench practice_loop`

use std::sync::Arc;

use chrono::{Days, Duration, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::{Client, Enrollment, ManualClock, SystemClock};

fn outcome() -> PracticeOutcome {
    PracticeOutcome { duration_secs: Some(720), reflection: "Kept my questions open".into(), transfer: None }
}

fn enrolled(client: &Client, start: chrono::NaiveDate, weeks: u32) {
    client.import_default_prompt_pack().unwrap();
    let mut blueprint = Blueprint::default_90_days(start, chrono_tz::Europe::Berlin);
    blueprint.weeks = weeks;
    blueprint.last_rotation_week = blueprint.last_rotation_week.min(weeks);
    blueprint.last_practice_week = blueprint.last_practice_week.min(weeks);
    client
        .enroll(Enrollment {
            program_id: "bench".into(),
            program_title: "Bench".into(),
            pack_id: "everyday-leadership".into(),
            blueprint,
            learner_time_zone: "Europe/Berlin".into(),
        })
        .unwrap();
}

fn finish_practice(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("finish_practice");

    // Baseline: one row, one transaction, the store's pragmas.
    let conn = rusqlite::Connection::open(dir.path().join("baseline.sqlite")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE rows (id TEXT PRIMARY KEY, body TEXT NOT NULL)").unwrap();
    let mut conn = conn;
    group.bench_function("bare_insert_baseline", |b| {
        b.iter(|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
            tx.prepare_cached("INSERT INTO rows (id, body) VALUES (?1, ?2)")
                .unwrap()
                .execute((uuid::Uuid::now_v7().to_string(), "Kept my questions open"))
                .unwrap();
            tx.commit().unwrap();
        })
    });

    let client = Client::open(dir.path().join("device.sqlite"), Arc::new(SystemClock)).unwrap();
    enrolled(&client, Utc::now().date_naive(), 12);
    let outcome = outcome();
    group.bench_function("client_finish_practice", |b| {
        b.iter_batched(
            || client.start_practice(None).unwrap(),
            |session| client.finish_practice(session.id, &outcome).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn today_screen(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let now = "2026-06-01T06:00:00Z".parse::<chrono::DateTime<Utc>>().unwrap();
    let first_day = now - Duration::days(730);
    let clock = ManualClock::new(first_day);
    let client = Client::open(dir.path().join("device.sqlite"), Arc::new(clock.clone())).unwrap();
    // The default 90-day program is on day 61 today; the learner's log holds a practice on every one
    // of the last 730 days (the worst case for the streak and the windows).
    enrolled(&client, now.date_naive().checked_sub_days(Days::new(60)).unwrap(), 12);
    let any_prompt = "w01-d1-notice-your-listening-defaults";
    let outcome = outcome();
    for day in 0..730 {
        clock.set(first_day + Duration::days(day));
        let session = client.start_practice(Some(any_prompt)).unwrap();
        client.finish_practice(session.id, &outcome).unwrap();
    }
    clock.set(now + Duration::hours(1));
    let today = client.today().unwrap();
    assert!(today.prompt.is_some());
    assert_eq!(today.metrics.streak, 730);
    assert_eq!(today.metrics.active_days_30, 29); // today not practised yet

    c.bench_function("today_screen_2_years_daily_history", |b| b.iter(|| client.today().unwrap()));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(60).measurement_time(std::time::Duration::from_secs(6));
    targets = finish_practice, today_screen
}
criterion_main!(benches);

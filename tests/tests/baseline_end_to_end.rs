//! A baseline from an earlier program, imported with `admin import-baseline`: the report states
//! its figures and each cohort's uplift against it with intervals, which a computation of its
//! own in this test reproduces; a bad file is refused with its line and field, and the baseline
//! imported before stays.

use std::path::Path;
use std::sync::Arc;

use chrono::{Days, NaiveDate, Utc};
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::{Client, ManualClock};
use microcohort_tests::{
    Backend, ServerProcess, TestData, admin, lead_get, on_both_backends, program_under_way, server_command,
};
use serde_json::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

on_both_backends!(an_imported_baseline_gives_each_cohort_its_uplift);

/// 12 learners of an earlier program: learner i active on every (i % 3 + 2)th day of 60.
fn baseline_csv(start: NaiveDate) -> (String, Vec<Vec<NaiveDate>>) {
    let mut csv = String::from("learner,start_date,active_dates\n");
    let mut all = Vec::new();
    for i in 0..12u64 {
        let dates: Vec<NaiveDate> = (0..60).step_by((i % 3 + 2) as usize).map(|d| start + Days::new(d)).collect();
        let listed: Vec<String> = dates.iter().map(NaiveDate::to_string).collect();
        csv.push_str(&format!("earlier-{i},{start},{}\n", listed.join(";")));
        all.push(dates);
    }
    (csv, all)
}

/// A program lead's view at `path`.
fn fetch(server: &ServerProcess, data: &Path, path: &str) -> String {
    lead_get(SERVER, server, data, path)
}

fn report(server: &ServerProcess, data: &Path) -> Value {
    serde_json::from_str(&fetch(server, data, "/v1/programs/p1/report")).unwrap()
}

fn an_imported_baseline_gives_each_cohort_its_uplift(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    let start: NaiveDate = program_under_way(SERVER, data.path(), 8, &["c1"]).parse().unwrap();
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let clock = ManualClock::new(Utc::now());
    let ana = Client::open_in_memory(Arc::new(clock.clone())).unwrap();
    let invite = admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", "Ana"]);
    ana.join_server(&server.url(), &invite, "phone", "UTC").unwrap();
    // A member since day 1, who practises today.
    let user = ana.my_user_id().unwrap();
    admin(SERVER, data.path(), &["set-joined-on", "--cohort", "c1", "--user", &user, "--date", &start.to_string()]);
    let session = ana.start_practice(None).unwrap();
    clock.advance(chrono::Duration::minutes(11));
    ana.finish_practice(session.id, &PracticeOutcome { duration_secs: Some(660), ..Default::default() }).unwrap();
    ana.sync_now().unwrap();
    assert!(report(&server, data.path())["imported_baseline"].is_null(), "none imported yet");

    let earlier = NaiveDate::from_ymd_opt(2025, 9, 1).unwrap();
    let (csv, dates) = baseline_csv(earlier);
    let file = data.path().join("baseline.csv");
    std::fs::write(&file, &csv).unwrap();
    let printed = admin(SERVER, data.path(), &["import-baseline", "--program", "p1", "--file", file.to_str().unwrap()]);
    assert!(printed.contains("12 learners"), "{printed}");

    let report = report(&server, data.path());
    let imported = &report["imported_baseline"];
    assert_eq!(imported["learners"], 12);
    let cohort = &report["cohorts"][0];
    let program_day = cohort["program_day"].as_u64().unwrap();
    // Independently: each side's mean active days over program days 1..=min(day, 60).
    let last = program_day.min(60);
    let baseline_mean =
        dates.iter().map(|d| d.iter().filter(|x| (**x - earlier).num_days() < last as i64).count() as f64).sum::<f64>()
            / dates.len() as f64;
    let ana_days = cohort["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == user.as_str())
        .unwrap()["active_program_days"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d.as_u64().unwrap() <= last)
        .count() as f64;
    let uplift = &imported["uplift"][0];
    assert_eq!(uplift["days"].as_u64(), Some(last));
    let value = uplift["uplift"]["value"].as_f64().unwrap();
    assert!((value - (ana_days / baseline_mean - 1.0)).abs() < 1e-9, "{value} vs {ana_days}/{baseline_mean}");
    let (low, high) = (uplift["uplift"]["low"].as_f64().unwrap(), uplift["uplift"]["high"].as_f64().unwrap());
    assert!(low <= value && value <= high);
    let full_mean = dates.iter().map(|d| d.len() as f64).sum::<f64>() / dates.len() as f64;
    assert!((imported["mean_active_days_60"]["value"].as_f64().unwrap() - full_mean).abs() < 1e-9);
    // Engagement on day 7: everyone in this baseline was active in days 1-7.
    assert_eq!(imported["engagement"][0][0], 7);
    assert_eq!(imported["engagement"][0][1]["value"].as_f64(), Some(1.0));
    assert!(
        imported["conclusion"].as_str().unwrap().starts_with("Too few learners"),
        "one learner in c1: {}",
        imported["conclusion"]
    );
    // The same comparison as CSV: the baseline's rows, then the cohort's uplift.
    let exported = fetch(&server, data.path(), "/v1/programs/p1/report.csv?rows=baseline");
    let lines: Vec<&str> = exported.lines().collect();
    assert_eq!(lines[0], "group,learners,figure,days,value,low_95,high_95,conclusion");
    assert!(lines[1].starts_with("baseline,12,engagement,7,1.000,"), "{}", lines[1]);
    let uplift_row = lines.iter().find(|l| l.starts_with("c1,")).expect("the cohort's row");
    assert!(uplift_row.starts_with(&format!("c1,1,uplift,{last},{value:.3},")), "{uplift_row}");

    // A bad file is refused with its line and field; the baseline imported before stays.
    let bad = data.path().join("bad.csv");
    std::fs::write(&bad, format!("{csv}earlier-3,{earlier},\n")).unwrap();
    let output = server_command(SERVER, data.path())
        .args(["admin", "import-baseline", "--program", "p1", "--file", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("line 14") && stderr.contains("`learner`") && stderr.contains("twice"), "{stderr}");
    std::fs::write(&bad, "learner,start,active_dates\nx,2025-09-01,\n").unwrap();
    let output = server_command(SERVER, data.path())
        .args(["admin", "import-baseline", "--program", "p1", "--file", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 1: field `start`: unknown column"));
    assert_eq!(self::report(&server, data.path())["imported_baseline"]["learners"], 12);
}

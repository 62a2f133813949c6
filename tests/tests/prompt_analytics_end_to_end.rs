//! Prompt analytics for a curriculum team: practices started, completed and abandoned on real
//! devices, one of them shared and its feedback rated, reach the program report, its CSV and the
//! dashboard per prompt and pack version, with the figures this test computes from what it did.

use std::path::Path;

use chrono::Utc;
use microcohort_core::domain::practice::{PracticeOutcome, TransferEvidence, TransferKind};
use microcohort_core::domain::prompt_pack::parse_pack;
use microcohort_core::{Client, FeedbackInput, ManualClock};
use microcohort_tests::{
    Backend, ServerProcess, TestData, lead_get, member_device, on_both_backends, program_under_way,
};
use serde_json::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

on_both_backends!(prompts_are_reported_as_learners_practised_them);

/// A program lead's view at `path`.
fn fetch(server: &ServerProcess, data: &Path, path: &str) -> String {
    lead_get(SERVER, server, data, path)
}

/// Practises `prompt` (today's when `None`) for `minutes`, or abandons it after a minute.
fn practise(device: &Client, clock: &ManualClock, prompt: Option<&str>, minutes: Option<i64>, transfer: bool) {
    let session = device.start_practice(prompt).unwrap();
    clock.advance(chrono::Duration::minutes(minutes.unwrap_or(1)));
    match minutes {
        Some(minutes) => {
            let transfer = transfer.then(|| TransferEvidence {
                kind: TransferKind::AppliedAtWork,
                note: "Used it in the team meeting".into(),
                link: None,
            });
            let outcome = PracticeOutcome { duration_secs: Some(minutes as u32 * 60), transfer, ..Default::default() };
            device.finish_practice(session.id, &outcome).unwrap();
        }
        None => {
            device.abandon_practice(session.id).unwrap();
        }
    }
}

fn prompts_are_reported_as_learners_practised_them(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 8, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let clock = ManualClock::new(Utc::now());
    let [ana, ben, cy] =
        ["Ana", "Ben", "Cy"].map(|name| member_device(SERVER, &server, data.path(), &clock, name, "learner"));
    let today = ana.today().unwrap().prompt.expect("a prompt today").prompt;
    let pack = parse_pack(microcohort_core::DEFAULT_PROMPT_PACK_NAME, microcohort_core::DEFAULT_PROMPT_PACK).unwrap();
    let other = pack.prompts.iter().find(|p| p.id != today.id).unwrap();

    // Today's prompt: Ana 11 minutes with transfer evidence, Ben 15, Cy abandons it. The other
    // prompt: Ben abandons it, Cy practises it for 5 minutes.
    practise(&ana, &clock, None, Some(11), true);
    practise(&ben, &clock, None, Some(15), false);
    practise(&cy, &clock, None, None, false);
    practise(&ben, &clock, Some(&other.id), None, false);
    practise(&cy, &clock, Some(&other.id), Some(5), false);
    // Ana shares hers; Ben and Cy give feedback; Ana rates it 4 and 2.
    let log = ana.practice_logs().unwrap().into_iter().next().unwrap();
    let shared = ana.share_practice(log.id, "Listening first", "What I tried").unwrap();
    for device in [&ana, &ben, &cy] {
        device.sync_now().unwrap();
    }
    let input = FeedbackInput { body: "Clear".into(), ..Default::default() };
    let from_ben = ben.give_feedback(&shared, &input).unwrap();
    let from_cy = cy.give_feedback(&shared, &input).unwrap();
    ben.sync_now().unwrap();
    cy.sync_now().unwrap();
    ana.sync_now().unwrap();
    ana.rate_feedback(&from_ben, 4).unwrap();
    ana.rate_feedback(&from_cy, 2).unwrap();
    ana.sync_now().unwrap();

    let report: Value = serde_json::from_str(&fetch(&server, data.path(), "/v1/programs/p1/report")).unwrap();
    let rows = report["prompts"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // Half of the other prompt's starts were abandoned, a third of today's: the other comes first.
    let (first, second) = (&rows[0], &rows[1]);
    assert_eq!(first["prompt_id"], other.id.as_str());
    assert_eq!(
        (first["started"].as_u64(), first["completed"].as_u64(), first["abandoned"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(first["median_minutes"].as_f64(), Some(5.0));
    assert_eq!(first["stated_minutes"].as_u64(), Some(u64::from(other.minutes)));
    assert_eq!(second["prompt_id"], today.id.as_str());
    assert_eq!(second["pack_version"].as_u64(), Some(u64::from(pack.version)));
    assert_eq!(
        (second["started"].as_u64(), second["completed"].as_u64(), second["abandoned"].as_u64()),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(second["median_minutes"].as_f64(), Some(13.0), "the median of 11 and 15");
    let overrun = 13.0 / f64::from(today.minutes);
    assert!((second["overrun"].as_f64().unwrap() - overrun).abs() < 1e-9);
    assert_eq!(second["transfer_share"].as_f64(), Some(0.5));
    assert_eq!((second["shared"].as_u64(), second["feedback"].as_u64()), (Some(1), Some(2)));
    assert_eq!(second["mean_helpfulness"].as_f64(), Some(3.0));
    assert_eq!(second["title"], today.title.as_str());

    let csv = fetch(&server, data.path(), "/v1/programs/p1/report.csv?rows=prompts");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("prompt_id,pack_version,title,week,day,stated_minutes,started,completed,abandoned,"));
    assert!(lines[1].starts_with(&format!("{},{},", other.id, pack.version)), "{csv}");
    assert!(lines[2].contains(",3,2,1,0.333,13.000,"), "{}", lines[2]);
    let page = fetch(&server, data.path(), "/dashboard/programs/p1");
    assert!(page.contains("id=\"prompts\"") && page.contains(&today.title), "the dashboard's prompt table");
}

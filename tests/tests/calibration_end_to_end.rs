//! Calibration in week 0: learners rate the pack's exemplars offline, a rating outside the rubric
//! is a typed error, each phone tells its learner how close she came to the reference, and the
//! program report shows every learner's and the cohort's agreement, as this test computes it.

use chrono::Utc;
use microcohort_core::domain::prompt_pack::parse_pack;
use microcohort_core::sync::wire::{self, SyncRequest, SyncResponse, WireCalibration};
use microcohort_core::{Error, ManualClock};
use microcohort_tests::{
    Backend, ServerProcess, TestData, admin, lead_get, member_device, on_both_backends, program_under_way, raw_join,
    raw_post,
};
use serde_json::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

on_both_backends!(learners_calibrate_on_the_exemplars_and_the_report_shows_their_agreement);

/// (mean |difference|, share within one point) over paired scores, computed here.
fn agreement(pairs: &[(&[u8], &[u8])]) -> (f64, f64) {
    let diffs: Vec<u8> = pairs.iter().flat_map(|(s, r)| s.iter().zip(r.iter()).map(|(a, b)| a.abs_diff(*b))).collect();
    let n = diffs.len() as f64;
    (diffs.iter().map(|d| f64::from(*d)).sum::<f64>() / n, diffs.iter().filter(|d| **d <= 1).count() as f64 / n)
}

fn learners_calibrate_on_the_exemplars_and_the_report_shows_their_agreement(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 3, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let clock = ManualClock::new(Utc::now());
    let ana = member_device(SERVER, &server, data.path(), &clock, "Ana", "learner");
    let ben = member_device(SERVER, &server, data.path(), &clock, "Ben", "learner");
    let pack = parse_pack(microcohort_core::DEFAULT_PROMPT_PACK_NAME, microcohort_core::DEFAULT_PROMPT_PACK).unwrap();
    let (vague, specific) = (&pack.exemplars[0], &pack.exemplars[1]);

    // The references stay hidden until she has rated an exemplar.
    let shown = ana.calibration_exemplars().unwrap();
    assert_eq!(shown.len(), 2);
    assert!(shown.iter().all(|e| e.exemplar.reference.is_empty() && e.my_scores.is_none()));
    assert_eq!(shown[0].rubric.len(), vague.reference.len());

    // Offline, each rates; a score outside 1..=5 or a short list is refused, naming the field.
    let too_high = ana.rate_exemplar(&vague.id, &[1, 9, 2]).unwrap_err();
    assert!(matches!(&too_high, Error::Domain(e) if e.to_string().contains("scores[1]")), "{too_high}");
    let short = ana.rate_exemplar(&vague.id, &[1, 2]).unwrap_err();
    assert!(matches!(&short, Error::Domain(e) if e.to_string().contains("scores")), "{short}");
    assert!(ana.rate_exemplar("no-such-exemplar", &[1, 1, 1]).is_err());
    let ana_scores: [&[u8]; 2] = [&[2, 1, 2], &[5, 4, 2]];
    ana.rate_exemplar(&vague.id, &[4, 4, 4]).unwrap();
    // Rating again replaces the first scores.
    ana.rate_exemplar(&vague.id, ana_scores[0]).unwrap();
    let mine = ana.rate_exemplar(&specific.id, ana_scores[1]).unwrap();
    let want = agreement(&[(ana_scores[0], &vague.reference), (ana_scores[1], &specific.reference)]);
    assert_eq!(mine.rated, 2);
    assert!((mine.mean_abs_difference.unwrap() - want.0).abs() < 1e-9, "{mine:?} vs {want:?}");
    assert!((mine.within_one.unwrap() - want.1).abs() < 1e-9);
    assert_eq!(ana.calibration_exemplars().unwrap()[0].exemplar.reference, vague.reference, "shown once rated");
    let ben_scores: &[u8] = &[3, 3, 3];
    ben.rate_exemplar(&vague.id, ben_scores).unwrap();
    ana.sync_now().unwrap();
    ben.sync_now().unwrap();
    ana.sync_now().unwrap();

    let report: Value =
        serde_json::from_str(&lead_get(SERVER, &server, data.path(), "/v1/programs/p1/report")).unwrap();
    let members = report["calibration"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
    let of = |name: &str| &members.iter().find(|m| m["display_name"] == name).unwrap()["agreement"];
    assert_eq!(of("Ana")["rated"], 2);
    assert!((of("Ana")["mean_abs_difference"].as_f64().unwrap() - want.0).abs() < 1e-9, "the newest rating counts");
    let ben_want = agreement(&[(ben_scores, &vague.reference)]);
    assert!((of("Ben")["within_one"].as_f64().unwrap() - ben_want.1).abs() < 1e-9);
    let cohort_want = agreement(&[
        (ana_scores[0], &vague.reference),
        (ana_scores[1], &specific.reference),
        (ben_scores, &vague.reference),
    ]);
    let cohort = &report["calibration"]["cohorts"][0];
    assert_eq!(cohort["cohort_id"], "c1");
    assert!((cohort["agreement"]["mean_abs_difference"].as_f64().unwrap() - cohort_want.0).abs() < 1e-9);
    let page = lead_get(SERVER, &server, data.path(), "/dashboard/programs/p1");
    assert!(page.contains("id=\"calibration\"") && page.contains("Whole cohort"));

    // A rating the rubric does not take, or of no exemplar, is refused by the server too, and an
    // older rating arriving late changes nothing.
    let mal = raw_join(&server, &admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", "Mal"]));
    let request = SyncRequest {
        calibration: vec![
            WireCalibration { exemplar_id: vague.id.clone(), scores: vec![0, 7, 1], rated_at: 1 },
            WireCalibration { exemplar_id: "invented".into(), scores: vec![1], rated_at: 1 },
            WireCalibration { exemplar_id: specific.id.clone(), scores: specific.reference.clone(), rated_at: 10 },
            WireCalibration { exemplar_id: specific.id.clone(), scores: vec![1, 1, 1], rated_at: 5 },
        ],
        ..Default::default()
    };
    let (status, _, body) = raw_post(server.address, "/v1/sync", Some(&mal.device_token), &wire::encode(&request));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: SyncResponse = wire::decode(&body).unwrap();
    let refused: Vec<&str> = answer.calibration_refused.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(refused, ["scores", "unknown_exemplar"]);
    // A control arm gives no peer feedback to calibrate: its ratings are refused too.
    let control = ["create-cohort", "--id", "k", "--program", "p1", "--title", "Control", "--arm", "control"];
    admin(SERVER, data.path(), &control);
    let code = admin(SERVER, data.path(), &["invite", "--program", "p1", "--arm", "control", "--name", "Nadia"]);
    let alone = raw_join(&server, &code);
    let rating = WireCalibration { exemplar_id: vague.id.clone(), scores: vague.reference.clone(), rated_at: 1 };
    let request = SyncRequest { calibration: vec![rating], ..Default::default() };
    let (status, _, body) = raw_post(server.address, "/v1/sync", Some(&alone.device_token), &wire::encode(&request));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: SyncResponse = wire::decode(&body).unwrap();
    assert!(answer.calibration_acked.is_empty());
    let reasons: Vec<&str> = answer.calibration_refused.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, ["control_arm"]);

    let report: Value =
        serde_json::from_str(&lead_get(SERVER, &server, data.path(), "/v1/programs/p1/report")).unwrap();
    assert!(report["calibration"]["members"].as_array().unwrap().iter().all(|m| m["display_name"] != "Nadia"));
    let mal_row =
        report["calibration"]["members"].as_array().unwrap().iter().find(|m| m["display_name"] == "Mal").cloned();
    assert_eq!(
        mal_row.unwrap()["agreement"]["mean_abs_difference"].as_f64(),
        Some(0.0),
        "the newer, exact rating stays"
    );
}

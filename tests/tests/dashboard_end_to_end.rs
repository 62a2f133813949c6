//! Facilitator dashboards and program reports: a real server, real clients, the device's offline
//! dashboard and the server's report agreeing figure for figure, access rules, CSV, and the web
//! dashboard rendered in headless Chromium.

use std::path::Path;
use std::process::Command;

use microcohort_core::domain::cohort_metrics::{CohortReport, MemberReport};
use microcohort_core::domain::practice::{PracticeOutcome, TransferEvidence, TransferKind};
use microcohort_core::{Client, EntryRef, Error, FeedbackInput};
use microcohort_server::report::ProgramReport;
use microcohort_tests::{
    Backend, CookieProxy, ServerProcess, TestData, admin, http_get, http_request, join_device, program_under_way,
    raw_join, sign_in_with_link,
};

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

#[test]
fn sqlite_reports_agree_with_the_device_and_the_dashboard_renders() {
    reports_agree_with_the_device_and_the_dashboard_renders(Backend::Sqlite);
}

#[test]
fn postgres_reports_agree_with_the_device_and_the_dashboard_renders() {
    reports_agree_with_the_device_and_the_dashboard_renders(Backend::Postgres);
}

fn invite(data: &Path, cohort: &str, role: &str, name: &str) -> String {
    admin(SERVER, data, &["invite", "--cohort", cohort, "--role", role, "--name", name])
}

/// Follows a one-time sign-in link and returns the session cookie.
fn sign_in(server: &ServerProcess, link: &str) -> String {
    sign_in_with_link(server.address, link.strip_prefix(&server.url()).expect("a link to this server"))
}

/// The figures a facilitator reads, for comparing two reports.
fn figures(m: &MemberReport) -> impl PartialEq + std::fmt::Debug {
    (
        m.user_id.clone(),
        (m.active_days_7, m.active_days_14, m.active_days_30, m.streak),
        (m.feedback_given, m.feedback_received, m.mean_helpfulness_given, m.suggestion_share, m.criteria_share),
        (m.reviews_owed, m.reviews_overdue, m.role_this_week, m.transfer_evidence),
        (m.at_risk.clone(), m.active_program_days.clone()),
        (m.critiques_attended, m.critiques_recorded, m.capstone_shared, m.reflection_shared),
    )
}

fn cohort<'a>(report: &'a ProgramReport, id: &str) -> &'a CohortReport {
    report.cohorts.iter().find(|c| c.cohort_id == id).unwrap_or_else(|| panic!("cohort {id} in the report"))
}

fn reports_agree_with_the_device_and_the_dashboard_renders(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    // Day 7 of the program, the first day of week 1: members joining today take part this week
    // (practise, share and review).
    program_under_way(SERVER, data.path(), 6, &["c1", "c2"]);
    let names = ["Ada", "Ben", "Cy", "Dee"];
    let codes: Vec<String> = names.iter().map(|n| invite(data.path(), "c1", "learner", n)).collect();
    let facilitator_code = invite(data.path(), "c1", "facilitator", "Fay");
    let other_facilitator_code = invite(data.path(), "c2", "facilitator", "Gus");
    let other_learner_code = invite(data.path(), "c2", "learner", "Hal");
    let server = ServerProcess::start(SERVER, data.path(), &[]);

    let learners: Vec<Client> = codes.iter().map(|code| join_device(&server, code)).collect();
    let facilitator = join_device(&server, &facilitator_code);
    let week = learners[0].today().unwrap().position.week.unwrap();

    // Ada, Ben and Cy practise today (Ada applies it at work); Dee does not.
    for (i, learner) in learners.iter().enumerate().take(3) {
        let session = learner.start_practice(None).unwrap();
        let transfer = (i == 0).then(|| TransferEvidence {
            kind: TransferKind::AppliedAtWork,
            note: "Used it in my 1:1".into(),
            link: None,
        });
        let outcome = PracticeOutcome { duration_secs: Some(660), transfer, ..Default::default() };
        let log = learner.finish_practice(session.id, &outcome).unwrap();
        learner.share_practice(log.id, &format!("{} tried it", names[i]), "What happened").unwrap();
        learner.sync_now().unwrap();
    }
    for learner in &learners {
        learner.sync_now().unwrap();
    }
    // Everyone gives feedback on the submissions they were assigned; every second one suggests.
    let mut given = 0;
    for learner in &learners {
        let me = learner.my_user_id().unwrap();
        let rows = learner.week_rows(week).unwrap();
        for assignment in learner.review_assignments(week).unwrap() {
            if !assignment.reviewers.contains(&me) {
                continue;
            }
            let Some(submission) = rows.submissions.iter().find(|s| s.meta.author == assignment.practitioner) else {
                continue;
            };
            let suggestion = (given % 2 == 0).then(|| "Try it with your whole team".to_owned());
            let input = FeedbackInput { body: "Clear and honest".into(), suggestion, criteria: vec![0, 1] };
            learner.give_feedback(&EntryRef { week, key: submission.meta.key.clone() }, &input).unwrap();
            given += 1;
        }
        learner.sync_now().unwrap();
    }
    assert!(given >= 4, "assignments gave feedback to do");
    // Authors rate the feedback they received.
    for (i, learner) in learners.iter().enumerate() {
        learner.sync_now().unwrap();
        let me = learner.my_user_id().unwrap();
        let rows = learner.week_rows(week).unwrap();
        let mine: Vec<&str> =
            rows.submissions.iter().filter(|s| s.meta.author == me).map(|s| s.meta.key.as_str()).collect();
        for feedback in rows.feedback.iter().filter(|f| mine.contains(&f.submission.as_str())) {
            learner.rate_feedback(&EntryRef { week, key: feedback.meta.key.clone() }, 3 + (i as u8 % 3)).unwrap();
        }
        learner.sync_now().unwrap();
    }
    facilitator.sync_now().unwrap();
    // She records who came to the week's critique: Ada and Ben did, Dee did not.
    for (name, present) in [("Ada", true), ("Ben", true), ("Dee", false)] {
        let member =
            facilitator.roster().unwrap().members().iter().find(|m| m.display_name == name).unwrap().user_id.clone();
        facilitator.record_attendance(week, &member, present).unwrap();
    }
    facilitator.sync_now().unwrap();

    // The facilitator's offline dashboard.
    assert!(matches!(learners[0].cohort_dashboard(), Err(Error::FacilitatorOnly)));
    let on_device = facilitator.cohort_dashboard().unwrap();
    let learner_rows: Vec<&MemberReport> =
        on_device.members.iter().filter(|m| names.iter().any(|n| m.display_name == *n)).collect();
    assert_eq!(learner_rows.len(), 4);
    let by_name = |name: &str| learner_rows.iter().find(|m| m.display_name == name).unwrap();
    assert_eq!((by_name("Ada").active_days_7, by_name("Ada").streak, by_name("Ada").transfer_evidence), (1, 1, 1));
    assert_eq!(by_name("Dee").active_days_7, 0);
    let attendance = |name: &str| (by_name(name).critiques_attended, by_name(name).critiques_recorded);
    assert_eq!((attendance("Ada"), attendance("Cy"), attendance("Dee")), ((1, 1), (0, 0), (0, 1)));
    assert_eq!(on_device.attendance_share, Some(2.0 / 3.0));
    assert_eq!(on_device.feedback.given, given);
    assert!(on_device.feedback.mean_helpfulness.is_some());
    assert_eq!(on_device.feedback.suggestion_share, Some(given.div_ceil(2) as f64 / given as f64));

    // Cohort c2 gets its facilitator and a learner.
    let other = raw_join(&server, &other_facilitator_code);
    let learner = raw_join(&server, &other_learner_code);

    // The program lead's report on the server: the same figures for every member.
    let link = admin(SERVER, data.path(), &["dashboard-link", "--program", "p1", "--base-url", &server.url()]);
    let cookie = sign_in(&server, &link);
    let (status, _, body) = http_get(server.address, "/v1/programs/p1/report", &[("Cookie", &cookie)]);
    assert_eq!(status, 200, "{body}");
    let report: ProgramReport = serde_json::from_str(&body).unwrap();
    assert_eq!(report.cohorts.len(), 2, "a program lead sees every cohort");
    let on_server = cohort(&report, "c1");
    assert_eq!(
        on_server.members.iter().map(figures).collect::<Vec<_>>(),
        on_device.members.iter().map(figures).collect::<Vec<_>>()
    );
    assert_eq!(
        (on_server.engagement.clone(), on_server.feedback.clone(), on_server.attendance_share),
        (on_device.engagement.clone(), on_device.feedback.clone(), on_device.attendance_share)
    );
    assert_eq!(report.facilitator_load.learners, 5);
    assert_eq!(report.facilitator_load.learners_per_facilitator, Some(2.5));
    // A used link does not sign in twice.
    let path = link.strip_prefix(&server.url()).unwrap();
    assert_eq!(http_request(server.address, "POST", path, &[]).0, 401);

    // Against a named baseline cohort.
    let (status, _, body) = http_get(server.address, "/v1/programs/p1/report?baseline=c2", &[("Cookie", &cookie)]);
    assert_eq!(status, 200, "{body}");
    let with_baseline: ProgramReport = serde_json::from_str(&body).unwrap();
    assert_eq!(with_baseline.baseline.as_ref().map(|b| b.cohort_id.as_str()), Some("c2"));
    let (status, _, body) = http_get(server.address, "/v1/programs/p1/report?baseline=nope", &[("Cookie", &cookie)]);
    assert_eq!(status, 400);
    assert!(body.contains("nope"), "{body}");

    // CSV: a header and one row per member of both cohorts (5 + 2 members, and a facilitator each).
    let (status, headers, csv) = http_get(server.address, "/v1/programs/p1/report.csv", &[("Cookie", &cookie)]);
    assert_eq!(status, 200);
    assert!(headers["content-type"].starts_with("text/csv"));
    assert_eq!(csv.lines().count(), 1 + 5 + 2);
    assert!(csv.lines().any(|l| l.contains(",Ada,") && l.contains(",1,1,1,1,")), "{csv}");
    let (_, _, cohorts_csv) =
        http_get(server.address, "/v1/programs/p1/report.csv?rows=cohorts", &[("Cookie", &cookie)]);
    assert_eq!(cohorts_csv.lines().count(), 3);

    // Access: a facilitator's device token sees their own cohort only; a learner's, no report.
    let bearer = format!("Bearer {}", other.device_token);
    let (status, _, body) = http_get(server.address, "/v1/programs/p1/report", &[("Authorization", &bearer)]);
    assert_eq!(status, 200, "{body}");
    let theirs: ProgramReport = serde_json::from_str(&body).unwrap();
    assert_eq!(theirs.cohorts.iter().map(|c| c.cohort_id.as_str()).collect::<Vec<_>>(), vec!["c2"]);
    let bearer = format!("Bearer {}", learner.device_token);
    assert_eq!(http_get(server.address, "/v1/programs/p1/report", &[("Authorization", &bearer)]).0, 403);
    assert_eq!(http_get(server.address, "/v1/programs/p1/report", &[]).0, 401);
    assert_eq!(http_get(server.address, "/v1/programs/p1/report", &[("Cookie", "microcohort_session=forged")]).0, 401);
    assert_eq!(http_get(server.address, "/v1/programs/p2/report", &[("Cookie", &cookie)]).0, 403);

    // The facilitator's app opens the web dashboard through a one-time link: their cohort only.
    let link = facilitator.dashboard_sign_in_link().unwrap();
    let facilitator_cookie = sign_in(&server, &link);
    let (status, _, body) = http_get(server.address, "/v1/programs/p1/report", &[("Cookie", &facilitator_cookie)]);
    assert_eq!(status, 200, "{body}");
    let theirs: ProgramReport = serde_json::from_str(&body).unwrap();
    assert_eq!(theirs.cohorts.iter().map(|c| c.cohort_id.as_str()).collect::<Vec<_>>(), vec!["c1"]);
    let path = link.strip_prefix(&server.url()).unwrap();
    assert_ne!(http_request(server.address, "POST", path, &[]).0, 303, "a sign-in link works once");
    assert!(matches!(learners[0].dashboard_sign_in_link(), Err(Error::Server { status: 403, .. })));

    rendered_in_chromium(&server, data.path(), backend);
}

/// Headless Chromium loads the dashboard through a sign-in link; the rendered page shows the
/// cohort's figures, and a phone-sized screenshot is kept in the target directory.
fn rendered_in_chromium(server: &ServerProcess, data: &Path, backend: Backend) {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
    else {
        assert!(
            std::env::var_os("MICROCOHORT_TEST_CHROMIUM").is_none(),
            "MICROCOHORT_TEST_CHROMIUM is set but no Chromium is installed"
        );
        microcohort_tests::say_skipped(
            "the browser check needs Chromium (apt-get install chromium); .ci/run installs it",
        );
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let run = |extra: &[&str], url: &str| {
        let output = Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=412,2400"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .output()
            .expect("run chromium");
        assert!(output.status.success(), "chromium: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // Signed in through a link, the browser reaches the server through a proxy that presents
    // the session's cookie (Chromium cannot press the confirmation page's button here).
    let link = admin(SERVER, data, &["dashboard-link", "--program", "p1", "--base-url", &server.url()]);
    let cookie = sign_in(server, &link);
    let proxy = CookieProxy::start(server.address, &cookie);
    let page = format!("http://{}/dashboard/programs/p1", proxy.address);
    let dom = run(&["--dump-dom"], &page);
    for expected in ["Everyday Leadership", "Cohort c1", "Ada", "Dee", "engaged at day 7", "feedback given", "<svg"] {
        assert!(dom.contains(expected), "the rendered page shows {expected:?}:\n{dom}");
    }
    assert!(dom.contains("no practice in the last 7 days") || dom.contains("at risk"));

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-{backend:?}.png").to_lowercase());
    let _ = std::fs::remove_file(&screenshot);
    run(&[&format!("--screenshot={}", screenshot.display())], &page);
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot at {}", screenshot.display());
}

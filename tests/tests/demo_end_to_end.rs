//! `microcohort-server demo` as a newcomer runs it: the real binary simulates a cohort, prints its
//! progress, a summary and a sign-in link; the link signs a browser in and the server's program
//! report shows what the simulation printed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use microcohort_tests::{http_get, http_request, session_cookie};
use serde_json::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");
const DAYS: u32 = 10;

/// Kills the demo if the test fails half-way.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One learner's row of the printed summary.
#[derive(Debug, PartialEq)]
struct PrintedMember {
    active: [u64; 3],
    streak: u64,
    feedback_given: u64,
    feedback_received: u64,
    at_risk: bool,
}

fn number(text: &str) -> u64 {
    text.parse().unwrap_or_else(|_| panic!("not a number: {text:?}"))
}

/// `  Amara Okafor         7/9/9                7       0/3                      –`
fn parse_member(line: &str) -> (String, PrintedMember) {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let at = tokens.iter().position(|t| t.matches('/').count() == 2).expect("active days column");
    let active: Vec<u64> = tokens[at].split('/').map(number).collect();
    let (given, received) = tokens[at + 2].split_once('/').expect("feedback column");
    let member = PrintedMember {
        active: [active[0], active[1], active[2]],
        streak: number(tokens[at + 1]),
        feedback_given: number(given),
        feedback_received: number(received),
        at_risk: tokens[at + 3..].join(" ") != "–",
    };
    (tokens[..at].join(" "), member)
}

/// The number after `label` in `line` (`"practices 11"` → 11).
fn after(line: &str, label: &str) -> u64 {
    let rest = line.split(label).nth(1).unwrap_or_else(|| panic!("{label:?} not in {line:?}"));
    number(rest.split_whitespace().next().unwrap_or_default().trim_end_matches(','))
}

#[test]
fn the_demo_simulates_a_cohort_and_its_sign_in_link_opens_a_report_with_the_same_figures() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data_dir = dir.path().join("demo-data");
    let mut child = Command::new(SERVER)
        .args(["demo", "--days", &DAYS.to_string(), "--listen", "127.0.0.1:0", "--seed", "7", "--invite", "2"])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut demo = Demo(child);

    let mut lines = Vec::new();
    let mut link = None;
    let mut output = BufReader::new(stdout).lines();
    for line in output.by_ref() {
        let line = line.expect("demo output");
        println!("{line}");
        if let Some(url) = line.strip_prefix("sign in (one-time link): ") {
            link = Some(url.to_owned());
            break;
        }
        lines.push(line);
    }
    // Keep reading, so the demo never writes into a closed pipe.
    std::thread::spawn(move || output.for_each(drop));
    let link = link.expect("the demo printed a sign-in link");

    let address: SocketAddr = lines[0].strip_prefix("listening on http://").expect("address line").parse().unwrap();
    assert_ne!(address.port(), 0, "the real bound port is printed");
    let days: Vec<&String> = lines.iter().filter(|l| l.starts_with("day ")).collect();
    assert_eq!(days.len(), DAYS as usize, "one progress line per simulated day");
    let practices_per_day: Vec<u64> = days.iter().map(|l| after(l, "practices ")).collect();
    let totals = lines.iter().find(|l| l.starts_with("simulated in")).expect("totals line");
    let practices = after(totals, "s: ");
    let feedback = after(totals, "shared, ");
    assert_eq!(practices_per_day.iter().sum::<u64>(), practices);
    assert!(feedback > 0, "the simulated learners gave feedback: {totals}");
    let tools = lines.iter().find(|l| l.starts_with("facilitator tools: ")).expect("facilitator tools line");
    let lead_name = tools.split("critique led by ").nth(1).and_then(|rest| rest.split(" (").next());
    let lead_name = lead_name.unwrap_or_else(|| panic!("a peer leads a critique: {tools}")).to_owned();
    let engagement_7 = lines.iter().find(|l| l.trim_start().starts_with("engagement:")).expect("engagement line");
    let header = lines.iter().position(|l| l.trim_start().starts_with("learner ")).expect("member table");
    let printed: HashMap<String, PrintedMember> = lines[header + 1..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with("at risk:"))
        .map(|l| parse_member(l))
        .collect();
    assert_eq!(printed.len(), 12, "12 learners in the summary");
    assert!(printed.values().any(|m| m.at_risk), "the summary names at least one member at risk");

    // The link signs in once and lands on the program's dashboard.
    let path = link.strip_prefix(&format!("http://{address}")).expect("link on the printed address");
    assert_eq!(http_get(address, path, &[]).0, 200, "the link opens its confirmation page");
    let (status, headers, _) = http_request(address, "POST", path, &[]);
    assert_eq!(status, 303, "the page's button signs in and redirects");
    assert_eq!(headers.get("location").map(String::as_str), Some("/dashboard/programs/demo-leadership"));
    let cookie = session_cookie(&headers).expect("a session cookie");
    assert_ne!(http_request(address, "POST", path, &[]).0, 303, "a sign-in link works once");
    let (status, _, page) = http_get(address, "/dashboard/programs/demo-leadership", &[("Cookie", &cookie)]);
    assert_eq!(status, 200);
    assert!(page.contains("Amara Okafor"), "the dashboard page lists the simulated learners");

    // The server's report holds exactly the figures the demo printed.
    let (status, _, body) = http_get(address, "/v1/programs/demo-leadership/report", &[("Cookie", &cookie)]);
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("report JSON");
    let cohorts = report["cohorts"].as_array().expect("cohorts");
    let cohort = cohorts.iter().find(|c| c["cohort_id"] == "demo-cohort").expect("the simulated cohort");
    assert_eq!(cohort["learners"], 12);
    assert_eq!(cohort["program_day"], DAYS, "the simulated days end today");
    assert_eq!(cohort["feedback"]["given"], feedback, "feedback given");
    let share_7 = cohort["engagement"][0]["share"].as_f64().expect("engagement on day 7");
    assert!(engagement_7.contains(&format!("day 7 {:.0}%", share_7 * 100.0)), "{engagement_7} vs {share_7}");

    let members = cohort["members"].as_array().expect("members");
    let mut active_on_day = vec![0u64; DAYS as usize];
    let mut at_risk = 0;
    for (name, printed) in &printed {
        let member = members.iter().find(|m| m["display_name"] == name.as_str()).unwrap_or_else(|| panic!("{name}"));
        let field = |key: &str| member[key].as_u64().unwrap_or_else(|| panic!("{name}: {key}"));
        let reported = PrintedMember {
            active: [field("active_days_7"), field("active_days_14"), field("active_days_30")],
            streak: field("streak"),
            feedback_given: field("feedback_given"),
            feedback_received: field("feedback_received"),
            at_risk: !member["at_risk"].as_array().expect("at_risk").is_empty(),
        };
        assert_eq!(&reported, printed, "{name}");
        at_risk += usize::from(reported.at_risk);
        for day in member["active_program_days"].as_array().expect("active days") {
            active_on_day[day.as_u64().expect("day") as usize - 1] += 1;
        }
    }
    assert!(at_risk >= 1);
    // Every simulated practice is one learner's active day on that program day.
    assert_eq!(active_on_day, practices_per_day, "active learners per program day");

    // The control arm practised alone, and the report compares the arms as the demo printed.
    let control = cohorts.iter().find(|c| c["cohort_id"] == "demo-control").expect("the control arm");
    assert_eq!((control["arm"].as_str(), control["learners"].as_u64()), (Some("control"), Some(12)));
    let alone: u64 = control["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["active_program_days"].as_array().unwrap().len() as u64)
        .sum();
    assert_eq!(alone, after(totals, "control arm: "), "every control practice is one active day: {totals}");
    let arms = &report["arms"];
    assert_eq!(arms["arms"][1]["learners"], 12);
    let uplift = arms["uplift"][0]["uplift"]["value"].as_f64().expect("the cohort arm's uplift");
    let printed_uplift =
        lines.iter().find(|l| l.trim_start().starts_with("uplift over the control arm:")).expect("arms lines");
    assert!(printed_uplift.contains(&format!("{:+.0} %", uplift * 100.0)), "{printed_uplift} vs {uplift}");
    assert!(page.contains("Cohort arm against the control arm"), "the dashboard shows the comparison");

    // An app joins the running demo with the printed invites: a learner in the open cohort, a
    // facilitator who sees the simulated one.
    let invite = |label: &str| -> Vec<String> {
        lines.iter().filter_map(|l| l.trim_start().strip_prefix(label)).map(str::to_owned).collect()
    };
    let learner_codes = invite("learner invite (open cohort): ");
    assert_eq!(learner_codes.len(), 2, "--invite 2");
    let facilitator_code = invite("facilitator invite (the simulated cohort): ").pop().expect("a facilitator invite");
    let server_line = lines.iter().find_map(|l| l.strip_prefix("join from an app: server ")).expect("server line");
    let clock = std::sync::Arc::new(microcohort_core::SystemClock);
    let learner = microcohort_core::Client::open_in_memory(clock.clone()).unwrap();
    let joined = learner.join_server(server_line, &learner_codes[0], "an app", "Europe/Lisbon").unwrap();
    assert_eq!((joined.role.as_str(), joined.cohort_id.as_str()), ("learner", "demo-open"));
    learner.sync_now().unwrap();
    assert!(learner.today().unwrap().prompt.is_some(), "today's practice in the demo program");
    let facilitator = microcohort_core::Client::open_in_memory(clock).unwrap();
    let joined = facilitator.join_server(server_line, &facilitator_code, "an app", "UTC").unwrap();
    assert_eq!((joined.role.as_str(), joined.cohort_id.as_str()), ("facilitator", "demo-cohort"));
    facilitator.sync_now().unwrap();
    assert_eq!(facilitator.cohort_dashboard().unwrap().learners, 12, "the simulated cohort's learners");
    // The week the demo handed to a learner is hers on every device, with its meeting link.
    let lead = facilitator.week_roles(1).unwrap().critique_lead.expect("a lead");
    let roster = facilitator.roster().unwrap();
    assert_eq!(roster.member(&lead).map(|m| m.display_name.as_str()), Some(lead_name.as_str()));
    assert!(facilitator.critique_week(1).unwrap().and_then(|w| w.link).is_some_and(|l| l.starts_with("https://")));

    let _ = Command::new("kill").arg("-TERM").arg(demo.0.id().to_string()).status();
    assert!(demo.0.wait().expect("exit").success(), "the demo stops cleanly on SIGTERM");
}

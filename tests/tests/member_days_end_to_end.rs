//! A member's day is computed the same everywhere: her phone, her facilitator's offline dashboard
//! and the server's program report all end her windows on her day, in her current zone and with
//! her day-start offset, both of which she changes on her phone and which sync as her profile.

use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use microcohort_core::domain::cohort_metrics::{CohortReport, MemberReport};
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::{Client, ManualClock};
use microcohort_server::report::ProgramReport;
use microcohort_tests::{
    Backend, ServerProcess, TestData, admin, http_get, on_both_backends, program_under_way, sign_in_with_link,
};

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

on_both_backends!(phone_dashboard_and_report_agree_on_a_late_owl_and_a_traveller);

/// A device with its own clock, joined with an invite.
fn device(server: &ServerProcess, data: &TestData, role: &str, name: &str, zone: &str) -> (Client, ManualClock) {
    let code = admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--role", role, "--name", name]);
    let clock = ManualClock::new(Utc::now());
    let client = Client::open_in_memory(Arc::new(clock.clone())).expect("open a device");
    client.join_server(&server.url(), &code, "phone", zone).expect("join");
    (client, clock)
}

fn at(zone: Tz, date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    zone.from_local_datetime(&date.and_hms_opt(hour, minute, 0).unwrap()).single().unwrap().with_timezone(&Utc)
}

fn practise(client: &Client, clock: &ManualClock, instant: DateTime<Utc>) {
    clock.set(instant);
    let session = client.start_practice(None).expect("a prompt today");
    clock.set(instant + chrono::Duration::minutes(11));
    let outcome = PracticeOutcome { duration_secs: Some(660), ..Default::default() };
    client.finish_practice(session.id, &outcome).expect("finish");
}

/// `(streak, active days in 7 and 14, at risk?)`, comparable across the three places.
fn figures(m: &MemberReport) -> (u32, u32, u32, bool) {
    (m.streak, m.active_days_7, m.active_days_14, !m.at_risk.is_empty())
}

fn member<'a>(report: &'a CohortReport, id: &str) -> &'a MemberReport {
    report.members.iter().find(|m| m.user_id == id).expect("a member of the report")
}

fn phone_figures(
    client: &Client,
    clock: &ManualClock,
    instant: DateTime<Utc>,
    dashboard: &MemberReport,
) -> (u32, u32, u32, bool) {
    clock.set(instant);
    let metrics = client.today().expect("today").metrics;
    assert_eq!(metrics.reference_date, dashboard.reference_date, "the phone and the dashboard agree on her day");
    (metrics.streak, metrics.active_days_7, metrics.active_days_14, !dashboard.at_risk.is_empty())
}

fn phone_dashboard_and_report_agree_on_a_late_owl_and_a_traveller(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 40, &["c1"]);
    // Max's twenty evenings arrive in one sync at the end: a back-fill longer than the default
    // 14-day window, which this program's operator widened.
    let mut server = ServerProcess::start(SERVER, data.path(), &["--backfill-days", "30"]);
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let los_angeles: Tz = "America/Los_Angeles".parse().unwrap();
    // Invited in Berlin, as the operator typed it; the phones say where they are.
    let (owl, owl_clock) = device(&server, &data, "learner", "Olga", "Europe/Berlin");
    let (moved, moved_clock) = device(&server, &data, "learner", "Max", "Europe/Berlin");
    let (facilitator, facilitator_clock) = device(&server, &data, "facilitator", "Fay", "Europe/Berlin");
    let owl_id = owl.my_user_id().unwrap();
    let moved_id = moved.my_user_id().unwrap();

    // Olga's day starts at 03:00; she practises at 22:00 some evenings and at 01:30 after others:
    // every day from D-6 to D-1 counts, although four calendar dates have none.
    let d = Utc::now().date_naive() - Days::new(3);
    owl.set_day_start_offset(180).unwrap();
    for back in 1..=6u64 {
        let day = d - Days::new(back);
        let instant = match back % 2 {
            0 => at(berlin, day, 22, 0),
            _ => at(berlin, day + Days::new(1), 1, 30),
        };
        practise(&owl, &owl_clock, instant);
    }
    // Max practises ten evenings in Berlin, moves to Los Angeles and practises ten more there.
    for back in (11..=20u64).rev() {
        practise(&moved, &moved_clock, at(berlin, d - Days::new(back - 1), 21, 0));
    }
    moved.set_time_zone("America/Los_Angeles").unwrap();
    for back in (1..=10u64).rev() {
        practise(&moved, &moved_clock, at(los_angeles, d - Days::new(back - 1), 21, 0));
    }
    for client in [&owl, &moved] {
        client.sync_now().expect("sync");
    }
    // The roster now carries each member's own zone and day start.
    facilitator.sync_now().expect("sync");
    let roster = facilitator.roster().unwrap();
    let owl_member = roster.member(&owl_id).unwrap();
    assert_eq!((owl_member.time_zone.as_str(), owl_member.day_start.minutes()), ("Europe/Berlin", 180));
    assert_eq!(roster.member(&moved_id).unwrap().time_zone, "America/Los_Angeles");

    let link = admin(SERVER, data.path(), &["dashboard-link", "--program", "p1", "--base-url", &server.url()]);
    let cookie = sign_in_with_link(server.address, link.strip_prefix(&server.url()).expect("a link to this server"));
    let server_report = |instant: DateTime<Utc>| -> CohortReport {
        let path = format!("/v1/programs/p1/report?at={}", instant.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let (status, _, body) = http_get(server.address, &path, &[("Cookie", &cookie)]);
        assert_eq!(status, 200, "{body}");
        let report: ProgramReport = serde_json::from_str(&body).unwrap();
        report.cohorts.into_iter().find(|c| c.cohort_id == "c1").expect("cohort c1")
    };

    // Olga at 01:00 and 20:00 on D+1, Max at 01:00 and 20:00 in Los Angeles on D+1.
    let checks = [
        (&owl, &owl_clock, &owl_id, at(berlin, d + Days::new(1), 1, 0), (6, 6, 6, false)),
        (&owl, &owl_clock, &owl_id, at(berlin, d + Days::new(1), 20, 0), (0, 5, 6, false)),
        (&moved, &moved_clock, &moved_id, at(los_angeles, d + Days::new(1), 1, 0), (20, 6, 13, false)),
        (&moved, &moved_clock, &moved_id, at(los_angeles, d + Days::new(1), 20, 0), (20, 6, 13, false)),
    ];
    for (client, clock, id, instant, expected) in checks {
        facilitator_clock.set(instant);
        let dashboard = facilitator.cohort_dashboard().expect("the facilitator's dashboard");
        let on_dashboard = member(&dashboard, id);
        let on_phone = phone_figures(client, clock, instant, on_dashboard);
        assert_eq!(on_phone, expected, "{id} on her phone at {instant}");
        assert_eq!(figures(on_dashboard), on_phone, "{id} on the facilitator's dashboard at {instant}");
        let report = server_report(instant);
        let on_server = member(&report, id);
        assert_eq!(on_server.reference_date, on_dashboard.reference_date);
        assert_eq!(figures(on_server), on_phone, "{id} in the server's report at {instant}");
    }

    // The profile survives a restart and a zone from a phone that is not a zone is refused.
    server.restart();
    let (status, _, body) = http_get(server.address, "/v1/programs/p1/report?at=yesterday", &[("Cookie", &cookie)]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at:"), "{body}");
}

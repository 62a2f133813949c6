//! A person is one user across her devices: a new phone gets her history, streak, settings and
//! cohort back; she lists her devices and signs a lost one out; a revoked phone joins again and
//! writes; a device holding one person's data never silently becomes another's.

use std::sync::Arc;

use chrono::{DateTime, Days, Utc};
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::{Client, Clock, Error, ManualClock};
use microcohort_server::report::ProgramReport;
use microcohort_tests::{
    Backend, ServerProcess, TestData, admin, http_get, on_both_backends, program_under_way, raw_join, sign_in_with_link,
};

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

on_both_backends!(
    a_new_phone_gets_the_person_back_and_a_lost_one_is_signed_out,
    a_phone_holds_one_person_at_a_time,
    a_facilitator_of_three_cohorts_counts_once
);

fn invite(data: &TestData, name: &str, user: Option<&str>) -> String {
    let mut args = vec!["invite", "--cohort", "c1", "--role", "learner", "--name", name];
    if let Some(user) = user {
        args.extend(["--user", user]);
    }
    admin(SERVER, data.path(), &args)
}

fn phone(clock: &ManualClock) -> Client {
    Client::open_in_memory(Arc::new(clock.clone())).expect("open a device")
}

/// One completed 11-minute practice at `instant`.
fn practise(client: &Client, clock: &ManualClock, instant: DateTime<Utc>) -> uuid::Uuid {
    practise_with_reflection(client, clock, instant, "")
}

/// One completed practice with a private reflection.
fn practise_with_reflection(
    client: &Client,
    clock: &ManualClock,
    instant: DateTime<Utc>,
    reflection: &str,
) -> uuid::Uuid {
    clock.set(instant);
    let session = client.start_practice(None).expect("a prompt today");
    clock.set(instant + chrono::Duration::minutes(11));
    let outcome = PracticeOutcome { duration_secs: Some(660), reflection: reflection.into(), ..Default::default() };
    client.finish_practice(session.id, &outcome).expect("finish").id
}

fn reflections(client: &Client) -> Vec<String> {
    let mut texts: Vec<String> = client.practice_history().unwrap().into_iter().map(|l| l.reflection).collect();
    texts.sort();
    texts
}

/// Every byte the server keeps for its data: the SQLite files, or PostgreSQL's practice logs.
fn server_bytes(data: &TestData) -> Vec<u8> {
    if let Some(url) = data.database_url() {
        let mut client = ::postgres::Client::connect(url, ::postgres::NoTls).expect("connect");
        let rows = client.query("SELECT body FROM practice_logs", &[]).expect("query");
        return rows.iter().flat_map(|r| r.get::<_, String>(0).into_bytes()).collect();
    }
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    bytes
}

fn a_new_phone_gets_the_person_back_and_a_lost_one_is_signed_out(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 20, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);

    // Ada practises for a week on phone A, at 08:00 UTC, with private reflections, and shares
    // one practice.
    let clock_a = ManualClock::new(Utc::now());
    let phone_a = phone(&clock_a);
    phone_a.join_server(&server.url(), &invite(&data, "Ada", None), "phone A", "UTC").unwrap();
    let ada = phone_a.my_user_id().unwrap();
    // The last practice at 08:00 lies at least two hours in the past whatever the hour the test
    // runs, so the server and every phone agree on which day it was.
    let today = (Utc::now() - chrono::Duration::hours(10)).date_naive();
    let mut last = None;
    for back in (0..7u64).rev() {
        let day = today - Days::new(back);
        let instant = day.and_hms_opt(8, 0, 0).unwrap().and_utc();
        last = Some(practise_with_reflection(&phone_a, &clock_a, instant, &format!("Ada-private-note-{back}")));
    }
    phone_a.share_practice(last.unwrap(), "My week", "Seven mornings in a row").unwrap();
    phone_a.set_day_start_offset(60).unwrap();
    phone_a.sync_now().unwrap();
    let on_a = phone_a.today().unwrap().metrics;
    assert_eq!((on_a.streak, on_a.active_days_7), (7, 7));
    let written = reflections(&phone_a);
    let stored = server_bytes(&data);
    assert!(!written.iter().any(|r| contains(&stored, r)), "the server holds no reflection text");

    // Phone B is linked from phone A (the payload A shows as a QR code): the same person.
    let link = phone_a.create_device_link().unwrap();
    let clock_b = ManualClock::new(clock_a.now());
    let phone_b = phone(&clock_b);
    let joined = phone_b.link_device(&link.payload, "phone B", "UTC").unwrap();
    assert_eq!(joined.user_id, ada);
    let outcome = phone_b.sync_now().unwrap();
    assert_eq!(outcome.history_logs_received, 7, "{outcome:?}");
    let on_b = phone_b.today().unwrap().metrics;
    assert_eq!((on_b.streak, on_b.active_days_7, on_b.minutes_7), (on_a.streak, on_a.active_days_7, on_a.minutes_7));
    assert_eq!(reflections(&phone_b), written, "her reflections, opened with the key the link carried");
    assert_eq!(phone_b.profile().unwrap().day_start.minutes(), 60, "her settings follow her");
    assert_eq!(phone_b.recovery_key().unwrap(), phone_a.recovery_key().unwrap());
    let week = phone_b.today().unwrap().position.week.unwrap();
    let shared = phone_b.week_rows(week).unwrap().submissions;
    assert!(shared.iter().any(|s| s.meta.author == ada && s.title == "My week"), "{shared:?}");
    assert_eq!(
        phone_b.roster().unwrap().members().iter().filter(|m| m.display_name == "Ada").count(),
        1,
        "one person on the roster"
    );
    let members = admin(SERVER, data.path(), &["list-members", "--cohort", "c1"]);
    assert!(members.contains(&format!("{ada}\tAda\tlearner\t2 devices")), "{members}");

    // A link code works once.
    let again = phone(&ManualClock::new(Utc::now()));
    let err = again.link_device(&link.payload, "phone X", "UTC").unwrap_err();
    assert!(matches!(&err, Error::Server { status: 403, message } if message.contains("link code")), "{err:?}");
    assert!(matches!(again.my_user_id(), Err(Error::NotInCohort)), "nothing written");
    let err = again.link_device_with_code(&server.url(), "WRONG-CODE-AAAA-BBBB", "phone X", "UTC").unwrap_err();
    assert!(matches!(err, Error::Server { status: 403, .. }), "{err:?}");
    assert!(again.link_device("not a link", "phone X", "UTC").is_err());
    let offline = phone_a.create_device_link().unwrap();
    let err = again.link_device_with_code("http://127.0.0.1:9", &offline.code, "phone X", "UTC").unwrap_err();
    assert!(matches!(err, Error::Network(_)), "{err:?}");
    assert!(matches!(again.my_user_id(), Err(Error::NotInCohort)), "nothing written offline");

    // Phone A is lost: B lists Ada's devices and signs A out; A can no longer sync or link.
    let devices = phone_b.devices().unwrap();
    assert_eq!(devices.len(), 2);
    let lost = devices.iter().find(|d| !d.this_device).expect("phone A");
    assert_eq!(lost.name, "phone A");
    phone_b.sign_out_device(&lost.device_id).unwrap();
    assert!(matches!(phone_a.sync_now(), Err(Error::Unauthorized)));
    assert!(matches!(phone_a.create_device_link(), Err(Error::Unauthorized)));
    assert!(phone_b.devices().unwrap().iter().any(|d| d.device_id == lost.device_id && d.revoked_at.is_some()));
    let err = phone_b.sign_out_device("no-such-device").unwrap_err();
    assert!(matches!(err, Error::Server { status: 404, .. }), "{err:?}");
    let listed = admin(SERVER, data.path(), &["list-devices", "--user", &ada]);
    assert!(listed.contains(&lost.device_id) && listed.contains("revoked"), "{listed}");

    // Every device lost: the operator invites Ada again on a new phone C, and her recovery key
    // opens her private text there.
    let recovery = phone_b.recovery_key().unwrap().expect("a recovery key");
    let clock_c = ManualClock::new(clock_a.now());
    let phone_c = phone(&clock_c);
    phone_c.join_server(&server.url(), &invite(&data, "Ada", Some(&ada)), "phone C", "UTC").unwrap();
    phone_c.sync_now().unwrap();
    assert_eq!(phone_c.practice_history().unwrap().len(), 7);
    assert!(reflections(&phone_c).iter().all(String::is_empty), "no key yet: her private text stays closed");
    assert!(phone_c.restore_recovery_key("ABCDE-FGHIJ").is_err());
    phone_c.restore_recovery_key(&recovery.to_lowercase()).unwrap();
    phone_c.sync_now().unwrap();
    assert_eq!(reflections(&phone_c), written);

    // Found again: the operator re-invites Ada on phone A, which writes again.
    let found_again = practise(&phone_a, &clock_a, clock_a.now() + chrono::Duration::hours(1));
    phone_a.join_server(&server.url(), &invite(&data, "Ada", Some(&ada)), "phone A", "UTC").unwrap();
    assert_eq!(phone_a.my_user_id().unwrap(), ada);
    phone_a.share_practice(found_again, "Again", "Back on my old phone").unwrap();
    let outcome = phone_a.sync_now().unwrap();
    assert!(outcome.rejected.is_empty(), "{outcome:?}");
    phone_b.sync_now().unwrap();
    assert!(phone_b.week_rows(week).unwrap().submissions.iter().any(|s| s.title == "Again"));

    // Signing out on B revokes B and deletes Ada's data from it.
    phone_b.sign_out().unwrap();
    assert!(matches!(phone_b.today(), Err(Error::NotEnrolled)));
    assert!(!phone_b.sync_status().unwrap().linked);
    assert_eq!(phone_b.recovery_key().unwrap(), None);
    let devices = phone_a.devices().unwrap();
    assert_eq!(devices.iter().filter(|d| d.revoked_at.is_none()).count(), 2, "{devices:?}");
    let stored = server_bytes(&data);
    assert!(!written.iter().any(|r| contains(&stored, r)), "the server holds no reflection text");
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn a_phone_holds_one_person_at_a_time(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 10, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let clock = ManualClock::new(Utc::now());
    let shared = phone(&clock);
    shared.join_server(&server.url(), &invite(&data, "Ben", None), "family tablet", "UTC").unwrap();
    let ben = shared.my_user_id().unwrap();
    let log = practise(&shared, &clock, Utc::now());
    shared.sync_now().unwrap();

    // Someone else's invite on Ben's tablet: refused before anything changes, on either side.
    let err = shared.join_server(&server.url(), &invite(&data, "Cleo", None), "family tablet", "UTC").unwrap_err();
    assert!(matches!(&err, Error::Server { status: 409, message } if message.contains("another person")), "{err:?}");
    assert_eq!(shared.my_user_id().unwrap(), ben);
    assert_eq!(shared.practice_history().unwrap().len(), 1);
    shared.sync_now().expect("Ben's tablet still syncs");
    // Nor a link code of another person's device; the code stays good for her own.
    let dan = phone(&ManualClock::new(Utc::now()));
    dan.join_server(&server.url(), &invite(&data, "Dan", None), "Dan's phone", "UTC").unwrap();
    let dans = dan.create_device_link().unwrap();
    let err = shared.link_device(&dans.payload, "family tablet", "UTC").unwrap_err();
    assert!(matches!(&err, Error::Server { status: 409, .. }), "{err:?}");
    assert_eq!(shared.my_user_id().unwrap(), ben);
    let dan_tablet = phone(&ManualClock::new(Utc::now()));
    assert_eq!(
        dan_tablet.link_device(&dans.payload, "Dan's tablet", "UTC").unwrap().user_id,
        dan.my_user_id().unwrap()
    );

    // Ben's tablet is revoked; he deletes his data from it and Cleo joins: a new person with a
    // new automerge actor, whose writes the server accepts.
    let devices = admin(SERVER, data.path(), &["list-devices", "--user", &ben]);
    let tablet = devices.lines().next().and_then(|l| l.split('\t').next()).expect("a device id").to_owned();
    admin(SERVER, data.path(), &["revoke-device", "--device", &tablet]);
    assert!(matches!(shared.sync_now(), Err(Error::Unauthorized)));
    assert_eq!(shared.unsent_work().unwrap().practice_logs, 0);
    shared.delete_my_data().unwrap();
    assert!(matches!(shared.my_user_id(), Err(Error::NotInCohort)));
    assert!(shared.practice_history().is_err() || shared.practice_history().unwrap().is_empty());
    shared.join_server(&server.url(), &invite(&data, "Cleo", None), "family tablet", "UTC").unwrap();
    let cleo = shared.my_user_id().unwrap();
    assert_ne!(cleo, ben);
    let cleo_log = practise(&shared, &clock, Utc::now());
    assert_ne!(cleo_log, log);
    shared.share_practice(cleo_log, "Mine", "Cleo's first practice").unwrap();
    let outcome = shared.sync_now().unwrap();
    assert!(outcome.rejected.is_empty(), "{outcome:?}");
    assert_eq!(shared.practice_history().unwrap().len(), 1, "none of Ben's practice came back");

    // Cleo leaves the cohort: the roster records the day, her tablet drops the cohort and keeps
    // her practice.
    shared.leave_cohort().unwrap();
    assert!(matches!(shared.sync_now(), Err(Error::NotLinked)));
    assert!(matches!(shared.my_user_id(), Err(Error::NotInCohort)));
    assert_eq!(shared.practice_history().unwrap().len(), 1);
    dan.sync_now().unwrap();
    assert!(dan.roster().unwrap().member(&cleo).is_some_and(|m| m.left_on.is_some()));

    // Bad operator input is named.
    let out = microcohort_tests::server_command(SERVER, data.path())
        .args(["admin", "invite", "--cohort", "c1", "--name", "X", "--user", "nobody"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user nobody"));
}

fn a_facilitator_of_three_cohorts_counts_once(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 10, &["c1", "c2", "c3"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let first = admin(SERVER, data.path(), &["add-facilitator", "--cohort", "c1", "--name", "Fay"]);
    let fay = raw_join(&server, &first).user_id;
    for cohort in ["c2", "c3"] {
        let code = admin(
            SERVER,
            data.path(),
            &["invite", "--cohort", cohort, "--role", "facilitator", "--name", "Fay", "--user", &fay],
        );
        assert_eq!(raw_join(&server, &code).user_id, fay);
    }
    for (cohort, name) in [("c1", "Ann"), ("c2", "Bo"), ("c3", "Cy")] {
        raw_join(&server, &admin(SERVER, data.path(), &["invite", "--cohort", cohort, "--name", name]));
    }
    let link = admin(SERVER, data.path(), &["dashboard-link", "--program", "p1", "--base-url", &server.url()]);
    let cookie = sign_in_with_link(server.address, link.strip_prefix(&server.url()).unwrap());
    let (status, _, body) = http_get(server.address, "/v1/programs/p1/report", &[("Cookie", &cookie)]);
    assert_eq!(status, 200, "{body}");
    let load = serde_json::from_str::<ProgramReport>(&body).unwrap().facilitator_load;
    assert_eq!(load.facilitators.len(), 1, "{load:?}");
    assert_eq!((load.facilitators[0].cohorts, load.facilitators[0].learners), (3, 3));
    assert_eq!(load.learners_per_facilitator, Some(3.0));

    // Across programs too: Fay also facilitates a cohort of another program.
    let start = chrono::Utc::now().date_naive().to_string();
    let program = ["create-program", "--id", "p2", "--title", "Second", "--start", &start, "--time-zone", "UTC"];
    admin(SERVER, data.path(), &program);
    admin(SERVER, data.path(), &["create-cohort", "--id", "d1", "--program", "p2", "--title", "D1"]);
    let code = admin(
        SERVER,
        data.path(),
        &["invite", "--cohort", "d1", "--role", "facilitator", "--name", "Fay", "--user", &fay],
    );
    raw_join(&server, &code);
    let listed = admin(SERVER, data.path(), &["facilitator-load"]);
    assert_eq!(listed, format!("{fay}\tFay\t2 programs\t4 cohorts\t3 learners"));
}

//! What an operator relies on, against the running server: every response carries a request id
//! and security headers; signing out ends the session on the server; a session opened from a
//! facilitator's app ends with that device; invites expire and can be listed and revoked;
//! `/healthz` answers from the database; a backup taken while serving restores into a fresh server
//! that devices then sync with, nothing lost; the server serves HTTPS itself, with `Secure` cookies;
//! `/metrics` moves to an address of its own when the operator gives one.

use microcohort_core::{Client, Error, SystemClock};
use microcohort_tests::{
    Backend, ServerProcess, TestData, admin, http_get, http_request, on_both_backends, program_under_way,
    sign_in_with_link,
};

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

on_both_backends!(
    sessions_end_on_sign_out_and_with_their_device,
    invites_expire_and_are_listed_and_revoked,
    every_response_carries_a_request_id_and_security_headers
);

fn device() -> Client {
    Client::open_in_memory(std::sync::Arc::new(SystemClock)).expect("open a device")
}

fn report_status(server: &ServerProcess, cookie: &str) -> u16 {
    http_get(server.address, "/v1/programs/p1/report", &[("Cookie", cookie)]).0
}

fn sign_in(server: &ServerProcess, link: &str) -> String {
    sign_in_with_link(server.address, link.strip_prefix(&server.url()).expect("a link to this server"))
}

fn sessions_end_on_sign_out_and_with_their_device(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 10, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);

    // A program lead signs in with a one-time link and out again: the cookie opens nothing more,
    // even if the browser kept it.
    let link = admin(SERVER, data.path(), &["dashboard-link", "--program", "p1", "--base-url", &server.url()]);
    let cookie = sign_in(&server, &link);
    assert_eq!(report_status(&server, &cookie), 200);
    let (status, headers, _) = http_request(server.address, "POST", "/dashboard/sign-out", &[("Cookie", &cookie)]);
    assert_eq!(status, 303);
    assert!(headers.get("set-cookie").is_some_and(|c| c.contains("Max-Age=0")), "{headers:?}");
    assert_eq!(report_status(&server, &cookie), 401, "the session is gone on the server");
    assert_eq!(http_get(server.address, "/dashboard/sign-out", &[]).0, 405, "signing out is a POST");

    // A facilitator opens the dashboard from the app; when that device is signed out, so is the
    // browser session it opened.
    let code = admin(SERVER, data.path(), &["add-facilitator", "--cohort", "c1", "--name", "Fay"]);
    let tablet = device();
    tablet.join_server(&server.url(), &code, "tablet", "UTC").unwrap();
    let cookie = sign_in(&server, &tablet.dashboard_sign_in_link().unwrap());
    assert_eq!(report_status(&server, &cookie), 200);
    let device_id = tablet.devices().unwrap().into_iter().find(|d| d.this_device).unwrap().device_id;
    admin(SERVER, data.path(), &["revoke-device", "--device", &device_id]);
    assert_eq!(report_status(&server, &cookie), 401, "the session died with its device");
}

fn invites_expire_and_are_listed_and_revoked(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 10, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let invite = |name: &str, days: &str| {
        admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", name, "--valid-days", days])
    };

    let expired = invite("Old", "0");
    let err = device().join_server(&server.url(), &expired, "phone", "UTC").unwrap_err();
    assert!(matches!(&err, Error::Server { status: 403, message } if message.contains("expired")), "{err:?}");

    let revoked = invite("Rev", "14");
    let kept = invite("Kay", "14");
    let listed = admin(SERVER, data.path(), &["list-invites", "--cohort", "c1"]);
    let line = |name: &str| listed.lines().find(|l| l.contains(&format!("\t{name}\t"))).unwrap_or_default().to_owned();
    assert!(line("Old").ends_with("expired"), "{listed}");
    assert!(line("Rev").ends_with("open"), "{listed}");
    assert!(!listed.contains(&revoked) && !listed.contains(&kept), "codes are never shown");
    let id = line("Rev").split('\t').next().unwrap().to_owned();
    admin(SERVER, data.path(), &["revoke-invite", "--id", &id]);
    let err = device().join_server(&server.url(), &revoked, "phone", "UTC").unwrap_err();
    assert!(matches!(&err, Error::Server { status: 403, .. }), "{err:?}");
    let output = microcohort_tests::server_command(SERVER, data.path())
        .args(["admin", "revoke-invite", "--id", &id])
        .output()
        .unwrap();
    assert!(!output.status.success(), "an invite is revoked once");

    device().join_server(&server.url(), &kept, "phone", "UTC").expect("an open invite still works");
    let listed = admin(SERVER, data.path(), &["list-invites", "--cohort", "c1"]);
    assert!(listed.lines().find(|l| l.contains("\tKay\t")).unwrap().contains("used"), "{listed}");
}

fn every_response_carries_a_request_id_and_security_headers(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 10, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);

    let (status, headers, body) = http_get(server.address, "/healthz", &[]);
    assert_eq!((status, body.as_str()), (200, "ok"));
    let first = headers.get("x-request-id").cloned().expect("a request id");
    let (_, again, _) = http_get(server.address, "/healthz", &[]);
    assert_ne!(again.get("x-request-id"), Some(&first), "one id per request");
    let (_, proxied, _) = http_get(server.address, "/healthz", &[("X-Request-Id", "edge-42")]);
    assert_eq!(proxied.get("x-request-id").map(String::as_str), Some("edge-42"), "a proxy's id is kept");

    let link = admin(SERVER, data.path(), &["dashboard-link", "--program", "p1", "--base-url", &server.url()]);
    let cookie = sign_in(&server, &link);
    for path in ["/dashboard", "/dashboard/programs/p1", "/v1/programs/p1/report", "/v1/programs/p1/report.csv"] {
        let (status, headers, _) = http_get(server.address, path, &[("Cookie", &cookie)]);
        assert!(status < 400, "{path}: {status}");
        let header = |name: &str| headers.get(name).map(String::as_str).unwrap_or_default();
        assert!(header("content-security-policy").contains("frame-ancestors 'none'"), "{path}: {headers:?}");
        assert!(!header("content-security-policy").contains("script-src"), "no script may run: {path}");
        assert_eq!(header("cache-control"), "no-store", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
    }
}

#[test]
fn metrics_move_to_their_own_address_when_one_is_given() {
    let Some(data) = TestData::new(Backend::Sqlite) else { return };
    program_under_way(SERVER, data.path(), 10, &["c1"]);
    let beside = ServerProcess::start(SERVER, data.path(), &[]);
    assert_eq!(http_get(beside.address, "/healthz", &[]).0, 200);
    let (status, _, body) = http_get(beside.address, "/metrics", &[]);
    assert_eq!(status, 200, "without the option, beside the API: {body}");
    assert!(body.contains("microcohort_http_requests"), "{body}");
    drop(beside);

    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let private = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let server = ServerProcess::start(SERVER, data.path(), &["--metrics-listen", &private.to_string()]);
    let (status, _, _) = http_get(server.address, "/healthz", &[]);
    assert_eq!(status, 200, "the API is served");
    let (status, _, _) = http_get(server.address, "/metrics", &[]);
    assert_eq!(status, 404, "no metrics on the public address");
    let (status, headers, body) = http_get(private, "/metrics", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(headers.get("content-type").is_some_and(|t| t.starts_with("application/openmetrics-text")), "{headers:?}");
    assert!(body.contains("/healthz"), "the API's requests are counted: {body}");
    assert_eq!(http_get(private, "/v1/sync", &[]).0, 404, "nothing else on the private address");
}

#[test]
fn a_backup_taken_while_serving_restores_into_a_server_devices_sync_with() {
    use microcohort_core::FeedbackInput;
    use microcohort_core::domain::practice::PracticeOutcome;

    let Some(data) = TestData::new(Backend::Sqlite) else { return };
    program_under_way(SERVER, data.path(), 10, &["c1"]);
    let mut server = ServerProcess::start(SERVER, data.path(), &[]);
    let join = |name: &str, role: &str| {
        let code = admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--role", role, "--name", name]);
        let client = device();
        client.join_server(&server.url(), &code, "phone", "UTC").unwrap();
        client
    };
    let (ada, ben, fay) = (join("Ada", "learner"), join("Ben", "learner"), join("Fay", "facilitator"));
    let session = ada.start_practice(None).unwrap();
    let outcome = PracticeOutcome { duration_secs: Some(600), ..Default::default() };
    let log = ada.finish_practice(session.id, &outcome).unwrap();
    let shared = ada.share_practice(log.id, "Listening", "I waited").unwrap();
    ada.sync_now().unwrap();
    ben.sync_now().unwrap();
    ben.give_feedback(&shared, &FeedbackInput { body: "Good pause.".into(), ..Default::default() }).unwrap();
    ben.sync_now().unwrap();

    // Backed up while the server serves; a second backup to the same file is refused.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("microcohort-backup.sqlite");
    let file_arg = file.to_str().unwrap();
    admin(SERVER, data.path(), &["backup", "--to", file_arg]);
    let again = microcohort_tests::server_command(SERVER, data.path())
        .args(["admin", "backup", "--to", file_arg])
        .output()
        .unwrap();
    assert!(!again.status.success(), "an existing file is never overwritten");

    // Ben's reply reaches the old server after the backup was taken.
    ben.sync_now().unwrap();
    let feedback_key = ben.week_rows(shared.week).unwrap().feedback[0].meta.key.clone();
    let after_backup = microcohort_core::EntryRef { week: shared.week, key: feedback_key };
    ben.reply(&after_backup, None, "Written after the backup").unwrap();
    ben.sync_now().unwrap();

    // The machine is lost; the backup goes into a fresh data directory and a new server.
    server.kill();
    let fresh = TestData::new(Backend::Sqlite).unwrap();
    admin(SERVER, fresh.path(), &["restore", "--from", file_arg]);
    let refused = microcohort_tests::server_command(SERVER, fresh.path())
        .args(["admin", "restore", "--from", file_arg])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a database in place is never replaced");
    let restored = ServerProcess::start(SERVER, fresh.path(), &[]);
    for client in [&ada, &ben, &fay] {
        client.change_server(&restored.url()).expect("the same devices, known to the restored server");
        let outcome = client.sync_now().unwrap();
        assert!(outcome.rejected.is_empty(), "{outcome:?}");
    }
    // Work goes on: Ada replies, everyone converges, the facilitator sees it all.
    let feedback = ada.week_rows(shared.week).unwrap().feedback[0].meta.key.clone();
    let on = microcohort_core::EntryRef { week: shared.week, key: feedback };
    ada.reply(&on, None, "Thanks!").unwrap();
    // Two rounds: a device learns in one what the restored server lacks and sends it in the next.
    for client in [&ada, &ben, &fay, &ada, &ben, &fay] {
        client.sync_now().unwrap();
    }
    assert_eq!(fay.week_rows(shared.week).unwrap(), ada.week_rows(shared.week).unwrap());
    let replies: Vec<String> = fay.week_rows(shared.week).unwrap().replies.into_iter().map(|r| r.body).collect();
    assert!(replies.contains(&"Thanks!".to_owned()), "{replies:?}");
    assert!(
        replies.contains(&"Written after the backup".to_owned()),
        "the device that held it sent it again: {replies:?}"
    );
    assert_eq!(fay.cohort_practice_logs().unwrap().len(), 1, "Ada's practice log came back with the backup");
    let dashboard = fay.cohort_dashboard().unwrap();
    let ada_id = ada.my_user_id().unwrap();
    let ada_row = dashboard.members.iter().find(|m| m.user_id == ada_id).unwrap();
    assert_eq!((ada_row.active_days_7, ada_row.feedback_received), (1, 1));
}

#[test]
fn json_logs_carry_the_request_id_of_their_request() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    let Some(data) = TestData::new(Backend::Sqlite) else { return };
    program_under_way(SERVER, data.path(), 10, &["c1"]);
    let mut child = microcohort_tests::server_command(SERVER, data.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address: std::net::SocketAddr = line.trim().strip_prefix("listening on http://").unwrap().parse().unwrap();
    let (status, _, _) = http_get(address, "/v1/programs/p1/report", &[("X-Request-Id", "json-test-7")]);
    assert_eq!(status, 401);
    let _ = child.kill();
    let _ = child.wait();
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    let lines: Vec<serde_json::Value> =
        logs.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(!lines.is_empty(), "no log lines");
    let tagged = lines
        .iter()
        .filter(|l| l["spans"].as_array().is_some_and(|spans| spans.iter().any(|s| s["id"] == "json-test-7")));
    assert!(tagged.count() >= 1, "a log line of the request carries its id:\n{logs}");
}

/// A GET over TLS with a client that trusts `roots`: status, headers (lower-case) and body.
fn https_request(
    roots: &rustls::RootCertStore,
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> (u16, std::collections::HashMap<String, String>, String) {
    use std::io::{Read, Write};
    let config = rustls::ClientConfig::builder().with_root_certificates(roots.clone()).with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect(address).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    let length = if method == "GET" { "" } else { "Content-Length: 0\r\n" };
    write!(tls, "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{length}Connection: close\r\n\r\n").unwrap();
    let mut bytes = Vec::new();
    // The server may close without a TLS close_notify after a `Connection: close` answer.
    let _ = tls.read_to_end(&mut bytes);
    microcohort_tests::parse_response(&String::from_utf8_lossy(&bytes))
}

#[test]
fn the_server_serves_https_itself_and_its_cookies_are_secure() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(data) = TestData::new(Backend::Sqlite) else { return };
    program_under_way(SERVER, data.path(), 10, &["c1"]);
    let certificate = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certificate.cert.pem()).unwrap();
    std::fs::write(&key, certificate.signing_key.serialize_pem()).unwrap();

    // A key that does not exist is named before anything listens.
    let missing = microcohort_tests::server_command(SERVER, data.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            "/nonexistent.pem",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--tls-key"), "{missing:?}");

    let mut child = microcohort_tests::server_command(SERVER, data.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert", cert.to_str().unwrap(), "--tls-key"])
        .arg(&key)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address: std::net::SocketAddr =
        line.trim().strip_prefix("listening on https://").unwrap_or_else(|| panic!("{line}")).parse().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate.cert.der().clone()).unwrap();

    let (status, _, body) = https_request(&roots, address, "GET", "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok"));
    let base = format!("https://localhost:{}", address.port());
    let link = admin(SERVER, data.path(), &["dashboard-link", "--program", "p1", "--base-url", &base]);
    let (status, headers, _) = https_request(&roots, address, "POST", link.strip_prefix(&base).unwrap());
    assert_eq!(status, 303, "{headers:?}");
    let cookie = headers.get("set-cookie").cloned().unwrap_or_default();
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
    // Plain HTTP on the HTTPS port gets no HTTP answer (the server may close before the request
    // is even written).
    let mut plain = std::net::TcpStream::connect(address).unwrap();
    plain.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let _ = std::io::Write::write_all(&mut plain, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&answer));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_programs_cohort_size_and_feedback_window_are_the_operators_choice() {
    let Some(data) = TestData::new(Backend::Sqlite) else { return };
    let start = (chrono::Utc::now().date_naive() - chrono::Days::new(10)).to_string();
    let create = |extra: &[&str]| {
        let mut args = vec!["admin", "create-program", "--id", "p1", "--title", "Small", "--start", &start];
        args.extend(["--time-zone", "UTC"]);
        args.extend(extra);
        microcohort_tests::server_command(SERVER, data.path()).args(&args).output().unwrap()
    };
    let refused = create(&["--cohort-size", "5..40"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cohort_size"), "{refused:?}");
    assert!(create(&["--cohort-size", "1..2", "--feedback-window-hours", "24"]).status.success());
    admin(SERVER, data.path(), &["create-cohort", "--id", "c1", "--program", "p1", "--title", "Pair"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let invite = |name: &str| admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", name]);
    let (ada, ben) = (device(), device());
    ada.join_server(&server.url(), &invite("Ada"), "phone", "UTC").unwrap();
    ben.join_server(&server.url(), &invite("Ben"), "phone", "UTC").unwrap();
    let err = device().join_server(&server.url(), &invite("Cy"), "phone", "UTC").unwrap_err();
    assert!(matches!(&err, Error::Server { message, .. } if message.contains("full")), "{err:?}");

    // The window closes 24 h after the critique starts, on every device.
    let week = ada.today().unwrap().position.week.unwrap();
    let closes = ada.feedback_window(week).unwrap().closes_at.expect("a week with a critique");
    let blueprint = microcohort_core::domain::blueprint::Blueprint {
        feedback_window_hours: 24,
        ..microcohort_core::domain::blueprint::Blueprint::default_90_days(start.parse().unwrap(), chrono_tz::UTC)
    };
    assert_eq!(Some(closes), blueprint.feedback_closes_at(week));
    assert_ne!(
        Some(closes),
        microcohort_core::domain::blueprint::Blueprint::default_90_days(start.parse().unwrap(), chrono_tz::UTC)
            .feedback_closes_at(week),
        "not the default 48 h"
    );
}

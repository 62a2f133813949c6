//! What a device is told when it cannot talk to its server as it should, against real servers:
//! a mistyped address is an input error naming `server_url` (never "offline", never retried), a
//! TLS failure is its own case with its cause, a refusal speaks words and no HTTP codes, and a
//! server that moved to a new address is followed without losing the device's sign-in.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;

use microcohort_core::domain::DomainError;
use microcohort_core::{Client, Error, SystemClock};
use microcohort_tests::{Backend, ServerProcess, TestData, admin, join_device, program_under_way};

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

fn device() -> Client {
    Client::open_in_memory(Arc::new(SystemClock)).expect("open a device")
}

fn invite(data: &TestData, name: &str) -> String {
    admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--role", "learner", "--name", name])
}

/// The problem reported for `server_url`, or a panic naming what came instead.
fn address_problem(result: microcohort_core::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::Domain(DomainError::InvalidField { field, problem })) if field == "server_url" => problem,
        other => panic!("expected an invalid server_url, got {other:?}"),
    }
}

fn has_http_code(text: &str) -> bool {
    ["400", "401", "403", "404", "405", "409", "413", "429", "500"].iter().any(|code| text.contains(code))
}

#[test]
fn a_mistyped_address_is_an_input_error_and_nothing_is_written() {
    let data = TestData::new(Backend::Sqlite).expect("sqlite");
    program_under_way(SERVER, data.path(), 3, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let code = invite(&data, "Ada");
    let phone = device();
    let bare = server.url().trim_start_matches("http://").to_owned();
    assert!(address_problem(phone.join_server(&bare, &code, "phone", "UTC")).contains("https://"));
    address_problem(phone.join_server(&format!("ftp://{bare}"), &code, "phone", "UTC"));
    address_problem(phone.join_server("", &code, "phone", "UTC"));
    // A path where no sync server answers: the address is wrong, said in words.
    let wrong_path = address_problem(phone.join_server(&format!("{}/wrong", server.url()), &code, "phone", "UTC"));
    assert!(wrong_path.contains("check the server address") && !has_http_code(&wrong_path), "{wrong_path}");
    address_problem(phone.link_device_with_code(&bare, "ABCD-EFGH", "phone", "UTC"));
    assert!(matches!(phone.my_user_id(), Err(Error::NotInCohort)), "nothing written");
    // The invite was not used up by any of it.
    phone.join_server(&format!(" {}/ ", server.url()), &code, "phone", "UTC").expect("the right address joins");
}

#[test]
fn a_refusal_speaks_words_not_status_codes() {
    let data = TestData::new(Backend::Sqlite).expect("sqlite");
    program_under_way(SERVER, data.path(), 3, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let ada = join_device(&server, &invite(&data, "Ada"));
    let err = ada.sign_out_device("no-such-device").unwrap_err();
    assert!(matches!(err, Error::Server { status: 404, .. }), "{err:?}");
    let text = err.to_string();
    assert!(!has_http_code(&text) && text.len() > "the sync server refused the request: ".len(), "{text}");
    let used = device().join_server(&server.url(), "NOT-A-REAL-CODE", "phone", "UTC").unwrap_err();
    assert!(!has_http_code(&used.to_string()), "{used}");
}

#[test]
fn https_to_a_plain_server_is_a_tls_failure() {
    let data = TestData::new(Backend::Sqlite).expect("sqlite");
    program_under_way(SERVER, data.path(), 3, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let phone = device();
    let https = server.url().replace("http://", "https://");
    let err = phone.join_server(&https, &invite(&data, "Ada"), "phone", "UTC").unwrap_err();
    assert!(matches!(&err, Error::Tls(cause) if !cause.is_empty()), "{err:?}");
    assert!(matches!(phone.my_user_id(), Err(Error::NotInCohort)));
}

#[test]
fn an_untrusted_certificate_is_a_tls_failure_naming_the_certificate_and_is_not_retried() {
    let server = UntrustedTlsServer::start();
    let phone = device();
    let err = phone.join_server(&server.url, "ABCD-EFGH-IJKL", "phone", "UTC").unwrap_err();
    let Error::Tls(cause) = &err else { panic!("{err:?}") };
    assert!(cause.to_lowercase().contains("certificate"), "{cause}");

    // A linked device whose server now shows an untrusted certificate (its address now leads
    // elsewhere): sync_with_retry gives up at once with the TLS failure instead of retrying it
    // as "offline".
    let data = TestData::new(Backend::Sqlite).expect("sqlite");
    program_under_way(SERVER, data.path(), 3, &["c1"]);
    let real = ServerProcess::start(SERVER, data.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ada.db");
    {
        let ada = Client::open(&file, Arc::new(SystemClock)).unwrap();
        ada.join_server(&real.url(), &invite(&data, "Ada"), "phone", "UTC").unwrap();
        let moved = ada.change_server(&server.url).unwrap_err();
        assert!(matches!(moved, Error::Tls(_)), "following needs a trusted server: {moved:?}");
    }
    let db = rusqlite::Connection::open(&file).unwrap();
    db.execute("UPDATE server_link SET server_url = ?1", [&server.url]).unwrap();
    drop(db);
    let ada = Client::open(&file, Arc::new(SystemClock)).unwrap();
    let before = server.handshakes();
    let err = ada.sync_with_retry(5).unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    assert_eq!(server.handshakes(), before + 1, "tried once, not retried");
    let status = ada.sync_status().unwrap();
    assert!(status.last_error.is_some_and(|e| e.contains("secure connection")), "the status says why");
}

#[test]
fn a_device_follows_its_server_to_a_new_address_and_not_to_another_server() {
    let data = TestData::new(Backend::Sqlite).expect("sqlite");
    program_under_way(SERVER, data.path(), 3, &["c1"]);
    let mut server = ServerProcess::start(SERVER, data.path(), &[]);
    let ada = join_device(&server, &invite(&data, "Ada"));
    ada.sync_now().unwrap();

    // Another server, which does not know her device: nothing changes.
    let other_data = TestData::new(Backend::Sqlite).expect("sqlite");
    program_under_way(SERVER, other_data.path(), 3, &["c1"]);
    let other = ServerProcess::start(SERVER, other_data.path(), &[]);
    assert!(address_problem(ada.change_server(&other.url())).contains("sign out"));
    assert_eq!(ada.sync_status().unwrap().server_url.as_deref(), Some(server.url().as_str()));
    address_problem(ada.change_server("not a url"));

    // The operator moves the server to a new port: the device follows and keeps syncing.
    server.terminate();
    let moved = ServerProcess::start(SERVER, data.path(), &[]);
    assert!(matches!(ada.sync_now(), Err(Error::Network(_))), "the old address is gone");
    ada.change_server(&moved.url()).expect("the same server at its new address");
    assert_eq!(ada.sync_status().unwrap().server_url.as_deref(), Some(moved.url().as_str()));
    let outcome = ada.sync_now().expect("sync at the new address");
    assert!(outcome.rejected.is_empty(), "{outcome:?}");
}

/// A TLS server on loopback whose self-signed certificate no device trusts. It counts the
/// handshakes it was offered.
struct UntrustedTlsServer {
    url: String,
    handshakes: Arc<std::sync::atomic::AtomicUsize>,
}

impl UntrustedTlsServer {
    fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("a certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .expect("a server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("https://localhost:{}", listener.local_addr().unwrap().port());
        let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = handshakes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Ok(mut connection) = rustls::ServerConnection::new(config.clone()) else { continue };
                let mut tls = rustls::Stream::new(&mut connection, &mut stream);
                let mut buf = [0u8; 512];
                let _ = tls.read(&mut buf);
            }
        });
        Self { url, handshakes }
    }

    fn handshakes(&self) -> usize {
        self.handshakes.load(std::sync::atomic::Ordering::SeqCst)
    }
}

//! A device syncs over HTTPS with the server's own TLS: the certificate chains to a CA the
//! device's platform trusts (here through `SSL_CERT_FILE`, which the platform verifier reads on
//! Linux, as a phone reads its trust store), two phones share work through it, and an address
//! the certificate does not name is a TLS failure.
//!
//! One test in its own binary: the trust store is read once per process.

use std::sync::Arc;

use chrono::Utc;
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::{Client, ManualClock};
use microcohort_tests::{Backend, ServerProcess, TestData, admin, program_under_way};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

/// A test CA and a `localhost` certificate it issued: (CA PEM, leaf chain PEM, leaf key PEM).
fn test_pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Microcohort test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    (ca_cert.pem(), format!("{}{}", leaf.pem(), ca_cert.pem()), leaf_key.serialize_pem())
}

#[test]
fn phones_sync_over_https_with_a_certificate_their_platform_trusts() {
    let Some(data) = TestData::new(Backend::Sqlite) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (ca, chain, key) = test_pki();
    let (ca_file, chain_file, key_file) =
        (dir.path().join("ca.pem"), dir.path().join("chain.pem"), dir.path().join("key.pem"));
    std::fs::write(&ca_file, ca).unwrap();
    std::fs::write(&chain_file, chain).unwrap();
    std::fs::write(&key_file, key).unwrap();
    // SAFETY: the only test in this binary, before any thread that reads the environment starts.
    unsafe { std::env::set_var("SSL_CERT_FILE", &ca_file) };

    program_under_way(SERVER, data.path(), 5, &["c1"]);
    let tls = ["--tls-cert", chain_file.to_str().unwrap(), "--tls-key", key_file.to_str().unwrap()];
    let server = ServerProcess::start(SERVER, data.path(), &tls);
    assert!(server.url().starts_with("https://"), "{}", server.url());

    let clock = ManualClock::new(Utc::now());
    let ada = Client::open_in_memory(Arc::new(clock.clone())).unwrap();
    let ben = Client::open_in_memory(Arc::new(clock.clone())).unwrap();
    for (phone, name) in [(&ada, "Ada"), (&ben, "Ben")] {
        let invite = admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", name]);
        phone.join_server(&server.url(), &invite, "phone", "UTC").expect("join over HTTPS");
    }
    let session = ada.start_practice(None).unwrap();
    clock.advance(chrono::Duration::minutes(12));
    let log = ada.finish_practice(session.id, &PracticeOutcome { duration_secs: Some(700), ..Default::default() });
    ada.share_practice(log.unwrap().id, "Over TLS", "Shared through HTTPS").unwrap();
    let sent = ada.sync_now().expect("sync over HTTPS");
    assert_eq!(sent.logs_acked, 1);
    ben.sync_now().unwrap();
    let week = ben.today().unwrap().position.week.unwrap();
    assert!(ben.week_rows(week).unwrap().submissions.iter().any(|s| s.title == "Over TLS"));

    // The address by IP is not the name in the certificate: a TLS failure, not a retry.
    let by_ip = format!("https://{}", server.address);
    let stranger = Client::open_in_memory(Arc::new(clock.clone())).unwrap();
    let invite = admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", "Cy"]);
    let err = stranger.join_server(&by_ip, &invite, "phone", "UTC").unwrap_err();
    assert!(matches!(&err, microcohort_core::Error::Tls(m) if m.contains("certificate")), "{err:?}");
}

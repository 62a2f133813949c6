//! The device database refuses what it cannot read safely and never writes to it.

use std::sync::Arc;

use microcohort_core::{Client, Error, SystemClock};

#[test]
fn a_database_from_a_newer_app_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;").unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Client::open(&path, Arc::new(SystemClock)).err().expect("refused");
    assert!(matches!(err, Error::SchemaTooNew { found: 99, .. }), "{err}");
    assert!(err.to_string().contains("update the app"));
    assert_eq!(std::fs::read(&path).unwrap(), before, "not a byte changed");
    assert!(!dir.path().join("device.sqlite-wal").exists());
}

#[test]
fn a_file_that_is_not_a_database_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are my notes, not a database, and long enough to have a header").unwrap();
    let err = Client::open(&path, Arc::new(SystemClock)).err().expect("refused");
    assert!(matches!(err, Error::NotADatabase(ref name) if name.ends_with("notes.txt")), "{err}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "these are my notes, not a database, and long enough to have a header"
    );
}

#[test]
fn a_reopened_database_keeps_everything_and_is_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.sqlite");
    let logged = {
        let client = Client::open(&path, Arc::new(SystemClock)).unwrap();
        client.import_default_prompt_pack().unwrap();
        let enrollment = microcohort_core::Enrollment {
            program_id: "p".into(),
            program_title: "Program".into(),
            pack_id: "everyday-leadership".into(),
            blueprint: microcohort_core::domain::blueprint::Blueprint::default_90_days(
                chrono::Utc::now().date_naive(),
                chrono_tz::UTC,
            ),
            learner_time_zone: "UTC".into(),
        };
        client.enroll(enrollment).unwrap();
        let session = client.start_practice(None).unwrap();
        let outcome =
            microcohort_core::domain::practice::PracticeOutcome { duration_secs: Some(600), ..Default::default() };
        client.finish_practice(session.id, &outcome).unwrap()
    };
    let client = Client::open(&path, Arc::new(SystemClock)).unwrap();
    assert_eq!(client.practice_logs().unwrap(), vec![logged]);
    assert_eq!(client.integrity_check().unwrap(), "ok");
}

#[test]
fn a_database_file_has_one_client_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.sqlite");
    let first = Client::open(&path, Arc::new(SystemClock)).unwrap();
    first.import_default_prompt_pack().unwrap();
    // However the path is spelled, a second client on the same file is refused, typed.
    let same = dir.path().join(".").join("device.sqlite");
    for second in [path.clone(), same] {
        let err = Client::open(&second, Arc::new(SystemClock)).err().expect("refused");
        assert!(matches!(&err, Error::AlreadyOpen(p) if p.ends_with("device.sqlite")), "{err}");
        assert!(err.to_string().contains("use the client that has it open"), "{err}");
    }
    // Another file is another database.
    Client::open(dir.path().join("other.sqlite"), Arc::new(SystemClock)).unwrap();
    drop(first);
    let again = Client::open(&path, Arc::new(SystemClock)).unwrap();
    assert_eq!(again.integrity_check().unwrap(), "ok");
}

#[test]
fn an_empty_path_is_refused_instead_of_a_temporary_database() {
    let err = Client::open("", Arc::new(SystemClock)).err().expect("refused");
    assert!(err.to_string().contains("path"), "{err}");
}

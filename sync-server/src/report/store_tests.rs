use std::path::Path;

use microcohort_core::sync::wire::WireLog;
use rusqlite::{Connection, params};

use super::*;
use crate::admin::{NewProgram, create_program};
use crate::report::sqlite_sql::SqliteSql;
use crate::storage::Storage;
use crate::storage::sqlite::SqliteStorage;

fn seeded(dir: &Path) -> (ReportStore, Connection) {
    let path = dir.join("microcohort.sqlite");
    let storage = SqliteStorage::open(&path).unwrap();
    let program = NewProgram {
        id: "p1",
        title: "Everyday Leadership",
        start_date: &chrono::Utc::now().date_naive().to_string(),
        time_zone: "UTC",
        critique_weekday: None,
        critique_time: None,
        feedback_window_hours: None,
        cohort_size: None,
        pack_path: None,
    };
    create_program(&storage, &program).unwrap();
    storage.create_cohort("c1", "p1", "Cohort 1").unwrap();
    let reports = ReportStore::new(Box::new(SqliteSql::open(&path).unwrap()), std::sync::Arc::new(storage));
    (reports, Connection::open(&path).unwrap())
}

fn log(id: &str, status: &str, corrects: Option<&str>) -> String {
    serde_json::to_string(&WireLog {
        id: id.into(),
        user_id: "u1".into(),
        program_id: "p1".into(),
        pack_id: "everyday-leadership".into(),
        pack_version: 1,
        prompt_id: "w00-d1".into(),
        started_at: 0,
        time_zone: "UTC".into(),
        local_date: chrono::Utc::now().date_naive().to_string(),
        status: status.into(),
        duration_secs: Some(600),
        transfer_kind: None,
        corrects: corrects.map(Into::into),
        recorded_at: 0,
        sealed: None,
        late_arrival: false,
    })
    .unwrap()
}

#[test]
fn a_sign_in_link_works_once_and_not_after_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let (reports, conn) = seeded(dir.path());
    assert!(matches!(reports.create_sign_in_link("nope"), Err(ApiError::NotFound(_))));

    let code = reports.create_sign_in_link("p1").unwrap();
    let (session, viewer) = reports.redeem_sign_in_link(&code).unwrap();
    assert_eq!(viewer, Viewer { program_id: "p1".into(), facilitator: None });
    assert_eq!(reports.session(&session).unwrap(), Some(viewer));
    assert!(matches!(reports.redeem_sign_in_link(&code), Err(ApiError::Unauthorized)));
    assert_eq!(reports.session("forged").unwrap(), None);

    let old = reports.create_sign_in_link("p1").unwrap();
    conn.execute(
        "UPDATE dashboard_links SET created_at = created_at - ?1 WHERE used_at IS NULL",
        [(LINK_HOURS + 1) * 3_600_000],
    )
    .unwrap();
    assert!(matches!(reports.redeem_sign_in_link(&old), Err(ApiError::Unauthorized)));
}

#[test]
fn refreshing_reads_each_log_once_and_a_correction_voids_the_log_it_corrects() {
    let dir = tempfile::tempdir().unwrap();
    let (reports, conn) = seeded(dir.path());
    conn.execute(
        "INSERT INTO members (cohort_id, user_id, display_name, role, time_zone, joined_on) VALUES ('c1', 'u1', 'Ana', 'learner', 'UTC', '2026-01-01')",
        [],
    )
    .unwrap();
    let insert = |seq: i64, id: &str, body: String| {
        conn.execute(
            "INSERT INTO practice_logs (seq, id, user_id, cohort_id, body, received_at) VALUES (?1, ?2, 'u1', 'c1', ?3, 0)",
            params![seq, id, body],
        )
        .unwrap();
    };
    insert(1, "a", log("a", "completed", None));
    insert(2, "b", log("b", "completed", None));
    assert_eq!(reports.refresh().unwrap(), 2);
    assert_eq!(reports.refresh().unwrap(), 0, "nothing new");
    let lead = Viewer { program_id: "p1".into(), facilitator: None };
    let days = |reports: &ReportStore| reports.program_facts(&lead).unwrap().cohorts[0].activity.clone();
    assert_eq!(days(&reports)[0].days[0].practices, 2);

    // Log b is corrected to abandoned: one practice left that day.
    insert(3, "c", log("c", "abandoned", Some("b")));
    assert_eq!(reports.refresh().unwrap(), 1);
    assert_eq!(days(&reports)[0].days[0].practices, 1);
    let stored: i64 = conn.query_row("SELECT COUNT(*) FROM report_logs", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, 3);
}

#[test]
fn a_facilitator_sees_only_the_cohorts_they_facilitate() {
    let dir = tempfile::tempdir().unwrap();
    let (reports, conn) = seeded(dir.path());
    conn.execute("INSERT INTO cohorts (id, program_id, title, created_at) VALUES ('c2', 'p1', 'Cohort 2', 0)", [])
        .unwrap();
    conn.execute(
        "INSERT INTO members (cohort_id, user_id, display_name, role, time_zone, joined_on) VALUES ('c2', 'f2', 'Gus', 'facilitator', 'UTC', '2026-01-01')",
        [],
    )
    .unwrap();
    let theirs = reports.program_facts(&Viewer { program_id: "p1".into(), facilitator: Some("f2".into()) }).unwrap();
    assert_eq!(theirs.cohorts.iter().map(|c| c.cohort_id.as_str()).collect::<Vec<_>>(), vec!["c2"]);
    let lead = reports.program_facts(&Viewer { program_id: "p1".into(), facilitator: None }).unwrap();
    assert_eq!(lead.cohorts.len(), 2);
    assert_eq!(lead.facilitators, vec![("f2".to_owned(), "Gus".to_owned(), vec!["c2".to_owned()])]);
}

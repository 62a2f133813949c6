//! A process logging practices is killed with SIGKILL at random moments, again and again. After
//! reopening, every practice whose `finish_practice` call returned must be there, the derived
//! per-day summary must agree with the log, and SQLite must report the file healthy.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::{Client, Enrollment, SystemClock};
use rand::Rng;

const KILLS: usize = 25;

/// A database enrolled in a program that starts today, for the writer programs.
fn prepared_database(dir: &std::path::Path) -> std::path::PathBuf {
    let db = dir.join("device.sqlite");
    let client = Client::open(&db, Arc::new(SystemClock)).unwrap();
    client.import_default_prompt_pack().unwrap();
    client
        .enroll(Enrollment {
            program_id: "crash-test".into(),
            program_title: "Crash test".into(),
            pack_id: "everyday-leadership".into(),
            blueprint: Blueprint::default_90_days(chrono::Utc::now().date_naive(), chrono_tz::UTC),
            learner_time_zone: "UTC".into(),
        })
        .unwrap();
    client.join_cohort("crash-cohort", "u00").unwrap();
    db
}

/// Runs `program` on `db` again and again, killing it with SIGKILL after a random moment, and
/// returns every line it printed in full (each a promise that the write before it returned).
fn kill_repeatedly(program: &str, db: &std::path::Path) -> HashSet<String> {
    let mut confirmed = HashSet::new();
    let mut rng = rand::rng();
    for round in 0..KILLS {
        let mut child = Command::new(program).arg(db).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut ids = Vec::new();
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            // A line cut short by the kill has no newline and promised nothing.
            while lines.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
                ids.push(line.trim().to_owned());
                line.clear();
            }
            ids
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(30..250)));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        let ids = reader.join().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(stderr.is_empty(), "round {round}: writer failed: {stderr}");
        assert!(!status.success(), "round {round}: the writer must have been killed");
        confirmed.extend(ids);
    }
    assert!(confirmed.len() > KILLS, "the writer made progress between kills ({} writes)", confirmed.len());
    eprintln!("{program}: {} writes confirmed across {KILLS} kills", confirmed.len());
    confirmed
}

#[test]
fn every_returned_practice_survives_repeated_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = prepared_database(dir.path());
    let confirmed = kill_repeatedly(env!("CARGO_BIN_EXE_practice-writer"), &db);

    let client = Client::open(&db, Arc::new(SystemClock)).unwrap();
    assert_eq!(client.integrity_check().unwrap(), "ok");
    let stored: HashSet<String> = client.practice_logs().unwrap().iter().map(|log| log.id.to_string()).collect();
    let lost: Vec<_> = confirmed.difference(&stored).collect();
    assert!(lost.is_empty(), "{} returned practices were lost: {lost:?}", lost.len());

    // The per-day summary, written in the same transactions, agrees with the log itself.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let summary: (i64, i64) = conn
        .query_row("SELECT COALESCE(SUM(practices), 0), COALESCE(SUM(seconds), 0) FROM daily_activity", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let logged: (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(duration_secs), 0) FROM practice_logs WHERE status = 'completed'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(summary, logged);
    let outbox: i64 = conn.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0)).unwrap();
    assert_eq!(outbox, logged.0, "every log has its upload intent");
}

#[test]
fn every_shared_entry_survives_sigkill_during_document_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = prepared_database(dir.path());
    // 31 chunks already: the writer's second share crosses the compaction threshold, so the kills
    // land around compactions from the start.
    {
        let client = Client::open(&db, Arc::new(SystemClock)).unwrap();
        for n in 0..31 {
            client.share_work(microcohort_core::WorkKind::Practice, &format!("Before {n}"), "Body", None, &[]).unwrap();
        }
    }
    let confirmed = kill_repeatedly(env!("CARGO_BIN_EXE_submission-writer"), &db);

    let client = Client::open(&db, Arc::new(SystemClock)).unwrap();
    assert_eq!(client.integrity_check().unwrap(), "ok");
    let stored: HashSet<String> = client.week_rows(0).unwrap().submissions.into_iter().map(|s| s.meta.key).collect();
    let lost: Vec<_> = confirmed.difference(&stored).collect();
    assert!(lost.is_empty(), "{} shared entries were lost: {lost:?}", lost.len());
    // Compactions did happen while the writer was being killed.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let snapshots: i64 =
        conn.query_row("SELECT COUNT(*) FROM doc_chunks WHERE snapshot = 1", [], |r| r.get(0)).unwrap();
    assert!(snapshots >= 1, "{} writes but no compaction", confirmed.len());
    // The stored document and its projection agree after the crashes.
    client.rebuild_projections().unwrap();
    assert_eq!(client.week_rows(0).unwrap().submissions.len(), stored.len());
    // At most one write per kill can have committed without its line being read.
    assert!(stored.len() <= confirmed.len() + 31 + KILLS, "nothing was invented");
}

#[test]
fn a_device_killed_mid_sync_again_and_again_loses_and_duplicates_nothing() {
    use microcohort_tests::{ServerProcess, admin, program_under_way};
    const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");
    let data = tempfile::tempdir().unwrap();
    program_under_way(SERVER, data.path(), 45, &["c1"]);
    let learner_code = admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", "Ana"]);
    let facilitator_code = admin(SERVER, data.path(), &["add-facilitator", "--cohort", "c1", "--name", "Fay"]);
    // The writer's practices span weeks and arrive as it goes: all within a wide back-fill window.
    let server = ServerProcess::start(SERVER, data.path(), &["--backfill-days", "60"]);
    let device_dir = tempfile::tempdir().unwrap();
    let db = device_dir.path().join("device.sqlite");
    Client::open(&db, Arc::new(SystemClock))
        .unwrap()
        .join_server(&server.url(), &learner_code, "phone", "UTC")
        .unwrap();

    let confirmed = kill_repeatedly(env!("CARGO_BIN_EXE_sync-writer"), &db);

    // The device comes back for good and syncs; the facilitator too. The writer moved its clock a
    // day on every 40 practices (a day holds at most 48): both read on from its last one.
    let last = {
        let device = Client::open(&db, Arc::new(SystemClock)).unwrap();
        device.practice_history().unwrap().iter().map(|l| l.started_at).max().unwrap()
    };
    let clock = Arc::new(microcohort_core::ManualClock::new(last + chrono::Duration::minutes(30)));
    let device = Client::open(&db, clock.clone()).unwrap();
    assert_eq!(device.integrity_check().unwrap(), "ok");
    device.sync_with_retry(5).unwrap();
    let facilitator = Client::open_in_memory(clock).unwrap();
    facilitator.join_server(&server.url(), &facilitator_code, "tablet", "UTC").unwrap();
    facilitator.sync_with_retry(5).unwrap();

    let logged: HashSet<String> = device.practice_logs().unwrap().iter().map(|l| l.id.to_string()).collect();
    assert!(confirmed.is_subset(&logged), "the device kept every practice it confirmed");
    let relayed: Vec<String> = facilitator.cohort_practice_logs().unwrap().into_iter().map(|(id, ..)| id).collect();
    let unique: HashSet<String> = relayed.iter().cloned().collect();
    assert_eq!(unique.len(), relayed.len(), "no practice log arrived twice");
    assert_eq!(device.refused_practice_logs().unwrap(), vec![], "none refused");
    assert_eq!(unique, logged, "every practice log arrived");
    assert_eq!(device.sync_status().unwrap().pending_practice_logs, 0);
    let mut shares = 0;
    for week in 0..=device.today().unwrap().position.week.unwrap() {
        let shared = device.week_rows(week).unwrap();
        assert_eq!(facilitator.week_rows(week).unwrap(), shared, "week {week}");
        shares += shared.submissions.len();
    }
    assert!(shares >= confirmed.len());
}

/// Eight writers push one entry at a time as fast as the server takes them, so their writes are
/// grouped into shared transactions, and the server is killed with SIGKILL in the middle of the
/// burst, round after round. After every restart each change the server acknowledged is stored,
/// and every stored document loads.
#[test]
fn a_server_killed_during_a_burst_of_grouped_writes_loses_no_acknowledged_write() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use automerge::{ActorId, ChangeHash};
    use microcohort_core::docs::{DocId, genesis};
    use microcohort_core::sync::wire::{self, DocPull, DocPush, DocStatus, SyncRequest, SyncResponse};
    use microcohort_tests::forge::Forger;
    use microcohort_tests::{KeepAlive, ServerProcess, admin, program_under_way, raw_join, server_command};
    use serde_bytes::ByteBuf;
    const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");
    const WRITERS: usize = 8;
    const ROUNDS: usize = 6;
    const WEEK: &str = "week:c1:1";

    /// One round trip: the document's changes the server sends back, or nothing on any failure.
    fn sync(http: &mut KeepAlive, token: &str, known: &[ByteBuf], changes: Vec<Vec<u8>>) -> Option<SyncResponse> {
        let push = DocPush {
            doc_id: WEEK.into(),
            known_server_heads: known.to_vec(),
            changes: changes.into_iter().map(ByteBuf::from).collect(),
            client_heads: vec![],
        };
        let body = wire::encode(&SyncRequest { docs: vec![push], ..Default::default() });
        let (status, bytes) = http.post("/v1/sync", Some(token), &body).ok()?;
        (status == 200).then(|| wire::decode(&bytes).ok()).flatten()
    }

    /// The week as a fetch from nothing delivers it (this client does not take snapshots).
    fn week(pull: &DocPull) -> Forger {
        Forger::from_changes(genesis(&DocId::week("c1", 1)), &pull.changes)
    }

    let data = tempfile::tempdir().unwrap();
    program_under_way(SERVER, data.path(), 8, &["c1"]);
    let codes: Vec<String> = (0..WRITERS)
        .map(|n| admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", &format!("W{n}")]))
        .collect();
    let mut server =
        ServerProcess::start(SERVER, data.path(), &["--rate-burst", "100000", "--rate-per-second", "100000"]);
    let writers: Vec<_> = codes.iter().map(|code| raw_join(&server, code)).collect();
    let acknowledged: Mutex<HashSet<ChangeHash>> = Mutex::default();
    let mut rng = rand::rng();
    for round in 0..ROUNDS {
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for writer in &writers {
                let (stop, acknowledged, address) = (&stop, &acknowledged, server.address);
                scope.spawn(move || {
                    let Ok(mut http) = KeepAlive::connect(address) else { return };
                    let Some(fetched) = sync(&mut http, &writer.device_token, &[], vec![]) else { return };
                    let mut forger = week(&fetched.docs[0]);
                    // A new actor each round: a change stored but never acknowledged is not its.
                    let actor = ActorId::random();
                    let mut known = fetched.docs[0].server_heads.clone();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("{}/r{round}-{n}", writer.user_id);
                        let change = forger.entry(&actor, "feedback", &key);
                        // Into a week nobody has written yet, the week's genesis goes first.
                        let mut changes: Vec<Vec<u8>> = match known.is_empty() {
                            true => genesis(&DocId::week("c1", 1))
                                .get_changes(&[])
                                .iter()
                                .map(|c| c.raw_bytes().to_vec())
                                .collect(),
                            false => Vec::new(),
                        };
                        changes.push(change.raw_bytes().to_vec());
                        match sync(&mut http, &writer.device_token, &known, changes) {
                            Some(answer) if answer.docs[0].status == DocStatus::Ok => {
                                // What the server holds now: the other writers' changes need
                                // not come back to this one.
                                known = answer.docs[0].server_heads.clone();
                                acknowledged.lock().unwrap().insert(change.hash());
                                forger.keep(&change);
                                n += 1;
                            }
                            _ => return,
                        }
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(200..700)));
            server.kill();
            stop.store(true, Ordering::Relaxed);
        });
        server.restart();
        let mut http = KeepAlive::connect(server.address).unwrap();
        let fetched = sync(&mut http, &writers[0].device_token, &[], vec![]).expect("the restarted server answers");
        let stored: HashSet<ChangeHash> =
            week(&fetched.docs[0]).doc.get_changes(&[]).into_iter().map(|c| c.hash()).collect();
        let acknowledged = acknowledged.lock().unwrap();
        let lost: Vec<_> = acknowledged.difference(&stored).collect();
        assert!(lost.is_empty(), "round {round}: {} acknowledged changes were lost", lost.len());
        assert!(acknowledged.len() > round * WRITERS, "round {round}: the writers made progress");
    }
    let check = server_command(SERVER, data.path()).args(["admin", "check"]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    eprintln!("{} acknowledged writes across {ROUNDS} kills", acknowledged.lock().unwrap().len());
}

/// Another process holding a device database keeps this one out, with a typed error, until it
/// ends (even by SIGKILL): two owners could hide or lose each other's entries.
#[test]
fn a_database_open_in_another_process_is_refused_until_that_process_ends() {
    let dir = tempfile::tempdir().unwrap();
    let db = prepared_database(dir.path());
    let mut writer = Command::new(env!("CARGO_BIN_EXE_practice-writer"))
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the writer");
    let mut lines = BufReader::new(writer.stdout.take().unwrap()).lines();
    lines.next().expect("the writer logged a practice").unwrap();
    let err = Client::open(&db, Arc::new(SystemClock)).err().expect("refused while the writer has it");
    assert!(matches!(err, microcohort_core::Error::OpenInAnotherProcess(_)), "{err}");
    writer.kill().unwrap();
    writer.wait().unwrap();
    let client = Client::open(&db, Arc::new(SystemClock)).expect("free once the writer is gone");
    assert_eq!(client.integrity_check().unwrap(), "ok");
}

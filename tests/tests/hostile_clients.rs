//! A member's client that holds the automerge library and a learner's token, against a real
//! server: every malformed history, oversized or repeated request, slow connection and guessing
//! spree is refused with its reason, nothing of it is stored, honest devices keep syncing to
//! identical documents, every stored document loads and survives save and load, and `/healthz`
//! answers throughout.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use automerge::legacy::{ElementId, Key, OpId, OpType, SortedVec};
use automerge::transaction::Transactable;
use automerge::{ActorId, Change, ChangeHash, ROOT, ReadDoc};
use microcohort_core::docs::{DocId, genesis, genesis_actor};
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::sync::wire::{self, DocPush, DocStatus, JoinRequest, SyncRequest, SyncResponse, WireLog};
use microcohort_core::{Client, FeedbackInput};
use microcohort_tests::forge::{
    Forger, bad_checksum, compressed, declaring_ops, elem, huge_value, op_id, rewrite, run, with_seq, with_start_op,
};
use microcohort_tests::{
    ServerProcess, TestData, admin, connect_from, join_device, program_under_way, raw_get, raw_join, raw_post,
    raw_post_from, server_command,
};
use serde_bytes::ByteBuf;

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");
const WEEK: &str = "week:c1:1";

microcohort_tests::on_both_backends!(
    every_malformed_history_is_refused_with_its_reason_and_honest_devices_keep_syncing,
    oversized_repeated_and_garbled_requests_are_refused_before_anything_is_written,
    guessing_secrets_is_slowed_per_address_and_others_are_unaffected,
);

fn invite(data: &Path, name: &str) -> String {
    admin(SERVER, data, &["invite", "--cohort", "c1", "--name", name])
}

fn raw_sync(server: &ServerProcess, token: &str, request: &SyncRequest) -> (u16, String, Option<SyncResponse>) {
    let (status, _, bytes) = raw_post(server.address, "/v1/sync", Some(token), &wire::encode(request));
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (status, text, (status == 200).then(|| wire::decode(&bytes).expect("a sync response")))
}

fn push(known: &[ChangeHash], changes: Vec<Vec<u8>>) -> SyncRequest {
    SyncRequest {
        docs: vec![DocPush {
            doc_id: WEEK.into(),
            known_server_heads: known.iter().map(|h| ByteBuf::from(h.0.to_vec())).collect(),
            changes: changes.into_iter().map(ByteBuf::from).collect(),
            client_heads: vec![],
        }],
        ..Default::default()
    }
}

/// Polls `/healthz` every 20 ms from its own address until dropped; counts the answers that were
/// not a prompt 200.
struct HealthWatch {
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
    checks: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HealthWatch {
    fn start(server: &ServerProcess) -> Self {
        let (stop, failures, checks) = (Arc::new(AtomicBool::new(false)), Arc::default(), Arc::default());
        let address = server.address;
        let (s, f, c): (Arc<AtomicBool>, Arc<AtomicUsize>, Arc<AtomicUsize>) =
            (stop.clone(), Arc::clone(&failures), Arc::clone(&checks));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let began = Instant::now();
                let healthy = connect_from(Some(IpAddr::from([127, 0, 0, 9])), address)
                    .and_then(|mut stream| {
                        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
                        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
                        let mut answer = String::new();
                        stream.read_to_string(&mut answer)?;
                        Ok(answer.starts_with("HTTP/1.1 200"))
                    })
                    .unwrap_or(false);
                if !healthy || began.elapsed() > Duration::from_secs(1) {
                    f.fetch_add(1, Ordering::Relaxed);
                }
                c.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { stop, failures, checks, thread: Some(thread) }
    }

    /// Stops and asserts every check was answered at once.
    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("health watch");
        }
        let (failures, checks) = (self.failures.load(Ordering::Relaxed), self.checks.load(Ordering::Relaxed));
        assert!(checks > 0, "no health check ran");
        assert_eq!(failures, 0, "{failures} of {checks} health checks were not answered promptly");
    }
}

/// Two honest learners who share, review and sync, and an attacker who joined with a learner's
/// invite and talks to the server directly.
struct Cohort {
    data: TestData,
    server: ServerProcess,
    honest: Vec<Client>,
    token: String,
    user: String,
}

fn cohort(backend: microcohort_tests::Backend) -> Option<Cohort> {
    let data = TestData::new(backend)?;
    let start = program_under_way(SERVER, data.path(), 8, &["c1"]);
    let codes = [invite(data.path(), "Ana"), invite(data.path(), "Ben"), invite(data.path(), "Mallory")];
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let honest: Vec<Client> = codes[..2].iter().map(|code| join_device(&server, code)).collect();
    let attacker = raw_join(&server, &codes[2]);
    // A member since the program began, like the others: she may co-write week 1's synthesis.
    admin(SERVER, data.path(), &["set-joined-on", "--cohort", "c1", "--user", &attacker.user_id, "--date", &start]);
    let cohort = Cohort { data, server, honest, token: attacker.device_token, user: attacker.user_id };
    cohort.honest_work("before");
    Some(cohort)
}

impl Cohort {
    /// Each honest learner shares a practice and reviews the other's; everyone syncs twice.
    fn honest_work(&self, label: &str) {
        let mut shared = Vec::new();
        for client in &self.honest {
            let session = client.start_practice(None).unwrap();
            let outcome = PracticeOutcome { duration_secs: Some(600), ..Default::default() };
            let log = client.finish_practice(session.id, &outcome).unwrap();
            shared.push(client.share_practice(log.id, label, "what I tried").unwrap());
            client.sync_now().unwrap();
        }
        for (client, theirs) in self.honest.iter().zip(shared.iter().rev()) {
            client.sync_now().unwrap();
            let input = FeedbackInput { body: format!("{label}: name the feeling"), ..Default::default() };
            client.give_feedback(theirs, &input).unwrap();
            client.sync_now().unwrap();
        }
        for client in &self.honest {
            let outcome = client.sync_now().unwrap();
            assert!(outcome.rejected.is_empty(), "an honest device was refused: {:?}", outcome.rejected);
        }
    }

    /// The attacker's copy of the week, and the heads the server holds.
    fn fetch(&self) -> (Forger, Vec<ChangeHash>) {
        let fetch =
            SyncRequest { docs: vec![DocPush { doc_id: WEEK.into(), ..Default::default() }], ..Default::default() };
        let (status, text, response) = raw_sync(&self.server, &self.token, &fetch);
        assert_eq!(status, 200, "{text}");
        let pull = &response.unwrap().docs[0];
        let heads = pull.server_heads.iter().map(|h| ChangeHash::try_from(h.as_slice()).unwrap()).collect();
        (Forger::from_changes(genesis(&DocId::week("c1", 1)), &pull.changes), heads)
    }

    /// Pushes changes; returns the document's status.
    fn push(&self, known: &[ChangeHash], changes: Vec<Vec<u8>>) -> DocStatus {
        let (status, text, response) = raw_sync(&self.server, &self.token, &push(known, changes));
        assert_eq!(status, 200, "{text}");
        response.unwrap().docs[0].status.clone()
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.user)
    }

    /// Every honest device holds the same week, and every stored document loads and survives
    /// save and load (`admin check`).
    fn assert_sound(&self) {
        for client in &self.honest {
            client.sync_now().unwrap();
        }
        let rows: Vec<_> = self.honest.iter().map(|c| c.week_rows(1).unwrap()).collect();
        assert_eq!(rows[0], rows[1], "honest devices hold different weeks");
        let heads: Vec<_> = self.honest.iter().map(|c| c.doc_heads(WEEK).unwrap()).collect();
        assert_eq!(heads[0], heads[1]);
        let output = server_command(SERVER, self.data.path()).args(["admin", "check"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "admin check: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains("every stored document loads"), "{stdout}");
    }
}

fn reason(status: &DocStatus) -> &str {
    match status {
        DocStatus::Rejected { reason, .. } => reason,
        other => panic!("accepted: {other:?}"),
    }
}

fn every_malformed_history_is_refused_with_its_reason_and_honest_devices_keep_syncing(
    backend: microcohort_tests::Backend,
) {
    let Some(c) = cohort(backend) else { return };
    let watch = HealthWatch::start(&c.server);
    let (mut forger, heads) = c.fetch();
    let (m1, m2) = (ActorId::random(), ActorId::random());

    // Her first change in the document numbered 2.
    let first = forger.entry(&m1, "feedback", &c.key("a"));
    assert_eq!(reason(&c.push(&heads, vec![with_seq(&first, 2)])), "bad_seq");
    // Number 1, accepted; then number 3.
    assert_eq!(c.push(&heads, vec![first.raw_bytes().to_vec()]), DocStatus::Ok);
    forger.keep(&first);
    let heads = forger.heads();
    let second = forger.entry(&m1, "feedback", &c.key("b"));
    assert_eq!(reason(&c.push(&heads, vec![with_seq(&second, 3)])), "bad_seq");
    // An operation counter used twice: number 2 starting where number 1 started.
    let reused = with_start_op(&second, first.start_op().get());
    assert_eq!(reason(&c.push(&heads, vec![reused])), "bad_op_counter");
    assert_eq!(c.push(&heads, vec![second.raw_bytes().to_vec()]), DocStatus::Ok);
    forger.keep(&second);
    let heads = forger.heads();

    // Predecessors that do not exist, or belong to another of her own entries.
    let a = forger.entry_id("feedback", &c.key("a"));
    let b = forger.entry_id("feedback", &c.key("b"));
    let feedback = forger.container("feedback");
    let edit = forger.change(&m1, |d| {
        let (_, entry) = d.get(&feedback, c.key("a").as_str()).unwrap().unwrap();
        d.put(&entry, "body", "edited").unwrap();
    });
    let nowhere = rewrite(&edit, |ch| ch.operations[0].pred = SortedVec::from(vec![OpId(9_999, m1.clone())]));
    assert_eq!(reason(&c.push(&heads, vec![nowhere])), "bad_pred");
    let body_of_b = OpId(b.counter() + 1, m1.clone());
    let elsewhere = rewrite(&edit, |ch| ch.operations[0].pred = SortedVec::from(vec![body_of_b.clone()]));
    assert_eq!(reason(&c.push(&heads, vec![elsewhere])), "bad_pred");
    let _ = a;

    // A predecessor in a change the new one does not build on: her second actor edits her entry,
    // then her first actor, from before that edit, names the edit as what it overwrites.
    let base = forger.doc.clone();
    let edit_b = forger.change(&m2, |d| {
        let (_, entry) = d.get(&feedback, c.key("b").as_str()).unwrap().unwrap();
        d.put(&entry, "body", "from my tablet").unwrap();
    });
    assert_eq!(c.push(&heads, vec![edit_b.raw_bytes().to_vec()]), DocStatus::Ok);
    let behind = Forger { doc: base };
    let stale = behind.change(&m1, |d| {
        let (_, entry) = d.get(&feedback, c.key("b").as_str()).unwrap().unwrap();
        d.put(&entry, "body", "from my phone").unwrap();
    });
    let edit_b_op = OpId(edit_b.start_op().get(), m2.clone());
    let concurrent = rewrite(&stale, |ch| ch.operations[0].pred = SortedVec::from(vec![edit_b_op.clone()]));
    assert_eq!(reason(&c.push(&heads, vec![concurrent])), "bad_pred");
    // The same edit made honestly, concurrently, is fine.
    assert_eq!(c.push(&heads, vec![stale.raw_bytes().to_vec()]), DocStatus::Ok);
    forger.keep(&edit_b);
    forger.keep(&stale);
    let heads = forger.heads();

    // The synthesis (anyone writes it in week 1): a map key, and elements that do not exist.
    let text = forger.container("synthesis");
    let typed = forger.change(&m1, |d| d.splice_text(&text, 0, 0, "Hi").unwrap());
    assert_eq!(c.push(&heads, vec![typed.raw_bytes().to_vec()]), DocStatus::Ok);
    forger.keep(&typed);
    let heads = forger.heads();
    let insert = forger.change(&m1, |d| d.splice_text(&text, 1, 0, "o").unwrap());
    let map_key = rewrite(&insert, |ch| ch.operations[0].key = Key::Map("x".into()));
    assert_eq!(reason(&c.push(&heads, vec![map_key])), "bad_element");
    let after_nothing = rewrite(&insert, |ch| ch.operations[0].key = elem(&OpId(9_999, m2.clone())));
    assert_eq!(reason(&c.push(&heads, vec![after_nothing])), "bad_element");
    let delete = forger.change(&m1, |d| d.splice_text(&text, 0, 1, "").unwrap());
    let delete_nothing = rewrite(&delete, |ch| {
        ch.operations[0].key = Key::Seq(ElementId::Id(OpId(9_998, m2.clone())));
        ch.operations[0].pred = SortedVec::from(vec![OpId(9_998, m2.clone())]);
    });
    assert_eq!(reason(&c.push(&heads, vec![delete_nothing])), "bad_element");
    let delete_without_pred = rewrite(&delete, |ch| ch.operations[0].pred = SortedVec::new());
    assert_eq!(reason(&c.push(&heads, vec![delete_without_pred])), "bad_pred");

    // Her own entry created again from another of her actors, which would replace it.
    let mut without_a = Forger { doc: genesis(&DocId::week("c1", 1)) };
    without_a.doc.apply_changes(forger.doc.get_changes(&[]).into_iter().filter(|ch| ch.hash() != first.hash())).ok();
    let recreated = without_a.entry(&m2, "feedback", &c.key("a"));
    assert_eq!(reason(&c.push(&heads, vec![recreated.raw_bytes().to_vec()])), "duplicate_entry");

    // A change with the genesis actor of another document of the cohort.
    let borrowed = forger.entry(&genesis_actor(&DocId::week("c1", 2)), "feedback", &c.key("g"));
    assert_eq!(reason(&c.push(&heads, vec![borrowed.raw_bytes().to_vec()])), "forged_actor");

    // A refused change refuses its whole batch: the good change before it is not stored either.
    let good = forger.entry(&m1, "feedback", &c.key("c"));
    forger.keep(&good);
    let after_good = forger.change(&m1, |d| {
        let (_, entry) = d.get(&feedback, c.key("a").as_str()).unwrap().unwrap();
        d.put(&entry, "body", "x").unwrap();
    });
    let bad_after_good =
        rewrite(&after_good, |ch| ch.operations[0].pred = SortedVec::from(vec![OpId(9_999, m1.clone())]));
    assert_eq!(reason(&c.push(&heads, vec![good.raw_bytes().to_vec(), bad_after_good])), "bad_pred");
    let (_, now) = c.fetch();
    assert_eq!(now, heads, "nothing of a refused batch was stored");

    c.honest_work("after");
    c.assert_sound();
    let metrics = raw_get(c.server.address, "/metrics").1;
    for label in ["bad_seq", "bad_op_counter", "bad_pred", "bad_element", "duplicate_entry"] {
        assert!(metrics.contains(&format!("reason=\"{label}\"")), "{label} not counted: {metrics}");
    }
    watch.finish();
    let _ = (op_id, OpType::Delete);
}

fn oversized_repeated_and_garbled_requests_are_refused_before_anything_is_written(backend: microcohort_tests::Backend) {
    let Some(c) = cohort(backend) else { return };
    let watch = HealthWatch::start(&c.server);
    let (forger, heads) = c.fetch();
    let m = ActorId::random();
    let refused = |request: &SyncRequest, status: u16, label: &str| {
        let (got, text, _) = raw_sync(&c.server, &c.token, request);
        assert_eq!(got, status, "{label}: {text}");
        assert!(text.contains(label), "{label} not named: {text}");
    };

    // A change sent as a DEFLATE chunk that would inflate past the body limit.
    let bomb = huge_value(&forger, &m, &c.key("bomb"), 8 << 20);
    let deflated = compressed(&bomb);
    assert!(deflated.len() < 64 * 1024, "the bomb is small on the wire: {}", deflated.len());
    refused(&push(&heads, vec![deflated]), 400, "wrong_chunk");
    drop(bomb);
    // A value far over the app's 10,000 characters, in a change over 256 KiB, and within it.
    let big = huge_value(&forger, &m, &c.key("big"), 1_900_000);
    refused(&push(&heads, vec![big.raw_bytes().to_vec()]), 413, "too_large");
    let long = huge_value(&forger, &m, &c.key("long"), 50_000);
    refused(&push(&heads, vec![long.raw_bytes().to_vec()]), 413, "too_large");
    // A few dozen bytes declaring five million operations.
    refused(&push(&heads, vec![declaring_ops(&m, 1, 100, &heads, 5_000_000)]), 413, "too_large");
    // A wrong checksum, and a change in an encoding automerge does not write itself.
    let fine = forger.entry(&m, "feedback", &c.key("fine"));
    refused(&push(&heads, vec![bad_checksum(fine.raw_bytes())]), 400, "bad_checksum");
    // A put at the root in repeated runs of one, where automerge writes single values as literals.
    let columns = [
        (0x15, [vec![1u8], vec![1, b'k']].concat()),
        (0x34, vec![1]),
        (0x42, run(1, 1)),
        (0x56, run(1, 0)),
        (0x70, run(1, 0)),
    ];
    let odd = microcohort_tests::forge::chunk(&m, 1, 100, &heads, &columns);
    refused(&push(&heads, vec![odd]), 400, "not_canonical");

    // The same document many times, or one document named twice.
    let copy = push(&heads, vec![]).docs[0].clone();
    // As many copies as fit in the 4 MiB body limit.
    let each = wire::encode(&copy).len();
    let copies = (4 << 20) / each - 16;
    assert!(copies > 40_000, "{copies}");
    refused(&SyncRequest { docs: vec![copy.clone(); copies], ..Default::default() }, 413, "documents in one request");
    refused(&SyncRequest { docs: vec![copy.clone(); 2], ..Default::default() }, 400, "appears twice");
    let many_heads = DocPush { known_server_heads: vec![ByteBuf::from(vec![7u8; 32]); 300], ..copy.clone() };
    refused(&SyncRequest { docs: vec![many_heads], ..Default::default() }, 413, "known heads");

    // Practice logs: too many at once, or too many for one day.
    let log = |n: usize, day: &str| WireLog {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: String::new(),
        program_id: "p1".into(),
        pack_id: "everyday-leadership".into(),
        pack_version: 1,
        prompt_id: format!("d{n}"),
        started_at: chrono::Utc::now().timestamp_millis(),
        time_zone: "UTC".into(),
        local_date: day.into(),
        status: "completed".into(),
        duration_secs: Some(600),
        transfer_kind: None,
        corrects: None,
        recorded_at: 0,
        sealed: None,
        late_arrival: false,
    };
    let today = chrono::Utc::now().date_naive().to_string();
    let logs = |count: usize| SyncRequest {
        practice_logs: (0..count).map(|n| log(n, &today)).collect(),
        ..Default::default()
    };
    refused(&logs(501), 413, "practice logs in one request");
    refused(&logs(49), 413, "too_many_logs");
    let (status, text, _) = raw_sync(&c.server, &c.token, &logs(48));
    assert_eq!(status, 200, "{text}");
    refused(&logs(1), 413, "too_many_logs");

    // One user's changes in one document are bounded (4 MiB).
    let (mut forger, mut heads) = c.fetch();
    let mut quota_hit = false;
    for batch in 0..6 {
        let mut changes = Vec::new();
        for n in 0..5 {
            let change = forger.change(&m, |d| {
                let feedback = d.get(ROOT, "feedback").unwrap().unwrap().1;
                let entry = d
                    .put_object(&feedback, format!("{}/q{batch}-{n}", c.user).as_str(), automerge::ObjType::Map)
                    .unwrap();
                for field in ["body", "suggestion", "title", "note", "extra"] {
                    d.put(&entry, field, "\u{1F600}".repeat(10_000)).unwrap();
                }
            });
            forger.keep(&change);
            changes.push(change.raw_bytes().to_vec());
        }
        let (status, text, _) = raw_sync(&c.server, &c.token, &push(&heads, changes));
        if status == 413 {
            assert!(text.contains("quota"), "{text}");
            quota_hit = true;
            break;
        }
        assert_eq!(status, 200, "{text}");
        heads = forger.heads();
    }
    assert!(quota_hit, "the per-user document quota never applied");

    c.honest_work("after");
    c.assert_sound();
    watch.finish();
}

fn guessing_secrets_is_slowed_per_address_and_others_are_unaffected(backend: microcohort_tests::Backend) {
    let Some(c) = cohort(backend) else { return };
    let guesser = Some(IpAddr::from([127, 0, 0, 3]));
    // Wrong tokens: after the failure budget (20 a minute by default), the address is refused
    // before any token is looked up.
    let statuses: Vec<u16> = (0..30)
        .map(|n| raw_post_from(guesser, c.server.address, "/v1/sync", Some(&format!("mct_{n:064}")), b"").0)
        .collect();
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[21..].iter().all(|s| *s == 429), "{statuses:?}");
    // Invite codes from another address: limited the same way.
    let joiner = Some(IpAddr::from([127, 0, 0, 4]));
    let body = wire::encode(&JoinRequest {
        invite_code: "AAAA-BBBB-CCCC-DDDD".into(),
        device_name: "x".into(),
        expected_user: None,
    });
    let joins: Vec<u16> = (0..25).map(|_| raw_post_from(joiner, c.server.address, "/v1/join", None, &body).0).collect();
    assert!(joins.contains(&403) && joins.ends_with(&[429]), "{joins:?}");
    // Everyone else is served: honest devices sync and a newcomer joins.
    c.honest_work("meanwhile");
    let newcomer = join_device(&c.server, &invite(c.data.path(), "Newcomer"));
    newcomer.sync_now().unwrap();
    assert_eq!(newcomer.week_rows(1).unwrap(), c.honest[0].week_rows(1).unwrap());
}

#[test]
fn slow_idle_and_numerous_connections_do_not_hold_the_server() {
    let Some(data) = TestData::new(microcohort_tests::Backend::Sqlite) else { return };
    program_under_way(SERVER, data.path(), 8, &["c1"]);
    let limits = ["--max-connections", "48", "--max-connections-per-address", "16", "--header-timeout-secs", "2"];
    let server = ServerProcess::start(SERVER, data.path(), &limits);
    let watch = HealthWatch::start(&server);
    let attacker = Some(IpAddr::from([127, 0, 0, 5]));
    // Forty connections that send half a request head and stall; one that sends nothing.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut stream = connect_from(attacker, server.address).unwrap();
        let _ = stream.write_all(b"POST /v1/sync HTTP/1.1\r\nHost: x\r\n");
        stream.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        slow.push(stream);
    }
    let idle = connect_from(Some(IpAddr::from([127, 0, 0, 6])), server.address).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Past the per-address cap, connections are closed at once; the rest when their head is late.
    let closed = |stream: &mut std::net::TcpStream| matches!(stream.read(&mut [0u8; 1]), Ok(0) | Err(_));
    let mut held = Vec::new();
    for mut stream in slow {
        stream.set_nonblocking(true).unwrap();
        if matches!(stream.read(&mut [0u8; 1]), Err(err) if err.kind() == std::io::ErrorKind::WouldBlock) {
            stream.set_nonblocking(false).unwrap();
            held.push(stream);
        }
    }
    assert_eq!(held.len(), 16, "the per-address cap holds 16 connections");
    let began = Instant::now();
    for stream in &mut held {
        stream.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        assert!(closed(stream));
    }
    assert!(began.elapsed() < Duration::from_secs(5), "slow heads were held for {:?}", began.elapsed());
    let mut idle = idle;
    idle.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let waited = Instant::now();
    let _ = idle.read(&mut [0u8; 1]);
    assert!(waited.elapsed() < Duration::from_secs(6), "an idle connection was held for {:?}", waited.elapsed());
    watch.finish();
}

/// A database written before the server checked history: poisoned documents are listed by `admin
/// check`, devices survive them (naming the document they cannot merge), and `admin repair` removes
/// exactly the offending changes and those built on them.
#[test]
fn a_database_poisoned_the_old_way_is_found_and_repaired() {
    let Some(c) = cohort(microcohort_tests::Backend::Sqlite) else { return };
    let (mut forger, _) = c.fetch();
    let m = ActorId::random();
    // What an earlier server stored without looking: her entry, then a change numbered 3 after
    // it, and an edit naming a predecessor that does not exist.
    let first = forger.entry(&m, "feedback", &c.key("ok"));
    forger.keep(&first);
    let gap = with_seq(&forger.entry(&m, "feedback", &c.key("gap")), 3);
    let feedback = forger.container("feedback");
    let edit = forger.change(&m, |d| {
        let (_, entry) = d.get(&feedback, c.key("ok").as_str()).unwrap().unwrap();
        d.put(&entry, "body", "edited").unwrap();
    });
    let ghost_pred = rewrite(&edit, |ch| {
        ch.seq = 2;
        ch.operations[0].pred = SortedVec::from(vec![OpId(9_999, m.clone())]);
    });
    {
        let conn = rusqlite::Connection::open(c.data.path().join("microcohort.sqlite")).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for bytes in [first.raw_bytes().to_vec(), ghost_pred.clone(), gap] {
            microcohort_server::storage::repair::store_unchecked(&*tx, WEEK, &bytes).unwrap();
        }
        use microcohort_server::storage::primitives::Tx;
        tx.bind_actor(m.to_bytes(), Some(&c.user)).unwrap();
        tx.commit().unwrap();
    }

    let check = server_command(SERVER, c.data.path()).args(["admin", "check"]).output().unwrap();
    let listed = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "admin check passed a poisoned database: {listed}");
    assert!(listed.contains(WEEK) && listed.contains(&c.user), "{listed}");
    // An honest device keeps syncing its other documents and names the one it cannot merge.
    let outcome = c.honest[0].sync_now().unwrap();
    let failed: Vec<&str> = outcome.rejected.iter().map(|(doc, _)| doc.as_str()).collect();
    assert!(failed.iter().all(|doc| *doc == WEEK), "{:?}", outcome.rejected);

    let repaired = admin(SERVER, c.data.path(), &["repair", "--doc", WEEK]);
    assert!(repaired.contains("2 changes removed"), "{repaired}");
    assert!(repaired.contains("bad_seq") && repaired.contains("bad_pred"), "{repaired}");
    // Her legitimate entry stays; every device converges on the repaired week.
    c.honest_work("repaired");
    c.assert_sound();
    assert!(c.honest[0].week_rows(1).unwrap().feedback.iter().any(|f| f.meta.key == c.key("ok")));
    // A client holding a removed change is told to fetch the week again.
    let holder_heads = vec![ghost_hash(&ghost_pred)];
    let (_, _, response) = raw_sync(&c.server, &c.token, &push(&holder_heads, vec![]));
    assert_eq!(reason(&response.unwrap().docs[0].status), "repaired");
}

fn ghost_hash(bytes: &[u8]) -> ChangeHash {
    Change::try_from(bytes).unwrap().hash()
}

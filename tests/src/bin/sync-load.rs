//! Load generator for the sync server, loopback only, bounded in count and time.
//!
//! Seeds `--learners` learners in `--cohorts` cohorts (through the storage library and real
//! joins), then measures against a real server process:
//! 1. no-op syncs (nothing new on either side): requests/s and latency percentiles;
//! 2. syncs pushing one new feedback entry each;
//! 3. a learner back after 7 offline days in an active cohort: one round trip, bytes down
//!    against the raw automerge change bytes it lacked.
//!
//! Build in release and run: `cargo run --release -p microcohort-tests --bin sync-load`;
//! `--backend postgres` runs the same against a private PostgreSQL (durable settings, like the
//! SQLite default), `--database-url URL` against an existing, empty one.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ChangeHash, ObjType, ROOT, ReadDoc};
use microcohort_core::docs::{DocId, genesis};
use microcohort_core::sync::wire::{self, DocPush, DocStatus, JoinRequest, JoinResponse, SyncRequest, SyncResponse};
use microcohort_server::admin::{NewProgram, create_program};
use microcohort_server::storage::Storage;
use microcohort_server::storage::postgres::PostgresStorage;
use microcohort_server::storage::sqlite::SqliteStorage;
use microcohort_tests::{KeepAlive, PostgresInstance, ServerProcess};
use serde_bytes::ByteBuf;

struct Options {
    learners: usize,
    cohorts: usize,
    seconds: u64,
    concurrency: usize,
    postgres: bool,
    database_url: Option<String>,
}

fn options() -> Options {
    let mut o =
        Options { learners: 10_000, cohorts: 1_000, seconds: 10, concurrency: 32, postgres: false, database_url: None };
    let args: Vec<String> = std::env::args().collect();
    for pair in args[1..].chunks(2) {
        let text = pair.get(1).unwrap_or_else(|| panic!("{} needs a value", pair[0]));
        let number = || -> usize { text.parse().unwrap_or_else(|_| panic!("{} needs a number", pair[0])) };
        match pair[0].as_str() {
            "--backend" => {
                o.postgres = match text.as_str() {
                    "sqlite" => false,
                    "postgres" => true,
                    other => panic!("--backend {other}: sqlite or postgres"),
                }
            }
            "--database-url" => {
                o.postgres = true;
                o.database_url = Some(text.clone());
            }
            "--learners" => o.learners = number(),
            "--cohorts" => o.cohorts = number(),
            "--seconds" => o.seconds = number() as u64,
            "--concurrency" => o.concurrency = number(),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// One simulated device: its token and its copy of the current week's document.
struct Learner {
    token: String,
    user_id: String,
    cohort: String,
    doc: AutoCommit,
    known: Vec<ChangeHash>,
    /// A feedback change prepared before the timed phase.
    prepared: Option<Vec<u8>>,
}

fn heads_wire(heads: &[ChangeHash]) -> Vec<ByteBuf> {
    heads.iter().map(|h| ByteBuf::from(h.0.to_vec())).collect()
}

fn apply(doc: &mut AutoCommit, changes: &[ByteBuf]) {
    let decoded: Vec<automerge::Change> =
        changes.iter().filter_map(|c| automerge::Change::try_from(c.as_slice()).ok()).collect();
    doc.apply_changes(decoded).expect("server changes apply");
}

fn sync_once(http: &mut KeepAlive, learner: &mut Learner, doc_id: &str, changes: Vec<ByteBuf>) -> (u16, usize) {
    let request = SyncRequest {
        device_id: String::new(),
        docs: vec![DocPush {
            doc_id: doc_id.into(),
            known_server_heads: heads_wire(&learner.known),
            changes,
            client_heads: vec![],
        }],
        practice_logs: vec![],
        prompts_since: 1,
        logs_since: 0,
    };
    let (status, body) = http.post("/v1/sync", Some(&learner.token), &wire::encode(&request)).expect("sync");
    if status == 200 {
        let response: SyncResponse = wire::decode(&body).expect("response");
        let pull = &response.docs[0];
        assert_eq!(pull.status, DocStatus::Ok, "sync refused: {:?}", pull.status);
        apply(&mut learner.doc, &pull.changes);
        learner.known = pull.server_heads.iter().map(|h| ChangeHash::try_from(h.as_slice()).expect("hash")).collect();
    }
    (status, body.len())
}

fn feedback_change(learner: &mut Learner, n: usize) -> Vec<u8> {
    let heads = learner.doc.get_heads();
    let feedback = learner.doc.get(ROOT, "feedback").unwrap().unwrap().1;
    let entry = learner.doc.put_object(&feedback, format!("{}/f{n}", learner.user_id).as_str(), ObjType::Map).unwrap();
    learner.doc.put(&entry, "submission", "someone/s").unwrap();
    learner.doc.put(&entry, "body", "You paused before advising; name the feeling you heard next time.").unwrap();
    learner.doc.put(&entry, "created_at", 0i64).unwrap();
    learner.doc.commit_with(CommitOptions::default().with_time(0));
    learner.doc.get_changes(&heads).pop().expect("one change").raw_bytes().to_vec()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs `work` on `concurrency` threads for `seconds`, each thread owning a slice of learners.
fn measure(
    name: &str,
    learners: &[Mutex<Learner>],
    server: &ServerProcess,
    o: &Options,
    max_requests: usize,
    work: impl Fn(&mut KeepAlive, &mut Learner) -> u16 + Sync,
) {
    let done = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::new());
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..o.concurrency {
            let (done, latencies, work) = (&done, &latencies, &work);
            scope.spawn(move || {
                let mut http = KeepAlive::connect(server.address).expect("connect");
                let mut mine = Vec::new();
                let mut i = t;
                // A phase of at most one request per learner ends a thread at the end of its
                // learners: wrapping around would reach another thread's, already used.
                let wraps = max_requests > learners.len();
                while Instant::now() < deadline
                    && (wraps || i < learners.len())
                    && done.fetch_add(1, Ordering::Relaxed) < max_requests
                {
                    let mut learner = learners[i % learners.len()].lock().unwrap();
                    let begin = Instant::now();
                    let status = work(&mut http, &mut learner);
                    mine.push(begin.elapsed());
                    assert_eq!(status, 200, "{name}: status {status}");
                    i += o.concurrency;
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
    });
    let elapsed = started.elapsed();
    let mut all = latencies.into_inner().unwrap();
    all.sort();
    println!(
        "{name}: {} requests in {:.1} s = {:.0} req/s; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        percentile(&all, 0.50).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    let o = options();
    let data = tempfile_dir();
    let server_bin = sibling("microcohort-server-under-test");
    let start = (chrono::Utc::now().date_naive() - chrono::Days::new(8)).to_string();

    // A private PostgreSQL unless one was given; the server finds its URL in the data directory.
    let private = (o.postgres && o.database_url.is_none())
        .then(|| PostgresInstance::start_durable().expect("PostgreSQL is not installed"));
    let url = o.database_url.clone().or_else(|| private.as_ref().map(|p| p.url.clone()));
    if let Some(url) = &url {
        std::fs::write(data.join("database-url"), url).expect("database-url");
    }
    println!("backend: {}", if url.is_some() { "PostgreSQL" } else { "SQLite" });

    // Seed programs, cohorts and invites through the storage library.
    let seeding = Instant::now();
    let invites: Vec<(String, String)> = {
        let storage: Box<dyn Storage> = match &url {
            Some(url) => Box::new(PostgresStorage::open(url, 4).expect("PostgreSQL storage")),
            None => Box::new(SqliteStorage::open(&data.join("microcohort.sqlite")).expect("storage")),
        };
        let storage = storage.as_ref();
        let program = NewProgram {
            id: "p1",
            title: "Load",
            start_date: &start,
            time_zone: "UTC",
            critique_weekday: None,
            critique_time: None,
            pack_path: None,
        };
        create_program(storage, &program).expect("program");
        // Cohorts of up to 12 (the default maximum): raise it for a denser load if asked.
        let per_cohort = o.learners.div_ceil(o.cohorts);
        assert!(per_cohort <= 12, "at most 12 learners per cohort");
        (0..o.cohorts).for_each(|c| storage.create_cohort(&format!("c{c}"), "p1", "Cohort").expect("cohort"));
        (0..o.learners)
            .map(|i| {
                let cohort = format!("c{}", i % o.cohorts);
                let code = storage.create_invite(&cohort, "learner", &format!("L{i}"), "UTC").expect("invite");
                (cohort, code)
            })
            .collect()
    };
    let server = ServerProcess::start(
        server_bin.to_str().unwrap(),
        &data,
        &["--rate-burst", "100000", "--rate-per-second", "100000"],
    );
    let joined: Vec<Mutex<Learner>> = {
        let next = AtomicUsize::new(0);
        let out = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..o.concurrency.min(16) {
                scope.spawn(|| {
                    let mut http = KeepAlive::connect(server.address).expect("connect");
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((cohort, code)) = invites.get(i) else { break };
                        let body = wire::encode(&JoinRequest { invite_code: code.clone(), device_name: "load".into() });
                        let (status, bytes) = http.post("/v1/join", None, &body).expect("join");
                        assert_eq!(status, 200, "join");
                        let j: JoinResponse = wire::decode(&bytes).expect("join response");
                        let mut doc = genesis(&DocId::week(cohort, 1));
                        doc.set_actor(ActorId::random());
                        out.lock().unwrap().push(Mutex::new(Learner {
                            token: j.device_token,
                            user_id: j.user_id,
                            cohort: cohort.clone(),
                            doc,
                            known: vec![],
                            prepared: None,
                        }));
                    }
                });
            }
        });
        out.into_inner().unwrap()
    };
    println!("seeded {} learners in {} cohorts in {:.1} s", joined.len(), o.cohorts, seeding.elapsed().as_secs_f64());

    // Every learner fetches its week once, and one learner per cohort shares a feedback, so the
    // week documents exist and every device is up to date before the no-op phase.
    let doc_of = |l: &Learner| DocId::week(&l.cohort, 1).to_string();
    {
        let mut http = KeepAlive::connect(server.address).expect("connect");
        let mut seeded = std::collections::HashSet::new();
        for learner in &joined {
            let mut l = learner.lock().unwrap();
            let doc_id = doc_of(&l);
            // Like a real device, the first sync sends every local change (the genesis); the
            // server deduplicates. One learner per cohort also gives a first feedback.
            let mut changes: Vec<ByteBuf> =
                l.doc.get_changes(&[]).iter().map(|c| ByteBuf::from(c.raw_bytes().to_vec())).collect();
            if seeded.insert(l.cohort.clone()) {
                changes.push(ByteBuf::from(feedback_change(&mut l, 0)));
            }
            sync_once(&mut http, &mut l, &doc_id, changes);
        }
        for learner in &joined {
            let mut l = learner.lock().unwrap();
            let doc_id = doc_of(&l);
            sync_once(&mut http, &mut l, &doc_id, vec![]);
        }
    }

    measure("no-op sync", &joined, &server, &o, 200_000, |http, l| {
        let doc_id = doc_of(l);
        sync_once(http, l, &doc_id, vec![]).0
    });

    for (i, learner) in joined.iter().enumerate() {
        let mut l = learner.lock().unwrap();
        let change = feedback_change(&mut l, 1 + i);
        l.prepared = Some(change);
    }
    measure("push one feedback", &joined, &server, &o, joined.len(), |http, l| {
        let doc_id = doc_of(l);
        let change = l.prepared.take().expect("one prepared change per learner");
        sync_once(http, l, &doc_id, vec![ByteBuf::from(change)]).0
    });

    // A learner back after 7 offline days: the rest of their cohort shared and gave feedback
    // daily meanwhile.
    let cohort_members: Vec<&Mutex<Learner>> = joined.iter().filter(|l| l.lock().unwrap().cohort == "c0").collect();
    let (returning, active) = cohort_members.split_first().expect("a cohort");
    let lacked_before = returning.lock().unwrap().known.clone();
    let mut http = KeepAlive::connect(server.address).expect("connect");
    for day in 0..7 {
        for (n, member) in active.iter().enumerate() {
            let mut l = member.lock().unwrap();
            let doc_id = doc_of(&l);
            for k in 0..4 {
                feedback_change(&mut l, 10_000 + day * 100 + n * 10 + k);
            }
            // Everything the server has not acknowledged, as a device sends it.
            let known = l.known.clone();
            let changes = l.doc.get_changes(&known).iter().map(|c| ByteBuf::from(c.raw_bytes().to_vec())).collect();
            sync_once(&mut http, &mut l, &doc_id, changes);
        }
    }
    let mut back = returning.lock().unwrap();
    let lacked: usize = {
        let mut server_copy = active[0].lock().unwrap().doc.clone();
        server_copy.get_changes(&lacked_before).iter().map(|c| c.raw_bytes().len()).sum()
    };
    let doc_id = doc_of(&back);
    let (status, bytes_down) = sync_once(&mut http, &mut back, &doc_id, vec![]);
    assert_eq!(status, 200);
    println!(
        "7 days offline: one round trip, {bytes_down} bytes down for {lacked} bytes of changes lacked = {:.3}x",
        bytes_down as f64 / lacked as f64
    );
    drop(back);
    drop(server);
    drop(private);
    let _ = std::fs::remove_dir_all(&data);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("microcohort-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("data dir");
    dir
}

/// A binary built next to this one.
fn sibling(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    let path = me.with_file_name(name);
    assert!(path.exists(), "build {name} first: cargo build --release -p microcohort-tests --bins");
    path
}

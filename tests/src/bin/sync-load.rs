//! Load generator for the sync server, loopback only, bounded in count and time.
//!
//! Seeds `--learners` learners in `--cohorts` cohorts through the storage library (program,
//! invites, joins, and a week document per cohort holding `--entries` feedback entries written
//! by the cohort's members, one change each, as real devices would have synced them), then
//! measures against a real server process:
//! 1. no-op syncs (nothing new on either side): requests/s and latency percentiles;
//! 2. syncs pushing one new feedback entry each, with 10 and with 50 clients at a time;
//! 3. new devices fetching a week they have nothing of: bytes per week (as sent, and
//!    gzip-compressed as devices receive them) against the week's own saved size, and weeks/s;
//! 4. a new device's first sync of the cohort document and every week so far, in one request;
//! 5. a learner back after 7 offline days in an active cohort: one round trip, bytes down
//!    against the raw automerge change bytes it lacked;
//!
//! and the server's resident memory (now and at its peak) with those documents.
//!
//! Build in release and run: `cargo run --release -p microcohort-tests --bin sync-load`;
//! `--backend postgres` runs the same against a private PostgreSQL (durable settings, like the
//! SQLite default), `--database-url URL` against an existing, empty one.

use std::path::PathBuf;

use rand::seq::SliceRandom;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ObjType, ROOT, ReadDoc};
use microcohort_core::docs::{DocId, genesis};
use microcohort_core::sync::wire::{self, DocPush, DocStatus, SyncRequest, SyncResponse};
use microcohort_server::admin::{NewProgram, create_program};
use microcohort_server::auth;
use microcohort_server::report::postgres_sql::PostgresSql;
use microcohort_server::report::sqlite_sql::SqliteSql;
use microcohort_server::report::store::ReportStore;
use microcohort_server::report::store::Sql;
use microcohort_server::storage::postgres::PostgresStorage;
use microcohort_server::storage::sqlite::SqliteStorage;
use microcohort_server::storage::{Device, Storage};
use microcohort_tests::{KeepAlive, PostgresInstance, ServerProcess};
use serde_bytes::ByteBuf;

/// Seeds a program, starts a real server on loopback and reports its sync figures.
#[derive(clap::Parser)]
#[command(name = "sync-load")]
struct Options {
    /// Learners to seed, spread evenly over the cohorts.
    #[arg(long, default_value_t = 12_000)]
    learners: usize,
    /// Cohorts, each with one week document.
    #[arg(long, default_value_t = 1_000)]
    cohorts: usize,
    /// Feedback entries seeded into each week document, one change each.
    #[arg(long, default_value_t = 250)]
    entries: usize,
    /// How long each phase runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Clients at a time for the no-op and cold-fetch phases (pushes run at 10 and at 50).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The server's storage; `postgres` starts a private, durable PostgreSQL.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// An existing, empty PostgreSQL database to use instead of a private one (implies
    /// `--backend postgres`).
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A cohort's current week as the devices hold it: every member's changes merged.
struct Cohort {
    id: String,
    doc: Mutex<AutoCommit>,
    /// Changes synced but not applied yet: each phone applies what it receives, so the load
    /// generator (on the server's machine) applies them only when it next needs the document.
    arrived: Mutex<Vec<ByteBuf>>,
}

impl Cohort {
    fn new(id: String) -> Self {
        Self { doc: Mutex::new(genesis(&DocId::week(&id, 1))), arrived: Mutex::default(), id }
    }

    fn doc_id(&self) -> String {
        DocId::week(&self.id, 1).to_string()
    }

    /// The document with every change synced so far.
    fn doc(&self) -> std::sync::MutexGuard<'_, AutoCommit> {
        let mut doc = self.doc.lock().unwrap();
        let arrived = std::mem::take(&mut *self.arrived.lock().unwrap());
        apply(&mut doc, &arrived);
        doc
    }
}

/// One simulated device: its token, its actor and the heads the server last acknowledged.
struct Learner {
    device: Device,
    token: String,
    cohort: usize,
    actor: ActorId,
    known: Vec<ChangeHash>,
    /// A feedback change prepared before the timed phase.
    prepared: Option<Vec<u8>>,
    entries: usize,
}

fn heads_wire(heads: &[ChangeHash]) -> Vec<ByteBuf> {
    heads.iter().map(|h| ByteBuf::from(h.0.to_vec())).collect()
}

fn apply(doc: &mut AutoCommit, changes: &[ByteBuf]) {
    let decoded: Vec<Change> = changes.iter().filter_map(|c| Change::try_from(c.as_slice()).ok()).collect();
    doc.apply_changes(decoded).expect("server changes apply");
}

/// The version of the default prompt pack the programs use: devices that have it are not sent it.
fn pack_version() -> u32 {
    static VERSION: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *VERSION.get_or_init(|| {
        microcohort_core::domain::prompt_pack::parse_pack(
            microcohort_core::DEFAULT_PROMPT_PACK_NAME,
            microcohort_core::DEFAULT_PROMPT_PACK,
        )
        .expect("the default pack parses")
        .version
    })
}

fn request(doc_id: &str, known: &[ChangeHash], changes: Vec<ByteBuf>) -> SyncRequest {
    SyncRequest {
        device_id: String::new(),
        docs: vec![DocPush {
            doc_id: doc_id.into(),
            known_server_heads: heads_wire(known),
            changes,
            client_heads: vec![],
        }],
        practice_logs: vec![],
        prompts_since: pack_version(),
        logs_since: 0,
        accepts_snapshots: true,
        // As a device asks: the facilitators' notes after the last it holds.
        notes_after: Some(0),
        ..Default::default()
    }
}

/// One round trip over HTTP: the server's new changes go into the cohort's shared copy, the heads
/// it acknowledged become the learner's.
fn sync_once(http: &mut KeepAlive, learner: &mut Learner, cohort: &Cohort, changes: Vec<ByteBuf>) -> (u16, usize) {
    let body = wire::encode(&request(&cohort.doc_id(), &learner.known, changes.clone()));
    let (status, body) = http.post("/v1/sync", Some(&learner.token), &body).expect("sync");
    if status == 200 {
        let response: SyncResponse = wire::decode(&body).expect("response");
        let pull = &response.docs[0];
        assert_eq!(pull.status, DocStatus::Ok, "sync refused: {:?}", pull.status);
        if let Some(saved) = &pull.snapshot {
            cohort.doc().merge(&mut AutoCommit::load(saved).expect("the saved document loads")).expect("merge");
        }
        let mut arrived = cohort.arrived.lock().unwrap();
        arrived.extend(changes);
        arrived.extend(pull.changes.iter().cloned());
        learner.known = pull.server_heads.iter().map(|h| ChangeHash::try_from(h.as_slice()).expect("hash")).collect();
    }
    (status, body.len())
}

/// Adds one feedback entry by `actor` to `doc` and returns the change's bytes.
fn feedback_change(doc: &mut AutoCommit, actor: &ActorId, user_id: &str, n: usize) -> Vec<u8> {
    doc.set_actor(actor.clone());
    let feedback = doc.get(ROOT, "feedback").unwrap().unwrap().1;
    let entry = doc.put_object(&feedback, format!("{user_id}/f{n}").as_str(), ObjType::Map).unwrap();
    doc.put(&entry, "submission", "someone/s").unwrap();
    doc.put(&entry, "body", "You paused before advising; name the feeling you heard next time.").unwrap();
    doc.put(&entry, "suggestion", "Ask one more question before you suggest anything.").unwrap();
    doc.put(&entry, "criteria", "[0,2]").unwrap();
    doc.put(&entry, "created_at", 0i64).unwrap();
    doc.put(&entry, "retracted", false).unwrap();
    let hash = doc.commit_with(CommitOptions::default().with_time(0)).expect("a change");
    doc.get_change_by_hash(&hash).expect("committed").raw_bytes().to_vec()
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
    learners: &[&Mutex<Learner>],
    server: &ServerProcess,
    (seconds, concurrency): (u64, usize),
    max_requests: usize,
    work: impl Fn(&mut KeepAlive, &mut Learner) -> u16 + Sync,
) {
    let done = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::new());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..concurrency {
            let (done, latencies, work) = (&done, &latencies, &work);
            scope.spawn(move || {
                let mut http = KeepAlive::connect(server.address).expect("connect");
                let mut mine = Vec::new();
                // This thread's learners, in turn, round after round: a learner's requests are
                // always made one after the other, in order.
                let own: Vec<&Mutex<Learner>> = learners.iter().skip(t).step_by(concurrency).copied().collect();
                let rounds = max_requests.div_ceil(learners.len());
                let mut turns = own.iter().cycle().take(own.len() * rounds);
                while Instant::now() < deadline && done.fetch_add(1, Ordering::Relaxed) < max_requests {
                    let Some(next) = turns.next() else { break };
                    let mut learner = next.lock().unwrap();
                    let begin = Instant::now();
                    let status = work(&mut http, &mut learner);
                    mine.push(begin.elapsed());
                    assert_eq!(status, 200, "{name}: status {status}");
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

/// Pushes a device's changes in process, as its sync would have; returns the server's heads.
fn push(storage: &dyn Storage, learner: &Learner, doc_id: &str, known: &[ChangeHash], changes: Vec<ByteBuf>) {
    let (response, _) = storage.sync_request(&learner.device, request(doc_id, known, changes)).expect("seed sync");
    assert_eq!(response.docs[0].status, DocStatus::Ok, "seeding refused: {:?}", response.docs[0].status);
}

/// Fills a cohort's week with `entries` feedback entries, one change each, written by its members
/// in three rounds of concurrent work (each member on her own copy, merged after the round), then
/// one last entry on the merged document, so the week ends with one head like a settled one.
fn seed_week(storage: &dyn Storage, cohort: &Cohort, members: &mut [Learner], entries: usize) {
    const ROUNDS: usize = 3;
    let doc_id = cohort.doc_id();
    let mut doc = cohort.doc();
    let size = members.len();
    let mut written = 0;
    let before_last = entries.saturating_sub(1);
    for round in 0..ROUNDS {
        let upto = before_last * (round + 1) / ROUNDS;
        // The server holds everything merged so far (nothing at all before the first round).
        let known = if round == 0 { Vec::new() } else { doc.get_heads() };
        let mut forks = Vec::with_capacity(size);
        for (m, member) in members.iter_mut().enumerate() {
            let mut fork = doc.fork();
            for n in (written..upto).filter(|n| n % size == m) {
                feedback_change(&mut fork, &member.actor, &member.device.user_id, n);
            }
            let changes = fork.get_changes(&known).iter().map(|c| ByteBuf::from(c.raw_bytes().to_vec())).collect();
            push(storage, member, &doc_id, &known, changes);
            forks.push(fork);
        }
        for mut fork in forks {
            doc.merge(&mut fork).expect("merge");
        }
        written = upto;
    }
    if entries > 0 {
        let known = doc.get_heads();
        let last = feedback_change(&mut doc, &members[0].actor, &members[0].device.user_id.clone(), written);
        push(storage, &members[0], &doc_id, &known, vec![ByteBuf::from(last)]);
    }
    let heads = doc.get_heads();
    for member in members.iter_mut() {
        member.known = heads.clone();
        member.entries = entries;
    }
}

/// The resident memory of a process, now and at its peak, in MB (Linux).
fn memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let o = <Options as clap::Parser>::parse();
    let data = tempfile_dir();
    let server_bin = sibling("microcohort-server-under-test");
    let start = (chrono::Utc::now().date_naive() - chrono::Days::new(8)).to_string();

    // A private PostgreSQL unless one was given; the server finds its URL in the data directory.
    let private = (o.backend == Backend::Postgres && o.database_url.is_none())
        .then(|| PostgresInstance::start_durable().expect("PostgreSQL is not installed"));
    let url = o.database_url.clone().or_else(|| private.as_ref().map(|p| p.url.clone()));
    if let Some(url) = &url {
        std::fs::write(data.join("database-url"), url).expect("database-url");
    }
    println!("backend: {}", if url.is_some() { "PostgreSQL" } else { "SQLite" });

    // Seed programs, cohorts, members and their week documents through the storage library.
    let seeding = Instant::now();
    let cohorts: Vec<Cohort> = (0..o.cohorts).map(|c| Cohort::new(format!("c{c}"))).collect();
    let mut members: Vec<Vec<Learner>> = (0..o.cohorts).map(|_| Vec::new()).collect();
    {
        let shared: Arc<dyn Storage> = match &url {
            Some(url) => Arc::new(PostgresStorage::open(url, 4).expect("PostgreSQL storage")),
            None => Arc::new(SqliteStorage::open(&data.join("microcohort.sqlite")).expect("storage")),
        };
        let storage = shared.as_ref();
        let program = NewProgram {
            id: "p1",
            title: "Load",
            start_date: &start,
            time_zone: "UTC",
            critique_weekday: None,
            critique_time: None,
            feedback_window_hours: None,
            cohort_size: None,
            pack_path: None,
        };
        create_program(storage, &program).expect("program");
        // Cohorts of up to 12 (the default maximum).
        let per_cohort = o.learners.div_ceil(o.cohorts);
        assert!(per_cohort <= 12, "at most 12 learners per cohort");
        for cohort in &cohorts {
            storage.create_cohort(&cohort.id, "p1", "Cohort").expect("cohort");
        }
        for i in 0..o.learners {
            let c = i % o.cohorts;
            let code = storage.create_invite(&cohorts[c].id, "learner", &format!("L{i}"), "UTC", None).expect("invite");
            let token = auth::new_token();
            let j = storage
                .join(&microcohort_server::storage::people::JoinRequest::new(
                    &auth::hash_invite(&code),
                    "load",
                    &auth::hash_secret(&token),
                    &token,
                ))
                .expect("join");
            let device = Device { device_id: j.device_id, user_id: j.user_id, cohort_id: j.cohort_id, role: j.role };
            members[c].push(Learner {
                device,
                token,
                cohort: c,
                actor: ActorId::random(),
                known: vec![],
                prepared: None,
                entries: 0,
            });
        }
        let next = AtomicUsize::new(0);
        let slots: Vec<Mutex<Vec<Learner>>> = members.drain(..).map(Mutex::new).collect();
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    loop {
                        let c = next.fetch_add(1, Ordering::Relaxed);
                        let Some(slot) = slots.get(c) else { break };
                        let mut mine = slot.lock().unwrap();
                        if !mine.is_empty() {
                            seed_week(storage, &cohorts[c], &mut mine, o.entries);
                        }
                    }
                });
            }
        });
        members = slots.into_iter().map(|m| m.into_inner().unwrap()).collect();
        // A server that has run a while has snapshots of its documents (its background
        // compaction writes one after every 32 new changes).
        let compacting = Instant::now();
        let written = storage.compact(1).expect("compaction");
        println!("snapshots of {written} documents written in {:.1} s", compacting.elapsed().as_secs_f64());
        // ... and report tables caught up with its documents (its background refresh keeps them so).
        let sql: Box<dyn Sql> = match &url {
            Some(url) => Box::new(PostgresSql::open(url).expect("report tables")),
            None => Box::new(SqliteSql::open(&data.join("microcohort.sqlite")).expect("report tables")),
        };
        let refreshing = Instant::now();
        let read = ReportStore::new(sql, shared.clone()).refresh().expect("report refresh");
        println!("reports caught up with {read} documents in {:.1} s", refreshing.elapsed().as_secs_f64());
    }
    let learners: Vec<Mutex<Learner>> = members.into_iter().flatten().map(Mutex::new).collect();
    println!(
        "seeded {} learners in {} cohorts, {} feedback entries per week document, in {:.1} s",
        learners.len(),
        o.cohorts,
        o.entries,
        seeding.elapsed().as_secs_f64()
    );

    let server = ServerProcess::start(
        server_bin.to_str().unwrap(),
        &data,
        &["--rate-burst", "100000", "--rate-per-second", "100000"],
    );
    let pid = server.pid().expect("server pid");
    let (rss, _) = memory_mb(pid);
    println!("server memory after start: {rss:.0} MB");

    let everyone: Vec<&Mutex<Learner>> = learners.iter().collect();
    measure("no-op sync", &everyone, &server, (o.seconds, o.concurrency), 200_000, |http, l| {
        let cohort = &cohorts[l.cohort];
        sync_once(http, l, cohort, vec![]).0
    });

    let (rss, _) = memory_mb(pid);
    println!("server memory after the no-op syncs: {rss:.0} MB");

    {
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    while let Some(learner) = learners.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let mut l = learner.lock().unwrap();
                        // Each on its own copy of the week as it was seeded: concurrent writes.
                        let mut fork = cohorts[l.cohort].doc().fork();
                        let n = l.entries + 1;
                        let (actor, user) = (l.actor.clone(), l.device.user_id.clone());
                        l.prepared = Some(feedback_change(&mut fork, &actor, &user, n));
                        l.entries = n;
                    }
                });
            }
        });
    }
    // Half the learners push with 10 clients at a time, the other half with 50, in random order:
    // a moment's writes come from across the program, not from one cohort's members at once.
    let mut shuffled = everyone.clone();
    shuffled.shuffle(&mut rand::rng());
    let (first, second) = shuffled.split_at(shuffled.len() / 2);
    for (part, clients) in [(first, 10), (second, 50)] {
        let name = format!("push one feedback, {clients} clients");
        measure(&name, part, &server, (o.seconds, clients), part.len(), |http, l| {
            let cohort = &cohorts[l.cohort];
            let change = l.prepared.take().expect("one prepared change per learner");
            sync_once(http, l, cohort, vec![ByteBuf::from(change)]).0
        });
    }
    let (rss, peak) = memory_mb(pid);
    println!(
        "server memory with {} week documents of {} entries: {rss:.0} MB now, {peak:.0} MB at peak",
        o.cohorts, o.entries
    );

    // New devices fetching a week they have nothing of: the server's snapshot and what came after.
    let saved: Vec<usize> = cohorts.iter().map(|c| c.doc().save().len()).collect();
    let fetched = Mutex::new((0usize, 0usize, 0usize, 0usize));
    measure("cold fetch of a week", &everyone, &server, (o.seconds, o.concurrency), 200_000, |http, l| {
        let body = wire::encode(&request(&cohorts[l.cohort].doc_id(), &[], vec![]));
        let (status, bytes) = http.post("/v1/sync", Some(&l.token), &body).expect("fetch");
        let mut totals = fetched.lock().unwrap();
        *totals = (totals.0 + 1, totals.1 + bytes.len(), totals.2 + gzipped(&bytes), totals.3 + saved[l.cohort]);
        status
    });
    let (n, raw, zipped, save) = fetched.into_inner().unwrap();
    println!(
        "cold fetch: {} bytes per week ({} gzip-compressed, as devices receive it) for a saved document of {} bytes \
         = {:.2}x ({:.2}x uncompressed)",
        raw / n,
        zipped / n,
        save / n,
        zipped as f64 / save as f64,
        raw as f64 / save as f64
    );

    // A new device's first sync: the cohort document and every week so far, in one request.
    {
        let l = learners[0].lock().unwrap();
        let cohort = &cohorts[l.cohort].id;
        let docs = std::iter::once(DocId::cohort(cohort)).chain((0..=1).map(|w| DocId::week(cohort, w)));
        let request = SyncRequest {
            docs: docs.map(|d| DocPush { doc_id: d.to_string(), ..Default::default() }).collect(),
            accepts_snapshots: true,
            // The prompt pack came with the join.
            prompts_since: pack_version(),
            ..Default::default()
        };
        let mut http = KeepAlive::connect(server.address).expect("connect");
        let began = Instant::now();
        let (status, bytes) = http.post("/v1/sync", Some(&l.token), &wire::encode(&request)).expect("sync");
        assert_eq!(status, 200);
        println!(
            "a new device's first sync (cohort document and weeks 0-1): {} bytes ({} gzip-compressed) in {:.1} ms",
            bytes.len(),
            gzipped(&bytes),
            began.elapsed().as_secs_f64() * 1e3
        );
    }

    // A learner back after 7 offline days: the rest of their cohort gave feedback daily meanwhile.
    let in_first: Vec<&Mutex<Learner>> = learners.iter().filter(|l| l.lock().unwrap().cohort == 0).collect();
    let (returning, active) = in_first.split_first().expect("a cohort");
    let cohort = &cohorts[0];
    let lacked_before = returning.lock().unwrap().known.clone();
    let mut http = KeepAlive::connect(server.address).expect("connect");
    for _day in 0..7 {
        for member in active {
            let mut l = member.lock().unwrap();
            let changes: Vec<ByteBuf> = {
                let mut doc = cohort.doc();
                (0..4)
                    .map(|k| {
                        let n = l.entries + 1 + k;
                        ByteBuf::from(feedback_change(&mut doc, &l.actor, &l.device.user_id, 100_000 + n))
                    })
                    .collect()
            };
            l.entries += 4;
            sync_once(&mut http, &mut l, cohort, changes);
        }
    }
    let mut back = returning.lock().unwrap();
    let lacked: usize = cohort.doc().get_changes(&lacked_before).iter().map(|c| c.raw_bytes().len()).sum();
    let (status, bytes_down) = sync_once(&mut http, &mut back, cohort, vec![]);
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

/// The size of a body as gzip sends it (what devices, which ask for it, receive).
fn gzipped(bytes: &[u8]) -> usize {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("compress").len()
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

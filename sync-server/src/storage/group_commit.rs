//! Group commit for the embedded database: requests that write at the same time share one
//! transaction and one fsync, and each is answered only once that transaction is on disk.
//!
//! A request sends its work to the writer thread and waits for its own answer. The writer takes
//! what has queued up (at most [`BATCH`]), runs each piece in a savepoint of its own (so one
//! request's refusal or error rolls back that request alone), commits, and hands the answers to
//! the sync thread, which syncs the WAL ([`Durability`]) and only then answers: the writer runs
//! the next batch while the disk syncs the last one. Under load, batches grow while the disk
//! syncs; alone, a request is a one-piece batch. A waiting request is woken once, by its answer:
//! waiting on the writer's lock instead woke every waiter in turn after each commit, one context
//! switch each. Checking a change (decoding, bounds) happens before any of this, on the
//! request's own thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::checkpoints::{self, WalRestart};
use super::durability::Durability;
use crate::error::ApiError;

/// Work queued for the writer.
trait Job: Send {
    /// Runs inside the batch's transaction; returns what to do once the commit is durable or failed.
    fn run(self: Box<Self>, conn: &Connection) -> Completion;
    /// The batch could not start: nothing ran.
    fn fail(self: Box<Self>, why: &str);
}

type Completion = Box<dyn FnOnce(Result<(), &str>) + Send>;

/// A request's work and where its result goes.
struct Queued<T, F> {
    work: F,
    reply: SyncSender<Result<T, ApiError>>,
}

impl<T, F> Job for Queued<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Completion {
        let Queued { work, reply } = *self;
        let outcome = in_savepoint(conn, work);
        Box::new(move |committed| {
            let result = match committed {
                Ok(()) => outcome,
                Err(why) => Err(ApiError::Internal(format!("the write could not be committed: {why}"))),
            };
            let _ = reply.send(result);
        })
    }

    fn fail(self: Box<Self>, why: &str) {
        let _ = self.reply.send(Err(ApiError::Internal(format!("the write could not begin: {why}"))));
    }
}

/// Pieces of work one transaction takes at most, so one batch never holds the lock for long.
const BATCH: usize = 128;

pub struct GroupCommit {
    jobs: Option<Sender<Box<dyn Job>>>,
    writer: Option<JoinHandle<()>>,
    syncer: Option<JoinHandle<()>>,
}

fn sql(conn: &Connection, statement: &str) -> Result<(), String> {
    conn.prepare_cached(statement).and_then(|mut s| s.execute([])).map(|_| ()).map_err(|e| e.to_string())
}

/// Runs one piece of work inside its own savepoint; what failed or panicked leaves nothing.
fn in_savepoint<T>(conn: &Connection, work: impl FnOnce(&Connection) -> Result<T, ApiError>) -> Result<T, ApiError> {
    sql(conn, "SAVEPOINT request").map_err(ApiError::Internal)?;
    let outcome = catch_unwind(AssertUnwindSafe(|| work(conn)))
        .unwrap_or_else(|_| Err(ApiError::Internal("a write panicked; it was rolled back".into())));
    if outcome.is_err() {
        sql(conn, "ROLLBACK TO request").map_err(ApiError::Internal)?;
    }
    sql(conn, "RELEASE request").map_err(ApiError::Internal)?;
    outcome
}

impl GroupCommit {
    /// Starts the writer thread on `conn` (which commits without syncing; `durable` syncs), which
    /// other writes may also lock between batches; it starts the WAL over between two batches
    /// when the checkpoint thread asks (`restart`).
    pub fn start(
        conn: Arc<Mutex<Connection>>,
        restart: Arc<WalRestart>,
        durable: Arc<Durability>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = channel::<Box<dyn Job>>();
        let (committed, to_sync) = channel::<Vec<Completion>>();
        let syncing = durable.clone();
        let syncer =
            std::thread::Builder::new().name("microcohort-sync".into()).spawn(move || sync(&to_sync, &syncing))?;
        let writer = std::thread::Builder::new()
            .name("microcohort-writer".into())
            .spawn(move || serve(&conn, &queue, &restart, &durable, &committed))?;
        Ok(Self { jobs: Some(jobs), writer: Some(writer), syncer: Some(syncer) })
    }

    /// Runs `work` in the writer's next transaction and returns its result once that transaction
    /// is durable (or its error, with nothing of it written).
    pub fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (reply, answer) = sync_channel::<Result<T, ApiError>>(1);
        let stopped = || ApiError::Internal("the database writer has stopped".into());
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(Box::new(Queued { work, reply })).map_err(|_| stopped())?;
        answer.recv().unwrap_or_else(|_| Err(stopped()))
    }
}

impl Drop for GroupCommit {
    /// Lets the writer finish what was queued, then stop.
    fn drop(&mut self) {
        drop(self.jobs.take());
        // The writer stops first, so the sync thread answers its last batch, then stops.
        for thread in [self.writer.take(), self.syncer.take()].into_iter().flatten() {
            let _ = thread.join();
        }
    }
}

/// The writer thread: one transaction per batch of what queued up, until the storage closes.
fn serve(
    conn: &Mutex<Connection>,
    queue: &Receiver<Box<dyn Job>>,
    restart: &WalRestart,
    durable: &Durability,
    committed: &Sender<Vec<Completion>>,
) {
    while let Ok(first) = queue.recv() {
        let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
        // What arrived while the lock was taken joins this batch too.
        let mut jobs = vec![first];
        jobs.extend(std::iter::from_fn(|| queue.try_recv().ok()).take(BATCH - 1));
        if let Some(completions) = commit(&conn, jobs, durable) {
            // The sync thread outlives the writer (it stops once this sender is gone).
            let _ = committed.send(completions);
        }
        checkpoints::restart(&conn, restart);
    }
}

/// Runs the work as one transaction; returns each piece's completion once committed, or
/// completes them with the error.
fn commit(conn: &Connection, jobs: Vec<Box<dyn Job>>, durable: &Durability) -> Option<Vec<Completion>> {
    if let Err(why) = durable.check().and_then(|()| sql(conn, "BEGIN IMMEDIATE")) {
        for job in jobs {
            job.fail(&why);
        }
        return None;
    }
    let completions: Vec<Completion> = jobs.into_iter().map(|job| job.run(conn)).collect();
    match sql(conn, "COMMIT") {
        Ok(()) => Some(completions),
        Err(why) => {
            let _ = sql(conn, "ROLLBACK");
            for complete in completions {
                complete(Err(&why));
            }
            None
        }
    }
}

/// The sync thread: one WAL sync for every batch committed since the last, then their answers.
fn sync(committed: &Receiver<Vec<Completion>>, durable: &Durability) {
    while let Ok(mut batch) = committed.recv() {
        for more in committed.try_iter() {
            batch.extend(more);
        }
        let synced = durable.sync();
        for complete in batch {
            complete(synced.as_ref().map(|_| ()).map_err(String::as_str));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::Duration;

    use super::*;

    /// A writer whose WAL syncs each wait for the verdict the test sends.
    fn writer(dir: &std::path::Path) -> (Arc<GroupCommit>, SyncSender<std::io::Result<()>>) {
        let conn = Connection::open(dir.join("db.sqlite")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)", []).unwrap();
        let (verdicts, verdict) = sync_channel::<std::io::Result<()>>(0);
        let verdict = Mutex::new(verdict);
        let durable = Durability::with_sync(Box::new(move || verdict.lock().unwrap().recv().unwrap()));
        let group = GroupCommit::start(Arc::new(Mutex::new(conn)), Arc::default(), Arc::new(durable)).unwrap();
        (Arc::new(group), verdicts)
    }

    fn insert(group: &Arc<GroupCommit>, id: i64) -> Receiver<Result<usize, ApiError>> {
        let (answer, answered) = channel();
        let group = group.clone();
        std::thread::spawn(move || {
            let _ = answer.send(group.run(move |c| Ok(c.execute("INSERT INTO t (id) VALUES (?1)", [id])?)));
        });
        answered
    }

    #[test]
    fn a_write_is_answered_only_once_synced_and_none_is_accepted_after_a_failed_sync() {
        let dir = tempfile::tempdir().unwrap();
        let (group, verdicts) = writer(dir.path());

        let first = insert(&group, 1);
        assert!(
            matches!(first.recv_timeout(Duration::from_millis(300)), Err(RecvTimeoutError::Timeout)),
            "committed but not yet synced: no answer"
        );
        verdicts.send(Ok(())).unwrap();
        assert_eq!(first.recv().unwrap().unwrap(), 1);

        let second = insert(&group, 2);
        verdicts.send(Err(std::io::Error::other("I/O error"))).unwrap();
        let Err(ApiError::Internal(refused)) = second.recv().unwrap() else { panic!("accepted") };
        assert!(refused.contains("could not make writes durable") && refused.contains("I/O error"), "{refused}");

        // No sync is even tried (the test sends no verdict): the write is refused at once.
        let third = insert(&group, 3).recv_timeout(Duration::from_secs(10)).expect("answered without a sync");
        assert!(matches!(third, Err(ApiError::Internal(why)) if why.contains("could not make writes durable")));
    }
}

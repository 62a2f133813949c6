//! Group commit for the embedded database: requests that write at the same time share one
//! transaction and one fsync, and each is answered only once that transaction is on disk.
//!
//! A request sends its work to the writer thread and waits for its own answer. The writer takes
//! what has queued up (at most [`BATCH`]), runs each piece in a savepoint of its own (so one
//! request's refusal or error rolls back that request alone), commits, and answers each. Under
//! load, the writer commits as fast as the disk syncs while the batches grow; alone, a request
//! is a one-piece batch. A waiting request is woken once, by its answer: waiting on the writer's
//! lock instead woke every waiter in turn after each commit, one context switch each. Checking a
//! change (decoding, bounds) happens before any of this, on the request's own thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::checkpoints::{self, WalRestart};
use crate::error::ApiError;

/// Work queued for the writer.
trait Job: Send {
    /// Runs inside the batch's transaction; returns what to do once the commit succeeded or not.
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
    /// Starts the writer thread on `conn`, which other writes may also lock between batches; it
    /// starts the WAL over between two batches when the checkpoint thread asks (`restart`).
    pub fn start(conn: Arc<Mutex<Connection>>, restart: Arc<WalRestart>) -> std::io::Result<Self> {
        let (jobs, queue) = channel::<Box<dyn Job>>();
        let writer = std::thread::Builder::new()
            .name("microcohort-writer".into())
            .spawn(move || serve(&conn, &queue, &restart))?;
        Ok(Self { jobs: Some(jobs), writer: Some(writer) })
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
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: one transaction per batch of what queued up, until the storage closes.
fn serve(conn: &Mutex<Connection>, queue: &Receiver<Box<dyn Job>>, restart: &WalRestart) {
    while let Ok(first) = queue.recv() {
        let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
        // What arrived while the lock was taken joins this batch too.
        let mut jobs = vec![first];
        jobs.extend(std::iter::from_fn(|| queue.try_recv().ok()).take(BATCH - 1));
        commit(&conn, jobs);
        checkpoints::restart(&conn, restart);
    }
}

/// Runs the work as one transaction and completes each piece.
fn commit(conn: &Connection, jobs: Vec<Box<dyn Job>>) {
    if let Err(why) = sql(conn, "BEGIN IMMEDIATE") {
        for job in jobs {
            job.fail(&why);
        }
        return;
    }
    let completions: Vec<Completion> = jobs.into_iter().map(|job| job.run(conn)).collect();
    let committed = sql(conn, "COMMIT").inspect_err(|_| {
        let _ = sql(conn, "ROLLBACK");
    });
    for complete in completions {
        complete(committed.as_ref().map(|_| ()).map_err(String::as_str));
    }
}

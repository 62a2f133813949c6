//! Group commit for the embedded database: requests that write at the same time share one
//! transaction and one fsync, and each is answered only once that transaction is on disk.
//!
//! A request queues its work and takes the writer's lock. Whoever holds the lock leads: it runs
//! every queued piece of work in one transaction, each inside a savepoint of its own (so one
//! request's refusal or error rolls back that request alone), commits, and hands each request
//! its result. A request that finds its work already done by an earlier leader returns at once.
//! Under load, the writer commits as fast as the disk syncs while the batches grow; alone, a
//! request leads its own one-piece batch. Checking a change (decoding, bounds) happens before
//! any of this, outside the lock.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rusqlite::Connection;

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

#[derive(Default)]
pub struct GroupCommit {
    queue: Mutex<Vec<Box<dyn Job>>>,
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
    /// Runs `work` in the writer's next transaction and returns its result once that transaction
    /// is durable (or its error, with nothing of it written).
    pub fn run<T: Send + 'static>(
        &self,
        writer: &Mutex<Connection>,
        work: impl FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (reply, answer) = sync_channel::<Result<T, ApiError>>(1);
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(Queued { work, reply }));
        loop {
            if let Some(result) = ready(&answer) {
                return result;
            }
            let conn = writer.lock().unwrap_or_else(|p| p.into_inner());
            // An earlier leader may have committed this request while it waited for the lock.
            if let Some(result) = ready(&answer) {
                return result;
            }
            self.lead(&conn);
        }
    }

    /// Runs the queued work as one transaction and completes each piece.
    fn lead(&self, conn: &Connection) {
        let jobs: Vec<Box<dyn Job>> = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            let take = queue.len().min(BATCH);
            queue.drain(..take).collect()
        };
        if jobs.is_empty() {
            return;
        }
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
}

fn ready<T>(answer: &Receiver<Result<T, ApiError>>) -> Option<Result<T, ApiError>> {
    answer.try_recv().ok()
}

//! Admitting a document's new changes in two steps: checking them (who may write what, and that
//! the document's history stays well formed) and writing them. Checking reads a lot and writes
//! nothing, so it may run before the write transaction (PostgreSQL does): it records the
//! document's version as it saw it, and the write, under the document's lock, stores what was
//! admitted only if the document is still at that version, and checks again otherwise. The
//! embedded database runs both steps in its writer's transaction (see `round_trip`).

use std::collections::HashSet;

use automerge::ActorId;
use microcohort_core::policy::history::Layered;
use microcohort_core::policy::{
    ActorDirectory, NewEntry, Owner, RejectReason, Submitter, check_history, is_genesis, validate,
};
use microcohort_core::sync::limits::MAX_USER_BYTES_PER_DOC;
use microcohort_core::sync::request::CheckedDoc;
use microcohort_core::sync::wire::DocStatus;

use super::SyncStats;
use super::documents::{Bindings, StoredHistory, StoredObjects, store_change, store_entries};
use super::graph_cache::GraphCache;
use super::primitives::Tx;
use crate::error::ApiError;

/// What checking a document's batch decided.
#[derive(Clone)]
pub enum Verdict {
    /// Nothing to write; the status to answer, and the reason when it is a refusal.
    Answer(DocStatus, Option<RejectReason>),
    /// Changes to store, valid against the document as it was at `seen`.
    Store(Admitted),
}

/// A document's changes that passed every check.
#[derive(Clone)]
pub struct Admitted {
    /// Positions in the document's pushed changes, in the order to store them, with the entries
    /// each creates.
    changes: Vec<(usize, Vec<NewEntry>)>,
    /// Bytes of the submitter's own changes among them (counted against the quota).
    bytes: i64,
    /// The document's version when checked for a later transaction; `None` when checked in
    /// the transaction that writes them.
    seen: Option<DocVersion>,
}

/// Where a document stands: any change stored or removed moves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocVersion {
    last_seq: Option<i64>,
    heads: Vec<Vec<u8>>,
}

pub fn version(tx: &dyn Tx, doc: &str) -> Result<DocVersion, ApiError> {
    Ok(DocVersion { last_seq: tx.last_seq(doc)?, heads: tx.heads(doc)? })
}

/// Checks a document's new changes against what is stored: all or nothing. Actors it would bind
/// stay pending in `bindings` for the request's later documents. `seen` is the document's
/// version read before, when the changes will be written in a later transaction.
pub fn check(
    tx: &dyn Tx,
    graphs: &GraphCache,
    item: &CheckedDoc,
    submitter: Submitter<'_>,
    bindings: &mut Bindings<'_>,
    seen: Option<DocVersion>,
) -> Result<Verdict, ApiError> {
    let mut fresh: Vec<usize> = Vec::new();
    let mut hashes = HashSet::new();
    for (i, change) in item.changes.iter().enumerate() {
        if tx.change_seq(&item.id, &change.hash.0)?.is_none() && hashes.insert(change.hash) {
            fresh.push(i);
        }
    }
    if fresh.is_empty() {
        return Ok(Verdict::Answer(DocStatus::Ok, None));
    }
    let mut objects = StoredObjects::new(tx, &item.doc, &item.id);
    let stored = StoredHistory::new(tx, &item.doc, &item.id, graphs);
    let mut history = Layered::new(&stored);
    let mut admitted: Vec<(usize, Vec<NewEntry>)> = Vec::new();
    // Actors this batch binds to the submitter (forgotten if the batch is refused).
    let mut new_actors: Vec<ActorId> = Vec::new();
    let mut bytes = 0i64;
    for i in fresh {
        let change = &item.changes[i];
        for dep in change.change.deps() {
            let known = admitted.iter().any(|(j, _)| item.changes[*j].hash == *dep)
                || tx.change_seq(&item.id, &dep.0)?.is_some();
            if !known && tx.was_removed(&item.id, &dep.0)? {
                return Ok(Verdict::Answer(repaired(&item.id), Some(RejectReason::Repaired)));
            }
            if !known {
                return Ok(Verdict::Answer(DocStatus::NeedFrom, None));
            }
        }
        // The genesis is accepted only verbatim (the validator's first rule): it is the root.
        let genesis = is_genesis(&item.doc, &change.change);
        let verdict = validate(&item.doc, change, submitter, &*bindings, &objects).and_then(|created| {
            if !genesis {
                check_history(change, &history)?;
            }
            Ok(created)
        });
        // A failed database read is an error of ours, not a reason to refuse the device.
        bindings.error.take()?;
        objects.error.take()?;
        stored.error.take()?;
        let created = match verdict {
            Ok(created) => created,
            Err(rejection) => {
                for actor in &new_actors {
                    bindings.pending.remove(actor);
                }
                tracing::info!(doc = %item.id, user = submitter.user_id, reason = rejection.reason.as_str(), detail = %rejection.detail, "change rejected");
                let status = DocStatus::Rejected { reason: rejection.reason.as_str().into(), detail: rejection.detail };
                return Ok(Verdict::Answer(status, Some(rejection.reason)));
            }
        };
        for entry in &created {
            objects.add_entry(entry);
        }
        history.added.add_checked(change);
        if !genesis {
            bytes += change.change.raw_bytes().len() as i64;
            if bindings.owner_of(change.change.actor_id()).is_none() {
                new_actors.push(change.change.actor_id().clone());
                bindings.pending.insert(change.change.actor_id().clone(), Owner::User(submitter.user_id.to_owned()));
            }
        }
        admitted.push((i, created));
    }
    Ok(Verdict::Store(Admitted { changes: admitted, bytes, seen }))
}

/// Whether what was admitted still holds (the caller holds the document's lock): it was checked
/// in this transaction, or nothing was stored in or removed from the document since, and no one
/// else has bound the changes' actors meanwhile.
pub fn still_valid(tx: &dyn Tx, item: &CheckedDoc, user_id: &str, admitted: &Admitted) -> Result<bool, ApiError> {
    let Some(seen) = &admitted.seen else { return Ok(true) };
    if version(tx, &item.id)? != *seen {
        return Ok(false);
    }
    for actor in submitter_actors(item, admitted) {
        match tx.actor_owner(actor.to_bytes())? {
            None => {}
            Some(Some(owner)) if owner == user_id => {}
            Some(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// Stores admitted changes, their entries and the submitter's usage, and binds their actors to
/// the submitter.
pub fn write(
    tx: &dyn Tx,
    item: &CheckedDoc,
    user_id: &str,
    admitted: Admitted,
    stats: &mut SyncStats,
) -> Result<DocStatus, ApiError> {
    let used = tx.user_doc_bytes(&item.id, user_id)?;
    if used + admitted.bytes > MAX_USER_BYTES_PER_DOC as i64 {
        return Err(ApiError::TooLarge(format!(
            "{}: this would store more than {MAX_USER_BYTES_PER_DOC} bytes of one user's changes in one document (quota)",
            item.id
        )));
    }
    for (i, created) in &admitted.changes {
        let change = &item.changes[*i].change;
        if store_change(tx, &item.id, change)? == 1 {
            stats.documents_created += 1;
        }
        store_entries(tx, &item.id, created)?;
        if is_genesis(&item.doc, change) {
            // Genesis actors are the server's, whoever sent the genesis.
            tx.bind_actor(change.actor_id().to_bytes(), None)?;
        }
    }
    if admitted.bytes > 0 {
        tx.add_user_doc_bytes(&item.id, user_id, admitted.bytes)?;
    }
    for actor in submitter_actors(item, &admitted) {
        tx.bind_actor(actor.to_bytes(), Some(user_id))?;
        // The checks judged these changes as the submitter's: a binding made since by anyone else
        // (another request, another server process) voids them.
        if tx.actor_owner(actor.to_bytes())? != Some(Some(user_id.to_owned())) {
            return Err(tx.lost_race(format!("actor {actor} was bound concurrently")));
        }
    }
    stats.changes_stored += admitted.changes.len() as u64;
    Ok(DocStatus::Ok)
}

/// The actors of the admitted changes other than the genesis, each once: the submitter's.
fn submitter_actors<'a>(item: &'a CheckedDoc, admitted: &Admitted) -> Vec<&'a ActorId> {
    let mut actors: Vec<&ActorId> = Vec::new();
    for (i, _) in &admitted.changes {
        let change = &item.changes[*i].change;
        if !is_genesis(&item.doc, change) && !actors.contains(&change.actor_id()) {
            actors.push(change.actor_id());
        }
    }
    actors
}

/// The answer to a device whose copy holds changes `admin repair` removed: it drops its copy,
/// fetches the server's and replays its user's unsent work.
pub fn repaired(doc: &str) -> DocStatus {
    let detail = format!("{doc} was repaired on the server; fetch it again");
    DocStatus::Rejected { reason: RejectReason::Repaired.as_str().into(), detail }
}

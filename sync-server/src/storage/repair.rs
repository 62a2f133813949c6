//! `admin check` and `admin repair`, over [`Tx`]: finding stored documents that do not load, or
//! hold changes the trust boundary now refuses (a database written before the server proved
//! history well formed), and removing exactly those changes and the ones built on them.
//!
//! A document's change rows are walked in `doc_seq` order (the order they were stored, so every
//! change comes after its dependencies) and each is checked as a device's change is today: its
//! bytes, its place in the history kept so far, its entry keys and its actor. What fails, and
//! everything that depends on it, is removed; the rest is kept, its heads, entry index and
//! per-user bytes are rebuilt, and the result must load and survive save→load before anything
//! commits. Devices that hold a removed change are told to fetch the document again
//! (`RejectReason::Repaired`) and replay their users' unsent work.

use std::collections::HashSet;

use automerge::ChangeHash;
use microcohort_core::docs::{DocId, guard};
use microcohort_core::policy::{
    CheckedChange, KnownHistory, ObjectIndex, Objects, check_change, check_history, created_entries, is_genesis,
};

use super::documents::{saved_and_reloaded, saved_document, store_change, store_entries};
use super::primitives::{ChangeRecord, Tx};
use crate::error::ApiError;

/// A stored change that breaks its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offending {
    pub hash: String,
    pub reason: String,
    /// The user its actor is bound to, if any.
    pub author: Option<String>,
}

/// What `admin check` found wrong with one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocProblem {
    pub doc_id: String,
    /// Why the stored document does not load or survive save→load, if it does not.
    pub unloadable: Option<String>,
    pub offending: Vec<Offending>,
}

/// A document's change rows sorted into those kept and those removed, with why.
struct Sorted {
    kept: Vec<(ChangeRecord, CheckedChange)>,
    removed: Vec<(ChangeRecord, String)>,
}

fn sort_history(tx: &dyn Tx, doc: &DocId) -> Result<Sorted, ApiError> {
    let id = doc.to_string();
    let mut history = KnownHistory::default();
    let mut index = ObjectIndex::for_doc(doc);
    let mut kept_hashes: HashSet<ChangeHash> = HashSet::new();
    let mut sorted = Sorted { kept: Vec::new(), removed: Vec::new() };
    for row in tx.changes_after(&id, 0, i64::MAX)? {
        let verdict =
            check_change(&row.body).map_err(|r| format!("{} ({})", r.detail, r.reason.as_str())).and_then(|checked| {
                if let Some(dep) = checked.change.deps().iter().find(|dep| !kept_hashes.contains(*dep)) {
                    return Err(format!("builds on {dep}, which is removed or missing"));
                }
                if !is_genesis(doc, &checked.change) {
                    check_history(&checked, &history).map_err(|r| format!("{} ({})", r.detail, r.reason.as_str()))?;
                    if let Some(problem) = duplicate_entry(&checked, &index) {
                        return Err(problem);
                    }
                }
                Ok(checked)
            });
        match verdict {
            Ok(checked) => {
                history.add_checked(&checked);
                created_entries(&checked.change, &mut index);
                kept_hashes.insert(checked.hash);
                sorted.kept.push((row, checked));
            }
            Err(reason) => sorted.removed.push((row, reason)),
        }
    }
    Ok(sorted)
}

/// An entry key the change creates that the document already holds (the validator refuses this
/// today; earlier servers stored it, replacing the entry on every device).
fn duplicate_entry(change: &CheckedChange, index: &ObjectIndex) -> Option<String> {
    let mut probe = index.clone();
    for entry in created_entries(&change.change, &mut probe) {
        if index.has_entry(entry.container, &entry.key) {
            return Some(format!("creates entry {:?} again (duplicate_entry)", entry.key));
        }
    }
    None
}

fn author(tx: &dyn Tx, row: &ChangeRecord) -> Result<Option<String>, ApiError> {
    let actor = guard::decode_change(&row.body).ok().map(|c| c.actor_id().to_bytes().to_vec());
    Ok(match actor {
        Some(actor) => tx.actor_owner(&actor)?.flatten(),
        None => None,
    })
}

/// Every stored document that does not load, does not survive save→load, or holds changes
/// [`repair`] would remove.
pub fn check(tx: &dyn Tx) -> Result<Vec<DocProblem>, ApiError> {
    let mut problems = Vec::new();
    for id in tx.doc_ids()? {
        let Ok(doc) = DocId::parse(&id) else { continue };
        let (bytes, _) = saved_document(tx, &id)?;
        let unloadable = saved_and_reloaded(&bytes).err();
        let mut offending = Vec::new();
        for (row, reason) in sort_history(tx, &doc)?.removed {
            offending.push(Offending { hash: hex::encode(&row.hash), author: author(tx, &row)?, reason });
        }
        if unloadable.is_some() || !offending.is_empty() {
            problems.push(DocProblem { doc_id: id, unloadable, offending });
        }
    }
    Ok(problems)
}

/// Removes a document's offending changes and those built on them, rebuilds what is derived from
/// its change rows, and proves the result loads. Returns what was removed (nothing for a sound
/// document).
pub fn repair(tx: &dyn Tx, doc_id: &str, now: i64) -> Result<Vec<Offending>, ApiError> {
    let doc = DocId::parse(doc_id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let id = doc.to_string();
    tx.lock_doc(&id)?;
    let sorted = sort_history(tx, &doc)?;
    if sorted.removed.is_empty() {
        return Ok(Vec::new());
    }
    let mut removed = Vec::with_capacity(sorted.removed.len());
    for (row, reason) in &sorted.removed {
        removed.push(Offending { hash: hex::encode(&row.hash), author: author(tx, row)?, reason: reason.clone() });
        tx.remove_change(&id, &row.hash, reason, now)?;
    }
    // Heads, entry index, snapshot and per-user bytes, rebuilt from the kept rows; the rows stay
    // (their doc_seq too), only the derived tables are written again.
    tx.clear_derived(&id)?;
    let mut index = ObjectIndex::for_doc(&doc);
    for (row, checked) in &sorted.kept {
        let superseded: Vec<&[u8]> = checked.change.deps().iter().map(|dep| dep.0.as_slice()).collect();
        tx.replace_heads(&id, &superseded, &row.hash)?;
        store_entries(tx, &id, &created_entries(&checked.change, &mut index))?;
        if !is_genesis(&doc, &checked.change)
            && let Some(user) = tx.actor_owner(checked.change.actor_id().to_bytes())?.flatten()
        {
            tx.add_user_doc_bytes(&id, &user, row.body.len() as i64)?;
        }
    }
    let (bytes, _) = saved_document(tx, &id)?;
    saved_and_reloaded(&bytes)
        .map_err(|e| ApiError::Internal(format!("{id} still {e} after removing its offending changes")))?;
    Ok(removed)
}

/// Stores a change without any check, as servers before the trust boundary did: for tests that
/// build a database poisoned the old way.
pub fn store_unchecked(tx: &dyn Tx, doc_id: &str, body: &[u8]) -> Result<(), ApiError> {
    let change = guard::decode_change(body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    store_change(tx, doc_id, &change)?;
    Ok(())
}

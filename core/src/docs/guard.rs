//! Automerge calls on bytes from outside (network, disk) go through here: every error becomes a
//! [`DocError`], and a panic inside automerge is caught and reported instead of unwinding into the
//! app or the server.

use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::{AutoCommit, Change, ChangeHash, ExpandedChange};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error("malformed automerge data: {0}")]
    Malformed(String),

    #[error("document {doc} has schema version {found}, newer than this app reads ({supported}); update the app")]
    SchemaTooNew { doc: String, found: u64, supported: u64 },

    #[error("document {0} has no schema version; it was not written by Microcohort")]
    NotMicrocohort(String),
}

fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, DocError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(DocError::Malformed(format!("{what}: {message}"))),
        Err(_) => Err(DocError::Malformed(format!("{what}: the data made the decoder fail"))),
    }
}

/// Parses one change (checks its structure and checksum).
pub fn decode_change(bytes: &[u8]) -> Result<Change, DocError> {
    guarded("change", || Change::try_from(bytes).map_err(|e| e.to_string()))
}

/// Expands a change into its operations, for validation.
pub fn expand(change: &Change) -> Result<ExpandedChange, DocError> {
    guarded("change operations", || Ok(change.decode()))
}

/// Encodes operations as a change, in automerge's own encoding.
pub fn encode(ops: &ExpandedChange) -> Result<Change, DocError> {
    guarded("change encoding", || Ok(Change::from(ops.clone())))
}

/// Loads a document from saved bytes (a snapshot followed by any incremental chunks).
pub fn load(bytes: &[u8]) -> Result<AutoCommit, DocError> {
    guarded("document", || AutoCommit::load(bytes).map_err(|e| e.to_string()))
}

/// Saves a document whose history came from outside.
pub fn save(am: &mut AutoCommit) -> Result<Vec<u8>, DocError> {
    guarded("save", || Ok(am.save()))
}

/// A document's heads.
pub fn heads(am: &mut AutoCommit) -> Vec<ChangeHash> {
    guarded("heads", || Ok(am.get_heads())).unwrap_or_default()
}

/// Merges another copy of a document (from outside) into this one.
pub fn merge(am: &mut AutoCommit, other: &mut AutoCommit) -> Result<(), DocError> {
    guarded("merge", || am.merge(other).map(|_| ()).map_err(|e| e.to_string()))
}

/// Applies changes; changes whose dependencies are missing wait inside the document until they
/// arrive.
pub fn apply(am: &mut AutoCommit, changes: Vec<Change>) -> Result<(), DocError> {
    guarded("apply", || am.apply_changes(changes).map_err(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::{DocId, genesis};

    #[test]
    fn garbage_and_truncated_bytes_are_errors_not_panics() {
        let mut doc = genesis(&DocId::week("c", 1));
        let mut change = doc.get_changes(&[]).pop().unwrap();
        let bytes = change.bytes().to_vec();
        assert!(decode_change(&bytes).is_ok());
        for cut in [0, 1, 8, bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(decode_change(&bytes[..cut]), Err(DocError::Malformed(_))), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(decode_change(&flipped).is_err());
        assert!(load(b"definitely not automerge").is_err());
        let saved = doc.save();
        assert!(load(&saved[..saved.len() / 2]).is_err());
    }
}

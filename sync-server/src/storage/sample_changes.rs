//! Changes the storage tests store, made with the automerge API as a device would.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, Change, ObjType, ROOT, ReadDoc};

/// A feedback entry under `key`, with a body, committed by `week`'s current actor.
pub fn feedback_entry(week: &mut AutoCommit, key: &str) -> Change {
    let feedback = week.get(ROOT, "feedback").unwrap().unwrap().1;
    let entry = week.put_object(&feedback, key, ObjType::Map).unwrap();
    week.put(&entry, "body", "words").unwrap();
    let hash = week.commit_with(CommitOptions::default().with_time(0)).unwrap();
    week.get_change_by_hash(&hash).unwrap()
}

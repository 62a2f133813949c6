//! A sample week for property tests and the fuzz targets (feature `fixtures`): entries and a
//! co-written synthesis by three members, the checks the server runs on one more change, and
//! whether the week stays sound with a change those checks admitted.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::legacy::OpId;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ObjType, ROOT, ReadDoc};

use super::{ActorDirectory, KnownHistory, ObjectIndex, Owner, Submitter, check_change, check_history, validate};
use crate::docs::projection::project_week;
use crate::docs::{DocId, genesis, genesis_actor};

/// Mallory is the member whose changes are rewritten; Alice and Bob wrote the rest.
pub const MALLORY: &str = "mallory";

pub fn actor(name: &str) -> ActorId {
    ActorId::from(format!("actor-{name}").as_bytes())
}

struct Directory(HashMap<ActorId, Owner>);

impl ActorDirectory for Directory {
    fn owner_of(&self, actor: &ActorId) -> Option<Owner> {
        self.0.get(actor).cloned()
    }
}

pub struct SampleWeek {
    pub doc: DocId,
    pub week: AutoCommit,
    history: KnownHistory,
    index: ObjectIndex,
    directory: Directory,
    /// Every operation id the week holds, and two it does not.
    pub op_ids: Vec<OpId>,
    pub hashes: Vec<ChangeHash>,
    /// Mallory's next honest changes, each made on the whole week: an entry, edits of her
    /// entry, insertions and deletions in the synthesis.
    pub candidates: Vec<Change>,
}

fn commit(week: &mut AutoCommit, who: &str, edit: impl FnOnce(&mut AutoCommit)) -> Change {
    let mut copy = week.clone();
    copy.set_actor(actor(who));
    edit(&mut copy);
    let hash = copy.commit_with(CommitOptions::default().with_time(0)).expect("a change");
    copy.get_change_by_hash(&hash).expect("committed")
}

fn container(week: &AutoCommit, name: &str) -> automerge::ObjId {
    week.get(ROOT, name).ok().flatten().expect("a genesis container").1
}

fn entry_in(week: &mut AutoCommit, who: &str, parent: &str, key: &str) -> Change {
    let parent = container(week, parent);
    commit(week, who, |d| {
        let entry = d.put_object(&parent, key, ObjType::Map).unwrap();
        d.put(&entry, "body", "words").unwrap();
        d.put(&entry, "created_at", 0i64).unwrap();
    })
}

impl SampleWeek {
    pub fn new() -> Self {
        let doc = DocId::week("c1", 6);
        let mut week = genesis(&doc);
        let text = container(&week, "synthesis");
        let submissions = container(&week, "submissions");
        let steps: [&dyn Fn(&mut AutoCommit) -> Change; 6] = [
            &|w| entry_in(w, "alice", "submissions", "alice/s1"),
            &|w| entry_in(w, "bob", "feedback", "bob/f1"),
            &|w| entry_in(w, MALLORY, "feedback", "mallory/f1"),
            &|w| commit(w, "alice", |d| d.splice_text(&text, 0, 0, "We listened first.").unwrap()),
            &|w| commit(w, "bob", |d| d.splice_text(&text, 3, 8, "asked").unwrap()),
            &|w| {
                let (_, entry) = w.get(&submissions, "alice/s1").unwrap().unwrap();
                commit(w, "alice", |d| d.put(&entry, "body", "edited").unwrap())
            },
        ];
        for step in steps {
            let change = step(&mut week);
            week.apply_changes([change]).expect("the sample applies");
        }
        let mut history = KnownHistory::default();
        let (mut hashes, mut op_ids) = (Vec::new(), Vec::new());
        for change in week.get_changes(&[]) {
            let expanded = change.decode();
            for offset in 0..expanded.operations.len() as u64 {
                op_ids.push(OpId(expanded.start_op.get() + offset, expanded.actor_id.clone()));
            }
            history.add(&expanded, change.hash());
            hashes.push(change.hash());
        }
        op_ids.push(OpId(999, actor(MALLORY)));
        op_ids.push(OpId(2, actor("nobody")));
        let index = ObjectIndex::from_document(&doc, &week);
        let directory = Directory(HashMap::from([
            (genesis_actor(&doc), Owner::Server),
            (actor("alice"), Owner::User("alice".into())),
            (actor("bob"), Owner::User("bob".into())),
            (actor(MALLORY), Owner::User(MALLORY.into())),
        ]));
        let feedback = container(&week, "feedback");
        let (_, own) = week.get(&feedback, "mallory/f1").unwrap().unwrap();
        let candidates = vec![
            entry_in(&mut week, MALLORY, "feedback", "mallory/f2"),
            commit(&mut week, MALLORY, |d| d.put(&own, "body", "rewritten").unwrap()),
            commit(&mut week, MALLORY, |d| d.put(&own, "retracted", true).unwrap()),
            commit(&mut week, MALLORY, |d| d.splice_text(&text, 2, 0, " all").unwrap()),
            commit(&mut week, MALLORY, |d| d.splice_text(&text, 0, 4, "").unwrap()),
            commit(&mut week, MALLORY, |d| d.splice_text(&text, 1, 2, "XY").unwrap()),
        ];
        Self { doc, week, history, index, directory, op_ids, hashes, candidates }
    }

    /// The change, if every check the server runs on a device's change admits it, with the
    /// widest permissions (a facilitator who is also this week's synthesizer) so that only its
    /// structure can refuse it.
    pub fn admit(&self, bytes: &[u8]) -> Option<Change> {
        let checked = check_change(bytes).ok()?;
        // The server asks for dependencies it lacks and skips changes it has.
        if checked.change.deps().iter().any(|d| !self.hashes.contains(d)) || self.hashes.contains(&checked.hash) {
            return None;
        }
        let submitter =
            Submitter { user_id: MALLORY, facilitator: true, may_edit_synthesis: true, leads_critique: true };
        validate(&self.doc, &checked, submitter, &self.directory, &self.index).ok()?;
        check_history(&checked, &self.history).ok()?;
        Some(checked.change)
    }

    /// Whether the week with the change applies it, saves, loads with the same heads, projects,
    /// and merges into another device's copy loaded from the saved week.
    pub fn stays_sound(&self, change: Change) -> Result<(), String> {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut server = self.week.clone();
            server.apply_changes([change.clone()]).map_err(|e| format!("apply: {e}"))?;
            let mut loaded = AutoCommit::load(&server.save()).map_err(|e| format!("load after save: {e}"))?;
            if loaded.get_heads() != server.get_heads() {
                return Err("other heads after save and load".to_string());
            }
            let _ = project_week(&loaded);
            let mut device = AutoCommit::load(&self.week.clone().save()).map_err(|e| format!("device copy: {e}"))?;
            device.apply_changes([change.clone()]).map_err(|e| format!("device merge: {e}"))?;
            if device.get_heads() != loaded.get_heads() {
                return Err("the device merged to other heads".to_string());
            }
            AutoCommit::load(&device.save()).map_err(|e| format!("device reload: {e}"))?;
            Ok(())
        }));
        outcome.unwrap_or_else(|_| Err("automerge panicked".into()))
    }
}

impl Default for SampleWeek {
    fn default() -> Self {
        Self::new()
    }
}

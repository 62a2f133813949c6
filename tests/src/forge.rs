//! Changes no honest device sends, made the way an attacker holding the automerge library and a
//! learner's token can: with the automerge API, by rewriting a change's decoded operations and
//! encoding them again, or by writing the chunk's bytes by hand.

use std::num::NonZeroU64;

use automerge::legacy::{ElementId, Key, ObjectId, OpId};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ExpandedChange, ObjType, ROOT, ReadDoc};
use sha2::{Digest, Sha256};

/// A document as an attacker's client holds it.
pub struct Forger {
    pub doc: AutoCommit,
}

impl Forger {
    /// A copy of a document from change bytes (a sync's answer).
    pub fn from_changes(doc: AutoCommit, changes: &[impl AsRef<[u8]>]) -> Self {
        let mut doc = doc;
        let decoded: Vec<Change> = changes.iter().filter_map(|c| Change::try_from(c.as_ref()).ok()).collect();
        doc.apply_changes(decoded).expect("the server's changes apply");
        Self { doc }
    }

    pub fn container(&self, name: &str) -> automerge::ObjId {
        self.doc.get(ROOT, name).expect("read").expect("container").1
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// One change made with the automerge API as `actor`, on a copy (the forger's document is
    /// not changed): honest bytes an attacker may then rewrite.
    pub fn change(&self, actor: &ActorId, edit: impl FnOnce(&mut AutoCommit)) -> Change {
        let mut copy = self.doc.clone();
        copy.set_actor(actor.clone());
        edit(&mut copy);
        let hash = copy.commit_with(CommitOptions::default().with_time(0)).expect("a change");
        copy.get_change_by_hash(&hash).expect("committed")
    }

    /// Makes the change part of the forger's document (as if the server accepted it).
    pub fn keep(&mut self, change: &Change) {
        self.doc.apply_changes([change.clone()]).expect("apply");
    }

    /// An entry under `key` in a container, with a body, as `actor`.
    pub fn entry(&self, actor: &ActorId, container: &str, key: &str) -> Change {
        let parent = self.container(container);
        self.change(actor, |d| {
            let entry = d.put_object(&parent, key, ObjType::Map).unwrap();
            d.put(&entry, "body", "words").unwrap();
            d.put(&entry, "created_at", 0i64).unwrap();
        })
    }

    /// The op id of an entry's object.
    pub fn entry_id(&self, container: &str, key: &str) -> OpId {
        let parent = self.container(container);
        let (_, id) = self.doc.get(&parent, key).unwrap().expect("entry");
        op_id(&id)
    }
}

/// The legacy op id of an object id.
pub fn op_id(id: &automerge::ObjId) -> OpId {
    match id {
        automerge::ObjId::Id(counter, actor, _) => OpId(*counter, actor.clone()),
        automerge::ObjId::Root => panic!("the root has no op id"),
    }
}

/// Encodes `change`'s operations again after `edit`: automerge's own encoder, any content.
pub fn rewrite(change: &Change, edit: impl FnOnce(&mut ExpandedChange)) -> Vec<u8> {
    let mut expanded = change.decode();
    edit(&mut expanded);
    expanded.hash = None;
    Change::from(expanded).raw_bytes().to_vec()
}

pub fn with_seq(change: &Change, seq: u64) -> Vec<u8> {
    rewrite(change, |c| c.seq = seq)
}

/// The change with its operations numbered from `start_op`; its references to its own
/// operations follow them.
pub fn with_start_op(change: &Change, start_op: u64) -> Vec<u8> {
    let (old, actor) = (change.start_op().get(), change.actor_id().clone());
    let end = old + change.len() as u64;
    let moved = |id: &OpId| {
        if id.1 == actor && (old..end).contains(&id.0) {
            OpId(id.0 - old + start_op, actor.clone())
        } else {
            id.clone()
        }
    };
    rewrite(change, |c| {
        c.start_op = NonZeroU64::new(start_op).expect("non-zero");
        for op in &mut c.operations {
            if let ObjectId::Id(id) = &op.obj {
                op.obj = ObjectId::Id(moved(id));
            }
            if let Key::Seq(ElementId::Id(id)) = &op.key {
                op.key = Key::Seq(ElementId::Id(moved(id)));
            }
        }
    })
}

pub fn elem(id: &OpId) -> Key {
    Key::Seq(ElementId::Id(id.clone()))
}

pub fn object(id: &OpId) -> ObjectId {
    ObjectId::Id(id.clone())
}

/// The change as automerge compresses it for the wire (a DEFLATE chunk, type 2) when it is
/// large enough to be worth it.
pub fn compressed(change: &Change) -> Vec<u8> {
    let mut change = change.clone();
    change.bytes().to_vec()
}

/// The same chunk with one checksum byte changed.
pub fn bad_checksum(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[4] ^= 0xff;
    out
}

fn uleb(out: &mut Vec<u8>, value: u64) {
    leb128::write::unsigned(out, value).expect("write to a Vec");
}

fn sleb(out: &mut Vec<u8>, value: i64) {
    leb128::write::signed(out, value).expect("write to a Vec");
}

/// A change chunk written by hand: header fields and operation columns `(spec, bytes)`, with a
/// correct length and checksum.
pub fn chunk(actor: &ActorId, seq: u64, start_op: u64, deps: &[ChangeHash], columns: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut data = Vec::new();
    uleb(&mut data, deps.len() as u64);
    for dep in deps {
        data.extend_from_slice(&dep.0);
    }
    uleb(&mut data, actor.to_bytes().len() as u64);
    data.extend_from_slice(actor.to_bytes());
    uleb(&mut data, seq);
    uleb(&mut data, start_op);
    sleb(&mut data, 0);
    uleb(&mut data, 0); // message
    uleb(&mut data, 0); // other actors
    uleb(&mut data, columns.len() as u64);
    for (spec, bytes) in columns {
        uleb(&mut data, *spec);
        uleb(&mut data, bytes.len() as u64);
    }
    for (_, bytes) in columns {
        data.extend_from_slice(bytes);
    }
    let mut body = vec![1u8];
    uleb(&mut body, data.len() as u64);
    body.extend_from_slice(&data);
    let hash = Sha256::digest(&body);
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83];
    out.extend_from_slice(&hash[..4]);
    out.extend_from_slice(&body);
    out
}

fn uleb_bytes(value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    uleb(&mut out, value);
    out
}

/// A run of `count` copies of one unsigned value, as automerge's run-length encoding writes it.
pub fn run(count: u64, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    sleb(&mut out, count as i64);
    uleb(&mut out, value);
    out
}

/// A change of a few dozen bytes that declares `ops` operations (puts of null at the root key
/// "k"): what automerge would expand before anything else looks at it.
pub fn declaring_ops(actor: &ActorId, seq: u64, start_op: u64, deps: &[ChangeHash], ops: u64) -> Vec<u8> {
    let mut key = Vec::new();
    sleb(&mut key, ops as i64);
    uleb(&mut key, 1);
    key.push(b'k');
    let columns = [
        (0x15, key),             // key strings
        (0x34, uleb_bytes(ops)), // insert: a run of `ops` falses
        (0x42, run(ops, 1)),     // action: put
        (0x56, run(ops, 0)),     // value metadata: null
        (0x70, run(ops, 0)),     // predecessor groups: none
    ];
    chunk(actor, seq, start_op, deps, &columns)
}

/// Writes a value of `chars` characters into a fresh entry: a change far over the app's caps.
pub fn huge_value(forger: &Forger, actor: &ActorId, key: &str, chars: usize) -> Change {
    let parent = forger.container("feedback");
    forger.change(actor, |d| {
        let entry = d.put_object(&parent, key, ObjType::Map).unwrap();
        d.put(&entry, "body", "x".repeat(chars)).unwrap();
    })
}

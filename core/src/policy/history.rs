//! Well-formed history: whether a document stays loadable, and mergeable by every device, with a
//! change added. automerge's own `apply_changes` checks little of this (a change with a gap in
//! its actor's sequence, a reused operation counter or a predecessor from another object applies
//! without an error, and the document then fails to save and load, or to merge elsewhere), so the
//! rules are checked here, from the change's operations and what the document's history already
//! holds, without loading the document:
//!
//! - only a document's first change has no dependencies;
//! - an actor's changes in a document are numbered 1, 2, 3, … with no gap or reuse, and each
//!   builds on the one before;
//! - a change's first operation counter is above every counter of its dependencies and of its
//!   actor's previous change (so operation ids are unique and increase along the history);
//! - every operation a change refers to (object, element, predecessor) is in its own history:
//!   itself or what it builds on, never a concurrent change;
//! - an operation writes to the root or to an object the document (or this change) created, with
//!   a map key for a map and a sequence element for a list or text;
//! - an insert follows the head or an element of the same sequence; any other sequence operation
//!   names an existing element of that sequence;
//! - predecessors exist, come earlier, name the same object and key (or element), are sorted and
//!   distinct; an insert has none, a deletion at least one.
//!
//! [`History`] says what the document holds; the server answers from its change rows,
//! [`KnownHistory`] from changes in memory (tests, the fuzz target, the repair of stored
//! documents).

use std::collections::{HashMap, HashSet};

use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
use automerge::{ActorId, ChangeHash, ExpandedChange, ObjType};

use super::encoding::CheckedChange;
use super::{RejectReason, Rejection, reject};

/// What an existing operation was, as far as later operations may refer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpFacts {
    pub obj: ObjectId,
    pub key: Key,
    pub insert: bool,
    /// The kind of object the operation made, if it made one.
    pub made: Option<ObjType>,
    /// The number of the change holding it, among its actor's changes.
    pub seq: u64,
}

impl OpFacts {
    pub fn of(op: &automerge::legacy::Op, seq: u64) -> Self {
        let made = match op.action {
            OpType::Make(kind) => Some(kind),
            _ => None,
        };
        Self { obj: op.obj.clone(), key: op.key.clone(), insert: op.insert, made, seq }
    }
}

/// What a document's history holds.
pub trait History {
    /// The actor's last change in the document: `(seq, max_op)`.
    fn actor_tip(&self, actor: &ActorId) -> Option<(u64, u64)>;
    /// The highest operation counter of a change the document holds.
    fn max_op(&self, change: &ChangeHash) -> Option<u64>;
    /// An operation of the document.
    fn op(&self, id: &OpId) -> Option<OpFacts>;
    /// Whether `actor`'s change number `seq` (a stored one) is in the history of `deps`: among
    /// them or what they build on.
    fn holds(&self, deps: &[ChangeHash], actor: &ActorId, seq: u64) -> bool;
}

/// A change as the history graph needs it.
#[derive(Debug, Clone)]
struct Node {
    actor: ActorId,
    seq: u64,
    max_op: u64,
    deps: Vec<ChangeHash>,
}

/// A history in memory, built change by change.
#[derive(Debug, Clone, Default)]
pub struct KnownHistory {
    tips: HashMap<ActorId, (u64, u64)>,
    nodes: HashMap<ChangeHash, Node>,
    ops: HashMap<OpId, OpFacts>,
}

impl KnownHistory {
    /// Records a change (checked, or trusted) as part of the history.
    pub fn add(&mut self, change: &ExpandedChange, hash: ChangeHash) {
        let start = change.start_op.get();
        let max_op = start + change.operations.len() as u64 - 1;
        let tip = self.tips.entry(change.actor_id.clone()).or_insert((0, 0));
        *tip = (tip.0.max(change.seq), tip.1.max(max_op));
        let node = Node { actor: change.actor_id.clone(), seq: change.seq, max_op, deps: change.deps.clone() };
        self.nodes.insert(hash, node);
        for (offset, op) in change.operations.iter().enumerate() {
            self.ops.insert(OpId(start + offset as u64, change.actor_id.clone()), OpFacts::of(op, change.seq));
        }
    }

    pub fn add_checked(&mut self, change: &CheckedChange) {
        self.add(&change.ops, change.hash);
    }

    /// Records a change known only by its place in the graph (enough for [`History::holds`]).
    pub fn add_node(&mut self, hash: ChangeHash, actor: ActorId, seq: u64, max_op: u64, deps: Vec<ChangeHash>) {
        self.nodes.insert(hash, Node { actor, seq, max_op, deps });
    }

    /// Walks back from `deps` through the changes held here; returns the highest number of
    /// `actor` met, and the dependencies not held here.
    fn walk(&self, deps: &[ChangeHash], actor: &ActorId) -> (u64, Vec<ChangeHash>) {
        let mut seen = 0;
        let mut outside = Vec::new();
        let mut visited: HashSet<ChangeHash> = HashSet::new();
        let mut stack: Vec<ChangeHash> = deps.to_vec();
        while let Some(hash) = stack.pop() {
            if !visited.insert(hash) {
                continue;
            }
            match self.nodes.get(&hash) {
                Some(node) => {
                    if node.actor == *actor {
                        seen = seen.max(node.seq);
                    }
                    stack.extend(node.deps.iter().copied());
                }
                None => outside.push(hash),
            }
        }
        (seen, outside)
    }
}

impl History for KnownHistory {
    fn actor_tip(&self, actor: &ActorId) -> Option<(u64, u64)> {
        self.tips.get(actor).copied()
    }

    fn max_op(&self, change: &ChangeHash) -> Option<u64> {
        self.nodes.get(change).map(|node| node.max_op)
    }

    fn op(&self, id: &OpId) -> Option<OpFacts> {
        self.ops.get(id).cloned()
    }

    fn holds(&self, deps: &[ChangeHash], actor: &ActorId, seq: u64) -> bool {
        // An actor's change builds on its previous one: holding a later one holds this one.
        self.walk(deps, actor).0 >= seq
    }
}

/// A stored history with the changes of the batch being checked on top.
pub struct Layered<'a> {
    pub base: &'a dyn History,
    pub added: KnownHistory,
}

impl<'a> Layered<'a> {
    pub fn new(base: &'a dyn History) -> Self {
        Self { base, added: KnownHistory::default() }
    }
}

impl History for Layered<'_> {
    fn actor_tip(&self, actor: &ActorId) -> Option<(u64, u64)> {
        self.added.actor_tip(actor).or_else(|| self.base.actor_tip(actor))
    }

    fn max_op(&self, change: &ChangeHash) -> Option<u64> {
        self.added.max_op(change).or_else(|| self.base.max_op(change))
    }

    fn op(&self, id: &OpId) -> Option<OpFacts> {
        self.added.op(id).or_else(|| self.base.op(id))
    }

    fn holds(&self, deps: &[ChangeHash], actor: &ActorId, seq: u64) -> bool {
        let (added, below) = self.added.walk(deps, actor);
        added >= seq || (!below.is_empty() && self.base.holds(&below, actor, seq))
    }
}

fn bad(reason: RejectReason, offset: usize, detail: impl std::fmt::Display) -> Rejection {
    Rejection { reason, detail: format!("operation {offset}: {detail}") }
}

/// Checks that the document stays well formed with `change` added. Its dependencies are present
/// (the caller asks for any that are not before checking).
pub fn check_history(change: &CheckedChange, history: &dyn History) -> Result<(), Rejection> {
    let ops = &change.ops;
    let actor = &ops.actor_id;
    if ops.deps.is_empty() {
        return reject(RejectReason::BadDependency, "only a document's first change builds on nothing");
    }
    let tip = history.actor_tip(actor);
    let expected = tip.map_or(1, |(seq, _)| seq + 1);
    if ops.seq != expected {
        return reject(
            RejectReason::BadSequence,
            format!("actor {actor}'s next change in this document is number {expected}, not {}", ops.seq),
        );
    }
    // Whether the change's history holds a change, asked once per change.
    let mut asked: HashMap<(ActorId, u64), bool> = HashMap::new();
    let mut holds = |who: &ActorId, seq: u64| {
        *asked.entry((who.clone(), seq)).or_insert_with(|| history.holds(&ops.deps, who, seq))
    };
    if expected > 1 && !holds(actor, expected - 1) {
        return reject(
            RejectReason::BadDependency,
            format!("change {expected} of actor {actor} does not build on its change {}", expected - 1),
        );
    }
    let start = ops.start_op.get();
    let mut floor = tip.map_or(0, |(_, max_op)| max_op);
    for dep in &ops.deps {
        floor = floor.max(history.max_op(dep).unwrap_or(0));
    }
    if start <= floor {
        return reject(
            RejectReason::BadCounter,
            format!("operations start at {start}, not above {floor}, the highest counter the change builds on"),
        );
    }
    if start + ops.operations.len() as u64 > u64::from(u32::MAX) {
        return reject(RejectReason::BadCounter, "operation counters past 2^32");
    }
    // Operations of this change, visible to its later operations; others only if the change
    // builds on the one holding them.
    let mut own: HashMap<OpId, OpFacts> = HashMap::new();
    let mut find = |id: &OpId, own: &HashMap<OpId, OpFacts>| match own.get(id) {
        Some(facts) => Some(facts.clone()),
        None => history.op(id).filter(|facts| holds(id.actor(), facts.seq)),
    };
    for (offset, op) in ops.operations.iter().enumerate() {
        let id = OpId(start + offset as u64, actor.clone());
        let kind = match &op.obj {
            ObjectId::Root => ObjType::Map,
            ObjectId::Id(obj) => match find(obj, &own).and_then(|facts| facts.made) {
                Some(kind) if obj.counter() < id.counter() => kind,
                _ => return Err(bad(RejectReason::UnknownObject, offset, format!("no object {obj:?}"))),
            },
        };
        let sequence = matches!(kind, ObjType::List | ObjType::Text);
        match (&op.key, sequence) {
            (Key::Map(_), false) if !op.insert => {}
            (Key::Map(_), _) => {
                return Err(bad(RejectReason::BadElement, offset, "a map key on a sequence, or an insert into a map"));
            }
            (Key::Seq(_), false) => return Err(bad(RejectReason::BadElement, offset, "a sequence element on a map")),
            (Key::Seq(element), true) => check_element(op, element, &id, offset, |e| find(e, &own))?,
        }
        if op.insert && !op.pred.is_empty() {
            return Err(bad(RejectReason::BadPred, offset, "an insert overwrites nothing"));
        }
        if matches!(op.action, OpType::Delete) && op.pred.is_empty() {
            return Err(bad(RejectReason::BadPred, offset, "a deletion names what it deletes"));
        }
        let mut previous: Option<&OpId> = None;
        for pred in op.pred.iter() {
            if previous.is_some_and(|p| p >= pred) {
                return Err(bad(RejectReason::BadPred, offset, "predecessors are sorted and distinct"));
            }
            previous = Some(pred);
            let target = find(pred, &own)
                .filter(|_| pred.counter() < id.counter())
                .ok_or_else(|| bad(RejectReason::BadPred, offset, format!("no earlier operation {pred:?}")))?;
            let same_place = match &op.key {
                Key::Seq(ElementId::Id(element)) => {
                    pred == element || (!target.insert && target.key == Key::Seq(ElementId::Id(element.clone())))
                }
                key => !target.insert && target.key == *key,
            };
            if target.obj != op.obj || !same_place {
                return Err(bad(RejectReason::BadPred, offset, format!("{pred:?} is in another object or key")));
            }
        }
        own.insert(id, OpFacts::of(op, ops.seq));
    }
    Ok(())
}

/// An insert follows the head or an element of the same sequence; any other operation on a
/// sequence names one of its elements.
fn check_element(
    op: &automerge::legacy::Op,
    element: &ElementId,
    id: &OpId,
    offset: usize,
    mut find: impl FnMut(&OpId) -> Option<OpFacts>,
) -> Result<(), Rejection> {
    match element {
        ElementId::Head if op.insert => Ok(()),
        ElementId::Head => Err(bad(RejectReason::BadElement, offset, "only an insert may name the sequence's head")),
        ElementId::Id(target) => match find(target) {
            Some(facts) if facts.insert && facts.obj == op.obj && target.counter() < id.counter() => Ok(()),
            _ => Err(bad(RejectReason::BadElement, offset, format!("no element {target:?} in this sequence"))),
        },
    }
}

//! The dependency graphs of recently written documents, kept between requests so that proving a
//! change builds on what it refers to ([`History::seen`](microcohort_core::policy::History))
//! walks memory instead of reading every change row of the document.
//!
//! A graph is topped up from the rows stored after it before each use (`doc_seq` grows in commit
//! order, and writers hold the document's lock), so it never misses a change; one whose last row
//! is no longer stored as it was (a write rolled back after the graph read it) is read again. A
//! change `admin repair` removed may stay in it harmlessly: no kept change depends on a removed
//! one, so a walk from a stored change never reaches it. The cache holds a bounded number of changes in all;
//! the documents used least recently go first.

use std::collections::HashMap;
use std::sync::Mutex;

use automerge::{ActorId, ChangeHash};

use super::primitives::GraphRow;

/// A document's changes as a graph: actors and dependencies by index.
#[derive(Debug, Default)]
pub struct DocGraph {
    /// The last `doc_seq` read into the graph.
    pub upto: i64,
    /// The hash stored at `upto`, to tell the graph is still the document's.
    pub last: Option<ChangeHash>,
    index: HashMap<ChangeHash, u32>,
    nodes: Vec<Node>,
    actors: Vec<ActorId>,
}

#[derive(Debug)]
struct Node {
    actor: u32,
    seq: u64,
    deps: Vec<u32>,
}

impl DocGraph {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn actor_index(&mut self, actor: &[u8]) -> u32 {
        match self.actors.iter().position(|a| a.to_bytes() == actor) {
            Some(i) => i as u32,
            None => {
                self.actors.push(ActorId::from(actor));
                (self.actors.len() - 1) as u32
            }
        }
    }

    /// Adds a stored change (rows come in `doc_seq` order, so its dependencies are known).
    pub fn add(&mut self, row: &GraphRow) {
        let Ok(hash) = ChangeHash::try_from(row.hash.as_slice()) else { return };
        if row.doc_seq > self.upto {
            self.upto = row.doc_seq;
            self.last = Some(hash);
        }
        if self.index.contains_key(&hash) {
            return;
        }
        let deps = row
            .deps
            .chunks(32)
            .filter_map(|dep| ChangeHash::try_from(dep).ok())
            .filter_map(|dep| self.index.get(&dep).copied())
            .collect();
        let actor = self.actor_index(&row.actor);
        self.index.insert(hash, self.nodes.len() as u32);
        self.nodes.push(Node { actor, seq: row.seq.max(0) as u64, deps });
    }

    /// The highest number among `actor`'s changes in the history of `deps`; 0 if none.
    pub fn seen(&self, deps: &[ChangeHash], actor: &ActorId) -> u64 {
        let Some(wanted) = self.actors.iter().position(|a| a == actor) else { return 0 };
        let mut visited = vec![false; self.nodes.len()];
        let mut stack: Vec<u32> = deps.iter().filter_map(|d| self.index.get(d).copied()).collect();
        let mut best = 0;
        while let Some(i) = stack.pop() {
            let i = i as usize;
            if std::mem::replace(&mut visited[i], true) {
                continue;
            }
            let node = &self.nodes[i];
            if node.actor as usize == wanted {
                best = best.max(node.seq);
            }
            stack.extend(node.deps.iter().copied());
        }
        best
    }
}

/// Changes held in all before the least recently used documents are dropped: about 20 MB.
const CHANGES_HELD: usize = 250_000;

#[derive(Default)]
struct Held {
    docs: HashMap<String, (u64, DocGraph)>,
    clock: u64,
    changes: usize,
}

/// Graphs between requests. A request takes a document's graph out and puts it back when done.
#[derive(Default)]
pub struct GraphCache {
    held: Mutex<Held>,
}

impl GraphCache {
    pub fn take(&self, doc: &str) -> Option<DocGraph> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let (_, graph) = held.docs.remove(doc)?;
        held.changes -= graph.len();
        Some(graph)
    }

    pub fn put(&self, doc: &str, graph: DocGraph) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.clock += 1;
        held.changes += graph.len();
        let now = held.clock;
        held.docs.insert(doc.to_owned(), (now, graph));
        while held.changes > CHANGES_HELD && held.docs.len() > 1 {
            let Some(oldest) = held.docs.iter().min_by_key(|(_, (used, _))| *used).map(|(doc, _)| doc.clone()) else {
                break;
            };
            if let Some((_, graph)) = held.docs.remove(&oldest) {
                held.changes -= graph.len();
            }
        }
    }
}

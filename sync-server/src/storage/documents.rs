//! Documents as change rows, over [`Tx`]: storing a change and moving the heads, the
//! validator's object index, actor bindings, snapshots, and the server's own roster edits.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use automerge::legacy::{Key, OpId, OpType};
use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ExpandedChange};
use microcohort_core::docs::guard;
use microcohort_core::docs::schema::Container;
use microcohort_core::docs::{DocId, genesis};
use microcohort_core::domain::arms::Arm;
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::domain::roster::{Member, MemberRole, Roster};
use microcohort_core::domain::time::DayStart;
use microcohort_core::policy::history::OpFacts;
use microcohort_core::policy::{
    ActorDirectory, History, NewEntry, ObjKey, ObjectIndex, ObjectKind, Objects, Owner, created_entries,
    genesis_container,
};
use microcohort_core::sync::wire::PackFile;
use serde_bytes::ByteBuf;

use super::graph_cache::{DocGraph, GraphCache};
use super::primitives::{MemberRecord, NewChange, ObjectRow, Tx};
use crate::error::ApiError;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(err.to_string())
}

/// Stores one change (its dependencies are present) and moves the document's heads; returns
/// its `doc_seq`.
pub fn store_change(tx: &dyn Tx, doc: &str, change: &Change) -> Result<i64, ApiError> {
    let deps: Vec<u8> = change.deps().iter().flat_map(|h| h.0).collect();
    let hash = change.hash();
    let actor = change.actor_id().to_bytes();
    let start_op = change.start_op().get() as i64;
    // What is known to be in its history: everything stored, when it builds on every head;
    // otherwise at least what its dependencies' histories hold.
    let mut sorted: Vec<&[u8]> = change.deps().iter().map(|d| d.0.as_slice()).collect();
    sorted.sort_unstable();
    let base_seq = if tx.heads(doc)? == sorted {
        None
    } else {
        let mut base = 0;
        for dep in change.deps() {
            base = base.max(tx.change_facts(doc, &dep.0)?.map_or(0, |(_, base)| base));
        }
        Some(base)
    };
    let row = NewChange {
        hash: &hash.0,
        actor,
        seq: change.seq() as i64,
        deps: &deps,
        body: change.raw_bytes(),
        start_op,
        max_op: start_op + change.len() as i64 - 1,
        base_seq,
    };
    let doc_seq = tx.append_change(doc, &row)?;
    let superseded: Vec<&[u8]> = change.deps().iter().map(|dep| dep.0.as_slice()).collect();
    tx.replace_heads(doc, &superseded, &hash.0)?;
    Ok(doc_seq)
}

pub fn store_entries(tx: &dyn Tx, doc: &str, created: &[NewEntry]) -> Result<(), ApiError> {
    for entry in created {
        let row = ObjectRow {
            counter: entry.id.0 as i64,
            actor: entry.id.1.to_bytes().to_vec(),
            container: entry.container.name().to_owned(),
            key: entry.key.clone(),
            owner: entry.owner.clone(),
            stored_at: now_ms(),
        };
        tx.insert_object(doc, &row)?;
    }
    Ok(())
}

/// A document's objects as its entry table holds them, row by row, with the entries created
/// earlier in the same request on top.
pub struct StoredObjects<'a> {
    tx: &'a dyn Tx,
    doc: &'a str,
    /// The genesis containers and the entries this request created.
    known: ObjectIndex,
    /// Entries read from the table during this request (a stored entry never changes kind).
    read: ReadOnce<ObjKey, ObjectKind>,
    pub error: LookupError,
}

impl<'a> StoredObjects<'a> {
    pub fn new(tx: &'a dyn Tx, doc: &'a DocId, id: &'a str) -> Self {
        Self { tx, doc: id, known: ObjectIndex::for_doc(doc), read: ReadOnce::default(), error: LookupError::default() }
    }

    pub fn add_entry(&mut self, entry: &NewEntry) {
        self.known.add_entry(entry);
    }
}

impl Objects for StoredObjects<'_> {
    fn kind(&self, id: &ObjKey) -> Option<ObjectKind> {
        if let Some(kind) = self.known.kind(id) {
            return Some(kind);
        }
        self.read.get(id, &self.error, || {
            let row = self.tx.object(self.doc, id.0 as i64, id.1.to_bytes())?;
            Ok(row.and_then(|(container, owner)| {
                Some(ObjectKind::Entry { container: Container::from_name(&container)?, owner })
            }))
        })
    }

    fn has_entry(&self, container: Container, key: &str) -> bool {
        self.known.has_entry(container, key)
            || self.error.keep(self.tx.entry_exists(self.doc, container.name(), key)).unwrap_or(false)
    }
}

/// Fills in what the trust boundary's schema version added to existing change rows: for each
/// row `(doc, hash, body)` that decodes, its operation counters (`set_ops(doc, hash, start_op,
/// max_op)`) and the keys of the objects it made (`set_key(doc, counter, actor, key)`). A row
/// that does not decode keeps none; `admin check` reports its document.
pub fn backfill_rows<E>(
    rows: Vec<(String, Vec<u8>, Vec<u8>)>,
    mut set_ops: impl FnMut(&str, &[u8], i64, i64) -> Result<(), E>,
    mut set_key: impl FnMut(&str, i64, &[u8], &str) -> Result<(), E>,
) -> Result<(), E> {
    for (doc, hash, body) in rows {
        let Ok(change) = guard::decode_change(&body) else { continue };
        let Ok(ops) = guard::expand(&change) else { continue };
        let start = change.start_op().get() as i64;
        set_ops(&doc, &hash, start, start + change.len() as i64 - 1)?;
        for (offset, op) in ops.operations.iter().enumerate() {
            if let (OpType::Make(_), Key::Map(key)) = (&op.action, &op.key) {
                set_key(&doc, start + offset as i64, change.actor_id().to_bytes(), key)?;
            }
        }
    }
    Ok(())
}

/// Rows read during one request, each once: what is stored does not change while the request
/// runs (or, checked before a write transaction, is checked again if it did). A failed read is
/// kept in the request's [`LookupError`] and read again when asked again.
struct ReadOnce<K, V>(RefCell<HashMap<K, Option<V>>>);

impl<K, V> Default for ReadOnce<K, V> {
    fn default() -> Self {
        Self(RefCell::default())
    }
}

impl<K: Eq + std::hash::Hash + Clone, V: Clone> ReadOnce<K, V> {
    /// `key`'s row, from `read` on first need; `None` for no row or a failed read.
    fn get(&self, key: &K, error: &LookupError, read: impl FnOnce() -> Result<Option<V>, ApiError>) -> Option<V> {
        if let Some(known) = self.0.borrow().get(key) {
            return known.clone();
        }
        let value = error.keep(read())?;
        self.0.borrow_mut().insert(key.clone(), value.clone());
        value
    }
}

/// Lookups that failed in a database read made through a trait that cannot return errors (the
/// validator's [`ActorDirectory`] and [`History`]): the first one is kept, and the caller checks
/// it before trusting a verdict.
#[derive(Default)]
pub struct LookupError(RefCell<Option<ApiError>>);

impl LookupError {
    fn keep<T>(&self, result: Result<T, ApiError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.0.borrow_mut().get_or_insert(err);
                None
            }
        }
    }

    /// The first failed lookup, if any.
    pub fn take(&self) -> Result<(), ApiError> {
        self.0.borrow_mut().take().map_or(Ok(()), Err)
    }
}

/// A document's history as its change rows hold it, for [`microcohort_core::policy::check_history`].
/// The changes it decodes to answer are kept for the rest of the request.
pub struct StoredHistory<'a> {
    tx: &'a dyn Tx,
    /// The document, parsed (`doc` is its id as stored).
    doc_id: &'a DocId,
    doc: &'a str,
    decoded: RefCell<Vec<Rc<ExpandedChange>>>,
    /// The document's heads, read on first need.
    heads: RefCell<Option<Vec<ChangeHash>>>,
    /// Stored changes' `(max_op, base_seq)` read during this request (they never change).
    facts: ReadOnce<ChangeHash, (i64, i64)>,
    /// The dependency graph, for a change that does not build on every head: taken from the
    /// cache (or read) on first need, put back when the request is done.
    graph: RefCell<Option<DocGraph>>,
    graphs: &'a GraphCache,
    pub error: LookupError,
}

impl<'a> StoredHistory<'a> {
    pub fn new(tx: &'a dyn Tx, doc_id: &'a DocId, doc: &'a str, graphs: &'a GraphCache) -> Self {
        Self {
            tx,
            doc_id,
            doc,
            decoded: RefCell::default(),
            heads: RefCell::default(),
            facts: ReadOnce::default(),
            graph: RefCell::default(),
            graphs,
            error: LookupError::default(),
        }
    }

    /// Whether `deps` are exactly the document's heads: then everything stored is their history.
    fn builds_on_everything(&self, deps: &[ChangeHash]) -> bool {
        if self.heads.borrow().is_none() {
            let heads = self.error.keep(self.tx.heads(self.doc)).unwrap_or_default();
            let heads = heads.iter().filter_map(|h| ChangeHash::try_from(h.as_slice()).ok()).collect();
            *self.heads.borrow_mut() = Some(heads);
        }
        let mut deps = deps.to_vec();
        deps.sort();
        self.heads.borrow().as_deref() == Some(deps.as_slice())
    }

    fn graph(&self) -> std::cell::Ref<'_, DocGraph> {
        if self.graph.borrow().is_none() {
            let mut graph = self.graphs.take(self.doc).unwrap_or_default();
            if let Some(last) = graph.last {
                // One lookup by the rows' key, `doc_seq`.
                let still = self.error.keep(self.tx.change_at(self.doc, graph.upto)).flatten();
                if still.as_deref() != Some(last.0.as_slice()) {
                    graph = DocGraph::default();
                }
            }
            for row in self.error.keep(self.tx.graph_after(self.doc, graph.upto)).unwrap_or_default() {
                graph.add(&row);
            }
            *self.graph.borrow_mut() = Some(graph);
        }
        std::cell::Ref::map(self.graph.borrow(), |g| g.as_ref().expect("just read"))
    }

    /// A stored change's `(max_op, base_seq)`, read once per request.
    fn facts(&self, change: &ChangeHash) -> Option<(i64, i64)> {
        self.facts.get(change, &self.error, || self.tx.change_facts(self.doc, &change.0))
    }

    fn change_holding(&self, id: &OpId) -> Option<Rc<ExpandedChange>> {
        let holds = |c: &ExpandedChange| {
            c.actor_id == *id.actor()
                && (c.start_op.get()..c.start_op.get() + c.operations.len() as u64).contains(&id.counter())
        };
        if let Some(known) = self.decoded.borrow().iter().find(|c| holds(c)) {
            return Some(known.clone());
        }
        let counter = i64::try_from(id.counter()).ok()?;
        let body = self.error.keep(self.tx.change_with_op(self.doc, id.actor().to_bytes(), counter))??;
        let change = guard::decode_change(&body).ok()?;
        let expanded = Rc::new(guard::expand(&change).ok()?);
        self.decoded.borrow_mut().push(expanded.clone());
        Some(expanded)
    }
}

impl History for StoredHistory<'_> {
    fn actor_tip(&self, actor: &ActorId) -> Option<(u64, u64)> {
        let tip = self.error.keep(self.tx.actor_tip(self.doc, actor.to_bytes()))??;
        Some((tip.0.max(0) as u64, tip.1.max(0) as u64))
    }

    fn max_op(&self, change: &ChangeHash) -> Option<u64> {
        let (max_op, _) = self.facts(change)?;
        Some(max_op.max(0) as u64)
    }

    fn op(&self, id: &OpId) -> Option<OpFacts> {
        // Nearly every change adds to a container: no need to read and decode the genesis.
        if let Some(container) = genesis_container(self.doc_id, id) {
            return Some(container);
        }
        let change = self.change_holding(id)?;
        let offset = id.counter().checked_sub(change.start_op.get())?;
        let op = change.operations.get(usize::try_from(offset).ok()?)?;
        Some(OpFacts::of(op, change.seq))
    }

    fn holds(&self, deps: &[ChangeHash], actor: &ActorId, seq: u64) -> bool {
        if self.builds_on_everything(deps) {
            return true;
        }
        // Usually settled by the prefix of the document every dependency is known to hold.
        let wanted = self.error.keep(self.tx.actor_change_seq(self.doc, actor.to_bytes(), seq as i64)).flatten();
        if let Some(doc_seq) = wanted {
            let mut base = 0;
            for dep in deps {
                base = base.max(self.facts(dep).map_or(0, |f| f.1));
            }
            if doc_seq <= base {
                return true;
            }
        }
        self.graph().seen(deps, actor) >= seq
    }
}

impl Drop for StoredHistory<'_> {
    fn drop(&mut self) {
        // A graph read while a lookup failed may be incomplete: not kept.
        if let Some(graph) = self.graph.take()
            && self.error.0.borrow().is_none()
        {
            self.graphs.put(self.doc, graph);
        }
    }
}

pub fn heads(tx: &dyn Tx, doc: &str) -> Result<Vec<ByteBuf>, ApiError> {
    Ok(tx.heads(doc)?.into_iter().map(ByteBuf::from).collect())
}

/// Actor bindings from the table, plus those made earlier in the same request.
pub struct Bindings<'a> {
    tx: &'a dyn Tx,
    pub pending: HashMap<ActorId, Owner>,
    /// Bindings read from the table during this request: the validator asks about the same
    /// few actors for every operation.
    read: ReadOnce<ActorId, Owner>,
    pub error: LookupError,
}

impl<'a> Bindings<'a> {
    pub fn new(tx: &'a dyn Tx) -> Self {
        Self { tx, pending: HashMap::new(), read: ReadOnce::default(), error: LookupError::default() }
    }
}

impl ActorDirectory for Bindings<'_> {
    fn owner_of(&self, actor: &ActorId) -> Option<Owner> {
        if let Some(owner) = self.pending.get(actor) {
            return Some(owner.clone());
        }
        self.read.get(actor, &self.error, || {
            Ok(self.tx.actor_owner(actor.to_bytes())?.map(|user| user.map_or(Owner::Server, Owner::User)))
        })
    }
}

/// Applies a server-authored edit to a document (roster changes): the only place the server
/// loads a document, and never on the sync path.
pub fn server_edit(
    tx: &dyn Tx,
    server_actor: &ActorId,
    doc: &DocId,
    edit: impl FnOnce(&mut AutoCommit) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let id = doc.to_string();
    // Another server process editing the same document waits here, then loads its change.
    tx.lock_doc(&id)?;
    let bodies = saved_document(tx, &id)?.0;
    // The server's own changes create roster entries: only the containers need to be known.
    let mut index = ObjectIndex::for_doc(doc);
    let mut am = if bodies.is_empty() {
        let mut fresh = genesis(doc);
        for change in fresh.get_changes(&[]) {
            store_change(tx, &id, &change)?;
        }
        tx.bind_actor(microcohort_core::docs::genesis_actor(doc).to_bytes(), None)?;
        fresh
    } else {
        guard::load(&bodies).map_err(|e| {
            internal(format!("document {id} does not load ({e}); run `admin check`, then `admin repair --doc {id}`"))
        })?
    };
    am.set_actor(server_actor.clone());
    edit(&mut am)?;
    if let Some(hash) = am.commit_with(CommitOptions::default().with_time(chrono::Utc::now().timestamp())) {
        let change = am.get_change_by_hash(&hash).ok_or_else(|| internal("committed change vanished"))?;
        store_change(tx, &id, &change)?;
        let created = created_entries(&change, &mut index);
        store_entries(tx, &id, &created)?;
    }
    Ok(())
}

/// Writes a member's roster entry into her cohort's document, where every member reads it. A
/// control arm's learners have no peers: their entries stay on the server's roster only.
pub fn put_roster_entry(tx: &dyn Tx, server_actor: &ActorId, cohort_id: &str, member: &Member) -> Result<(), ApiError> {
    if program_of_cohort(tx, cohort_id)?.arm == Arm::Control {
        return Ok(());
    }
    server_edit(tx, server_actor, &DocId::cohort(cohort_id), |am| {
        microcohort_core::docs::cohort::put_member(am, member).map_err(internal)
    })
}

/// A document's saved bytes: its latest snapshot followed by the change rows after it (automerge
/// loads the concatenation), and the last `doc_seq` they cover.
pub fn saved_document(tx: &dyn Tx, doc: &str) -> Result<(Vec<u8>, i64), ApiError> {
    let (mut upto, mut bytes) = tx.snapshot(doc)?.unwrap_or((0, Vec::new()));
    for row in tx.changes_after(doc, upto, i64::MAX)? {
        upto = row.doc_seq;
        bytes.extend(row.body);
    }
    Ok((bytes, upto))
}

/// A snapshot of a document covering every change row stored so far, proven to load again:
/// `(upto_seq, bytes)`. Built from what is committed; [`Tx::put_snapshot`] keeps the newest.
pub fn snapshot_of(tx: &dyn Tx, doc: &str) -> Result<(i64, Vec<u8>), ApiError> {
    let (bytes, upto) = saved_document(tx, doc)?;
    let snapshot = saved_and_reloaded(&bytes).map_err(|e| internal(format!("document {doc}: {e}")))?;
    Ok((upto, snapshot))
}

/// Loads a document, saves it and loads the saved bytes again: its saved form, or what failed.
pub fn saved_and_reloaded(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut doc = guard::load(bytes).map_err(|e| format!("does not load: {e}"))?;
    let saved = guard::save(&mut doc).map_err(|e| format!("does not save: {e}"))?;
    let mut again = guard::load(&saved).map_err(|e| format!("does not load after saving: {e}"))?;
    if guard::heads(&mut again) != guard::heads(&mut doc) {
        return Err("loads with other heads after saving".into());
    }
    Ok(saved)
}

/// A cohort's program: what every sync needs. Its blueprint carries the cohort's critique weeks.
#[derive(Clone)]
pub struct CohortProgram {
    pub program_id: String,
    pub title: String,
    pub blueprint: Blueprint,
    pub pack_version: u32,
    pub arm: Arm,
}

pub fn program_of_cohort(tx: &dyn Tx, cohort_id: &str) -> Result<CohortProgram, ApiError> {
    let row = tx
        .cohort_program(cohort_id)?
        .ok_or_else(|| ApiError::NotFound(format!("cohort {cohort_id} has no program")))?;
    let mut blueprint: Blueprint = serde_json::from_str(&row.blueprint).map_err(internal)?;
    blueprint.critique_weeks = serde_json::from_str(&row.critique_weeks).map_err(internal)?;
    let arm = Arm::parse(&row.arm).map_err(internal)?;
    blueprint.control_arm = arm == Arm::Control;
    Ok(CohortProgram { program_id: row.program_id, title: row.title, blueprint, pack_version: row.pack_version, arm })
}

/// A program's prompt pack, text included (about 120 KB for the built-in one).
pub fn pack_of(tx: &dyn Tx, program_id: &str) -> Result<PackFile, ApiError> {
    tx.program_pack(program_id)?.ok_or_else(|| ApiError::NotFound(format!("no program {program_id}")))
}

pub fn roster(tx: &dyn Tx, cohort_id: &str) -> Result<Roster, ApiError> {
    let members = tx.roster_rows(cohort_id)?.into_iter().map(member).collect::<Result<Vec<_>, _>>()?;
    Ok(Roster::new(members))
}

/// A stored `members` row read back; an unreadable role or date is an internal error.
pub fn member(row: MemberRecord) -> Result<Member, ApiError> {
    let date = |text: &str| text.parse::<chrono::NaiveDate>().map_err(|_| internal(format!("stored date {text:?}")));
    Ok(Member {
        role: MemberRole::parse(&row.role).ok_or_else(|| internal(format!("stored role {:?}", row.role)))?,
        joined_on: date(&row.joined_on)?,
        left_on: row.left_on.as_deref().map(date).transpose()?,
        paused_on: row.paused_on.as_deref().map(date).transpose()?,
        day_start: DayStart::from_minutes(row.day_start_minutes)
            .map_err(|_| internal(format!("stored day start {}", row.day_start_minutes)))?,
        user_id: row.user_id,
        display_name: row.display_name,
        time_zone: row.time_zone,
    })
}

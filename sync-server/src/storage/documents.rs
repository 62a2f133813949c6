//! Documents as change rows, over [`Tx`]: storing a change and moving the heads, the
//! validator's object index, actor bindings, snapshots, and the server's own roster edits.

use std::cell::RefCell;
use std::collections::HashMap;

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, Change};
use microcohort_core::docs::guard;
use microcohort_core::docs::schema::Container;
use microcohort_core::docs::{DocId, genesis};
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::domain::roster::{Member, MemberRole, Roster};
use microcohort_core::policy::{ActorDirectory, ObjKey, ObjectIndex, ObjectKind, Owner, server_created_entries};
use microcohort_core::sync::wire::PackFile;
use serde_bytes::ByteBuf;

use super::primitives::{MemberRecord, NewChange, Tx};
use crate::error::ApiError;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(err.to_string())
}

/// Stores one change (its dependencies are present) and moves the document's heads.
pub fn store_change(tx: &dyn Tx, doc: &str, change: &Change) -> Result<(), ApiError> {
    let deps: Vec<u8> = change.deps().iter().flat_map(|h| h.0).collect();
    let hash = change.hash();
    let actor = change.actor_id().to_bytes();
    let row = NewChange { hash: &hash.0, actor, seq: change.seq() as i64, deps: &deps, body: change.raw_bytes() };
    tx.append_change(doc, &row)?;
    let superseded: Vec<&[u8]> = change.deps().iter().map(|dep| dep.0.as_slice()).collect();
    tx.replace_heads(doc, &superseded, &hash.0)
}

pub fn store_objects(tx: &dyn Tx, doc: &str, created: &[(ObjKey, ObjectKind)]) -> Result<(), ApiError> {
    for ((counter, actor), kind) in created {
        if let ObjectKind::Entry { container, owner } = kind {
            tx.insert_object(doc, *counter as i64, actor.to_bytes(), container.name(), owner)?;
        }
    }
    Ok(())
}

pub fn load_index(tx: &dyn Tx, doc: &DocId) -> Result<ObjectIndex, ApiError> {
    let mut index = ObjectIndex::for_doc(doc);
    for (counter, actor, container, owner) in tx.objects(&doc.to_string())? {
        if let Some(container) = Container::from_name(&container) {
            index.insert((counter as u64, ActorId::from(actor)), ObjectKind::Entry { container, owner });
        }
    }
    Ok(index)
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
    read: RefCell<HashMap<ActorId, Option<Owner>>>,
}

impl<'a> Bindings<'a> {
    pub fn new(tx: &'a dyn Tx) -> Self {
        Self { tx, pending: HashMap::new(), read: RefCell::default() }
    }
}

impl ActorDirectory for Bindings<'_> {
    fn owner_of(&self, actor: &ActorId) -> Option<Owner> {
        if let Some(owner) = self.pending.get(actor) {
            return Some(owner.clone());
        }
        if let Some(owner) = self.read.borrow().get(actor) {
            return owner.clone();
        }
        let row = self.tx.actor_owner(actor.to_bytes()).ok().flatten();
        let owner = row.map(|user| user.map_or(Owner::Server, Owner::User));
        self.read.borrow_mut().insert(actor.clone(), owner.clone());
        owner
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
    let mut index = load_index(tx, doc)?;
    let mut am = if bodies.is_empty() {
        let mut fresh = genesis(doc);
        for change in fresh.get_changes(&[]) {
            store_change(tx, &id, &change)?;
        }
        fresh
    } else {
        guard::load(&bodies).map_err(internal)?
    };
    am.set_actor(server_actor.clone());
    edit(&mut am)?;
    if let Some(hash) = am.commit_with(CommitOptions::default().with_time(chrono::Utc::now().timestamp())) {
        let change = am.get_change_by_hash(&hash).ok_or_else(|| internal("committed change vanished"))?;
        store_change(tx, &id, &change)?;
        let created = server_created_entries(&change, &mut index);
        store_objects(tx, &id, &created)?;
    }
    Ok(())
}

/// A document's saved bytes: its latest snapshot followed by the change rows after it (automerge
/// loads the concatenation), and the last `doc_seq` they cover.
pub fn saved_document(tx: &dyn Tx, doc: &str) -> Result<(Vec<u8>, i64), ApiError> {
    let (mut upto, mut bytes) = tx.snapshot(doc)?.unwrap_or((0, Vec::new()));
    for row in tx.changes_after(doc, upto)? {
        upto = row.doc_seq;
        bytes.extend(row.body);
    }
    Ok((bytes, upto))
}

/// Writes a snapshot of a document covering every change row stored so far.
pub fn snapshot_document(tx: &dyn Tx, doc: &str) -> Result<(), ApiError> {
    let (bytes, upto) = saved_document(tx, doc)?;
    let snapshot = guard::load(&bytes).map_err(internal)?.save();
    tx.put_snapshot(doc, upto, &snapshot)
}

/// A cohort's program: what every sync needs.
pub struct CohortProgram {
    pub program_id: String,
    pub title: String,
    pub blueprint: Blueprint,
    pub pack_version: u32,
}

pub fn program_of_cohort(tx: &dyn Tx, cohort_id: &str) -> Result<CohortProgram, ApiError> {
    let row = tx
        .cohort_program(cohort_id)?
        .ok_or_else(|| ApiError::NotFound(format!("cohort {cohort_id} has no program")))?;
    let blueprint: Blueprint = serde_json::from_str(&row.blueprint).map_err(internal)?;
    Ok(CohortProgram { program_id: row.program_id, title: row.title, blueprint, pack_version: row.pack_version })
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
        user_id: row.user_id,
        display_name: row.display_name,
        time_zone: row.time_zone,
    })
}

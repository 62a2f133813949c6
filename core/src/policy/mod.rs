//! The change validator (DESIGN §4): decides, from a change's decoded operations alone, whether a
//! user may make it. The server runs it on every change it receives; the device runs the same code
//! before committing, so an honest client is never rejected.
//!
//! Rules, checked without loading the document:
//! 1. actor binding: a change's actor belongs to the submitting user (or is new); the server's
//!    actors (including every document's genesis actor) are never accepted from a user;
//! 2. no writes to a document root;
//! 3. new entries only under the author's own `"<user_id>/"` keys, in containers their role may
//!    write (roster, critique and capstone: server only; agenda and attendance: facilitators);
//! 4. entries are flat maps created once and never deleted (a retraction is a flag);
//! 5. no edit or deletion of a value created by another user's actors, except in the week's
//!    synthesis text, which its synthesizers and the facilitators co-write.

mod objects;

use std::fmt;

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{ActorId, Change, ObjType};
use serde::{Deserialize, Serialize};

use crate::docs::guard::expand;
use crate::docs::schema::{Container, Writers, key_author};
use crate::docs::{DocId, genesis, genesis_actor};

pub use objects::{ObjKey, ObjectIndex, ObjectKind};

/// Who an actor belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Server,
    User(String),
}

/// Actor-to-owner bindings, from the server's tables or derived from a document on a device.
pub trait ActorDirectory {
    fn owner_of(&self, actor: &ActorId) -> Option<Owner>;
}

/// The user submitting a change, with the roles that widen what they may write.
#[derive(Debug, Clone, Copy)]
pub struct Submitter<'a> {
    pub user_id: &'a str,
    pub facilitator: bool,
    /// A synthesizer of this week (or anyone, outside rotation weeks).
    pub may_edit_synthesis: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RejectReason {
    Malformed,
    ForgedActor,
    RootWrite,
    ForeignKey,
    ForeignEdit,
    EntryDeleted,
    NotFlat,
    ServerOnly,
    RoleRequired,
    UnknownObject,
}

impl RejectReason {
    /// A stable label (metrics, logs, the wire).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::ForgedActor => "forged_actor",
            Self::RootWrite => "root_write",
            Self::ForeignKey => "foreign_key",
            Self::ForeignEdit => "foreign_edit",
            Self::EntryDeleted => "entry_deleted",
            Self::NotFlat => "not_flat",
            Self::ServerOnly => "server_only",
            Self::RoleRequired => "role_required",
            Self::UnknownObject => "unknown_object",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "change rejected ({}): {}", self.reason.as_str(), self.detail)
    }
}

fn reject<T>(reason: RejectReason, detail: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection { reason, detail: detail.into() })
}

/// Checks one change against what `index` knows of the document. On success, returns the entries
/// the change creates; the caller records them in its index (before validating a later change
/// that builds on them), binds a new actor to the submitter and may persist them.
pub fn validate(
    doc: &DocId,
    change: &Change,
    submitter: Submitter<'_>,
    directory: &dyn ActorDirectory,
    index: &ObjectIndex,
) -> Result<Vec<(ObjKey, ObjectKind)>, Rejection> {
    let actor = change.actor_id();
    if *actor == genesis_actor(doc) {
        // The genesis is the one change every device may hold and send: accept it only verbatim.
        let expected = genesis(doc).get_last_local_change().map(|c| c.hash());
        return if Some(change.hash()) == expected {
            Ok(Vec::new())
        } else {
            reject(RejectReason::ForgedActor, "only the server writes with the document's genesis actor")
        };
    }
    match directory.owner_of(actor) {
        None => {}
        Some(Owner::User(user)) if user == submitter.user_id => {}
        Some(Owner::User(user)) => {
            return reject(RejectReason::ForgedActor, format!("actor {actor} belongs to user {user}"));
        }
        Some(Owner::Server) => return reject(RejectReason::ForgedActor, format!("actor {actor} is the server's")),
    }
    let expanded = expand(change).map_err(|e| Rejection { reason: RejectReason::Malformed, detail: e.to_string() })?;
    let owns = |other: &ActorId| {
        other == actor || directory.owner_of(other) == Some(Owner::User(submitter.user_id.to_owned()))
    };

    let mut created: Vec<(objects::ObjKey, ObjectKind)> = Vec::new();
    for (offset, op) in expanded.operations.iter().enumerate() {
        let op_id = (change.start_op().get() + offset as u64, actor.clone());
        let ObjectId::Id(target) = &op.obj else {
            return reject(RejectReason::RootWrite, "writes to the document root are the server's");
        };
        let target = (target.counter(), target.actor().clone());
        let kind = index.kind(&target).or_else(|| created.iter().find(|(id, _)| *id == target).map(|(_, k)| k.clone()));
        let foreign_pred = op.pred.iter().find(|p| !owns(p.actor()));
        match kind {
            None => {
                return reject(
                    RejectReason::UnknownObject,
                    "the change writes to an object this document does not have",
                );
            }
            Some(ObjectKind::Container(container)) if container.is_text() => {
                if !(submitter.may_edit_synthesis || submitter.facilitator) {
                    return reject(
                        RejectReason::RoleRequired,
                        "only this week's synthesizers and facilitators edit the synthesis",
                    );
                }
                if matches!(op.action, OpType::Make(_) | OpType::Increment(_)) {
                    return reject(RejectReason::NotFlat, "the synthesis holds text only");
                }
            }
            Some(ObjectKind::Container(container)) => {
                check_writers(container, submitter)?;
                let Key::Map(key) = &op.key else {
                    return reject(RejectReason::Malformed, "a container is a map");
                };
                if key_author(key) != Some(submitter.user_id) {
                    return reject(
                        RejectReason::ForeignKey,
                        format!("entry {key:?} is not under {}/", submitter.user_id),
                    );
                }
                match op.action {
                    OpType::Make(ObjType::Map) => {}
                    OpType::Delete => {
                        return reject(
                            RejectReason::EntryDeleted,
                            format!("entry {key:?} may be retracted, not deleted"),
                        );
                    }
                    _ => return reject(RejectReason::NotFlat, format!("entry {key:?} must be a map of values")),
                }
                if let Some(pred) = foreign_pred {
                    return reject(
                        RejectReason::ForeignEdit,
                        format!("entry {key:?} overwrites a value by actor {}", pred.actor()),
                    );
                }
                // Creating an entry over an existing one would wipe it: entries are created once.
                if !op.pred.is_empty() {
                    return reject(
                        RejectReason::EntryDeleted,
                        format!("entry {key:?} already exists; change its fields instead"),
                    );
                }
                created.push((op_id, ObjectKind::Entry { container, owner: submitter.user_id.to_owned() }));
            }
            Some(ObjectKind::Entry { container, owner }) => {
                if owner != submitter.user_id {
                    return reject(RejectReason::ForeignEdit, format!("a {} entry of user {owner}", container.name()));
                }
                if !matches!(op.action, OpType::Put(_) | OpType::Delete) || !op.key.is_map_key() {
                    return reject(RejectReason::NotFlat, "entries hold plain values only");
                }
                if let Some(pred) = foreign_pred {
                    return reject(RejectReason::ForeignEdit, format!("overwrites a value by actor {}", pred.actor()));
                }
            }
        }
    }
    Ok(created)
}

/// The entries a change written by the server itself creates (roster members), for the index.
pub fn server_created_entries(change: &Change, index: &mut ObjectIndex) -> Vec<(ObjKey, ObjectKind)> {
    let Ok(expanded) = expand(change) else { return Vec::new() };
    let mut created = Vec::new();
    for (offset, op) in expanded.operations.iter().enumerate() {
        let (ObjectId::Id(target), OpType::Make(ObjType::Map)) = (&op.obj, &op.action) else { continue };
        if let Some(ObjectKind::Container(container)) = index.kind(&(target.counter(), target.actor().clone())) {
            let id = (change.start_op().get() + offset as u64, change.actor_id().clone());
            let kind = ObjectKind::Entry { container, owner: String::new() };
            index.insert(id.clone(), kind.clone());
            created.push((id, kind));
        }
    }
    created
}

fn check_writers(container: Container, submitter: Submitter<'_>) -> Result<(), Rejection> {
    match container.writers() {
        Writers::Members => Ok(()),
        Writers::Facilitators if submitter.facilitator => Ok(()),
        Writers::Facilitators => {
            reject(RejectReason::RoleRequired, format!("only facilitators write the {}", container.name()))
        }
        Writers::Server => {
            reject(RejectReason::ServerOnly, format!("the {} is written by the server", container.name()))
        }
        Writers::Synthesizers => Ok(()),
    }
}

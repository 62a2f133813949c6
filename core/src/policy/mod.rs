//! The change validator (architecture §4): decides, from a change's decoded operations alone, whether a
//! user may make it. The server runs it on every change it receives; the device runs the same code
//! before committing, so an honest client is never rejected.
//!
//! Rules, checked without loading the document:
//! 1. actor binding: a change's actor belongs to the submitting user (or is new); the server's
//!    actors (including every document's genesis actor) are never accepted from a user;
//! 2. no writes to a document root;
//! 3. new entries only under the author's own `"<user_id>/"` keys, in containers their role may
//!    write (roster, critique and capstone: server only; attendance: facilitators; the agenda:
//!    facilitators and the week's critique lead);
//! 4. entries are flat maps created once (one key, one entry, across all the author's actors)
//!    and never deleted (a retraction is a flag);
//! 5. no edit or deletion of a value created by another user's actors, except in the week's
//!    synthesis text, which its synthesizers and the facilitators co-write.
//!
//! Before these, [`encoding`] checks the bytes and [`history`] that the document stays well formed
//! with the change (the server runs both on everything it receives).

pub mod encoding;
pub mod history;
mod objects;
#[cfg(feature = "fixtures")]
pub mod sample;

use std::fmt;

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{ActorId, Change, ObjType, ScalarValue};
use serde::{Deserialize, Serialize};

use crate::docs::guard::expand;
use crate::docs::schema::{Container, Writers, key_author};
use crate::docs::{DocId, genesis, genesis_actor};

pub use encoding::{CheckedChange, check_change};
pub use history::{History, KnownHistory, check_history};
pub use objects::{NewEntry, ObjKey, ObjectIndex, ObjectKind, Objects, genesis_container};

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
    /// The member a facilitator named to lead this week's critique.
    pub leads_critique: bool,
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
    /// Not an uncompressed change chunk.
    WrongChunk,
    Checksum,
    /// Not in the encoding automerge writes itself.
    NotCanonical,
    TooLarge,
    /// A gap or a repeat in the actor's change numbers.
    BadSequence,
    /// Dependencies that leave out what the change must build on.
    BadDependency,
    /// Operation counters that do not rise above what the change builds on.
    BadCounter,
    /// A predecessor that does not exist, comes later, or belongs to another object or key.
    BadPred,
    /// A sequence operation on an element that does not exist, or a key of the wrong kind.
    BadElement,
    /// An entry key that is already in use.
    DuplicateEntry,
    /// Not a change: the device's copy holds changes an operator removed (`admin repair`).
    Repaired,
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
            Self::WrongChunk => "wrong_chunk",
            Self::Checksum => "bad_checksum",
            Self::NotCanonical => "not_canonical",
            Self::TooLarge => "too_large",
            Self::BadSequence => "bad_seq",
            Self::BadDependency => "bad_deps",
            Self::BadCounter => "bad_op_counter",
            Self::BadPred => "bad_pred",
            Self::BadElement => "bad_element",
            Self::DuplicateEntry => "duplicate_entry",
            Self::Repaired => "repaired",
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

/// Whether a change is the document's genesis, which every device holds and may send.
pub fn is_genesis(doc: &DocId, change: &Change) -> bool {
    *change.actor_id() == genesis_actor(doc)
        && genesis(doc).get_last_local_change().map(|c| c.hash()) == Some(change.hash())
}

/// Whether an actor is the genesis actor of a document of this cohort other than the one written
/// (those of documents that exist are bound to the server once stored; these may not exist yet).
fn genesis_of_a_sibling(doc: &DocId, actor: &ActorId) -> bool {
    let cohort_id = doc.cohort_id();
    std::iter::once(DocId::cohort(cohort_id))
        .chain((0..=crate::domain::blueprint::MAX_WEEKS).map(|week| DocId::week(cohort_id, week)))
        .any(|sibling| genesis_actor(&sibling) == *actor)
}

/// Checks one change against what `index` knows of the document. On success, returns the entries
/// the change creates; the caller records them in its index (before validating a later change
/// that builds on them), binds a new actor to the submitter and may persist them.
pub fn validate(
    doc: &DocId,
    change: &CheckedChange,
    submitter: Submitter<'_>,
    directory: &dyn ActorDirectory,
    index: &dyn Objects,
) -> Result<Vec<NewEntry>, Rejection> {
    let actor = change.change.actor_id();
    if *actor == genesis_actor(doc) {
        // The genesis is the one change every device may hold and send: accept it only verbatim.
        return if is_genesis(doc, &change.change) {
            Ok(Vec::new())
        } else {
            reject(RejectReason::ForgedActor, "only the server writes with the document's genesis actor")
        };
    }
    match directory.owner_of(actor) {
        None if genesis_of_a_sibling(doc, actor) => {
            return reject(RejectReason::ForgedActor, format!("actor {actor} is another document's genesis actor"));
        }
        None => {}
        Some(Owner::User(user)) if user == submitter.user_id => {}
        Some(Owner::User(user)) => {
            return reject(RejectReason::ForgedActor, format!("actor {actor} belongs to user {user}"));
        }
        Some(Owner::Server) => return reject(RejectReason::ForgedActor, format!("actor {actor} is the server's")),
    }
    let owns = |other: &ActorId| {
        other == actor || directory.owner_of(other) == Some(Owner::User(submitter.user_id.to_owned()))
    };

    let mut created: Vec<NewEntry> = Vec::new();
    for (offset, op) in change.ops.operations.iter().enumerate() {
        let op_id = (change.change.start_op().get() + offset as u64, actor.clone());
        let ObjectId::Id(target) = &op.obj else {
            return reject(RejectReason::RootWrite, "writes to the document root are the server's");
        };
        let target = (target.counter(), target.actor().clone());
        // Entries this change made first: most of its operations fill them in, and the index may
        // ask the database (which cannot hold them yet) for every one.
        let kind = created
            .iter()
            .find(|entry| entry.id == target)
            .map(|entry| ObjectKind::Entry { container: entry.container, owner: entry.owner.clone() })
            .or_else(|| index.kind(&target));
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
                if !matches!(&op.action, OpType::Put(ScalarValue::Str(_)) | OpType::Delete) {
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
                if index.has_entry(container, key) || created.iter().any(|e| e.container == container && e.key == *key)
                {
                    return reject(
                        RejectReason::DuplicateEntry,
                        format!("entry {key:?} already exists in the {}", container.name()),
                    );
                }
                created.push(NewEntry {
                    id: op_id,
                    container,
                    key: key.to_string(),
                    owner: submitter.user_id.to_owned(),
                });
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

/// The entries a change creates in the document's containers, owned by the key's author (or
/// the server, for roster entries): for changes the server writes itself, and for rebuilding an
/// index from stored changes.
pub fn created_entries(change: &Change, index: &mut ObjectIndex) -> Vec<NewEntry> {
    let Ok(expanded) = expand(change) else { return Vec::new() };
    let mut created = Vec::new();
    for (offset, op) in expanded.operations.iter().enumerate() {
        let (ObjectId::Id(target), OpType::Make(ObjType::Map), Key::Map(key)) = (&op.obj, &op.action, &op.key) else {
            continue;
        };
        if let Some(ObjectKind::Container(container)) = index.kind(&(target.counter(), target.actor().clone())) {
            let owner =
                if container.server_keyed() { String::new() } else { key_author(key).unwrap_or_default().to_owned() };
            let id = (change.start_op().get() + offset as u64, change.actor_id().clone());
            let entry = NewEntry { id, container, key: key.to_string(), owner };
            index.add_entry(&entry);
            created.push(entry);
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
        Writers::CritiqueLeads if submitter.facilitator || submitter.leads_critique => Ok(()),
        Writers::CritiqueLeads => reject(
            RejectReason::RoleRequired,
            format!("only facilitators and the week's critique lead write the {}", container.name()),
        ),
    }
}

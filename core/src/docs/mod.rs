//! Cohort state as automerge documents (architecture §3).
//!
//! - `cohort:<cohort_id>`: roster, critique schedule and lead, capstone brief (server-written), and
//!   each member's own profile entry.
//! - `week:<cohort_id>:<week>`: submissions, feedback, replies, helpfulness ratings, critique agenda,
//!   attendance and the co-written synthesis.
//!
//! Every document starts from a **deterministic genesis change** (fixed actor derived from the
//! document id, timestamp 0), so every device creates byte-identical skeletons offline and they
//! merge as one change. All entries live in maps keyed `"<author_user_id>/<entry_id>"` and are
//! flat maps of scalars; single-author text is a scalar string, only the synthesis is a `Text`.

pub mod cohort;
pub mod guard;
pub mod moderated;
pub mod news;
pub mod projection;
pub mod report_facts;
pub mod schema;
pub mod week;

use std::fmt;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc};

use crate::domain::DomainError;
use schema::{Container, SCHEMA_VERSION};

/// Which document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocId {
    Cohort { cohort_id: String },
    Week { cohort_id: String, week: u32 },
}

impl DocId {
    pub fn cohort(cohort_id: &str) -> Self {
        Self::Cohort { cohort_id: cohort_id.to_owned() }
    }

    pub fn week(cohort_id: &str, week: u32) -> Self {
        Self::Week { cohort_id: cohort_id.to_owned(), week }
    }

    pub fn cohort_id(&self) -> &str {
        match self {
            Self::Cohort { cohort_id } | Self::Week { cohort_id, .. } => cohort_id,
        }
    }

    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let invalid =
            || DomainError::invalid("doc_id", format!("{text:?} is not \"cohort:<id>\" or \"week:<id>:<n>\""));
        let mut parts = text.split(':');
        let doc = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("cohort"), Some(id), None, None) => Self::cohort(id),
            (Some("week"), Some(id), Some(week), None) => Self::week(id, week.parse().map_err(|_| invalid())?),
            _ => return Err(invalid()),
        };
        check_id("cohort_id", doc.cohort_id()).map_err(|_| invalid())?;
        Ok(doc)
    }

    /// The containers (top-level maps, and the synthesis text) of this kind of document.
    pub fn containers(&self) -> &'static [Container] {
        match self {
            Self::Cohort { .. } => &schema::COHORT_CONTAINERS,
            Self::Week { .. } => &schema::WEEK_CONTAINERS,
        }
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cohort { cohort_id } => write!(f, "cohort:{cohort_id}"),
            Self::Week { cohort_id, week } => write!(f, "week:{cohort_id}:{week}"),
        }
    }
}

/// User, cohort and entry ids: 1–64 characters of `A-Z a-z 0-9 _ -` (UUIDs fit). No `/` or `:`,
/// which separate the parts of keys and document ids.
pub fn check_id(field: &str, id: &str) -> Result<(), DomainError> {
    let ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(DomainError::invalid(field, format!("{id:?} must be 1–64 of A-Z a-z 0-9 _ -"))) }
}

/// The actor of a document's genesis change, derived from its id: the same on every device.
pub fn genesis_actor(doc: &DocId) -> ActorId {
    let namespace = uuid::Uuid::from_u128(0x6d69_6372_6f63_6f68_6f72_7467_656e_6573);
    ActorId::from(uuid::Uuid::new_v5(&namespace, doc.to_string().as_bytes()).as_bytes().as_slice())
}

/// A fresh document holding only the genesis change. Every device builds the same bytes.
pub fn genesis(doc: &DocId) -> AutoCommit {
    let mut am = AutoCommit::new().with_actor(genesis_actor(doc));
    // These puts cannot fail on a fresh document; errors are ignored rather than unwrapped.
    let _ = am.put(ROOT, schema::SCHEMA_KEY, SCHEMA_VERSION);
    match doc {
        DocId::Cohort { cohort_id } => {
            let _ = am.put(ROOT, "kind", "cohort");
            let _ = am.put(ROOT, "cohort", cohort_id.as_str());
        }
        DocId::Week { cohort_id, week } => {
            let _ = am.put(ROOT, "kind", "week");
            let _ = am.put(ROOT, "cohort", cohort_id.as_str());
            let _ = am.put(ROOT, "week", u64::from(*week));
        }
    }
    for container in doc.containers() {
        let kind = if container.is_text() { ObjType::Text } else { ObjType::Map };
        let _ = am.put_object(ROOT, container.name(), kind);
    }
    am.commit_with(CommitOptions::default().with_time(0));
    am
}

/// The schema version a document declares, if it declares one.
pub fn schema_version(am: &AutoCommit) -> Option<u64> {
    match am.get(ROOT, schema::SCHEMA_KEY) {
        Ok(Some((value, _))) => value.as_u64().or_else(|| value.as_i64().and_then(|v| u64::try_from(v).ok())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_identical_on_every_device() {
        let doc = DocId::week("c1", 5);
        let (mut a, mut b) = (genesis(&doc), genesis(&doc));
        assert_eq!(a.get_heads(), b.get_heads());
        assert_eq!(a.save(), b.save());
        assert_ne!(genesis(&DocId::week("c1", 6)).get_heads(), a.get_heads());
        assert_eq!(schema_version(&a), Some(SCHEMA_VERSION));
    }

    #[test]
    fn doc_ids_round_trip_and_reject_garbage() {
        for text in ["cohort:c-1", "week:c-1:12"] {
            assert_eq!(DocId::parse(text).unwrap().to_string(), text);
        }
        for bad in ["cohort:", "week:c1", "week:c1:x", "room:c1", "cohort:a/b", "week:c1:1:2"] {
            assert!(DocId::parse(bad).is_err(), "{bad}");
        }
    }
}

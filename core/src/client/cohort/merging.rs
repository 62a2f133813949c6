//! Changes from the server merged into the device's documents (one by one, or a saved document
//! for a device far behind), and the device's own changes read out for the next sync.

use automerge::ChangeHash;

use crate::client::Client;
use crate::client::events::{ClientEvent, DataChange};
use crate::docs::guard::{self, DocError};
use crate::docs::schema::SCHEMA_VERSION;
use crate::docs::{DocId, schema_version};
use crate::domain::DomainError;
use crate::error::Result;
use crate::policy::check_change;

use super::*;

impl Client {
    /// Merges changes received from the server (or, in tests, from peers). Malformed bytes are
    /// refused before anything is applied or written.
    pub fn receive_changes(&self, doc_id: &str, changes: &[Vec<u8>]) -> Result<ReceiveReport> {
        let doc = self.received_doc(doc_id)?;
        // Bounded like the server's own input: a change that would expand past the limits is
        // refused before automerge decodes it.
        let decoded = changes
            .iter()
            .map(|bytes| check_change(bytes).map(|c| c.change).map_err(|r| DocError::Malformed(r.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        // Applied to the open document in place. Changes still waiting for their dependencies
        // stay queued in it.
        self.take_received(doc_id, &doc, |entry, before| {
            guard::apply(&mut entry.am, decoded)?;
            let heads = entry.am.get_heads();
            if heads != before {
                self.persist(&doc, &mut entry.am, &entry.stored_heads, None)?;
                entry.stored_heads = heads;
            }
            Ok(())
        })
    }

    /// Takes the server's saved copy of a document (a whole document, for a device that lacks
    /// much of it) in one load: it becomes this device's copy when it holds everything the device
    /// has, and is merged into the device's copy otherwise.
    pub fn receive_snapshot(&self, doc_id: &str, bytes: &[u8]) -> Result<ReceiveReport> {
        let doc = self.received_doc(doc_id)?;
        let mut saved = guard::load(bytes)?;
        self.take_received(doc_id, &doc, |entry, before| {
            if before.iter().all(|h| saved.get_change_by_hash(h).is_some()) {
                self.persist_as(&doc, &mut saved, Stored::Saved(bytes), None)?;
                entry.am = saved;
            } else {
                guard::merge(&mut entry.am, &mut saved)?;
                self.persist(&doc, &mut entry.am, &entry.stored_heads, None)?;
            }
            entry.stored_heads = entry.am.get_heads();
            Ok(())
        })
    }

    /// A document of one of the person's cohorts on this device, named by something received.
    pub(super) fn received_doc(&self, doc_id: &str) -> Result<DocId> {
        let doc = DocId::parse(doc_id)?;
        let cohorts = self.store().read(cohort_store::memberships)?;
        if !cohorts.iter().any(|m| m.cohort_id == doc.cohort_id()) {
            return Err(DomainError::invalid("doc_id", format!("{doc_id} belongs to another cohort")).into());
        }
        Ok(doc)
    }

    /// Brings something received into the open document: `take` changes it and stores what it
    /// changed (given the heads before); then the report, and an event when the heads moved.
    pub(super) fn take_received(
        &self,
        doc_id: &str,
        doc: &DocId,
        take: impl FnOnce(&mut OpenDoc, &[ChangeHash]) -> Result<()>,
    ) -> Result<ReceiveReport> {
        let (report, changed) = self.with_doc(doc, |entry| {
            let before = entry.am.get_heads();
            take(entry, &before)?;
            entry.index = None;
            let heads = entry.am.get_heads();
            let waiting = !entry.am.get_missing_deps(&[]).is_empty();
            let newer_schema = schema_version(&entry.am).is_some_and(|v| v > SCHEMA_VERSION);
            let changed = heads != before;
            Ok((ReceiveReport { heads, waiting, newer_schema }, changed))
        })?;
        if changed {
            self.notify(ClientEvent::DataChanged(DataChange::Document(doc_id.to_owned())));
        }
        Ok(report)
    }

    /// Changes of a document that a holder of `heads` lacks (all of them for no heads).
    pub fn changes_since(&self, doc_id: &str, heads: &[ChangeHash]) -> Result<Vec<Vec<u8>>> {
        let doc = DocId::parse(doc_id)?;
        self.with_doc(&doc, |entry| {
            Ok(entry.am.get_changes(heads).into_iter().map(|c| c.raw_bytes().to_vec()).collect())
        })
    }

    pub fn doc_heads(&self, doc_id: &str) -> Result<Vec<ChangeHash>> {
        let doc = DocId::parse(doc_id)?;
        self.with_doc(&doc, |entry| Ok(entry.am.get_heads()))
    }

    // ---- for the sync client ---------------------------------------------------------------

    #[cfg(feature = "sync-client")]
    /// The documents this device syncs for a membership: the cohort document and every week up
    /// to the current one (or the last, after the program), plus any other it holds of the cohort.
    pub(crate) fn synced_docs(
        &self,
        membership: &cohort_store::MembershipRow,
        blueprint: &crate::domain::blueprint::Blueprint,
    ) -> Result<Vec<DocId>> {
        let cohort_id = membership.cohort_id.clone();
        // A control arm's learner shares nothing: only the server's cohort document comes down.
        if blueprint.control_arm {
            return Ok(vec![DocId::cohort(&cohort_id)]);
        }
        let today = self.today_date()?;
        let last_week = match blueprint.position_on(today).week {
            Some(week) => week,
            None if today > blueprint.end_date() => blueprint.weeks,
            None => 0,
        };
        let mut docs: Vec<DocId> = std::iter::once(DocId::cohort(&cohort_id))
            .chain((0..=last_week).map(|w| DocId::week(&cohort_id, w)))
            .collect();
        let stored = self.store().read(cohort_store::doc_ids)?;
        for id in stored {
            if let Ok(doc) = DocId::parse(&id)
                && doc.cohort_id() == cohort_id
                && !docs.contains(&doc)
            {
                docs.push(doc);
            }
        }
        Ok(docs)
    }

    #[cfg(feature = "sync-client")]
    /// The local changes a holder of `known` lacks, and the local heads. Heads the device does not
    /// have (the server moved on without it) count as nothing known: over-sending is safe.
    pub(crate) fn local_changes(&self, doc: &DocId, known: &[ChangeHash]) -> Result<(Vec<Vec<u8>>, Vec<ChangeHash>)> {
        self.with_doc(doc, |entry| {
            let known: Vec<ChangeHash> = if known.iter().all(|h| entry.am.get_change_by_hash(h).is_some()) {
                known.to_vec()
            } else {
                Vec::new()
            };
            let changes = entry.am.get_changes(&known).into_iter().map(|c| c.raw_bytes().to_vec()).collect();
            Ok((changes, entry.am.get_heads()))
        })
    }

    #[cfg(feature = "sync-client")]
    /// Whether the device's copy of a document holds a change.
    pub(crate) fn has_change(&self, doc: &DocId, hash: &[u8]) -> Result<bool> {
        let Ok(hash) = ChangeHash::try_from(hash) else { return Ok(false) };
        self.with_doc(doc, |entry| Ok(entry.am.get_change_by_hash(&hash).is_some()))
    }

    #[cfg(feature = "sync-client")]
    /// Drops this device's copy of a document (after the server refused its branch); the next
    /// sync fetches the server's copy.
    pub(crate) fn drop_local_doc(&self, doc: &DocId) -> Result<()> {
        let mut open = self.open_docs();
        open.docs.remove(doc);
        let id = doc.to_string();
        self.store().write(|tx| crate::store::sync_state::forget_doc(tx, &id))?;
        drop(open);
        self.notify(ClientEvent::DataChanged(DataChange::Document(id)));
        Ok(())
    }

    // ---- internals ------------------------------------------------------------------------
}

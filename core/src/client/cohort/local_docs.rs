//! The documents open on the device: loaded on first use, changed locally only through the
//! validator the server runs, persisted as chunks and projected into SQLite in the same transaction.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::MutexGuard;

use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, ChangeHash};

use crate::client::Client;
use crate::client::events::{ClientEvent, DataChange};
use crate::client::intents::Intent;
use crate::docs::guard::{self, DocError};
use crate::docs::projection::project_week;
use crate::docs::schema::SCHEMA_VERSION;
use crate::docs::{DocId, cohort, genesis, schema_version};
use crate::domain::roles::roles_for_week;
use crate::error::{Error, Result};
use crate::policy::{CheckedChange, ObjectIndex, Owner, Submitter, validate};
use crate::store::cohort as cohort_store;

use super::*;

impl Client {
    /// Runs `f` on a document, loading it on first use. If `f` fails, the in-memory copy is
    /// dropped, so the next use reloads it from disk, which never saw the failed work. A panic
    /// inside automerge (a document holding history it cannot handle) is caught here, for every
    /// call on an open document, and becomes an error naming the document.
    pub(super) fn with_doc<T>(&self, doc: &DocId, f: impl FnOnce(&mut OpenDoc) -> Result<T>) -> Result<T> {
        let mut open = self.open_docs();
        let result = catch_unwind(AssertUnwindSafe(|| self.opened(&mut open, doc).and_then(f))).unwrap_or_else(|_| {
            Err(DocError::Malformed(format!("document {doc} holds history this app cannot process")).into())
        });
        if result.is_err() {
            open.docs.remove(doc);
        }
        result
    }

    pub(in crate::client) fn open_docs(&self) -> MutexGuard<'_, OpenDocs> {
        self.docs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes a local change: edit, commit, validate with the same rules as the server, then persist
    /// chunk and projection in one transaction. On any error the document is reloaded from disk,
    /// so nothing half-done survives.
    pub(super) fn local_change<T>(
        &self,
        doc: &DocId,
        intent: &Intent,
        edit: impl FnOnce(&mut AutoCommit) -> Result<T>,
    ) -> Result<T> {
        // The document's own membership: a replayed intent may be of one not selected now.
        let membership = self.membership_row(doc.cohort_id())?;
        let roster = self.store().read(|conn| cohort_store::roster(conn, &membership.cohort_id))?;
        let actor = self.store().write(cohort_store::device_actor)?;
        let roles = match doc {
            DocId::Week { week, .. } => {
                Some(roles_for_week(&self.program_of(&membership)?.enrollment.blueprint, &roster, *week))
            }
            DocId::Cohort { .. } => None,
        };
        let submitter = Submitter {
            user_id: &membership.user_id,
            facilitator: roster.is_facilitator(&membership.user_id),
            may_edit_synthesis: roles.as_ref().is_some_and(|r| r.may_edit_synthesis(&membership.user_id)),
            leads_critique: roles.as_ref().is_some_and(|r| r.critique_lead.as_deref() == Some(&membership.user_id)),
        };
        let now = self.now();
        // The edit is made on the open document itself (see `with_doc` for failures).
        let (value, changed) = self.with_doc(doc, |entry| {
            if let Some(found) = schema_version(&entry.am).filter(|v| *v > SCHEMA_VERSION) {
                return Err(DocError::SchemaTooNew { doc: doc.to_string(), found, supported: SCHEMA_VERSION }.into());
            }
            let mut index = match entry.index.take() {
                Some(index) => index,
                None => ObjectIndex::from_document(doc, &entry.am),
            };
            index.bind(actor.clone(), Owner::User(membership.user_id.clone()));
            entry.am.set_actor(actor);
            let value = edit(&mut entry.am)?;
            let Some(hash) = entry.am.commit_with(CommitOptions::default().with_time(now.timestamp())) else {
                entry.index = Some(index);
                return Ok((value, false));
            };
            let change =
                entry.am.get_change_by_hash(&hash).ok_or_else(|| Error::Corrupt("committed change vanished".into()))?;
            for created in validate(doc, &CheckedChange::own(change)?, submitter, &index, &index)? {
                index.add_entry(&created);
            }
            self.persist(doc, &mut entry.am, &entry.stored_heads, Some((intent, hash)))?;
            entry.stored_heads = entry.am.get_heads();
            entry.index = Some(index);
            Ok((value, true))
        })?;
        if changed {
            self.notify(ClientEvent::DataChanged(DataChange::Document(doc.to_string())));
        }
        Ok(value)
    }

    /// Appends the changes the store lacks (those after `stored_heads`) and re-projects the
    /// document, in one transaction; compacts into a snapshot when the chunks pile up.
    pub(super) fn persist(
        &self,
        doc: &DocId,
        am: &mut AutoCommit,
        stored_heads: &[ChangeHash],
        intent: Option<(&Intent, ChangeHash)>,
    ) -> Result<()> {
        self.persist_as(doc, am, Stored::After(stored_heads), intent)
    }

    /// [`Self::persist`], or with `Stored::Saved` the whole stored copy replaced by a saved
    /// document (the server's snapshot).
    pub(super) fn persist_as(
        &self,
        doc: &DocId,
        am: &mut AutoCommit,
        stored: Stored<'_>,
        intent: Option<(&Intent, ChangeHash)>,
    ) -> Result<()> {
        let mut chunk = Vec::new();
        if let Stored::After(stored_heads) = stored {
            for change in am.get_changes(stored_heads) {
                chunk.extend_from_slice(change.raw_bytes());
            }
        }
        let doc_id = doc.to_string();
        let projection = match doc {
            _ if schema_version(am).is_some_and(|v| v > SCHEMA_VERSION) => Projection::None,
            DocId::Week { week, .. } => Projection::Week(*week, project_week(am)),
            DocId::Cohort { cohort_id } => Projection::Cohort(cohort_id.clone(), Box::new(cohort::project_cohort(am))),
        };
        let intent = intent
            .map(|(intent, hash)| serde_json::to_string(intent).map(|json| (json, hash)))
            .transpose()
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let now = self.now().timestamp_millis();
        let cohort_changed = matches!(projection, Projection::Cohort(..));
        self.store().write(|tx| {
            if let Some((json, hash)) = &intent {
                cohort_store::record_intent(tx, &doc_id, json, hash, now)?;
            }
            match stored {
                Stored::Saved(bytes) => cohort_store::compact(tx, &doc_id, bytes)?,
                Stored::After(_) => {
                    let chunks = cohort_store::append_chunk(tx, &doc_id, &chunk, false)?;
                    if chunks > COMPACT_AFTER_CHUNKS {
                        cohort_store::compact(tx, &doc_id, &am.save())?;
                    }
                }
            }
            match &projection {
                Projection::Week(week, rows) => cohort_store::replace_week(tx, &doc_id, *week, rows),
                Projection::Cohort(cohort_id, rows) => cohort_store::replace_cohort(tx, cohort_id, rows),
                Projection::None => Ok(()),
            }
        })?;
        if cohort_changed {
            // The program's blueprint carries the cohort's critique weeks: read them again.
            self.forget_program();
        }
        Ok(())
    }

    /// The stored document, or a fresh genesis (with no stored heads) if none is stored yet.
    pub(super) fn load_doc(&self, doc: &DocId) -> Result<(AutoCommit, Vec<ChangeHash>)> {
        match self.store().read(|conn| cohort_store::load_chunks(conn, &doc.to_string()))? {
            Some(bytes) => {
                let mut am = guard::load(&bytes)?;
                let heads = am.get_heads();
                Ok((am, heads))
            }
            None => Ok((genesis(doc), Vec::new())),
        }
    }

    pub(super) fn opened<'a>(&self, open: &'a mut OpenDocs, doc: &DocId) -> Result<&'a mut OpenDoc> {
        if !open.docs.contains_key(doc) {
            let (am, stored_heads) = self.load_doc(doc)?;
            open.docs.insert(doc.clone(), OpenDoc { am, stored_heads, index: None });
        }
        open.docs.get_mut(doc).ok_or_else(|| Error::Corrupt("document cache".into()))
    }
}

//! The app's listener. `Client.subscribe(listener)` returns a [`Subscription`]; closing it (or
//! letting it be freed) stops the events. Events arrive after the change was written, in order,
//! on the client's one event thread (`microcohort-events`), so a listener hands UI work to the
//! main thread (Kotlin's `Client.events()` Flow does that with `flowOn`/`collect` on Main).

use std::sync::{Arc, Weak};

use microcohort_core::sync::SyncStatus;
use microcohort_core::{ClientEvent, DataChange as CoreChange};

use crate::error::MicrocohortError;

/// What changed, so a screen refreshes only when its data did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum DataChange {
    /// The program, its prompts, the membership or the learner's settings.
    Program,
    /// The learner's practice sessions and logs (today screen, history, metrics).
    Practice,
    /// A cohort document: `cohort:<id>` (roster) or `week:<id>:<n>` (that week's entries).
    Document { doc_id: String },
    /// Cohort members' practice logs on a facilitator's device.
    CohortPracticeLogs,
}

impl From<&CoreChange> for DataChange {
    fn from(change: &CoreChange) -> Self {
        match change {
            CoreChange::Program => Self::Program,
            CoreChange::Practice => Self::Practice,
            CoreChange::Document(doc_id) => Self::Document { doc_id: doc_id.clone() },
            CoreChange::CohortPracticeLogs => Self::CohortPracticeLogs,
        }
    }
}

/// Implemented by the app (Kotlin interface, Swift protocol).
#[uniffi::export(with_foreign)]
pub trait ClientListener: Send + Sync {
    fn on_data_changed(&self, change: DataChange) -> Result<(), MicrocohortError>;
    fn on_sync_status_changed(&self, status: SyncStatus) -> Result<(), MicrocohortError>;
}

/// Forwards the core's events to the app's listener. A listener that throws is logged and the
/// change it was told about stands.
pub(crate) fn forward(core: &Weak<microcohort_core::Client>, listener: &dyn ClientListener, event: &ClientEvent) {
    let outcome = match event {
        ClientEvent::DataChanged(change) => listener.on_data_changed(change.into()),
        ClientEvent::SyncStatusChanged => match core.upgrade().map(|client| client.sync_status()) {
            Some(Ok(status)) => listener.on_sync_status_changed(status),
            Some(Err(err)) => Err(err.into()),
            None => Ok(()),
        },
    };
    if let Err(err) = outcome {
        tracing::warn!(%err, "a change listener failed");
    }
}

/// An active subscription. `unsubscribe()`, `close()` (Kotlin `use {}`) or freeing it stops it.
#[derive(uniffi::Object)]
pub struct Subscription {
    core: Weak<microcohort_core::Client>,
    id: u64,
}

impl Subscription {
    pub(crate) fn new(core: &Arc<microcohort_core::Client>, id: u64) -> Self {
        Self { core: Arc::downgrade(core), id }
    }
}

#[uniffi::export]
impl Subscription {
    /// Stops the events; calling it again does nothing.
    pub fn unsubscribe(&self) {
        if let Some(core) = self.core.upgrade() {
            core.unsubscribe(self.id);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.unsubscribe();
    }
}

//! Change notifications: an app subscribes once and refreshes a screen when its data changed —
//! a local write, a merge of a peer's feedback during sync, or a finished sync attempt — instead
//! of polling. Listeners run on the thread that made the change, after every lock is released,
//! so a listener may call back into the [`Client`](super::Client).

use std::sync::Arc;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    DataChanged(DataChange),
    /// A sync attempt finished or the device was linked: read `sync_status()` again.
    SyncStatusChanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataChange {
    /// The program, its prompt library, the membership or the learner's settings.
    Program,
    /// The learner's practice sessions and logs.
    Practice,
    /// A cohort document, by id (`cohort:<id>` or `week:<id>:<n>`).
    Document(String),
    /// Cohort members' practice logs relayed to a facilitator's device.
    CohortPracticeLogs,
}

pub type Listener = Arc<dyn Fn(&ClientEvent) + Send + Sync>;

#[derive(Default)]
pub(super) struct Listeners {
    next_id: u64,
    active: Vec<(u64, Listener)>,
}

impl super::Client {
    /// Calls `listener` for every event from now on; returns the id to unsubscribe with.
    pub fn subscribe(&self, listener: impl Fn(&ClientEvent) + Send + Sync + 'static) -> u64 {
        let mut listeners = self.listeners();
        listeners.next_id += 1;
        let id = listeners.next_id;
        listeners.active.push((id, Arc::new(listener)));
        id
    }

    /// Stops a subscription; `false` if it was already stopped.
    pub fn unsubscribe(&self, id: u64) -> bool {
        let mut listeners = self.listeners();
        let before = listeners.active.len();
        listeners.active.retain(|(active, _)| *active != id);
        listeners.active.len() != before
    }

    /// Tells every listener. Must be called with no store or document lock held.
    pub(crate) fn notify(&self, event: ClientEvent) {
        let listeners: Vec<Listener> = self.listeners().active.iter().map(|(_, l)| l.clone()).collect();
        for listener in listeners {
            listener(&event);
        }
    }

    fn listeners(&self) -> std::sync::MutexGuard<'_, Listeners> {
        // A listener list is valid even if a thread panicked while holding it.
        self.listeners.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

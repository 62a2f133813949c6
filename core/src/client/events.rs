//! Change notifications: an app subscribes once and refreshes a screen when its data changed —
//! a local write, a merge of a peer's feedback during sync, or a finished sync attempt — instead
//! of polling. Listeners are called after the write has returned, one event at a time and in
//! order, from one thread per client named `microcohort-events`: a slow listener never slows a
//! write, and a listener may call back into the [`Client`](super::Client).

use std::sync::mpsc::{Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::ThreadId;

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
struct Active {
    next_id: u64,
    listeners: Vec<(u64, Listener)>,
}

/// The client's listeners and the thread that calls them, started by the first subscription.
#[derive(Default)]
pub(super) struct Listeners {
    active: Arc<Mutex<Active>>,
    dispatcher: OnceLock<Dispatcher>,
}

struct Dispatcher {
    queue: Sender<Message>,
    thread: ThreadId,
}

enum Message {
    Event(ClientEvent),
    /// Answered once every event queued before it was delivered.
    Delivered(SyncSender<()>),
}

/// A listener list is valid even if a thread panicked while holding it.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Listeners {
    fn dispatcher(&self) -> &Dispatcher {
        self.dispatcher.get_or_init(|| {
            let (queue, events) = channel::<Message>();
            let active = self.active.clone();
            // The thread ends when the client is dropped (its queue closes).
            let thread = std::thread::Builder::new()
                .name("microcohort-events".into())
                .spawn(move || {
                    for message in events {
                        match message {
                            Message::Event(event) => {
                                let listeners: Vec<Listener> =
                                    locked(&active).listeners.iter().map(|(_, l)| l.clone()).collect();
                                for listener in listeners {
                                    listener(&event);
                                }
                            }
                            Message::Delivered(answer) => {
                                let _ = answer.send(());
                            }
                        }
                    }
                })
                .unwrap_or_else(|err| panic!("cannot start the listener thread: {err}"));
            Dispatcher { queue, thread: thread.thread().id() }
        })
    }
}

impl super::Client {
    /// Calls `listener` for every event from now on, on the client's event thread; returns the
    /// id to unsubscribe with.
    pub fn subscribe(&self, listener: impl Fn(&ClientEvent) + Send + Sync + 'static) -> u64 {
        self.listeners.dispatcher();
        let mut active = locked(&self.listeners.active);
        active.next_id += 1;
        let id = active.next_id;
        active.listeners.push((id, Arc::new(listener)));
        id
    }

    /// Stops a subscription; `false` if it was already stopped. An event being delivered at
    /// this moment may still reach it; none queued later will.
    pub fn unsubscribe(&self, id: u64) -> bool {
        let mut active = locked(&self.listeners.active);
        let before = active.listeners.len();
        active.listeners.retain(|(active, _)| *active != id);
        active.listeners.len() != before
    }

    /// Returns once every listener has been told of every change made before this call (tests,
    /// and an app about to read what its listeners wrote). Called from a listener, it returns at
    /// once: that thread is the one delivering.
    pub fn wait_for_listeners(&self) {
        let Some(dispatcher) = self.listeners.dispatcher.get() else { return };
        if std::thread::current().id() == dispatcher.thread {
            return;
        }
        let (answer, delivered) = sync_channel(1);
        if dispatcher.queue.send(Message::Delivered(answer)).is_ok() {
            let _ = delivered.recv();
        }
    }

    /// Queues the event for the listeners. Called after the write committed.
    pub(crate) fn notify(&self, event: ClientEvent) {
        if let Some(dispatcher) = self.listeners.dispatcher.get() {
            let _ = dispatcher.queue.send(Message::Event(event));
        }
    }
}

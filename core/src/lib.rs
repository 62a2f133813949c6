//! The Microcohort engine shared by the mobile apps and the sync server.
//!
//! Layers (see docs/architecture.md §2), never depended on backwards:
//! - [`domain`]: pure program logic — blueprint, time model, prompt packs, today's practice, metrics,
//!   reminders. No IO, no clock, no randomness: time and ids are passed in.
//! - [`calendar`]: pure iCalendar export of the program schedule.
//! - [`store`]: the device database (rusqlite, WAL, one writer, versioned migrations).
//! - [`client`]: [`Client`], the one entry point the apps use; it owns the store and the clock.

pub mod calendar;
pub mod client;
pub mod clock;
pub mod docs;
pub mod domain;
pub mod error;
pub mod policy;
pub mod private_text;
pub mod secrets;
pub mod store;
pub mod sync;

pub use client::{
    Client, ClientEvent, CohortMessage, DataChange, Enrollment, EntryRef, ExemplarView, FeedbackInput, FeedbackWindow,
    Lateness, MembershipView, PracticeSession, ProgramSchedule, ReceiveReport, TodayView, UnsentWork, WorkKind,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
#[cfg(feature = "sync-client")]
pub use sync::{JoinOutcome, SyncOutcome, SyncStatus};

/// The default 90-day "Everyday Leadership" prompt pack, in the documented pack file format
/// (`core/prompt-packs/README.md`).
pub const DEFAULT_PROMPT_PACK: &str = include_str!("../prompt-packs/leadership-practice.toml");
/// The file name reported in errors about [`DEFAULT_PROMPT_PACK`].
pub const DEFAULT_PROMPT_PACK_NAME: &str = "leadership-practice.toml";

//! The notification plan's records: what to tell the person, with the parameters an app words it
//! with and the week and entry a tap opens.

use microcohort_core::domain::notifications::{Notification, NotificationDetails, NotificationKind, UnreadEntry};
use microcohort_core::domain::roles::WeeklyRole;

use crate::types::Timestamp;

/// In priority order: when the weekly budget is short, earlier kinds are kept.
#[uniffi::remote(Enum)]
pub enum NotificationKind {
    CritiqueSoon,
    ReviewsDue,
    ReviewsOverdue,
    NoteFromFacilitator,
    Announcement,
    FeedbackOnMyWork,
    ReplyToMe,
    RatingOfMyFeedback,
    MyRole,
    SynthesisPublished,
    Practice,
}

#[uniffi::remote(Enum)]
pub enum NotificationDetails {
    Practice { prompt_title: String, minutes: u32 },
    CritiqueSoon { week: u32, starts_at: Timestamp, minutes: u32, link: Option<String> },
    ReviewsDue { week: u32, owed: u32, closes_at: Timestamp },
    ReviewsOverdue { week: u32, owed: u32, closed_at: Timestamp },
    FeedbackOnMyWork { week: u32, from: String, submission_title: String },
    ReplyToMe { week: u32, from: String },
    RatingOfMyFeedback { week: u32, from: String, score: i64 },
    MyRole { week: u32, role: WeeklyRole, expectation: Option<String> },
    SynthesisPublished { week: u32 },
    NoteFromFacilitator { from: String, excerpt: String },
    Announcement { from: String, excerpt: String },
}

/// `id` is stable for what it is about, the same on every device of the person: schedule with it
/// so a new plan replaces rather than repeats. `title` and `body` are English defaults.
#[uniffi::remote(Record)]
pub struct Notification {
    pub id: String,
    pub kind: NotificationKind,
    pub fire_at: Timestamp,
    pub title: String,
    pub body: String,
    pub details: NotificationDetails,
    pub week: Option<u32>,
    pub entry: Option<String>,
}

/// Something in her cohort she has not seen on any of her devices: an inbox row.
#[uniffi::remote(Record)]
pub struct UnreadEntry {
    pub kind: NotificationKind,
    pub week: u32,
    /// The entry a tap opens (for a rating: the feedback rated).
    pub entry: String,
    pub from: String,
    pub created_at: Timestamp,
}

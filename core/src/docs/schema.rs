//! Document schema: container names, entry fields and the version rule.
//!
//! **Version rule.** Every document carries `schema` at its root. Additions that older apps can
//! ignore (new optional fields) do not change it: readers skip fields they do not know. A change
//! that older apps would misread bumps `schema`; an app that finds a schema newer than
//! [`SCHEMA_VERSION`] keeps and syncs the document unchanged but does not project or edit it, and
//! tells the user to update the app.
//!
//! **New containers.** The genesis is fixed and only the server may write the root, so only the
//! server adds a container, when it first writes to it (see [`LATER_COHORT_CONTAINERS`]); readers
//! that do not know it skip it. Members cannot write into such a container: the validator knows
//! the genesis containers only, and refuses a change to any other object as unknown. A
//! container members write into would need a schema step the validator learns (not built).

pub const SCHEMA_VERSION: u64 = 1;
pub const SCHEMA_KEY: &str = "schema";

/// A top-level object of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Container {
    // week documents
    Submissions,
    Feedback,
    Replies,
    Ratings,
    Agenda,
    Attendance,
    Synthesis,
    // cohort documents
    Roster,
    Critique,
    Capstone,
    Profiles,
    // added to cohort documents by the server when first written
    Moderation,
    Announcements,
}

pub const WEEK_CONTAINERS: [Container; 7] = [
    Container::Submissions,
    Container::Feedback,
    Container::Replies,
    Container::Ratings,
    Container::Agenda,
    Container::Attendance,
    Container::Synthesis,
];

pub const COHORT_CONTAINERS: [Container; 4] =
    [Container::Roster, Container::Critique, Container::Capstone, Container::Profiles];

/// Containers of cohort documents that are not in the genesis: the server creates each the first
/// time it writes to it. Facilitators' actions, written by the server on their behalf.
pub const LATER_COHORT_CONTAINERS: [Container; 2] = [Container::Moderation, Container::Announcements];

/// Who may add entries to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writers {
    /// Any member, under their own key.
    Members,
    /// Facilitators only, under their own key.
    Facilitators,
    /// The server only.
    Server,
    /// The synthesis text: the week's synthesizers and the facilitators.
    Synthesizers,
    /// The critique agenda: facilitators and the member leading the week's critique, under
    /// their own key.
    CritiqueLeads,
}

impl Container {
    pub fn name(self) -> &'static str {
        match self {
            Self::Submissions => "submissions",
            Self::Feedback => "feedback",
            Self::Replies => "replies",
            Self::Ratings => "ratings",
            Self::Agenda => "agenda",
            Self::Attendance => "attendance",
            Self::Synthesis => "synthesis",
            Self::Roster => "roster",
            Self::Critique => "critique",
            Self::Capstone => "capstone",
            Self::Profiles => "profiles",
            Self::Moderation => "moderation",
            Self::Announcements => "announcements",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        WEEK_CONTAINERS
            .iter()
            .chain(COHORT_CONTAINERS.iter())
            .chain(LATER_COHORT_CONTAINERS.iter())
            .copied()
            .find(|c| c.name() == name)
    }

    pub fn is_text(self) -> bool {
        self == Self::Synthesis
    }

    /// Containers whose entries the server writes under bare keys (a user id, a week number)
    /// rather than `"<author>/<id>"`.
    pub fn server_keyed(self) -> bool {
        matches!(self, Self::Roster | Self::Critique | Self::Moderation | Self::Announcements)
    }

    pub fn writers(self) -> Writers {
        match self {
            Self::Submissions | Self::Feedback | Self::Replies | Self::Ratings | Self::Profiles => Writers::Members,
            Self::Agenda => Writers::CritiqueLeads,
            Self::Attendance => Writers::Facilitators,
            Self::Synthesis => Writers::Synthesizers,
            Self::Roster | Self::Critique | Self::Capstone | Self::Moderation | Self::Announcements => Writers::Server,
        }
    }
}

/// Entry field names (scalar values only; lists are JSON strings).
pub mod field {
    pub const KIND: &str = "kind";
    pub const TITLE: &str = "title";
    pub const BODY: &str = "body";
    pub const PROMPT_ID: &str = "prompt_id";
    pub const ATTACHMENTS: &str = "attachments";
    /// The practice log a practice submission shares (its id).
    pub const PRACTICE_LOG: &str = "practice_log";
    pub const SUBMISSION: &str = "submission";
    pub const SUGGESTION: &str = "suggestion";
    pub const CRITERIA: &str = "criteria";
    pub const FEEDBACK: &str = "feedback";
    pub const PARENT: &str = "parent";
    pub const SCORE: &str = "score";
    pub const MEMBER: &str = "member";
    pub const PRESENT: &str = "present";
    pub const POSITION: &str = "position";
    pub const NOTE: &str = "note";
    /// A capstone review's rubric scores: a JSON list, one 1–5 score per criterion.
    pub const SCORES: &str = "scores";
    pub const CREATED_AT: &str = "created_at";
    pub const EDITED_AT: &str = "edited_at";
    pub const RETRACTED: &str = "retracted";
    pub const DISPLAY_NAME: &str = "display_name";
    pub const ROLE: &str = "role";
    pub const TIME_ZONE: &str = "time_zone";
    pub const DAY_START_MINUTES: &str = "day_start_minutes";
    pub const JOINED_ON: &str = "joined_on";
    pub const LEFT_ON: &str = "left_on";
    /// The day a facilitator marked a member as having stopped practising.
    pub const PAUSED_ON: &str = "paused_on";
    /// A critique week's new local start (`YYYY-MM-DDTHH:MM:SS` in the cohort's zone).
    pub const MOVED_TO: &str = "moved_to";
    pub const LINK: &str = "link";
    pub const LEAD: &str = "lead";
    pub const REVISION: &str = "revision";
    /// Moderation of an entry: hidden (a flag), why, by whom; who endorsed it.
    pub const HIDDEN: &str = "hidden";
    pub const REASON: &str = "reason";
    pub const HIDDEN_BY: &str = "hidden_by";
    pub const ENDORSED_BY: &str = "endorsed_by";
}

/// The key of an entry: `"<author_user_id>/<entry_id>"`.
pub fn entry_key(author: &str, entry_id: &str) -> String {
    format!("{author}/{entry_id}")
}

/// The author part of an entry key, if the key is well formed.
pub fn key_author(key: &str) -> Option<&str> {
    let (author, entry) = key.split_once('/')?;
    (!author.is_empty() && !entry.is_empty()).then_some(author)
}

//! The records and enums the apps exchange with the library. Core types that need no conversion
//! are exposed as they are (`uniffi::remote`, which must repeat their definition); ids, dates and
//! instants cross as strings and timestamps; the rest are small records converted field by field.

use std::time::SystemTime;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use microcohort_core::UnsentWork;
use microcohort_core::docs::projection::{
    AgendaRow, AttendanceRow, EntryMeta, FeedbackRow, RatingRow, ReplyRow, SubmissionRow, WeekRows,
};
use microcohort_core::domain::arms::Arm;
use microcohort_core::domain::blueprint::{Phase, ProgramPosition};
use microcohort_core::domain::cohort_metrics::{
    Activity60, CohortReport, Engagement, FeedbackSummary, MemberReport, RiskReason,
};
use microcohort_core::domain::metrics::LearnerMetrics;
use microcohort_core::domain::practice::{PracticeOutcome, TransferEvidence, TransferKind};
use microcohort_core::domain::prompt_pack::Prompt;
use microcohort_core::domain::reminders::{self, PlannedReminder, ReminderDetails, ReminderKind};
use microcohort_core::domain::review::ReviewAssignment;
use microcohort_core::domain::roles::WeeklyRole;
use microcohort_core::domain::roster::{Member, MemberRole, SizeStatus};
use microcohort_core::domain::time::DayStart;
use microcohort_core::domain::time::parse_wall_time;
use microcohort_core::store::practice::{PracticeLog, PracticeSession, PracticeStatus, PromptRef};
use microcohort_core::store::prompts::ImportOutcome;
use microcohort_core::sync::DeviceLink;
use microcohort_core::sync::wire::{DeviceInfo, RefusedLog};
use microcohort_core::sync::{FailedIntent, JoinOutcome, SyncStatus};
use microcohort_core::{EntryRef, FeedbackInput, FeedbackWindow, Lateness, TodayView, WorkKind};
use uuid::Uuid;

use crate::error::MicrocohortError;

// ---- scalars ----------------------------------------------------------------------------------

uniffi::custom_type!(Uuid, String, { remote, lower: |id| id.to_string(), try_lift: |s| Ok(Uuid::parse_str(&s)?) });
/// An ISO date ("2026-03-10"): a learner-local day, which has no time zone to convert.
pub type LocalDate = NaiveDate;
uniffi::custom_type!(LocalDate, String, { remote, lower: |d| d.to_string(), try_lift: |s| Ok(s.parse()?) });
// How many minutes past midnight a member's day starts (0–360).
uniffi::custom_type!(DayStart, u16, {
    remote,
    lower: |d| d.minutes(),
    try_lift: |minutes| Ok(DayStart::from_minutes(i64::from(minutes))?),
});
/// An instant: `java.time.Instant` in Kotlin, `Date` in Swift.
pub type Timestamp = DateTime<Utc>;
uniffi::custom_type!(Timestamp, SystemTime, {
    remote,
    lower: |instant| instant.into(),
    try_lift: |time| Ok(time.into()),
});

// ---- learner ----------------------------------------------------------------------------------

#[uniffi::remote(Record)]
pub struct PromptRef {
    pub pack_id: String,
    pub pack_version: u32,
    pub prompt_id: String,
}

#[uniffi::remote(Record)]
pub struct Prompt {
    pub id: String,
    pub week: u32,
    pub day: u32,
    pub title: String,
    pub minutes: u32,
    pub tags: Vec<String>,
    pub rubric: Vec<String>,
    pub body: String,
}

#[derive(uniffi::Record)]
pub struct PromptView {
    pub prompt_ref: PromptRef,
    pub prompt: Prompt,
    /// A completed practice of this prompt exists this week.
    pub completed: bool,
}

#[uniffi::remote(Enum)]
pub enum Phase {
    BeforeStart,
    Orientation,
    Practice,
    RoleRotation,
    Consolidation,
    Finished,
}

#[uniffi::remote(Record)]
pub struct ProgramPosition {
    pub date: LocalDate,
    pub program_day: i64,
    pub week: Option<u32>,
    pub day_of_week: Option<u32>,
    pub phase: Phase,
}

#[uniffi::remote(Record)]
pub struct PracticeSession {
    pub id: Uuid,
    pub program_id: String,
    pub prompt: PromptRef,
    pub started_at: Timestamp,
    pub time_zone: String,
    pub local_date: LocalDate,
}

#[uniffi::remote(Record)]
pub struct LearnerMetrics {
    pub reference_date: LocalDate,
    pub streak: u32,
    pub practised_today: bool,
    pub active_days_7: u32,
    pub active_days_14: u32,
    pub active_days_30: u32,
    pub minutes_7: u32,
    pub minutes_30: u32,
    pub minutes_total: u32,
    pub practices_total: u32,
}

#[uniffi::remote(Enum)]
pub enum ReminderKind {
    Critique,
    Practice,
}

#[uniffi::remote(Record)]
pub struct PlannedReminder {
    pub id: String,
    pub kind: ReminderKind,
    pub fire_at: Timestamp,
    pub local_date: LocalDate,
    pub title: String,
    pub body: String,
    pub details: ReminderDetails,
}

/// What a reminder is about, to word it in the app's language.
#[uniffi::remote(Enum)]
pub enum ReminderDetails {
    Practice { prompt_title: String, minutes: u32 },
    Critique { week: u32, starts_at: Timestamp, minutes: u32, link: Option<String> },
}

/// Everything the today screen shows.
#[derive(uniffi::Record)]
pub struct Today {
    pub local_date: LocalDate,
    pub time_zone: String,
    pub position: ProgramPosition,
    /// Today's prompt; none before the start and after the end of the program.
    pub prompt: Option<PromptView>,
    pub in_progress: Option<PracticeSession>,
    /// Earlier prompts of this week not done yet.
    pub catch_up: Vec<PromptView>,
    pub metrics: LearnerMetrics,
    pub next_reminders: Vec<PlannedReminder>,
}

impl From<microcohort_core::client::PromptView> for PromptView {
    fn from(v: microcohort_core::client::PromptView) -> Self {
        Self { prompt_ref: v.prompt_ref, prompt: v.prompt, completed: v.completed }
    }
}

impl From<TodayView> for Today {
    fn from(t: TodayView) -> Self {
        let view = PromptView::from;
        Self {
            local_date: t.local_date,
            time_zone: t.time_zone,
            position: t.position,
            prompt: t.prompt.map(view),
            in_progress: t.in_progress,
            catch_up: t.catch_up.into_iter().map(view).collect(),
            metrics: t.metrics,
            next_reminders: t.next_reminders,
        }
    }
}

/// Whether feedback or a reply arrived after its window closed: the server's fact. `Pending`:
/// this person's own entry, not stored by the server yet.
#[uniffi::remote(Enum)]
pub enum Lateness {
    OnTime,
    Late,
    Pending,
}

/// One feedback or reply of a week and its lateness.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EntryLateness {
    pub key: String,
    pub lateness: Lateness,
}

#[uniffi::remote(Enum)]
pub enum TransferKind {
    AppliedAtWork,
    Portfolio,
}

#[uniffi::remote(Record)]
pub struct TransferEvidence {
    pub kind: TransferKind,
    pub note: String,
    pub link: Option<String>,
}

#[uniffi::remote(Record)]
pub struct PracticeOutcome {
    /// Seconds the practice took; the app's timer when it has one.
    pub duration_secs: Option<u32>,
    /// Private: never shared with the cohort.
    pub reflection: String,
    pub transfer: Option<TransferEvidence>,
}

#[uniffi::remote(Enum)]
pub enum PracticeStatus {
    Completed,
    Abandoned,
}

#[uniffi::remote(Record)]
pub struct PracticeLog {
    pub id: Uuid,
    pub program_id: String,
    pub prompt: PromptRef,
    pub started_at: Timestamp,
    pub time_zone: String,
    pub local_date: LocalDate,
    pub status: PracticeStatus,
    pub duration_secs: Option<u32>,
    pub reflection: String,
    pub transfer: Option<TransferEvidence>,
    pub corrects: Option<Uuid>,
    pub recorded_at: Timestamp,
}

#[derive(uniffi::Record)]
pub struct PackImport {
    pub pack_id: String,
    pub version: u32,
    pub prompts: u32,
    /// False when the same version with the same content was already there.
    pub imported: bool,
}

impl From<microcohort_core::client::PackImport> for PackImport {
    fn from(p: microcohort_core::client::PackImport) -> Self {
        Self {
            pack_id: p.pack_id,
            version: p.version,
            prompts: u32::try_from(p.prompts).unwrap_or(u32::MAX),
            imported: p.outcome == ImportOutcome::Imported,
        }
    }
}

// ---- settings ---------------------------------------------------------------------------------

/// Quiet hours as local wall-clock "HH:MM"; `end` before `start` spans midnight.
#[derive(uniffi::Record)]
pub struct QuietHours {
    pub start: String,
    pub end: String,
}

/// Reminder settings; times are local wall-clock "HH:MM".
#[derive(uniffi::Record)]
pub struct ReminderPreferences {
    pub practice_time: String,
    pub practice_reminders: bool,
    pub critique_reminders: bool,
    pub critique_lead_minutes: u32,
    pub quiet_hours: Option<QuietHours>,
    pub weekly_budget: u32,
}

#[derive(uniffi::Record)]
pub struct Profile {
    pub time_zone: String,
    pub day_start_offset_minutes: u32,
    pub reminders: ReminderPreferences,
}

fn wall_time(time: NaiveTime) -> String {
    time.format("%H:%M").to_string()
}

impl From<reminders::ReminderPreferences> for ReminderPreferences {
    fn from(p: reminders::ReminderPreferences) -> Self {
        Self {
            practice_time: wall_time(p.practice_time),
            practice_reminders: p.practice_reminders,
            critique_reminders: p.critique_reminders,
            critique_lead_minutes: p.critique_lead_minutes,
            quiet_hours: p.quiet_hours.map(|q| QuietHours { start: wall_time(q.start), end: wall_time(q.end) }),
            weekly_budget: p.weekly_budget,
        }
    }
}

impl TryFrom<ReminderPreferences> for reminders::ReminderPreferences {
    type Error = MicrocohortError;

    fn try_from(p: ReminderPreferences) -> Result<Self, MicrocohortError> {
        let time = |field: &str, text: &str| parse_wall_time(field, text).map_err(microcohort_core::Error::from);
        let quiet_hours = match p.quiet_hours {
            Some(q) => Some(reminders::QuietHours {
                start: time("quiet_hours.start", &q.start)?,
                end: time("quiet_hours.end", &q.end)?,
            }),
            None => None,
        };
        Ok(Self {
            practice_time: time("practice_time", &p.practice_time)?,
            practice_reminders: p.practice_reminders,
            critique_reminders: p.critique_reminders,
            critique_lead_minutes: p.critique_lead_minutes,
            quiet_hours,
            weekly_budget: p.weekly_budget,
        })
    }
}

impl From<microcohort_core::store::enrollment::Profile> for Profile {
    fn from(p: microcohort_core::store::enrollment::Profile) -> Self {
        Self {
            time_zone: p.time_zone.name().to_owned(),
            day_start_offset_minutes: u32::from(p.day_start.minutes()),
            reminders: p.reminders.into(),
        }
    }
}

// ---- cohort -----------------------------------------------------------------------------------

#[uniffi::remote(Record)]
pub struct EntryRef {
    pub week: u32,
    /// `"<author>/<entry_id>"`.
    pub key: String,
}

#[uniffi::remote(Enum)]
pub enum WorkKind {
    Practice,
    Capstone,
    Reflection,
}

#[uniffi::remote(Record)]
pub struct FeedbackInput {
    pub body: String,
    pub suggestion: Option<String>,
    /// Indices of the prompt's rubric criteria the feedback addresses.
    pub criteria: Vec<u32>,
}

#[uniffi::remote(Record)]
pub struct FeedbackWindow {
    pub closes_at: Option<Timestamp>,
    pub open: bool,
}

#[uniffi::remote(Record)]
pub struct EntryMeta {
    pub key: String,
    pub author: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub retracted: bool,
    /// Why a facilitator hid it: set for its author and the facilitators (others never get it).
    pub hidden: Option<String>,
}

#[uniffi::remote(Record)]
pub struct SubmissionRow {
    pub meta: EntryMeta,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub prompt_id: Option<String>,
    pub attachments: Vec<String>,
    /// The practice log this submission shares.
    pub practice_log: Option<String>,
}

#[uniffi::remote(Record)]
pub struct FeedbackRow {
    pub meta: EntryMeta,
    pub submission: String,
    pub body: String,
    pub suggestion: Option<String>,
    pub criteria: Vec<u32>,
    /// A capstone review's 1–5 score per capstone rubric criterion; empty for other feedback.
    pub scores: Vec<u32>,
    /// The facilitator who endorsed it as a model of good feedback.
    pub endorsed_by: Option<String>,
}

#[uniffi::remote(Record)]
pub struct ReplyRow {
    pub meta: EntryMeta,
    pub feedback: String,
    pub parent: Option<String>,
    pub body: String,
}

#[uniffi::remote(Record)]
pub struct RatingRow {
    pub meta: EntryMeta,
    pub feedback: String,
    pub score: i64,
    pub counted: bool,
}

#[uniffi::remote(Record)]
pub struct AttendanceRow {
    pub meta: EntryMeta,
    pub member: String,
    pub present: bool,
}

#[uniffi::remote(Record)]
pub struct AgendaRow {
    pub meta: EntryMeta,
    pub submission: String,
    pub position: i64,
    pub note: String,
}

#[uniffi::remote(Record)]
pub struct WeekRows {
    pub submissions: Vec<SubmissionRow>,
    pub feedback: Vec<FeedbackRow>,
    pub replies: Vec<ReplyRow>,
    pub ratings: Vec<RatingRow>,
    pub attendance: Vec<AttendanceRow>,
    pub agenda: Vec<AgendaRow>,
    pub synthesis: String,
}

#[uniffi::remote(Enum)]
pub enum WeeklyRole {
    Practitioner,
    Reviewer,
    Synthesizer,
    PractiseAndReview,
    Facilitator,
}

#[derive(uniffi::Record)]
pub struct MemberWeeklyRole {
    pub user_id: String,
    pub role: WeeklyRole,
}

#[derive(uniffi::Record)]
pub struct WeekRoles {
    pub week: u32,
    pub rotation: bool,
    pub roles: Vec<MemberWeeklyRole>,
    pub critique_lead: Option<String>,
    /// What each role held this week is expected to do, as the prompt pack words it.
    pub expectations: Vec<RoleExpectation>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RoleExpectation {
    pub role: WeeklyRole,
    pub text: String,
}

impl From<microcohort_core::domain::roles::WeekRoles> for WeekRoles {
    fn from(r: microcohort_core::domain::roles::WeekRoles) -> Self {
        Self {
            week: r.week,
            rotation: r.rotation,
            roles: r.roles.into_iter().map(|(user_id, role)| MemberWeeklyRole { user_id, role }).collect(),
            critique_lead: r.critique_lead,
            expectations: r.expectations.into_iter().map(|(role, text)| RoleExpectation { role, text }).collect(),
        }
    }
}

#[uniffi::remote(Record)]
pub struct ReviewAssignment {
    pub practitioner: String,
    pub reviewers: Vec<String>,
}

/// A program's arms: a cohort of peers, or the control arm (the practice loop alone).
#[uniffi::remote(Enum)]
pub enum Arm {
    Cohort,
    Control,
}

#[uniffi::remote(Enum)]
pub enum MemberRole {
    Learner,
    Facilitator,
}

#[uniffi::remote(Record)]
pub struct Member {
    pub user_id: String,
    pub display_name: String,
    pub role: MemberRole,
    pub time_zone: String,
    pub day_start: DayStart,
    pub joined_on: LocalDate,
    pub left_on: Option<LocalDate>,
    /// The day a facilitator marked her as having stopped practising (out of review assignments).
    pub paused_on: Option<LocalDate>,
}

#[uniffi::remote(Enum)]
pub enum SizeStatus {
    Ok,
    BelowMinimum { learners: u32, min: u32 },
}

// ---- sync -------------------------------------------------------------------------------------

/// One of the person's devices.
#[uniffi::remote(Record)]
pub struct DeviceInfo {
    pub device_id: String,
    pub name: String,
    pub cohort_id: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub this_device: bool,
}

/// What one device shows to link another of the person's devices.
#[uniffi::remote(Record)]
pub struct DeviceLink {
    pub code: String,
    /// For a QR code: the server, the code and the person's private-text key.
    pub payload: String,
    pub expires_at_ms: i64,
}

/// What this device recorded and has not sent yet.
#[uniffi::remote(Record)]
pub struct UnsentWork {
    pub practice_logs: u64,
    pub cohort_entries: u64,
}

#[uniffi::remote(Record)]
pub struct JoinOutcome {
    pub user_id: String,
    pub cohort_id: String,
    /// "learner" or "facilitator".
    pub role: String,
}

#[derive(uniffi::Record)]
pub struct RejectedDocument {
    pub doc_id: String,
    pub reason: String,
}

#[derive(uniffi::Record)]
pub struct SyncOutcome {
    pub rounds: u32,
    pub changes_sent: u32,
    pub changes_received: u32,
    pub bytes_received: u64,
    pub logs_acked: u32,
    /// Practice logs the server refused (`refusedPracticeLogs()` says why).
    pub logs_refused: u32,
    pub cohort_logs_received: u32,
    /// The person's practice logs from her other devices (a new device's first syncs).
    pub history_logs_received: u32,
    /// Documents whose local branch the server refused; the user's entries were re-applied.
    pub rejected: Vec<RejectedDocument>,
    /// Memberships the server no longer syncs (she left or was removed elsewhere), with its words.
    pub memberships_refused: Vec<RefusedMembership>,
}

#[derive(uniffi::Record)]
pub struct RefusedMembership {
    pub cohort_id: String,
    pub reason: String,
}

impl From<microcohort_core::SyncOutcome> for SyncOutcome {
    fn from(o: microcohort_core::SyncOutcome) -> Self {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            rounds: count(o.rounds),
            changes_sent: count(o.changes_sent),
            changes_received: count(o.changes_received),
            bytes_received: o.bytes_received as u64,
            logs_acked: count(o.logs_acked),
            logs_refused: count(o.logs_refused),
            cohort_logs_received: count(o.cohort_logs_received),
            history_logs_received: count(o.history_logs_received),
            rejected: o.rejected.into_iter().map(|(doc_id, reason)| RejectedDocument { doc_id, reason }).collect(),
            memberships_refused: o
                .memberships_refused
                .into_iter()
                .map(|(cohort_id, reason)| RefusedMembership { cohort_id, reason })
                .collect(),
        }
    }
}

#[uniffi::remote(Record)]
pub struct SyncStatus {
    pub linked: bool,
    pub last_success_ms: Option<i64>,
    pub last_attempt_ms: Option<i64>,
    pub pending_practice_logs: u64,
    /// The last failure in words for the user; none after a success.
    pub last_error: Option<String>,
    /// The server this device syncs with; none before joining.
    pub server_url: Option<String>,
}

#[uniffi::remote(Record)]
pub struct FailedIntent {
    pub doc_id: String,
    pub description: String,
    pub reason: String,
}

/// A cohort member's practice log as a facilitator's device receives it (never the reflection).
#[derive(uniffi::Record)]
pub struct CohortPracticeLog {
    pub id: String,
    pub user_id: String,
    pub local_date: String,
    /// "completed" or "abandoned".
    pub status: String,
}

// ---- facilitator dashboard --------------------------------------------------------------------

#[uniffi::remote(Enum)]
pub enum RiskReason {
    NoActiveDayIn7Days,
    Slipping { last_7: u32, previous_7: u32 },
    ReviewsOverdue { count: u32 },
}

#[uniffi::remote(Record)]
pub struct MemberReport {
    pub user_id: String,
    pub display_name: String,
    pub role: MemberRole,
    pub left: bool,
    pub reference_date: LocalDate,
    pub active_days_7: u32,
    pub active_days_14: u32,
    pub active_days_30: u32,
    pub streak: u32,
    pub feedback_given: u32,
    pub feedback_received: u32,
    pub mean_helpfulness_given: Option<f64>,
    pub suggestion_share: Option<f64>,
    pub criteria_share: Option<f64>,
    pub reviews_owed: u32,
    pub reviews_overdue: u32,
    pub role_this_week: Option<WeeklyRole>,
    pub transfer_evidence: u32,
    /// Practice logs that arrived after the server's back-fill window: in no figure.
    pub late_arrivals: u32,
    pub at_risk: Vec<RiskReason>,
    pub active_program_days: Vec<u32>,
    pub critiques_attended: u32,
    pub critiques_recorded: u32,
    pub capstone_shared: bool,
    pub reflection_shared: bool,
}

/// A practice log the server did not keep. `reason` is a stable code: `date_mismatch`,
/// `before_program`, `in_the_future`, `correction_not_allowed`, `malformed`.
#[uniffi::remote(Record)]
pub struct RefusedLog {
    pub id: String,
    pub reason: String,
    pub detail: String,
}

#[uniffi::remote(Record)]
pub struct Engagement {
    pub day: u32,
    pub share: Option<f64>,
}

#[uniffi::remote(Record)]
pub struct Activity60 {
    pub mean_active_days: f64,
    pub complete: bool,
}

#[uniffi::remote(Record)]
pub struct FeedbackSummary {
    pub given: u32,
    pub per_member_per_week: Option<f64>,
    pub mean_helpfulness: Option<f64>,
    pub suggestion_share: Option<f64>,
    pub criteria_share: Option<f64>,
}

#[uniffi::remote(Record)]
pub struct CohortReport {
    pub cohort_id: String,
    pub title: String,
    pub arm: Arm,
    pub start_date: LocalDate,
    pub program_day: u32,
    pub total_days: u32,
    pub week: Option<u32>,
    pub size_status: Option<SizeStatus>,
    pub learners: u32,
    pub enrolled_at_start: u32,
    pub members: Vec<MemberReport>,
    pub engagement: Vec<Engagement>,
    pub retention: Vec<f64>,
    pub activity_60: Option<Activity60>,
    pub feedback: FeedbackSummary,
    pub attendance_share: Option<f64>,
    pub capstone_share: Option<f64>,
}

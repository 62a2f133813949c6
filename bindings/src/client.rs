//! `Client`: one object per device database, shared by the learner, member and facilitator
//! screens. Every method is a thin call into [`microcohort_core::Client`]; every one that touches
//! storage or the network is `suspend`/`async` and runs on the core's own runtime, never on the
//! app's threads. `open` (creating or migrating the database) blocks: call it from a background
//! dispatcher once, at start-up.

use std::sync::Arc;

use chrono::NaiveDate;
use microcohort_core::docs::projection::{AgendaRow, WeekRows};
use microcohort_core::domain::cohort_metrics::CohortReport;
use microcohort_core::domain::metrics::LearnerMetrics;
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::domain::prompt_pack::Prompt;
use microcohort_core::domain::reminders::PlannedReminder;
use microcohort_core::domain::review::ReviewAssignment;
use microcohort_core::domain::roles::WeeklyRole;
use microcohort_core::domain::roster::{Member, SizeStatus};
use microcohort_core::store::practice::{PracticeLog, PracticeSession, PromptRef};
use microcohort_core::sync::wire::{DeviceInfo, RefusedLog};
use microcohort_core::sync::{DeviceLink, FailedIntent, JoinOutcome, SyncStatus, spawn_on_runtime};
use microcohort_core::{EntryRef, FeedbackInput, FeedbackWindow, SystemClock, UnsentWork, WorkKind};
use uuid::Uuid;

use crate::error::{MicrocohortError, Result, guarded, internal_failure, invalid};
use crate::events::{ClientListener, Subscription, forward};
use crate::program_types::ProgramSchedule;
use crate::secrets::{AppSecrets, SecretStore};
use crate::types::Timestamp;
use crate::types::{
    CohortPracticeLog, EntryLateness, PackImport, Profile, PromptView, ReminderPreferences, SyncOutcome, Today,
    WeekRoles,
};
use microcohort_core::domain::notifications::{Notification, UnreadEntry};
use microcohort_core::domain::prompt_pack::Capstone;
use microcohort_core::domain::schedule::{CritiqueSlot, LibraryFilter};

#[derive(uniffi::Object)]
pub struct Client {
    pub(crate) core: Arc<microcohort_core::Client>,
}

pub(crate) fn parse_id(field: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text.trim()).map_err(|_| invalid(field, format!("{text:?} is not an id")))
}

fn count(field: &str, value: u32) -> Result<usize> {
    usize::try_from(value).map_err(|_| invalid(field, "too large"))
}

/// Runs blocking core work on the core's runtime and awaits it from the app's coroutine/task.
pub(crate) async fn on_runtime<T: Send + 'static>(
    work: impl FnOnce() -> microcohort_core::Result<T> + Send + 'static,
) -> Result<T> {
    match spawn_on_runtime(move || guarded(work)).await {
        Ok(result) => result,
        Err(join) if join.is_panic() => Err(internal_failure(join.into_panic().as_ref())),
        Err(join) => Err(MicrocohortError::Internal { detail: format!("sync task stopped: {join}") }),
    }
}

impl Client {
    /// Runs core work that touches storage on the core's runtime, off the app's threads.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&microcohort_core::Client) -> microcohort_core::Result<T> + Send + 'static,
    ) -> Result<T> {
        let core = self.core.clone();
        on_runtime(move || work(&core)).await
    }
}

#[uniffi::export]
impl Client {
    /// Opens (creating and migrating if needed) the device database at `path`, with the app's
    /// secure storage holding the device token and the private-text key (secrets an earlier
    /// version kept in the file move there now). Blocks on disk: call it off the main thread.
    #[uniffi::constructor]
    pub fn open(path: String, secret_store: Arc<dyn SecretStore>) -> Result<Arc<Self>> {
        let secrets = Arc::new(AppSecrets(secret_store));
        let core = guarded(|| microcohort_core::Client::open_with_secret_store(&path, Arc::new(SystemClock), secrets))?;
        Ok(Arc::new(Self { core: Arc::new(core) }))
    }

    /// Calls `listener` on every data or sync-status change until the subscription is closed,
    /// after the change was written, in order, from the client's one event thread
    /// (`microcohort-events`; never the caller's, never the main thread). Kotlin: `events()`
    /// gives the same as a `Flow`.
    pub fn subscribe(&self, listener: Arc<dyn ClientListener>) -> Arc<Subscription> {
        let core = Arc::downgrade(&self.core);
        let id = self.core.subscribe(move |event| forward(&core, listener.as_ref(), event));
        Arc::new(Subscription::new(&self.core, id))
    }

    /// Returns once every listener has been told of every change made before the call.
    pub async fn wait_for_listeners(&self) {
        let core = self.core.clone();
        let _ = on_runtime(move || {
            core.wait_for_listeners();
            Ok(())
        })
        .await;
    }

    // ---- joining and sync (network) -------------------------------------------------------

    /// Joins a cohort with an invite code: links the device, imports the program and enrolls
    /// the learner in `time_zone` (an IANA name such as "Europe/Berlin"). On a device already
    /// signed in, an invite for her adds another membership to this database and selects it.
    pub async fn join_server(
        &self,
        server_url: String,
        invite_code: String,
        device_name: String,
        time_zone: String,
    ) -> Result<JoinOutcome> {
        let core = self.core.clone();
        on_runtime(move || core.join_server(&server_url, &invite_code, &device_name, &time_zone)).await
    }

    /// One sync round trip: sends what this device wrote, brings back what it lacks. Cancelling
    /// the caller's coroutine/task does not stop a sync under way; stopping it anywhere is safe.
    pub async fn sync_now(&self) -> Result<SyncOutcome> {
        let core = self.core.clone();
        on_runtime(move || core.sync_now()).await.map(Into::into)
    }

    /// Syncs, retrying network failures and a busy server with backoff, `attempts` times at most.
    pub async fn sync_with_retry(&self, attempts: u32) -> Result<SyncOutcome> {
        let core = self.core.clone();
        on_runtime(move || core.sync_with_retry(attempts)).await.map(Into::into)
    }

    // ---- the person's devices ---------------------------------------------------------------

    /// A link for another of the person's devices, valid once for 10 minutes: show `payload` as
    /// a QR code (it carries her private-text key), or tell the `code`.
    pub async fn create_device_link(&self) -> Result<DeviceLink> {
        let core = self.core.clone();
        on_runtime(move || core.create_device_link()).await
    }

    /// Links this device from the payload another of the person's devices shows: her program,
    /// cohort, history, settings and private text.
    pub async fn link_device(&self, payload: String, device_name: String, time_zone: String) -> Result<JoinOutcome> {
        let core = self.core.clone();
        on_runtime(move || core.link_device(&payload, &device_name, &time_zone)).await
    }

    /// Links this device with the code alone; her private text opens once the recovery key is
    /// entered (`restoreRecoveryKey`).
    pub async fn link_device_with_code(
        &self,
        server_url: String,
        code: String,
        device_name: String,
        time_zone: String,
    ) -> Result<JoinOutcome> {
        let core = self.core.clone();
        on_runtime(move || core.link_device_with_code(&server_url, &code, &device_name, &time_zone)).await
    }

    /// A one-time link (a few minutes) that opens the web dashboard as this facilitator: open it
    /// in a browser.
    pub async fn dashboard_sign_in_link(&self) -> Result<String> {
        let core = self.core.clone();
        on_runtime(move || core.dashboard_sign_in_link()).await
    }

    /// The key her private text is sealed with, for her to write down; none on a device without it.
    pub async fn recovery_key(&self) -> Result<Option<String>> {
        self.run(move |core| core.recovery_key()).await
    }

    /// Enters her recovery key on this device (every other device lost).
    pub async fn restore_recovery_key(&self, recovery_key: String) -> Result<()> {
        self.run(move |core| core.restore_recovery_key(&recovery_key)).await
    }

    /// The person's devices, newest first, revoked ones included.
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>> {
        let core = self.core.clone();
        on_runtime(move || core.devices()).await
    }

    /// Signs out another of the person's devices (a lost phone): it can no longer sync.
    pub async fn sign_out_device(&self, device_id: String) -> Result<()> {
        let core = self.core.clone();
        on_runtime(move || core.sign_out_device(&device_id)).await
    }

    /// Signs out here: sends what is unsent, revokes this device and deletes the person's data
    /// from it. Offline: `Offline`, nothing deleted.
    pub async fn sign_out(&self) -> Result<()> {
        let core = self.core.clone();
        on_runtime(move || core.sign_out()).await
    }

    /// The server moved to a new address: this device follows it, keeping its sign-in and
    /// data. `InvalidInput(server_url)` if no server there knows this device (nothing changes).
    pub async fn change_server(&self, server_url: String) -> Result<()> {
        let core = self.core.clone();
        on_runtime(move || core.change_server(&server_url)).await
    }

    /// Leaves the selected membership's cohort (after sending what is unsent): the server records
    /// today as her last day; this device drops the cohort's documents, keeps her practice
    /// history and selects another of her memberships, if any.
    pub async fn leave_cohort(&self) -> Result<()> {
        let core = self.core.clone();
        on_runtime(move || core.leave_cohort()).await
    }

    /// Deletes the person's data from this device without the server (what is unsent is lost:
    /// check `unsentWork()` first).
    pub async fn delete_my_data(&self) -> Result<()> {
        self.run(move |core| core.delete_my_data()).await
    }

    pub async fn unsent_work(&self) -> Result<UnsentWork> {
        self.run(move |core| core.unsent_work()).await
    }

    pub async fn sync_status(&self) -> Result<SyncStatus> {
        self.run(move |core| core.sync_status()).await
    }

    /// Practice logs the server refused, newest first, with the reason: they stay in her history
    /// on this device but never reach the cohort or the reports.
    pub async fn refused_practice_logs(&self) -> Result<Vec<RefusedLog>> {
        self.run(move |core| core.refused_practice_logs()).await
    }

    /// Entries the device could not re-apply after the server refused their document.
    pub async fn failed_intents(&self) -> Result<Vec<FailedIntent>> {
        self.run(move |core| core.failed_intents()).await
    }

    /// Cohort members' practice logs (facilitator devices; never the private reflections).
    pub async fn cohort_practice_logs(&self) -> Result<Vec<CohortPracticeLog>> {
        let rows = self.run(move |core| core.cohort_practice_logs()).await?;
        Ok(rows
            .into_iter()
            .map(|(id, user_id, local_date, status)| CohortPracticeLog { id, user_id, local_date, status })
            .collect())
    }

    // ---- program, profile, prompts --------------------------------------------------------

    pub async fn import_prompt_pack(&self, file_name: String, text: String) -> Result<PackImport> {
        self.run(move |core| core.import_prompt_pack(&file_name, &text)).await.map(Into::into)
    }

    /// The built-in "Everyday Leadership" pack (joining a server imports the program's own pack).
    pub async fn import_default_prompt_pack(&self) -> Result<PackImport> {
        self.run(move |core| core.import_default_prompt_pack()).await.map(Into::into)
    }

    pub async fn prompt(&self, prompt_ref: PromptRef) -> Result<Prompt> {
        self.run(move |core| core.prompt(&prompt_ref)).await
    }

    pub async fn profile(&self) -> Result<Profile> {
        self.run(move |core| core.profile()).await.map(Into::into)
    }

    pub async fn set_time_zone(&self, time_zone: String) -> Result<()> {
        self.run(move |core| core.set_time_zone(&time_zone)).await
    }

    pub async fn set_day_start_offset(&self, minutes: i64) -> Result<()> {
        self.run(move |core| core.set_day_start_offset(minutes)).await
    }

    pub async fn set_reminder_preferences(&self, preferences: ReminderPreferences) -> Result<()> {
        let preferences = preferences.try_into()?;
        self.run(move |core| core.set_reminder_preferences(preferences)).await
    }

    // ---- the learner's loop ---------------------------------------------------------------

    pub async fn today(&self) -> Result<Today> {
        self.run(move |core| core.today()).await.map(Into::into)
    }

    /// Starts the timer on a prompt: today's when `prompt_id` is none.
    pub async fn start_practice(&self, prompt_id: Option<String>) -> Result<PracticeSession> {
        self.run(move |core| core.start_practice(prompt_id.as_deref())).await
    }

    pub async fn finish_practice(&self, practice_id: String, outcome: PracticeOutcome) -> Result<PracticeLog> {
        let practice_id = parse_id("practice_id", &practice_id)?;
        self.run(move |core| core.finish_practice(practice_id, &outcome)).await
    }

    pub async fn abandon_practice(&self, practice_id: String) -> Result<PracticeLog> {
        let practice_id = parse_id("practice_id", &practice_id)?;
        self.run(move |core| core.abandon_practice(practice_id)).await
    }

    /// A correction is a new log that voids the old one; history is never edited.
    pub async fn correct_practice(&self, log_id: String, outcome: PracticeOutcome) -> Result<PracticeLog> {
        let log_id = parse_id("log_id", &log_id)?;
        self.run(move |core| core.correct_practice(log_id, &outcome)).await
    }

    /// The practice log as the learner sees it: voided rows left out, oldest first.
    pub async fn practice_logs(&self) -> Result<Vec<PracticeLog>> {
        self.run(move |core| core.practice_logs()).await
    }

    pub async fn practice_history(&self) -> Result<Vec<PracticeLog>> {
        self.run(move |core| core.practice_history()).await
    }

    /// Streak, active days and minutes on `reference_date` ("YYYY-MM-DD"; none: the learner's today).
    pub async fn learner_metrics(&self, reference_date: Option<String>) -> Result<LearnerMetrics> {
        let reference = match reference_date {
            Some(text) => Some(
                text.parse::<NaiveDate>()
                    .map_err(|_| invalid("reference_date", format!("{text:?} is not a YYYY-MM-DD date")))?,
            ),
            None => None,
        };
        self.run(move |core| core.learner_metrics(reference)).await
    }

    /// The local notifications to schedule for the next `days` days (replace all pending ones).
    pub async fn reminder_plan(&self, days: u32) -> Result<Vec<PlannedReminder>> {
        self.run(move |core| core.reminder_plan(days)).await
    }

    /// Everything to schedule as local notifications for the next `days` days: reminders and
    /// what happened in the cohort (feedback on her work, replies, ratings, reviews due, her role,
    /// the synthesis). Replace every pending notification with it after each sync, local change
    /// and time-zone change; an event is in one plan only.
    pub async fn notification_plan(&self, days: u32) -> Result<Vec<Notification>> {
        self.run(move |core| core.notification_plan(days)).await
    }

    /// Her inbox: what happened in her cohort that concerns her and she has not seen on any of
    /// her devices, newest first (its length is the badge).
    pub async fn unread(&self) -> Result<Vec<UnreadEntry>> {
        self.run(move |core| core.unread()).await
    }

    /// She has looked at everything up to now, here and (after the next sync) everywhere.
    pub async fn mark_all_read(&self) -> Result<()> {
        self.run(move |core| core.mark_all_read()).await
    }

    /// When to wake up next for a background sync (before a feedback window closes or a
    /// critique, else after a quiet period): give it to WorkManager / BGTaskScheduler.
    pub async fn next_sync_at(&self) -> Result<Timestamp> {
        self.run(move |core| core.next_sync_at()).await
    }

    /// The program's weeks: dates, phase, critique and when feedback closes.
    pub async fn schedule(&self) -> Result<ProgramSchedule> {
        self.run(move |core| core.schedule().map(ProgramSchedule::from)).await
    }

    /// The critique under way now, else the next one; none once the last has ended.
    pub async fn next_critique(&self) -> Result<Option<CritiqueSlot>> {
        self.run(move |core| core.next_critique()).await
    }

    /// The capstone's brief and rubric; none when the program's pack has no capstone.
    pub async fn capstone_brief(&self) -> Result<Option<Capstone>> {
        self.run(move |core| core.capstone_brief()).await
    }

    /// The program's prompts matching `filter`, in program order; any of them can be practised
    /// with `start_practice(prompt_id)` (catch-up or extra).
    pub async fn library(&self, filter: LibraryFilter) -> Result<Vec<PromptView>> {
        let views = self.run(move |core| core.library(&filter)).await?;
        Ok(views.into_iter().map(PromptView::from).collect())
    }

    /// The program as an iCalendar (.ics) file.
    pub async fn calendar(&self) -> Result<String> {
        self.run(move |core| core.calendar()).await
    }

    pub async fn pending_uploads(&self) -> Result<u64> {
        self.run(move |core| core.pending_uploads()).await
    }

    /// "ok" when the device database is healthy.
    pub async fn integrity_check(&self) -> Result<String> {
        self.run(move |core| core.integrity_check()).await
    }

    // ---- the cohort -----------------------------------------------------------------------

    pub async fn my_user_id(&self) -> Result<String> {
        self.run(move |core| core.my_user_id()).await
    }

    pub async fn roster(&self) -> Result<Vec<Member>> {
        self.run(move |core| core.roster()).await.map(|roster| roster.members().to_vec())
    }

    /// Shares a logged practice with the cohort; its private reflection stays on the device.
    pub async fn share_practice(&self, log_id: String, title: String, body: String) -> Result<EntryRef> {
        let log_id = parse_id("log_id", &log_id)?;
        self.run(move |core| core.share_practice(log_id, &title, &body)).await
    }

    /// Shares a capstone or public reflection (consolidation weeks); attachments are references.
    pub async fn share_work(
        &self,
        kind: WorkKind,
        title: String,
        body: String,
        prompt_id: Option<String>,
        attachments: Vec<String>,
    ) -> Result<EntryRef> {
        self.run(move |core| core.share_work(kind, &title, &body, prompt_id.as_deref(), &attachments)).await
    }

    pub async fn give_feedback(&self, submission: EntryRef, feedback: FeedbackInput) -> Result<EntryRef> {
        self.run(move |core| core.give_feedback(&submission, &feedback)).await
    }

    /// Reviews a capstone against the capstone rubric: one score from 1 to 5 per criterion, in
    /// the order `capstoneBrief().rubric` lists them.
    pub async fn give_capstone_feedback(
        &self,
        submission: EntryRef,
        feedback: FeedbackInput,
        scores: Vec<u32>,
    ) -> Result<EntryRef> {
        self.run(move |core| core.give_capstone_feedback(&submission, &feedback, &scores)).await
    }

    /// Replies to feedback, or to an earlier reply in its thread (`parent`).
    pub async fn reply(&self, feedback: EntryRef, parent: Option<EntryRef>, body: String) -> Result<EntryRef> {
        self.run(move |core| core.reply(&feedback, parent.as_ref(), &body)).await
    }

    /// The submission's author rates feedback on it, 1–5; rating again changes the score.
    pub async fn rate_feedback(&self, feedback: EntryRef, score: u8) -> Result<EntryRef> {
        self.run(move |core| core.rate_feedback(&feedback, score)).await
    }

    pub async fn edit_entry(&self, entry: EntryRef, body: String) -> Result<()> {
        self.run(move |core| core.edit_entry(&entry, &body)).await
    }

    /// Retracts one's own entry; it stays visible as retracted.
    pub async fn retract_entry(&self, entry: EntryRef) -> Result<()> {
        self.run(move |core| core.retract_entry(&entry)).await
    }

    /// Co-writes the week's synthesis: deletes `delete` characters (Unicode code points) at
    /// `position`, inserts `insert`. Kotlin and Swift strings count UTF-16 units: use
    /// `editSynthesisUtf16` with a text field's selection.
    pub async fn edit_synthesis(&self, week: u32, position: u32, delete: u32, insert: String) -> Result<()> {
        let (position, delete) = (count("position", position)?, count("delete", delete)?);
        self.run(move |core| core.edit_synthesis(week, position, delete, &insert)).await
    }

    /// The same with `position` and `delete` in UTF-16 code units — how a Kotlin or Swift text
    /// field counts its selection. A position inside a character is `InvalidInput(position)`.
    pub async fn edit_synthesis_utf16(&self, week: u32, position: u32, delete: u32, insert: String) -> Result<()> {
        let (position, delete) = (count("position", position)?, count("delete", delete)?);
        self.run(move |core| core.edit_synthesis_utf16(week, position, delete, &insert)).await
    }

    pub async fn synthesis(&self, week: u32) -> Result<String> {
        self.run(move |core| core.synthesis(week)).await
    }

    /// The facilitator records who attended a weekly critique.
    pub async fn record_attendance(&self, week: u32, member: String, present: bool) -> Result<()> {
        self.run(move |core| core.record_attendance(week, &member, present)).await
    }

    /// The week's critique agenda, in order (items taken off it left out).
    pub async fn agenda(&self, week: u32) -> Result<Vec<AgendaRow>> {
        self.run(move |core| core.agenda(week)).await
    }

    /// A facilitator puts a shared piece of work on its week's critique agenda, last.
    pub async fn add_agenda_item(&self, submission: EntryRef, note: String) -> Result<EntryRef> {
        self.run(move |core| core.add_agenda_item(&submission, &note)).await
    }

    /// A facilitator moves one of their agenda items to `index` (0 = first).
    pub async fn move_agenda_item(&self, item: EntryRef, index: u32) -> Result<()> {
        self.run(move |core| core.move_agenda_item(&item, index)).await
    }

    /// A facilitator takes one of their items off the agenda.
    pub async fn remove_agenda_item(&self, item: EntryRef) -> Result<()> {
        self.run(move |core| core.remove_agenda_item(&item)).await
    }

    /// Everything a week screen shows.
    pub async fn week_rows(&self, week: u32) -> Result<WeekRows> {
        self.run(move |core| core.week_rows(week)).await
    }

    /// Keys of the week's feedback and replies the server first stored after its window closed.
    pub async fn late_entries(&self, week: u32) -> Result<Vec<String>> {
        self.run(move |core| core.late_entries(week)).await
    }

    /// Each feedback and reply of the week with its lateness (`Pending` until the server stored
    /// this person's own entry).
    pub async fn entry_lateness(&self, week: u32) -> Result<Vec<EntryLateness>> {
        let entries = self.run(move |core| core.entry_lateness(week)).await?;
        Ok(entries.into_iter().map(|(key, lateness)| EntryLateness { key, lateness }).collect())
    }

    pub async fn week_roles(&self, week: u32) -> Result<WeekRoles> {
        self.run(move |core| core.week_roles(week)).await.map(Into::into)
    }

    /// This user's role in a week: practitioner, reviewer, synthesizer…
    pub async fn my_role(&self, week: u32) -> Result<Option<WeeklyRole>> {
        self.run(move |core| core.my_role(week)).await
    }

    pub async fn review_assignments(&self, week: u32) -> Result<Vec<ReviewAssignment>> {
        self.run(move |core| core.review_assignments(week)).await
    }

    pub async fn feedback_window(&self, week: u32) -> Result<FeedbackWindow> {
        self.run(move |core| core.feedback_window(week)).await
    }

    /// The cohort's size against its range (facilitators see a warning below the minimum).
    pub async fn cohort_size_status(&self) -> Result<SizeStatus> {
        self.run(move |core| core.cohort_size_status()).await
    }

    /// The facilitator's cohort dashboard, offline: every member's figures (active days, streak,
    /// feedback, reviews owed, role, transfer evidence, at risk and why) and the cohort's
    /// engagement, retention and feedback quality. Only facilitators get it (`Rejected` otherwise).
    pub async fn cohort_dashboard(&self) -> Result<CohortReport> {
        self.run(move |core| core.cohort_dashboard()).await
    }
}

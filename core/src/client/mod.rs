//! [`Client`]: the one entry point of the core. It owns the device store and the injected clock,
//! validates input through the domain rules and writes each user action in one transaction.
//!
//! `mod.rs` holds the learner's own loop (prompts, practice, metrics, reminders, calendar);
//! `cohort/` the cohort documents (sharing, feedback, roles, merging, the documents open here);
//! `memberships.rs` the person's memberships (one selected for the screens); `person.rs` the
//! device's person (deleting her data, leaving a cohort).

mod calibration;
mod cohort;
mod dashboard;
pub mod events;
pub mod intents;
mod memberships;
mod messages;
mod notifications;
mod person;
mod program_info;
mod stories;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Days, NaiveDate, Utc};
use uuid::Uuid;

use crate::calendar::{CalendarInput, program_calendar};
use crate::clock::Clock;
use crate::domain::DomainError;
use crate::domain::blueprint::{Blueprint, ProgramPosition};
use crate::domain::metrics::{DayActivity, LearnerMetrics, learner_metrics};
use crate::domain::practice::{PracticeOutcome, check_outcome};
use crate::domain::prompt_pack::{Prompt, PromptPack, parse_pack};
use crate::domain::reminders::{PlannedReminder, ReminderContext, ReminderPreferences, plan_reminders};
use crate::domain::time::{DayStart, local_day, parse_time_zone};
use crate::domain::today::plan_today;
use crate::error::{Error, Result};
use crate::secrets::SecretStore;
use crate::store::Store;
use crate::store::enrollment::{self, Profile, StoredEnrollment};
use crate::store::practice::{self as logs, PracticeLog, PracticeStatus, PromptRef};
use crate::store::prompts::{self, ImportOutcome};

pub use crate::store::practice::PracticeSession;
pub use calibration::ExemplarView;
pub use cohort::{EntryRef, FeedbackInput, FeedbackWindow, Lateness, ReceiveReport, WorkKind};
pub use events::{ClientEvent, DataChange};
pub use memberships::MembershipView;
pub use messages::CohortMessage;
pub use person::UnsentWork;
pub use program_info::ProgramSchedule;

/// How many of the next reminders the today screen shows.
const TODAY_REMINDERS: usize = 3;
/// The longest reminder plan an app can ask for.
pub const MAX_REMINDER_DAYS: u32 = 366;

/// Joining a program on this device.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrollment {
    pub program_id: String,
    pub program_title: String,
    /// An imported prompt pack; the newest imported version is used.
    pub pack_id: String,
    pub blueprint: Blueprint,
    /// The learner's IANA zone, e.g. "Europe/Berlin".
    pub learner_time_zone: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackImport {
    pub pack_id: String,
    pub version: u32,
    pub prompts: usize,
    pub outcome: ImportOutcome,
}

/// A prompt as shown to the learner, with the pack version it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptView {
    pub prompt_ref: PromptRef,
    pub prompt: Prompt,
    /// An effective completed practice of this prompt exists in this week.
    pub completed: bool,
}

/// Everything the learner's today screen shows.
#[derive(Debug, Clone, PartialEq)]
pub struct TodayView {
    pub local_date: NaiveDate,
    pub time_zone: String,
    pub position: ProgramPosition,
    /// Today's prompt; `None` before the start and after the end of the program.
    pub prompt: Option<PromptView>,
    pub in_progress: Option<PracticeSession>,
    /// Earlier prompts of this week not yet done (see `domain::today` for the missed-day rule).
    pub catch_up: Vec<PromptView>,
    pub metrics: LearnerMetrics,
    pub next_reminders: Vec<PlannedReminder>,
}

pub(crate) struct Program {
    pub(crate) enrollment: StoredEnrollment,
    pub(crate) pack: PromptPack,
}

pub struct Client {
    store: Mutex<Store>,
    clock: Arc<dyn Clock>,
    program: Mutex<Option<Arc<Program>>>,
    /// Cohort documents loaded so far (loaded on first use, never at start-up).
    docs: Mutex<cohort::OpenDocs>,
    listeners: events::Listeners,
    /// The sign-in token and the person's key: in the app's secure storage, or in the file.
    secrets: crate::secrets::Secrets,
}

impl Client {
    /// Opens (creating and migrating if needed) the device database at `path`, which keeps the
    /// device's secrets itself (tools, tests, the server's demo; apps use
    /// [`Client::open_with_secret_store`]).
    pub fn open(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::with_store(Store::open(path.as_ref())?, clock, None)
    }

    /// Opens the device database at `path` with the app's secure storage holding the device's
    /// secrets; secrets an earlier version kept in the file move there now.
    pub fn open_with_secret_store(
        path: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn SecretStore>,
    ) -> Result<Self> {
        Self::with_store(Store::open(path.as_ref())?, clock, Some(secrets))
    }

    pub fn open_in_memory(clock: Arc<dyn Clock>) -> Result<Self> {
        Self::with_store(Store::open_in_memory()?, clock, None)
    }

    fn with_store(mut store: Store, clock: Arc<dyn Clock>, app_secrets: Option<Arc<dyn SecretStore>>) -> Result<Self> {
        let secrets = crate::secrets::Secrets::settle(store.connection_mut(), app_secrets)?;
        Ok(Self {
            store: Mutex::new(store),
            clock,
            program: Mutex::new(None),
            docs: Mutex::default(),
            listeners: events::Listeners::default(),
            secrets,
        })
    }

    pub(crate) fn secrets(&self) -> &crate::secrets::Secrets {
        &self.secrets
    }

    // ---- prompt library -------------------------------------------------------------------

    /// Validates and stores a prompt pack. Re-importing the same version unchanged does nothing;
    /// a changed pack needs a new version, and logs keep pointing at the version they used.
    pub fn import_prompt_pack(&self, file_name: &str, text: &str) -> Result<PackImport> {
        let pack = parse_pack(file_name, text)?;
        let now = crate::store::to_millis(self.now());
        let outcome = self.store().write(|tx| {
            // A new version takes over the programs on it at once: it must cover every day.
            for enrolled in enrollment::enrollments_with_pack(tx, &pack.id)? {
                pack.check_covers(&enrolled.blueprint)?;
            }
            prompts::import(tx, &pack, file_name, now)
        })?;
        self.forget_program();
        self.notify(ClientEvent::DataChanged(DataChange::Program));
        Ok(PackImport { pack_id: pack.id, version: pack.version, prompts: pack.prompts.len(), outcome })
    }

    pub fn import_default_prompt_pack(&self) -> Result<PackImport> {
        self.import_prompt_pack(crate::DEFAULT_PROMPT_PACK_NAME, crate::DEFAULT_PROMPT_PACK)
    }

    /// A prompt exactly as it was in the pack version a log used.
    pub fn prompt(&self, prompt_ref: &PromptRef) -> Result<Prompt> {
        self.store()
            .read(|conn| prompts::prompt(conn, &prompt_ref.pack_id, prompt_ref.pack_version, &prompt_ref.prompt_id))?
            .ok_or_else(|| Error::UnknownPrompt {
                pack_id: prompt_ref.pack_id.clone(),
                prompt_id: prompt_ref.prompt_id.clone(),
            })
    }

    // ---- enrollment and profile -----------------------------------------------------------

    pub fn enroll(&self, e: Enrollment) -> Result<()> {
        check_name("program_id", &e.program_id, 80)?;
        check_name("program_title", &e.program_title, 120)?;
        e.blueprint.validate()?;
        let zone = parse_time_zone(&e.learner_time_zone)?;
        let mut store = self.store();
        store.write(|tx| {
            let version =
                prompts::latest_version(tx, &e.pack_id)?.ok_or_else(|| Error::UnknownPack(e.pack_id.clone()))?;
            let pack = prompts::load(tx, &e.pack_id, version)?.ok_or_else(|| Error::UnknownPack(e.pack_id.clone()))?;
            pack.check_covers(&e.blueprint)?;
            let stored = StoredEnrollment {
                program_id: e.program_id.clone(),
                program_title: e.program_title.trim().to_owned(),
                pack_id: e.pack_id.clone(),
                blueprint: e.blueprint.clone(),
            };
            enrollment::save_enrollment(tx, &stored, crate::store::to_millis(self.now()))?;
            let profile = match enrollment::profile(tx)? {
                Some(existing) => Profile { time_zone: zone, ..existing },
                None => Profile {
                    time_zone: zone,
                    day_start: DayStart::default(),
                    reminders: ReminderPreferences::default(),
                },
            };
            enrollment::save_profile(tx, &profile)?;
            // The zone this device joined with goes to the server, unless the person already
            // has a profile there (changed later than never): then the server's comes back.
            enrollment::mark_profile_changed(tx, enrollment::profile_changed_at(tx)?)
        })?;
        drop(store);
        self.forget_program();
        self.notify(ClientEvent::DataChanged(DataChange::Program));
        Ok(())
    }

    pub fn profile(&self) -> Result<Profile> {
        self.store().read(enrollment::profile)?.ok_or(Error::NotEnrolled)
    }

    /// The learner moved (or travelled) to another zone. Past practices keep the zone and local
    /// date they were logged with; new ones use the new zone.
    pub fn set_time_zone(&self, name: &str) -> Result<()> {
        let zone = parse_time_zone(name)?;
        self.update_profile(|profile| {
            profile.time_zone = zone;
            Ok(())
        })
    }

    pub fn set_day_start_offset(&self, minutes: i64) -> Result<()> {
        let day_start = DayStart::from_minutes(minutes)?;
        self.update_profile(|profile| {
            profile.day_start = day_start;
            Ok(())
        })
    }

    pub fn set_reminder_preferences(&self, preferences: ReminderPreferences) -> Result<()> {
        preferences.validate()?;
        self.update_profile(|profile| {
            profile.reminders = preferences;
            Ok(())
        })
    }

    /// Saves a changed profile and marks it for the next sync: a person's profile is the same on
    /// all her devices, the newest change wins.
    fn update_profile(&self, change: impl FnOnce(&mut Profile) -> Result<()>) -> Result<()> {
        let now = crate::store::to_millis(self.now());
        self.store().write(|tx| {
            let before = enrollment::profile(tx)?.ok_or(Error::NotEnrolled)?;
            let mut profile = before.clone();
            change(&mut profile)?;
            if profile != before {
                enrollment::save_profile(tx, &profile)?;
                enrollment::mark_profile_changed(tx, now)?;
            }
            Ok(())
        })?;
        self.notify(ClientEvent::DataChanged(DataChange::Program));
        Ok(())
    }

    // ---- today ----------------------------------------------------------------------------

    pub fn today(&self) -> Result<TodayView> {
        let program = self.program()?;
        let now = self.now();
        let store = self.store();
        let profile = store.read(enrollment::profile)?.ok_or(Error::NotEnrolled)?;
        let date = local_day(now, profile.time_zone, profile.day_start);
        let blueprint = &program.enrollment.blueprint;
        let program_id = &program.enrollment.program_id;

        let position = blueprint.position_on(date);
        let week_start =
            position.week.map(|week| blueprint.date_of_day(blueprint.first_day_of_week(week))).unwrap_or(date);
        let completed = store.read(|conn| logs::completed_prompts(conn, program_id, week_start, date))?;
        let plan = plan_today(blueprint, &program.pack, date, &completed);
        let view = |prompt: &Prompt| prompt_view(&program.pack, prompt, &completed);
        let in_progress = store.read(logs::open_session)?;
        let days = store.read(|conn| logs::daily_activity(conn, program_id, date))?;
        drop(store);

        let metrics = learner_metrics(&days, date);
        let mut next_reminders = reminders(&program, &profile, now, 2, &days);
        next_reminders.truncate(TODAY_REMINDERS);
        Ok(TodayView {
            local_date: date,
            time_zone: profile.time_zone.name().to_owned(),
            position: plan.position,
            prompt: plan.prompt.map(view),
            in_progress,
            catch_up: plan.catch_up.into_iter().map(view).collect(),
            metrics,
            next_reminders,
        })
    }

    // ---- practice lifecycle ---------------------------------------------------------------

    /// Starts the timer on a prompt: today's when `prompt_id` is `None`.
    pub fn start_practice(&self, prompt_id: Option<&str>) -> Result<PracticeSession> {
        let program = self.program()?;
        let now = self.now();
        let mut store = self.store();
        let profile = store.read(enrollment::profile)?.ok_or(Error::NotEnrolled)?;
        let date = local_day(now, profile.time_zone, profile.day_start);
        let pack = &program.pack;
        let prompt = match prompt_id {
            Some(id) => pack
                .prompt(id)
                .ok_or_else(|| Error::UnknownPrompt { pack_id: pack.id.clone(), prompt_id: id.to_owned() })?,
            None => plan_today(&program.enrollment.blueprint, pack, date, &HashSet::new()).prompt.ok_or_else(|| {
                DomainError::invalid(
                    "prompt_id",
                    format!("no prompt is scheduled on {date}; choose one from the library"),
                )
            })?,
        };
        let session = PracticeSession {
            id: Uuid::now_v7(),
            program_id: program.enrollment.program_id.clone(),
            prompt: PromptRef { pack_id: pack.id.clone(), pack_version: pack.version, prompt_id: prompt.id.clone() },
            started_at: now,
            time_zone: profile.time_zone.name().to_owned(),
            local_date: date,
        };
        store.write(|tx| {
            if let Some(open) = logs::open_session(tx)? {
                return Err(Error::PracticeInProgress(open.id));
            }
            logs::insert_session(tx, &session)
        })?;
        self.notify(ClientEvent::DataChanged(DataChange::Practice));
        Ok(session)
    }

    /// Finishes a practice: logs it with its duration, private reflection and transfer evidence.
    pub fn finish_practice(&self, practice_id: Uuid, outcome: &PracticeOutcome) -> Result<PracticeLog> {
        let now = self.now();
        self.practice_write(|tx| {
            let session = take_session(tx, practice_id)?;
            let checked = check_outcome(outcome, session.started_at, now)?;
            let log = PracticeLog {
                status: PracticeStatus::Completed,
                duration_secs: Some(checked.duration_secs),
                reflection: checked.reflection,
                transfer: checked.transfer,
                ..log_from(session, now)
            };
            logs::insert_log(tx, &log, None)?;
            Ok(log)
        })
    }

    /// Stops a practice without counting it. The row is kept (abandoned) for honest history.
    pub fn abandon_practice(&self, practice_id: Uuid) -> Result<PracticeLog> {
        let now = self.now();
        self.practice_write(|tx| {
            let session = take_session(tx, practice_id)?;
            let log = PracticeLog { status: PracticeStatus::Abandoned, ..log_from(session, now) };
            logs::insert_log(tx, &log, None)?;
            Ok(log)
        })
    }

    /// Corrects a logged practice: a new row that voids the old one; history is never edited.
    /// A missing duration keeps the old one.
    pub fn correct_practice(&self, log_id: Uuid, outcome: &PracticeOutcome) -> Result<PracticeLog> {
        let now = self.now();
        self.practice_write(|tx| {
            let old = logs::log(tx, log_id)?.ok_or(Error::UnknownPracticeLog(log_id))?;
            if let Some(by) = logs::corrected_by(tx, log_id)? {
                return Err(Error::AlreadyCorrected { log: log_id, by });
            }
            let duration_secs = outcome.duration_secs.or(old.duration_secs).ok_or_else(|| {
                DomainError::invalid("duration_secs", "this practice was abandoned; give the duration it really took")
            })?;
            let outcome = PracticeOutcome { duration_secs: Some(duration_secs), ..outcome.clone() };
            let checked = check_outcome(&outcome, old.started_at, now)?;
            let log = PracticeLog {
                id: Uuid::now_v7(),
                status: PracticeStatus::Completed,
                duration_secs: Some(checked.duration_secs),
                reflection: checked.reflection,
                transfer: checked.transfer,
                corrects: Some(old.id),
                recorded_at: now,
                ..old.clone()
            };
            logs::insert_log(tx, &log, Some(&old))?;
            Ok(log)
        })
    }

    /// The practice log as the learner sees it: voided rows left out, oldest first.
    pub fn practice_logs(&self) -> Result<Vec<PracticeLog>> {
        let program = self.program()?;
        self.store().read(|conn| logs::effective_logs(conn, &program.enrollment.program_id))
    }

    /// Every row ever written, voided ones included.
    pub fn practice_history(&self) -> Result<Vec<PracticeLog>> {
        let program = self.program()?;
        self.store().read(|conn| logs::all_logs(conn, &program.enrollment.program_id))
    }

    // ---- metrics, reminders, calendar -----------------------------------------------------

    /// Learner metrics for a reference date (default: the learner's today).
    pub fn learner_metrics(&self, reference: Option<NaiveDate>) -> Result<LearnerMetrics> {
        let program = self.program()?;
        let profile = self.profile()?;
        let date = reference.unwrap_or_else(|| local_day(self.now(), profile.time_zone, profile.day_start));
        let days = self.store().read(|conn| logs::daily_activity(conn, &program.enrollment.program_id, date))?;
        Ok(learner_metrics(&days, date))
    }

    /// The local notifications to schedule for the next `days` learner-local days.
    pub fn reminder_plan(&self, days: u32) -> Result<Vec<PlannedReminder>> {
        if !(1..=MAX_REMINDER_DAYS).contains(&days) {
            return Err(DomainError::invalid("days", format!("{days} is outside 1..={MAX_REMINDER_DAYS}")).into());
        }
        let program = self.program()?;
        let profile = self.profile()?;
        let now = self.now();
        let last = local_day(now, profile.time_zone, profile.day_start) + Days::new(u64::from(days));
        let active = self.store().read(|conn| logs::daily_activity(conn, &program.enrollment.program_id, last))?;
        Ok(reminders(&program, &profile, now, days, &active))
    }

    /// The program as an iCalendar file. SEQUENCE goes up whenever the schedule changed since the
    /// last export, so calendar apps replace the events instead of duplicating them.
    pub fn calendar(&self) -> Result<String> {
        let program = self.program()?;
        let profile = self.profile()?;
        let blueprint = &program.enrollment.blueprint;
        let mut input = CalendarInput {
            program_id: &program.enrollment.program_id,
            program_title: &program.enrollment.program_title,
            blueprint,
            learner_zone: profile.time_zone,
            practice_time: profile.reminders.practice_time,
            practice_minutes: blueprint.practice_minutes.max,
            practice_alarm_minutes: 0,
            critique_alarm_minutes: profile.reminders.critique_lead_minutes,
            sequence: 0,
            stamp: self.now(),
        };
        let fingerprint = input.fingerprint();
        input.sequence = self.store().write(|tx| enrollment::calendar_sequence(tx, &fingerprint))?;
        Ok(program_calendar(&input))
    }

    /// Intents waiting for the sync client.
    pub fn pending_uploads(&self) -> Result<u64> {
        self.store().read(logs::outbox_len)
    }

    /// `PRAGMA integrity_check` of the device database ("ok" when healthy).
    pub fn integrity_check(&self) -> Result<String> {
        self.store().integrity_check()
    }

    // ---- internals ------------------------------------------------------------------------

    /// Writes a practice log in one transaction, then tells the listeners.
    fn practice_write(
        &self,
        write: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<PracticeLog>,
    ) -> Result<PracticeLog> {
        let log = self.store().write(write)?;
        self.notify(ClientEvent::DataChanged(DataChange::Practice));
        Ok(log)
    }

    /// The learner's local date now.
    pub(crate) fn today_date(&self) -> Result<NaiveDate> {
        let profile = self.profile()?;
        Ok(local_day(self.now(), profile.time_zone, profile.day_start))
    }

    /// The injected clock's "now" at the precision the store keeps (milliseconds), so a value
    /// returned to the app equals the one read back later.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock rolled its transaction back; the connection is fine.
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The selected program, its blueprint carrying the selected cohort's critique weeks.
    pub(crate) fn program(&self) -> Result<Arc<Program>> {
        let mut cached = self.program.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(program) = cached.as_ref() {
            return Ok(program.clone());
        }
        let program = self.store().read(|conn| {
            let mut enrollment = enrollment::enrollment(conn)?.ok_or(Error::NotEnrolled)?;
            if let Some(membership) = crate::store::cohort::membership(conn)? {
                enrollment.blueprint.critique_weeks =
                    crate::store::cohort::critique_weeks(conn, &membership.cohort_id)?;
                enrollment.blueprint.control_arm =
                    crate::store::cohort::arm(conn, &membership.cohort_id)? == crate::domain::arms::Arm::Control;
            }
            let pack = prompts::latest(conn, &enrollment.pack_id)?;
            Ok(Arc::new(Program { enrollment, pack }))
        })?;
        *cached = Some(program.clone());
        Ok(program)
    }

    pub(crate) fn forget_program(&self) {
        *self.program.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }
}

/// A prompt of `pack` as screens show it; `completed` holds the ids practised in the period shown.
fn prompt_view(pack: &PromptPack, prompt: &Prompt, completed: &HashSet<String>) -> PromptView {
    PromptView {
        prompt_ref: PromptRef { pack_id: pack.id.clone(), pack_version: pack.version, prompt_id: prompt.id.clone() },
        prompt: prompt.clone(),
        completed: completed.contains(&prompt.id),
    }
}

fn take_session(tx: &rusqlite::Transaction<'_>, practice_id: Uuid) -> Result<PracticeSession> {
    match logs::session(tx, practice_id)? {
        Some(session) => {
            logs::delete_session(tx, practice_id)?;
            Ok(session)
        }
        None if logs::log(tx, practice_id)?.is_some() => Err(Error::PracticeAlreadyFinished(practice_id)),
        None => Err(Error::UnknownPractice(practice_id)),
    }
}

fn log_from(session: PracticeSession, now: DateTime<Utc>) -> PracticeLog {
    PracticeLog {
        id: session.id,
        program_id: session.program_id,
        prompt: session.prompt,
        started_at: session.started_at,
        time_zone: session.time_zone,
        local_date: session.local_date,
        status: PracticeStatus::Abandoned,
        duration_secs: None,
        reflection: String::new(),
        transfer: None,
        corrects: None,
        recorded_at: now,
    }
}

fn reminders(
    program: &Program,
    profile: &Profile,
    now: DateTime<Utc>,
    days: u32,
    active: &[DayActivity],
) -> Vec<PlannedReminder> {
    with_reminder_context(program, profile, now, active, |ctx| plan_reminders(&ctx, days))
}

/// What the reminder rules read, from the program, her profile and the days she practised.
pub(crate) fn with_reminder_context<T>(
    program: &Program,
    profile: &Profile,
    now: DateTime<Utc>,
    active: &[DayActivity],
    f: impl FnOnce(ReminderContext<'_>) -> T,
) -> T {
    let blueprint = &program.enrollment.blueprint;
    let practised: HashSet<NaiveDate> = active.iter().map(|day| day.date).collect();
    let prompt_on = |date: NaiveDate| {
        let position = blueprint.position_on(date);
        let prompt = program.pack.prompt_for(position.week?, position.day_of_week?)?;
        Some((prompt.title.clone(), prompt.minutes))
    };
    f(ReminderContext {
        now,
        zone: profile.time_zone,
        day_start: profile.day_start,
        blueprint,
        preferences: &profile.reminders,
        practised: &practised,
        prompt_on: &prompt_on,
    })
}

fn check_name(field: &str, value: &str, max_chars: usize) -> Result<()> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max_chars {
        return Err(DomainError::invalid(field, format!("must be 1..={max_chars} characters")).into());
    }
    Ok(())
}

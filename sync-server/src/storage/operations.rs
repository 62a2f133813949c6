//! The operator's writes over programs, cohorts and rosters ([`Tx`]), each run inside one write
//! transaction. People, invites and devices are in [`super::people`].

use automerge::ActorId;
use microcohort_core::docs::cohort::HiddenMark;
use microcohort_core::docs::schema::Container;
use microcohort_core::docs::{DocId, check_id, cohort as cohort_doc};
use microcohort_core::domain::arms::Arm;
use microcohort_core::domain::baseline::BaselineLearner;
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::domain::critique_week::{self, CritiqueWeek, CritiqueWeekChange};
use microcohort_core::domain::facilitation::{self, FacilitatorAction};
use microcohort_core::domain::prompt_pack::parse_pack;

use super::documents::{internal, now_ms, program_of_cohort, put_roster_entry, roster, server_edit};
use super::primitives::{NewProgram, NoteRecord, Tx};
use crate::error::ApiError;

/// A program checked before any transaction starts: `(blueprint, pack id, pack version)`.
pub fn check_program(
    id: &str,
    blueprint_json: &str,
    pack_file: &str,
    pack_toml: &str,
) -> Result<(Blueprint, String, u32), ApiError> {
    check_id("program id", id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let blueprint: Blueprint =
        serde_json::from_str(blueprint_json).map_err(|e| ApiError::BadRequest(format!("blueprint: {e}")))?;
    blueprint.validate().map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let pack = parse_pack(pack_file, pack_toml).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    pack.check_covers(&blueprint).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((blueprint, pack.id, pack.version))
}

pub fn create_program(tx: &dyn Tx, program: &NewProgram<'_>, blueprint: &Blueprint) -> Result<(), ApiError> {
    // Devices receive the blueprint when they join; changing it under running cohorts would
    // make the server judge roles and weeks differently from honest devices.
    if let Some(existing) = tx.program_blueprint(program.id)?
        && tx.program_has_cohorts(program.id)?
        && serde_json::from_str::<Blueprint>(&existing).ok().as_ref() != Some(blueprint)
    {
        return Err(ApiError::BadRequest(format!(
            "program {} already has cohorts; its schedule cannot change (a new pack version can)",
            program.id
        )));
    }
    tx.upsert_program(program, now_ms())
}

/// Replaces a program's imported baseline in one transaction: a new file replaces the old one
/// whole. Returns how many learners it holds.
pub fn import_baseline(tx: &dyn Tx, program_id: &str, learners: &[BaselineLearner]) -> Result<usize, ApiError> {
    if tx.program_blueprint(program_id)?.is_none() {
        return Err(ApiError::NotFound(format!("no program {program_id}")));
    }
    let rows = learners
        .iter()
        .map(|l| {
            Ok((l.learner.clone(), l.start_date.to_string(), serde_json::to_string(&l.active_dates).map_err(internal)?))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    tx.replace_baseline(program_id, &rows)?;
    Ok(rows.len())
}

pub fn create_cohort(tx: &dyn Tx, id: &str, program_id: &str, title: &str, arm: Arm) -> Result<(), ApiError> {
    check_id("cohort id", id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if tx.program_blueprint(program_id)?.is_none() {
        return Err(ApiError::NotFound(format!("no program {program_id}")));
    }
    if tx.cohort_exists(id)? {
        return Err(ApiError::BadRequest(format!("cohort {id} already exists")));
    }
    tx.insert_cohort(id, program_id, title, arm.as_str(), now_ms())
}

/// Dates a membership from `joined_on`, for members who took part before their device joined
/// (imported from another system, or enrolled on paper during orientation). Roles and review
/// assignments count them from the first week that began on or after that day.
pub fn set_joined_on(
    tx: &dyn Tx,
    server_actor: &ActorId,
    cohort_id: &str,
    user_id: &str,
    joined_on: chrono::NaiveDate,
) -> Result<(), ApiError> {
    let members = roster(tx, cohort_id)?;
    let mut member = members
        .member(user_id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("no member {user_id} in {cohort_id}")))?;
    if member.left_on.is_some_and(|left| left < joined_on) {
        return Err(ApiError::BadRequest(format!("joined-on {joined_on} is after the day {user_id} left")));
    }
    member.joined_on = joined_on;
    put_roster_entry(tx, server_actor, cohort_id, &member)?;
    tx.set_joined_on(cohort_id, user_id, &joined_on.to_string())
}

/// A facilitator's change of one week's critique (moved, a meeting link, a member leading),
/// checked against the program and the roster, written into the cohort document (so every
/// device's reminders and calendar follow) and kept with the cohort for the sync path.
pub fn change_critique_week(
    tx: &dyn Tx,
    server_actor: &ActorId,
    cohort_id: &str,
    change: &CritiqueWeekChange,
) -> Result<CritiqueWeek, ApiError> {
    // Locked before anything is read: two facilitators' changes of the cohort's weeks (read
    // whole, written whole) follow each other rather than lose one (PostgreSQL reads committed).
    tx.lock_doc(&DocId::cohort(cohort_id).to_string())?;
    let mut blueprint = program_of_cohort(tx, cohort_id)?.blueprint;
    let changed = critique_week::check_change(&blueprint, &roster(tx, cohort_id)?, change)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    server_edit(tx, server_actor, &DocId::cohort(cohort_id), |am| {
        cohort_doc::put_critique_week(am, change.week, &changed).map_err(internal)
    })?;
    blueprint.critique_weeks.insert(change.week, changed.clone());
    tx.set_critique_weeks(cohort_id, &serde_json::to_string(&blueprint.critique_weeks).map_err(internal)?)?;
    Ok(changed)
}

/// A facilitator's action (see [`FacilitatorAction`]), checked against the program, the roster
/// and the week's entries: moderation and announcements go into the cohort document (every
/// device applies them after its next sync), a private note into the server's notes, for the
/// member's devices only. Repeating an action changes nothing more.
pub fn facilitate(
    tx: &dyn Tx,
    server_actor: &ActorId,
    cohort_id: &str,
    by: &str,
    action: &FacilitatorAction,
) -> Result<(), ApiError> {
    // Locked before the roster is read: a pause written back whole never undoes a concurrent leave.
    tx.lock_doc(&DocId::cohort(cohort_id).to_string())?;
    let blueprint = program_of_cohort(tx, cohort_id)?.blueprint;
    let members = roster(tx, cohort_id)?;
    facilitation::check(action, &blueprint, &members).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let cohort_doc = DocId::cohort(cohort_id);
    let entry_in = |week: u32, key: &str, containers: &[Container]| -> Result<(), ApiError> {
        let doc = DocId::week(cohort_id, week).to_string();
        for container in containers {
            if tx.entry_exists(&doc, container.name(), key)? {
                return Ok(());
            }
        }
        Err(ApiError::NotFound(format!("no entry {key:?} in week {week} of {cohort_id}")))
    };
    let written = [Container::Submissions, Container::Feedback, Container::Replies];
    match action {
        FacilitatorAction::Hide { week, entry, reason } => {
            entry_in(*week, entry, &written)?;
            let mark = HiddenMark { reason: reason.trim().to_owned(), by: by.to_owned() };
            server_edit(tx, server_actor, &cohort_doc, |am| {
                cohort_doc::put_hidden(am, *week, entry, Some(&mark)).map_err(internal)
            })
        }
        FacilitatorAction::Show { week, entry } => {
            entry_in(*week, entry, &written)?;
            server_edit(tx, server_actor, &cohort_doc, |am| {
                cohort_doc::put_hidden(am, *week, entry, None).map_err(internal)
            })
        }
        FacilitatorAction::Endorse { week, feedback } => {
            entry_in(*week, feedback, &[Container::Feedback])?;
            server_edit(tx, server_actor, &cohort_doc, |am| {
                cohort_doc::put_endorsed(am, *week, feedback, by).map_err(internal)
            })
        }
        FacilitatorAction::Announce { id, body } => server_edit(tx, server_actor, &cohort_doc, |am| {
            cohort_doc::put_announcement(am, by, id, body.trim(), now_ms()).map_err(internal)
        }),
        FacilitatorAction::Note { id, member, body } => {
            let note = NoteRecord {
                cohort_id: cohort_id.to_owned(),
                seq: 0,
                id: id.clone(),
                from_user: by.to_owned(),
                to_user: member.clone(),
                body: body.trim().to_owned(),
                created_at: now_ms(),
            };
            tx.insert_note(&note)
        }
        FacilitatorAction::Pause { member } | FacilitatorAction::Resume { member } => {
            let pausing = matches!(action, FacilitatorAction::Pause { .. });
            let mut record = members
                .member(member)
                .cloned()
                .ok_or_else(|| ApiError::NotFound(format!("no member {member} in {cohort_id}")))?;
            let today = chrono::Utc::now().with_timezone(&blueprint.cohort_time_zone).date_naive();
            // Pausing again keeps the first day; resuming someone not paused changes nothing.
            record.paused_on = if pausing { record.paused_on.or(Some(today)) } else { None };
            put_roster_entry(tx, server_actor, cohort_id, &record)?;
            tx.set_paused_on(cohort_id, member, record.paused_on.map(|d| d.to_string()).as_deref())
        }
    }
}

pub fn remove_member(
    tx: &dyn Tx,
    server_actor: &ActorId,
    cohort_id: &str,
    user_id: &str,
    left_on: Option<chrono::NaiveDate>,
) -> Result<chrono::NaiveDate, ApiError> {
    let blueprint = program_of_cohort(tx, cohort_id)?.blueprint;
    let left_on = left_on.unwrap_or_else(|| chrono::Utc::now().with_timezone(&blueprint.cohort_time_zone).date_naive());
    let members = roster(tx, cohort_id)?;
    let mut member = members
        .member(user_id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("no member {user_id} in {cohort_id}")))?;
    member.left_on = Some(left_on);
    put_roster_entry(tx, server_actor, cohort_id, &member)?;
    tx.set_left_on(cohort_id, user_id, &left_on.to_string())?;
    Ok(left_on)
}

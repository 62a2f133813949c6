//! Joining and the operator's writes over [`Tx`], each run inside one write transaction.

use automerge::ActorId;
use microcohort_core::docs::{DocId, check_id, cohort as cohort_doc};
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::domain::prompt_pack::parse_pack;
use microcohort_core::domain::roster::{Member, MemberRole};
use microcohort_core::sync::wire::{JoinResponse, ProgramInfo};

use super::documents::{internal, now_ms, pack_of, program_of_cohort, roster, server_edit};
use super::primitives::{MemberRecord, NewInvite, NewProgram, Tx};
use crate::error::ApiError;

/// What `join` needs besides the transaction.
pub struct JoinRequest<'a> {
    pub code_hash: &'a [u8],
    pub device_name: &'a str,
    pub token_hash: &'a [u8],
    pub token: &'a str,
}

/// Redeems an invite code: creates the user, the device and the roster entry.
pub fn join(tx: &dyn Tx, server_actor: &ActorId, request: &JoinRequest<'_>) -> Result<JoinResponse, ApiError> {
    let used = || ApiError::Forbidden("this invite code is unknown or was already used".into());
    let (cohort_id, role, display_name, time_zone) = tx.open_invite(request.code_hash)?.ok_or_else(used)?;
    let program = program_of_cohort(tx, &cohort_id)?;
    let pack = pack_of(tx, &program.program_id)?;
    let blueprint = program.blueprint;
    let user_id = uuid::Uuid::now_v7().simple().to_string();
    let device_id = uuid::Uuid::now_v7().simple().to_string();
    let member = Member {
        user_id: user_id.clone(),
        display_name: display_name.clone(),
        role: MemberRole::parse(&role).unwrap_or(MemberRole::Learner),
        time_zone: time_zone.clone(),
        day_start: Default::default(),
        // The cohort's calendar day, which is what weeks and rotations count in.
        joined_on: chrono::Utc::now().with_timezone(&blueprint.cohort_time_zone).date_naive(),
        left_on: None,
    };
    // The roster document first: it refuses a learner past the cohort's maximum.
    server_edit(tx, server_actor, &DocId::cohort(&cohort_id), |am| {
        cohort_doc::add_member(am, &member, blueprint.cohort_size)
            .map(|_| ())
            .map_err(|e| ApiError::Forbidden(e.to_string()))
    })?;
    let record = MemberRecord {
        user_id: user_id.clone(),
        display_name,
        role: role.clone(),
        time_zone: time_zone.clone(),
        day_start_minutes: 0,
        joined_on: member.joined_on.to_string(),
        left_on: None,
    };
    tx.insert_user(&user_id, &time_zone, now_ms())?;
    tx.insert_member(&cohort_id, &record)?;
    let name: String = request.device_name.chars().take(100).collect();
    tx.insert_device(&device_id, &user_id, &cohort_id, request.token_hash, &name, now_ms())?;
    // Two devices redeeming one code at once: the second finds it used and rolls back.
    if !tx.claim_invite(request.code_hash, &user_id, now_ms())? {
        return Err(used());
    }
    Ok(JoinResponse {
        device_id,
        device_token: request.token.to_owned(),
        user_id,
        cohort_id,
        role,
        program: ProgramInfo {
            program_id: program.program_id,
            title: program.title,
            blueprint_json: serde_json::to_string(&blueprint).map_err(internal)?,
            pack,
        },
    })
}

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

pub fn create_cohort(tx: &dyn Tx, id: &str, program_id: &str, title: &str) -> Result<(), ApiError> {
    check_id("cohort id", id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if tx.program_blueprint(program_id)?.is_none() {
        return Err(ApiError::NotFound(format!("no program {program_id}")));
    }
    if tx.cohort_exists(id)? {
        return Err(ApiError::BadRequest(format!("cohort {id} already exists")));
    }
    tx.insert_cohort(id, program_id, title, now_ms())
}

/// Checks an invite's fields; returns the code to show once.
pub fn create_invite(tx: &dyn Tx, invite: &NewInvite<'_>) -> Result<(), ApiError> {
    if MemberRole::parse(invite.role).is_none() {
        return Err(ApiError::BadRequest(format!("role {:?} must be learner or facilitator", invite.role)));
    }
    if invite.time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(ApiError::BadRequest(format!("unknown time zone {:?}", invite.time_zone)));
    }
    if !tx.cohort_exists(invite.cohort_id)? {
        return Err(ApiError::NotFound(format!("no cohort {}", invite.cohort_id)));
    }
    tx.insert_invite(invite, now_ms())
}

pub fn revoke_device(tx: &dyn Tx, device_id: &str) -> Result<(), ApiError> {
    if !tx.revoke_device(device_id, now_ms())? {
        return Err(ApiError::NotFound(format!("no active device {device_id}")));
    }
    Ok(())
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
    server_edit(tx, server_actor, &DocId::cohort(cohort_id), |am| {
        cohort_doc::put_member(am, &member).map_err(internal)
    })?;
    tx.set_joined_on(cohort_id, user_id, &joined_on.to_string())
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
    server_edit(tx, server_actor, &DocId::cohort(cohort_id), |am| {
        cohort_doc::put_member(am, &member).map_err(internal)
    })?;
    tx.set_left_on(cohort_id, user_id, &left_on.to_string())?;
    Ok(left_on)
}

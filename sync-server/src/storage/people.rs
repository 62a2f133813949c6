//! People across devices and cohorts. A person is one user whatever her devices, cohorts and
//! programs: an invite creates her, or names her (a new device, another cohort); each device
//! has its own token. Her profile (zone, day start, reminder settings) is hers, not a device's
//! or a membership's: every device sends it when it changed there, the newest change wins, and
//! the server copies her zone and day start onto each of her memberships and roster entries, so
//! facilitators' devices and reports compute her days as her phone does.

use automerge::ActorId;
use microcohort_core::docs::{DocId, cohort as cohort_doc};
use microcohort_core::domain::arms::Arm;
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::domain::roster::{Member, MemberRole};
use microcohort_core::domain::time::DayStart;
use microcohort_core::sync::request::CheckedRequest;
use microcohort_core::sync::wire::{JoinResponse, MembershipInfo, ProgramInfo, WireProfile};

use super::Device;
use super::documents::{
    CohortProgram, internal, now_ms, pack_of, program_of_cohort, put_roster_entry, roster, server_edit,
};
use super::primitives::{MemberRecord, NewInvite, Tx};
use crate::error::ApiError;

/// Days an invite works unless the operator says otherwise (`admin invite --valid-days`).
pub const INVITE_DAYS: u32 = 14;
/// Hex characters of a code's hash that name an invite in `list-invites` and `revoke-invite`.
pub const INVITE_ID_CHARS: usize = 12;

/// What `join` needs besides the transaction.
pub struct JoinRequest<'a> {
    pub code_hash: &'a [u8],
    pub device_name: &'a str,
    pub token_hash: &'a [u8],
    pub token: &'a str,
    /// The person whose data the joining device already holds, if any.
    pub expected_user: Option<&'a str>,
    /// A signed-in device of that person joining another of her cohorts: it keeps its id and
    /// token (no new device row, no token in the answer).
    pub existing_device: Option<&'a str>,
}

impl<'a> JoinRequest<'a> {
    /// A request from a device that holds no one's data yet.
    pub fn new(code_hash: &'a [u8], device_name: &'a str, token_hash: &'a [u8], token: &'a str) -> Self {
        Self { code_hash, device_name, token_hash, token, expected_user: None, existing_device: None }
    }
}

/// The device behind a token hash (`$1`) as a member of the cohort it joined through, while she
/// is a member there (almost every request: one primary-key join)…
pub const DEVICE_IN_ITS_COHORT: &str = "SELECT d.id, d.user_id, d.cohort_id, m.role FROM devices d
     JOIN members m ON m.cohort_id = d.cohort_id AND m.user_id = d.user_id
     WHERE d.token_hash = $1 AND d.revoked_at IS NULL AND m.left_on IS NULL";
/// …else as a member of another of her cohorts (she left that one and stays in others).
pub const DEVICE_IN_ANOTHER_COHORT: &str = "SELECT d.id, d.user_id, m.cohort_id, m.role FROM devices d
     JOIN members m ON m.user_id = d.user_id AND m.left_on IS NULL
     WHERE d.token_hash = $1 AND d.revoked_at IS NULL ORDER BY m.cohort_id LIMIT 1";

/// How long a link code one device shows for another stays redeemable.
pub const LINK_CODE_MINUTES: i64 = 10;

/// Redeems an invite code: the device, and the person and her roster entry if they are new.
/// An invite for an existing person who is already in the cohort adds a device only.
pub fn join(tx: &dyn Tx, server_actor: &ActorId, request: &JoinRequest<'_>) -> Result<JoinResponse, ApiError> {
    let used = || ApiError::Forbidden("this invite code is unknown or was already used".into());
    let invite = tx.open_invite(request.code_hash)?.ok_or_else(used)?;
    if let Some(expired) = invite.expires_at.filter(|at| *at <= now_ms()) {
        let on = chrono::DateTime::from_timestamp_millis(expired).map(|at| at.date_naive().to_string());
        return Err(ApiError::Forbidden(format!(
            "this invite code expired on {}; ask for a new one",
            on.unwrap_or_default()
        )));
    }
    let cohort_id = invite.cohort_id.clone();
    let program = program_of_cohort(tx, &cohort_id)?;
    let new_person = invite.for_user.is_none();
    let user_id = invite.for_user.clone().unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    same_person(request, &user_id)?;
    let role = match roster(tx, &cohort_id)?.member(&user_id) {
        Some(member) if member.left_on.is_some() => {
            return Err(ApiError::Conflict(format!(
                "{user_id} left cohort {cohort_id}; invite them to another cohort instead"
            )));
        }
        // A new device of a member: her roster entry stays as it is.
        Some(member) => member.role.as_str().to_owned(),
        None => {
            let person = NewMember { user_id: &user_id, display_name: &invite.display_name, role: &invite.role };
            add_member(tx, server_actor, &cohort_id, &program, &person, &invite.time_zone)?;
            invite.role.clone()
        }
    };
    let response = add_device(tx, request, &user_id, &cohort_id, program, &role, new_person)?;
    // Two devices redeeming one code at once: the second finds it used and rolls back.
    if !tx.claim_invite(request.code_hash, &user_id, now_ms())? {
        return Err(used());
    }
    Ok(response)
}

/// Redeems a link code one of the person's devices showed: a new device of hers, in the cohort
/// of the device that showed it.
pub fn link(tx: &dyn Tx, request: &JoinRequest<'_>) -> Result<JoinResponse, ApiError> {
    let (user_id, cohort_id) = tx.claim_link_code(request.code_hash, now_ms())?.ok_or_else(|| {
        ApiError::Forbidden("this link code is unknown, used or expired; show a new one on your other device".into())
    })?;
    same_person(request, &user_id)?;
    let role = match roster(tx, &cohort_id)?.member(&user_id) {
        Some(member) if member.left_on.is_none() => member.role.as_str().to_owned(),
        _ => return Err(ApiError::Forbidden(format!("{user_id} is no longer a member of {cohort_id}"))),
    };
    let program = program_of_cohort(tx, &cohort_id)?;
    add_device(tx, request, &user_id, &cohort_id, program, &role, false)
}

/// Records a link code for the device's person (the caller shows it once).
pub fn create_link_code(tx: &dyn Tx, device: &Device, code_hash: &[u8]) -> Result<i64, ApiError> {
    let expires_at = now_ms() + LINK_CODE_MINUTES * 60_000;
    tx.insert_link_code(code_hash, &device.user_id, &device.cohort_id, &device.device_id, expires_at)?;
    Ok(expires_at)
}

/// A device that holds one person's data never becomes another's.
fn same_person(request: &JoinRequest<'_>, user_id: &str) -> Result<(), ApiError> {
    match request.expected_user {
        Some(expected) if expected != user_id => Err(ApiError::Conflict(
            "this code is for another person than the one whose data this device holds; \
             sign out on this device (which deletes that data from it) before joining as someone else"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// A new device of the person, and what it needs to run her program offline.
fn add_device(
    tx: &dyn Tx,
    request: &JoinRequest<'_>,
    user_id: &str,
    cohort_id: &str,
    program: CohortProgram,
    role: &str,
    new_person: bool,
) -> Result<JoinResponse, ApiError> {
    let (device_id, device_token) = match request.existing_device {
        Some(device_id) => (device_id.to_owned(), String::new()),
        None => {
            let device_id = uuid::Uuid::now_v7().simple().to_string();
            let name: String = request.device_name.chars().take(100).collect();
            tx.insert_device(&device_id, user_id, cohort_id, request.token_hash, &name, now_ms())?;
            (device_id, request.token.to_owned())
        }
    };
    Ok(JoinResponse {
        device_id,
        device_token,
        user_id: user_id.to_owned(),
        cohort_id: cohort_id.to_owned(),
        role: role.to_owned(),
        arm: program.arm,
        program: program_info(tx, program)?,
        new_person,
    })
}

/// What a device needs to run a cohort's program offline.
fn program_info(tx: &dyn Tx, program: CohortProgram) -> Result<ProgramInfo, ApiError> {
    // The program's own blueprint: a device reads its cohort's changed weeks from the cohort
    // document, and keeps one blueprint per program for all its cohorts.
    let blueprint = Blueprint { critique_weeks: Default::default(), control_arm: false, ..program.blueprint };
    Ok(ProgramInfo {
        pack: pack_of(tx, &program.program_id)?,
        program_id: program.program_id,
        title: program.title,
        blueprint_json: serde_json::to_string(&blueprint).map_err(internal)?,
    })
}

/// The person's memberships that have not ended, each with its program.
pub fn memberships(tx: &dyn Tx, user_id: &str) -> Result<Vec<MembershipInfo>, ApiError> {
    let mut out = Vec::new();
    for cohort_id in tx.active_cohorts(user_id)? {
        let Some(member) = roster(tx, &cohort_id)?.member(user_id).cloned() else { continue };
        let program = program_of_cohort(tx, &cohort_id)?;
        let arm = program.arm;
        let program = program_info(tx, program)?;
        out.push(MembershipInfo { cohort_id, role: member.role.as_str().to_owned(), program, arm });
    }
    Ok(out)
}

/// Who joins a roster.
struct NewMember<'a> {
    user_id: &'a str,
    display_name: &'a str,
    role: &'a str,
}

/// A person joins a cohort's roster; her zone and day start come from her profile (a new person:
/// the invite's zone).
fn add_member(
    tx: &dyn Tx,
    server_actor: &ActorId,
    cohort_id: &str,
    program: &CohortProgram,
    person: &NewMember<'_>,
    invite_zone: &str,
) -> Result<(), ApiError> {
    let blueprint = &program.blueprint;
    tx.insert_user(person.user_id, invite_zone, now_ms())?;
    let profile =
        tx.user_profile(person.user_id)?.ok_or_else(|| internal(format!("user {} vanished", person.user_id)))?;
    let member = Member {
        user_id: person.user_id.to_owned(),
        display_name: person.display_name.to_owned(),
        role: MemberRole::parse(person.role).unwrap_or(MemberRole::Learner),
        time_zone: profile.time_zone.clone(),
        day_start: DayStart::from_minutes(i64::from(profile.day_start_minutes)).map_err(internal)?,
        // The cohort's calendar day, which is what weeks and rotations count in.
        joined_on: chrono::Utc::now().with_timezone(&blueprint.cohort_time_zone).date_naive(),
        left_on: None,
        paused_on: None,
    };
    // The roster document first: it refuses a learner past the cohort's maximum. A control arm
    // has no peers: its learners are on the server's roster only, never in a document the
    // others receive.
    if program.arm == Arm::Cohort {
        server_edit(tx, server_actor, &DocId::cohort(cohort_id), |am| {
            cohort_doc::add_member(am, &member, blueprint.cohort_size)
                .map(|_| ())
                .map_err(|e| ApiError::Forbidden(e.to_string()))
        })?;
    }
    let record = MemberRecord {
        user_id: person.user_id.to_owned(),
        display_name: person.display_name.to_owned(),
        role: person.role.to_owned(),
        time_zone: profile.time_zone,
        day_start_minutes: i64::from(profile.day_start_minutes),
        joined_on: member.joined_on.to_string(),
        left_on: None,
        paused_on: None,
    };
    tx.insert_member(cohort_id, &record)
}

/// Checks an invite's fields; an invite for an existing person names her.
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
    if invite.role != "learner" && program_of_cohort(tx, invite.cohort_id)?.arm == Arm::Control {
        return Err(ApiError::BadRequest(format!(
            "role: {} is a control arm; it has learners only (no facilitators, no peers)",
            invite.cohort_id
        )));
    }
    if let Some(user) = invite.for_user {
        if tx.user_profile(user)?.is_none() {
            return Err(ApiError::NotFound(format!("no user {user}")));
        }
        // A person is in one arm of a program: in both, she would count on both sides.
        let target = program_of_cohort(tx, invite.cohort_id)?;
        for other in tx.active_cohorts(user)? {
            let theirs = program_of_cohort(tx, &other)?;
            if theirs.program_id == target.program_id && theirs.arm != target.arm {
                return Err(ApiError::Conflict(format!(
                    "{user} is in the {} arm of program {} (cohort {other}); a person takes part in one arm",
                    theirs.arm.as_str(),
                    target.program_id
                )));
            }
        }
        if let Some(member) = roster(tx, invite.cohort_id)?.member(user) {
            if member.left_on.is_some() {
                return Err(ApiError::Conflict(format!("{user} left cohort {}", invite.cohort_id)));
            }
            if member.role.as_str() != invite.role {
                return Err(ApiError::BadRequest(format!(
                    "{user} is a {} in {}; an invite for a new device of theirs keeps that role",
                    member.role.as_str(),
                    invite.cohort_id
                )));
            }
        }
    }
    tx.insert_invite(invite, now_ms())
}

pub fn revoke_device(tx: &dyn Tx, device_id: &str) -> Result<(), ApiError> {
    if !tx.revoke_device(device_id, now_ms())? {
        return Err(ApiError::NotFound(format!("no active device {device_id}")));
    }
    Ok(())
}

/// A person signs out one of her own devices (this one included); another's is "not found".
pub fn revoke_own_device(tx: &dyn Tx, user_id: &str, device_id: &str) -> Result<(), ApiError> {
    let active = tx.user_devices(user_id)?.into_iter().any(|d| d.device_id == device_id && d.revoked_at.is_none());
    if !active {
        return Err(ApiError::NotFound(format!("you have no active device {device_id}")));
    }
    revoke_device(tx, device_id)
}

/// A person's profile from its stored columns (no reminder settings stored yet: the defaults).
pub fn stored_profile(
    time_zone: String,
    day_start_minutes: i64,
    reminders: &str,
    changed_at: i64,
) -> Result<WireProfile, ApiError> {
    Ok(WireProfile {
        time_zone,
        day_start_minutes: u16::try_from(day_start_minutes)
            .map_err(|_| internal(format!("stored day start {day_start_minutes}")))?,
        reminders: match reminders {
            "" => Default::default(),
            json => serde_json::from_str(json).map_err(internal)?,
        },
        changed_at,
    })
}

/// Applies a profile a device sent (already checked) if it is newer than the person's: a device
/// clock ahead of the server's counts as now. A profile never changed on any device (changed at
/// 0, the zone of her first invite) gives way to the first device's. Returns whether it applied.
pub fn apply_profile(tx: &dyn Tx, server_actor: &ActorId, user_id: &str, sent: &WireProfile) -> Result<bool, ApiError> {
    let Some(held) = tx.user_profile(user_id)? else {
        return Err(ApiError::NotFound(format!("no user {user_id}")));
    };
    let sent = WireProfile { changed_at: sent.changed_at.clamp(0, now_ms()), ..sent.clone() };
    let newer = sent.changed_at > held.changed_at || held.changed_at == 0;
    let same = WireProfile { changed_at: held.changed_at, ..sent.clone() } == held;
    if !newer || same {
        return Ok(false);
    }
    tx.put_user_profile(user_id, &sent)?;
    if (sent.time_zone.as_str(), sent.day_start_minutes) != (held.time_zone.as_str(), held.day_start_minutes) {
        let day_start = DayStart::from_minutes(i64::from(sent.day_start_minutes)).map_err(internal)?;
        for cohort_id in tx.active_cohorts(user_id)? {
            let Some(mut member) = roster(tx, &cohort_id)?.member(user_id).cloned() else { continue };
            member.time_zone = sent.time_zone.clone();
            member.day_start = day_start;
            put_roster_entry(tx, server_actor, &cohort_id, &member)?;
            tx.set_member_day(&cohort_id, user_id, &sent.time_zone, i64::from(sent.day_start_minutes))?;
        }
    }
    Ok(true)
}

/// Whether a sync request says something about its person (a changed profile, a moved unread
/// mark): most say nothing, and then nothing is written for her.
pub fn speaks_for_person(request: &CheckedRequest) -> bool {
    request.profile.is_some() || request.seen_until.is_some()
}

/// Applies what a sync request says about its person, in one transaction before the rest of it.
pub fn apply_person(
    tx: &dyn Tx,
    server_actor: &ActorId,
    user_id: &str,
    request: &CheckedRequest,
) -> Result<(), ApiError> {
    if let Some(profile) = &request.profile {
        apply_profile(tx, server_actor, user_id, profile)?;
    }
    if let Some(seen) = request.seen_until {
        tx.raise_seen_until(user_id, seen_mark(seen))?;
    }
    Ok(())
}

/// A device's unread mark as the server keeps it: entries carry their authors' device clocks, so
/// a phone a little ahead of the server may mark a little ahead; a day ahead at most.
fn seen_mark(sent: i64) -> i64 {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    sent.clamp(0, now_ms() + DAY_MS)
}

//! People across devices and cohorts: a person's profile (zone, day start, reminder settings) is
//! hers, not a device's or a membership's. Every device sends it when it changed there; the
//! newest change wins, and the server copies her zone and day start onto each of her memberships
//! and roster entries, so facilitators' devices and reports compute her days as her phone does.

use automerge::ActorId;
use microcohort_core::docs::{DocId, cohort as cohort_doc};
use microcohort_core::domain::time::DayStart;
use microcohort_core::sync::wire::WireProfile;

use super::documents::{internal, now_ms, roster, server_edit};
use super::primitives::Tx;
use crate::error::ApiError;

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
            server_edit(tx, server_actor, &DocId::cohort(&cohort_id), |am| {
                cohort_doc::put_member(am, &member).map_err(internal)
            })?;
            tx.set_member_day(&cohort_id, user_id, &sent.time_zone, i64::from(sent.day_start_minutes))?;
        }
    }
    Ok(true)
}

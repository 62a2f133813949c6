//! The cohort document: roster, critique schedule and capstone brief are written by the server's
//! actor (members cannot: the validator refuses); each member may keep their own profile entry.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue};
use chrono::NaiveDate;

use super::guard::DocError;
use super::schema::{Container, field};
use super::week::scalar;
use crate::domain::roster::{CohortSize, Member, MemberRole, Roster, SizeStatus};
use crate::domain::time::DayStart;
use crate::error::Error;

fn failed(err: automerge::AutomergeError) -> DocError {
    DocError::Malformed(err.to_string())
}

/// Server side: adds (or updates) a member, refusing a learner who would push the cohort past its
/// maximum. Returns whether the cohort is now below its minimum, for the facilitators' warning.
pub fn add_member(am: &mut AutoCommit, member: &Member, size: CohortSize) -> Result<SizeStatus, Error> {
    size.validate()?;
    let current = roster(am);
    let active = |m: &&Member| m.role == MemberRole::Learner && m.left_on.is_none() && m.user_id != member.user_id;
    let mut learners = current.members().iter().filter(active).count() as u32;
    if member.role == MemberRole::Learner && member.left_on.is_none() {
        learners += 1;
    }
    let status = size.check(learners)?;
    put_member(am, member)?;
    Ok(status)
}

/// Server side: writes one roster member, touching only that member's fields.
pub fn put_member(am: &mut AutoCommit, member: &Member) -> Result<(), DocError> {
    let roster = match am.get(ROOT, Container::Roster.name()) {
        Ok(Some((_, id))) => id,
        _ => return Err(DocError::Malformed("document has no roster".into())),
    };
    let entry = match am.get(&roster, member.user_id.as_str()) {
        Ok(Some((value, id))) if value.is_object() => id,
        _ => am.put_object(&roster, member.user_id.as_str(), ObjType::Map).map_err(failed)?,
    };
    let left_on = member.left_on.map(|d| ScalarValue::from(d.to_string())).unwrap_or(ScalarValue::Null);
    let fields: [(&str, ScalarValue); 6] = [
        (field::DISPLAY_NAME, member.display_name.as_str().into()),
        (field::ROLE, member.role.as_str().into()),
        (field::TIME_ZONE, member.time_zone.as_str().into()),
        (field::DAY_START_MINUTES, ScalarValue::Int(i64::from(member.day_start.minutes()))),
        (field::JOINED_ON, member.joined_on.to_string().into()),
        (field::LEFT_ON, left_on),
    ];
    for (name, value) in fields {
        if scalar(am, &entry, name).as_ref() != Some(&value) {
            am.put(&entry, name, value).map_err(failed)?;
        }
    }
    Ok(())
}

/// The roster as the document holds it. Entries that do not parse are skipped (a newer app may
/// have written fields or roles this one does not know).
pub fn roster(am: &AutoCommit) -> Roster {
    let Ok(Some((_, roster))) = am.get(ROOT, Container::Roster.name()) else {
        return Roster::default();
    };
    let text =
        |entry: &automerge::ObjId, name: &str| scalar(am, entry, name).and_then(|v| v.as_str().map(str::to_owned));
    let date = |entry: &automerge::ObjId, name: &str| text(entry, name).and_then(|t| t.parse::<NaiveDate>().ok());
    let members = am
        .map_range(&roster, ..)
        .filter_map(|item| {
            let user_id = item.key.to_string();
            let Ok(Some((_, entry))) = am.get(&roster, user_id.as_str()) else { return None };
            Some(Member {
                display_name: text(&entry, field::DISPLAY_NAME).unwrap_or_default(),
                role: MemberRole::parse(&text(&entry, field::ROLE)?)?,
                time_zone: text(&entry, field::TIME_ZONE).unwrap_or_else(|| "UTC".into()),
                // Absent in rosters written before profiles synced: the day starts at midnight.
                day_start: scalar(am, &entry, field::DAY_START_MINUTES)
                    .and_then(|v| v.as_i64())
                    .and_then(|minutes| DayStart::from_minutes(minutes).ok())
                    .unwrap_or_default(),
                joined_on: date(&entry, field::JOINED_ON)?,
                left_on: date(&entry, field::LEFT_ON),
                user_id,
            })
        })
        .collect();
    Roster::new(members)
}

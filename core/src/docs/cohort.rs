//! The cohort document: roster, critique weeks and capstone brief are written by the server's
//! actor (members cannot: the validator refuses); each member may keep their own profile entry.

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue};
use chrono::{NaiveDate, NaiveDateTime};

use super::guard::DocError;
use super::schema::{Container, field};
use super::week::scalar;
use crate::domain::critique_week::CritiqueWeek;
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
    let day = |d: Option<NaiveDate>| d.map(|d| ScalarValue::from(d.to_string())).unwrap_or(ScalarValue::Null);
    put_server_entry(
        am,
        Container::Roster,
        &member.user_id,
        [
            (field::DISPLAY_NAME, member.display_name.as_str().into()),
            (field::ROLE, member.role.as_str().into()),
            (field::TIME_ZONE, member.time_zone.as_str().into()),
            (field::DAY_START_MINUTES, ScalarValue::Int(i64::from(member.day_start.minutes()))),
            (field::JOINED_ON, member.joined_on.to_string().into()),
            (field::LEFT_ON, day(member.left_on)),
            (field::PAUSED_ON, day(member.paused_on)),
        ],
    )
}

/// Server side: writes how one week's critique was changed, keyed by the week number.
pub fn put_critique_week(am: &mut AutoCommit, week: u32, changed: &CritiqueWeek) -> Result<(), DocError> {
    let text = |value: Option<String>| value.map(ScalarValue::from).unwrap_or(ScalarValue::Null);
    put_server_entry(
        am,
        Container::Critique,
        &week.to_string(),
        [
            (field::MOVED_TO, text(changed.moved_to.map(|at| at.format(MOVED_TO_FORMAT).to_string()))),
            (field::LINK, text(changed.link.clone())),
            (field::LEAD, text(changed.lead.clone())),
            (field::REVISION, ScalarValue::Int(i64::from(changed.revision))),
        ],
    )
}

const MOVED_TO_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Everything a device projects from a cohort document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CohortRows {
    pub roster: Roster,
    pub critique_weeks: BTreeMap<u32, CritiqueWeek>,
    pub moderation: Vec<ModerationRow>,
    pub announcements: Vec<AnnouncementRow>,
}

pub fn project_cohort(am: &AutoCommit) -> CohortRows {
    CohortRows {
        roster: roster(am),
        critique_weeks: critique_weeks(am),
        moderation: moderation(am),
        announcements: announcements(am),
    }
}

/// How facilitators moderated one entry of a week (the device's read model of it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModerationRow {
    pub week: u32,
    pub entry: String,
    /// Why it is hidden, and by whom; `None` when shown.
    pub hidden: Option<HiddenMark>,
    pub endorsed_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HiddenMark {
    pub reason: String,
    pub by: String,
}

/// A facilitator's announcement to the cohort.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AnnouncementRow {
    pub key: String,
    pub author: String,
    pub body: String,
    pub created_at: i64,
}

fn moderation_key(week: u32, entry: &str) -> String {
    format!("{week}/{entry}")
}

/// Server side: hides an entry (`Some(mark)`) or shows it again (`None`).
pub fn put_hidden(am: &mut AutoCommit, week: u32, entry: &str, mark: Option<&HiddenMark>) -> Result<(), DocError> {
    let text = |value: Option<&str>| value.map(ScalarValue::from).unwrap_or(ScalarValue::Null);
    put_server_entry(
        am,
        Container::Moderation,
        &moderation_key(week, entry),
        [
            (field::HIDDEN, ScalarValue::Boolean(mark.is_some())),
            (field::REASON, text(mark.map(|m| m.reason.as_str()))),
            (field::HIDDEN_BY, text(mark.map(|m| m.by.as_str()))),
        ],
    )
}

/// Server side: records who endorsed a piece of feedback.
pub fn put_endorsed(am: &mut AutoCommit, week: u32, feedback: &str, by: &str) -> Result<(), DocError> {
    put_server_entry(am, Container::Moderation, &moderation_key(week, feedback), [(field::ENDORSED_BY, by.into())])
}

/// Server side: a facilitator's announcement, keyed by its author and the device's id (a retry
/// writes nothing new).
pub fn put_announcement(am: &mut AutoCommit, author: &str, id: &str, body: &str, at_ms: i64) -> Result<(), DocError> {
    let key = super::schema::entry_key(author, id);
    if let Ok(Some((_, parent))) = am.get(ROOT, Container::Announcements.name())
        && am.get(&parent, key.as_str()).ok().flatten().is_some()
    {
        return Ok(());
    }
    put_server_entry(
        am,
        Container::Announcements,
        &key,
        [(field::BODY, body.into()), (field::CREATED_AT, ScalarValue::Int(at_ms))],
    )
}

/// Every moderated entry, as the document holds them.
pub fn moderation(am: &AutoCommit) -> Vec<ModerationRow> {
    server_entries(am, Container::Moderation)
        .into_iter()
        .filter_map(|(key, fields)| {
            let (week, entry) = key.split_once('/')?;
            let text = |name: &str| fields.get(name).and_then(|v| v.as_str().map(str::to_owned));
            let hidden = matches!(fields.get(field::HIDDEN), Some(ScalarValue::Boolean(true))).then(|| HiddenMark {
                reason: text(field::REASON).unwrap_or_default(),
                by: text(field::HIDDEN_BY).unwrap_or_default(),
            });
            Some(ModerationRow {
                week: week.parse().ok()?,
                entry: entry.to_owned(),
                hidden,
                endorsed_by: text(field::ENDORSED_BY),
            })
        })
        .collect()
}

/// The cohort's announcements, oldest first.
pub fn announcements(am: &AutoCommit) -> Vec<AnnouncementRow> {
    let mut rows: Vec<AnnouncementRow> = server_entries(am, Container::Announcements)
        .into_iter()
        .filter_map(|(key, fields)| {
            let author = super::schema::key_author(&key)?.to_owned();
            Some(AnnouncementRow {
                body: fields.get(field::BODY).and_then(|v| v.as_str().map(str::to_owned))?,
                created_at: fields.get(field::CREATED_AT).and_then(|v| v.as_i64()).unwrap_or(0),
                author,
                key,
            })
        })
        .collect();
    rows.sort_by(|a, b| (a.created_at, &a.key).cmp(&(b.created_at, &b.key)));
    rows
}

/// `(key, scalar fields)` of every entry of a server-written container (none if it is absent).
fn server_entries(
    am: &AutoCommit,
    container: Container,
) -> Vec<(String, std::collections::HashMap<String, ScalarValue>)> {
    let Ok(Some((_, parent))) = am.get(ROOT, container.name()) else { return Vec::new() };
    let keys: Vec<String> = am.map_range(&parent, ..).map(|item| item.key.to_string()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let Ok(Some((_, entry))) = am.get(&parent, key.as_str()) else { return None };
            let fields = am
                .map_range(&entry, ..)
                .filter_map(|f| match f.value.into_value() {
                    automerge::Value::Scalar(value) => Some((f.key.to_string(), value.into_owned())),
                    automerge::Value::Object(_) => None,
                })
                .collect();
            Some((key, fields))
        })
        .collect()
}

/// Writes a server entry's fields, touching only those that differ.
fn put_server_entry<const N: usize>(
    am: &mut AutoCommit,
    container: Container,
    key: &str,
    fields: [(&str, ScalarValue); N],
) -> Result<(), DocError> {
    let parent = match am.get(ROOT, container.name()) {
        Ok(Some((_, id))) => id,
        // A container added after the genesis is created by its first write.
        _ if super::schema::LATER_COHORT_CONTAINERS.contains(&container) => {
            am.put_object(ROOT, container.name(), ObjType::Map).map_err(failed)?
        }
        _ => return Err(DocError::Malformed(format!("document has no {}", container.name()))),
    };
    let entry = match am.get(&parent, key) {
        Ok(Some((value, id))) if value.is_object() => id,
        _ => am.put_object(&parent, key, ObjType::Map).map_err(failed)?,
    };
    for (name, value) in fields {
        if scalar(am, &entry, name).as_ref() != Some(&value) {
            am.put(&entry, name, value).map_err(failed)?;
        }
    }
    Ok(())
}

/// The critique weeks a facilitator changed, as the document holds them. An entry that does not
/// read (a newer server's fields) is skipped; so is a week number out of range.
pub fn critique_weeks(am: &AutoCommit) -> BTreeMap<u32, CritiqueWeek> {
    let Ok(Some((_, container))) = am.get(ROOT, Container::Critique.name()) else {
        return BTreeMap::new();
    };
    let keys: Vec<String> = am.map_range(&container, ..).map(|item| item.key.to_string()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let week: u32 = key.parse().ok().filter(|w| (1..=crate::domain::blueprint::MAX_WEEKS).contains(w))?;
            let Ok(Some((_, entry))) = am.get(&container, key.as_str()) else { return None };
            let text = |name: &str| scalar(am, &entry, name).and_then(|v| v.as_str().map(str::to_owned));
            let moved_to = match text(field::MOVED_TO) {
                Some(at) => Some(NaiveDateTime::parse_from_str(&at, MOVED_TO_FORMAT).ok()?),
                None => None,
            };
            let revision = scalar(am, &entry, field::REVISION).and_then(|v| v.as_i64()).unwrap_or(0);
            Some((
                week,
                CritiqueWeek {
                    moved_to,
                    link: text(field::LINK),
                    lead: text(field::LEAD),
                    revision: u32::try_from(revision).unwrap_or(0),
                },
            ))
        })
        .collect()
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
                paused_on: date(&entry, field::PAUSED_ON),
                user_id,
            })
        })
        .collect();
    Roster::new(members)
}

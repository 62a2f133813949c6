//! What a facilitator does from the dashboard, through the server: hide an entry (with a reason)
//! or show it again, endorse a piece of feedback, announce something to the cohort, write a
//! private note to one member. [`check`] holds the rules every device and the server apply.

use serde::{Deserialize, Serialize};

use super::DomainError;
use super::blueprint::Blueprint;
use super::roster::{Member, MemberRole, Roster};

/// The longest reason for hiding an entry.
pub const MAX_REASON_CHARS: usize = 300;
/// The longest announcement or note.
pub const MAX_MESSAGE_CHARS: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FacilitatorAction {
    /// Hides a submission, feedback or reply of a week on every device; its author sees that it
    /// was hidden and why.
    Hide { week: u32, entry: String, reason: String },
    /// Shows a hidden entry again.
    Show { week: u32, entry: String },
    /// Marks a piece of feedback as a model of good feedback.
    Endorse { week: u32, feedback: String },
    /// A message to the whole cohort. `id` (chosen by the device) makes a retry harmless.
    Announce { id: String, body: String },
    /// A message to one member, never visible to the rest of the cohort.
    Note { id: String, member: String, body: String },
    /// Marks a learner as having stopped practising: from today she is out of review
    /// assignments (others take them over), still a member of the cohort.
    Pause { member: String },
    /// Marks her back: assignments count her again from today.
    Resume { member: String },
}

impl FacilitatorAction {
    /// What kind of action it is, for logs (never its words).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hide { .. } => "hide",
            Self::Show { .. } => "show",
            Self::Endorse { .. } => "endorse",
            Self::Announce { .. } => "announce",
            Self::Note { .. } => "note",
            Self::Pause { .. } => "pause",
            Self::Resume { .. } => "resume",
        }
    }
}

/// Checks an action's own fields and its member against the program and the roster. Whether a
/// hidden or endorsed entry exists is the caller's to check (it needs the week's document).
pub fn check(action: &FacilitatorAction, blueprint: &Blueprint, roster: &Roster) -> Result<(), DomainError> {
    let week_in_program = |week: u32| {
        if week > blueprint.weeks {
            Err(DomainError::invalid("week", format!("the program has no week {week}")))
        } else {
            Ok(())
        }
    };
    let entry_key = |field: &str, key: &str| {
        if crate::docs::schema::key_author(key).is_some() && key.len() <= 130 {
            Ok(())
        } else {
            Err(DomainError::invalid(field, format!("{key:?} is not an entry key (\"<author>/<id>\")")))
        }
    };
    match action {
        FacilitatorAction::Hide { week, entry, reason } => {
            week_in_program(*week)?;
            entry_key("entry", entry)?;
            text("reason", reason, MAX_REASON_CHARS)
        }
        FacilitatorAction::Show { week, entry } => {
            week_in_program(*week)?;
            entry_key("entry", entry)
        }
        FacilitatorAction::Endorse { week, feedback } => {
            week_in_program(*week)?;
            entry_key("feedback", feedback)
        }
        FacilitatorAction::Announce { id, body } => {
            crate::docs::check_id("id", id)?;
            text("body", body, MAX_MESSAGE_CHARS)
        }
        FacilitatorAction::Note { id, member, body } => {
            crate::docs::check_id("id", id)?;
            active_member(roster, member)?;
            text("body", body, MAX_MESSAGE_CHARS)
        }
        FacilitatorAction::Pause { member } | FacilitatorAction::Resume { member } => {
            match active_member(roster, member)?.role {
                MemberRole::Learner => Ok(()),
                MemberRole::Facilitator => Err(DomainError::invalid("member", format!("{member} is a facilitator"))),
            }
        }
    }
}

fn active_member<'a>(roster: &'a Roster, member: &str) -> Result<&'a Member, DomainError> {
    match roster.member(member) {
        Some(m) if m.left_on.is_none() => Ok(m),
        Some(_) => Err(DomainError::invalid("member", format!("{member} has left the cohort"))),
        None => Err(DomainError::invalid("member", format!("{member} is not a member of this cohort"))),
    }
}

fn text(field: &str, value: &str, max: usize) -> Result<(), DomainError> {
    let chars = value.trim().chars().count();
    if chars == 0 {
        return Err(DomainError::invalid(field, "is empty"));
    }
    if chars > max {
        return Err(DomainError::invalid(field, format!("is longer than {max} characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::time::DayStart;

    fn roster() -> Roster {
        let member = |id: &str, left_on| Member {
            user_id: id.into(),
            display_name: id.into(),
            role: MemberRole::Learner,
            time_zone: "UTC".into(),
            day_start: DayStart::default(),
            joined_on: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
            left_on,
            paused_on: None,
        };
        Roster::new(vec![member("ana", None), member("gone", NaiveDate::from_ymd_opt(2026, 2, 1))])
    }

    #[test]
    fn each_action_names_the_field_it_refuses() {
        let b = Blueprint::default_90_days(NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(), chrono_tz::UTC);
        let ok = [
            FacilitatorAction::Hide { week: 2, entry: "ben/f1".into(), reason: "Personal attack".into() },
            FacilitatorAction::Show { week: 2, entry: "ben/f1".into() },
            FacilitatorAction::Endorse { week: 3, feedback: "cy/f2".into() },
            FacilitatorAction::Announce { id: "a1".into(), body: "No critique next week".into() },
            FacilitatorAction::Note { id: "n1".into(), member: "ana".into(), body: "How are you doing?".into() },
        ];
        for action in &ok {
            check(action, &b, &roster()).unwrap();
        }
        let bad = [
            (FacilitatorAction::Hide { week: 2, entry: "ben/f1".into(), reason: "  ".into() }, "reason"),
            (FacilitatorAction::Hide { week: 20, entry: "ben/f1".into(), reason: "x".into() }, "week"),
            (FacilitatorAction::Show { week: 2, entry: "no-key".into() }, "entry"),
            (FacilitatorAction::Announce { id: "a/1".into(), body: "x".into() }, "id"),
            (FacilitatorAction::Announce { id: "a1".into(), body: "x".repeat(2_001) }, "body"),
            (FacilitatorAction::Note { id: "n1".into(), member: "zed".into(), body: "x".into() }, "member"),
            (FacilitatorAction::Note { id: "n1".into(), member: "gone".into(), body: "x".into() }, "member"),
        ];
        for (action, field) in bad {
            let err = check(&action, &b, &roster()).unwrap_err().to_string();
            assert!(err.contains(field), "{action:?}: {err}");
        }
    }
}

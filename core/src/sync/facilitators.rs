//! What a facilitator does from the phone, through the server (online; each is checked here
//! first with the server's own rules, so a mistake is a typed error even offline):
//! - changes one week's critique: moves it (a holiday week), sets its meeting link, or names the
//!   member who leads it; every device's reminders, calendar and feedback windows follow;
//! - hides an entry (with a reason) or shows it again, endorses feedback, announces something to
//!   the cohort, writes a private note to one member, marks a learner who stopped practising
//!   (her review assignments go to the others) and back.
//!
//! Each call syncs afterwards, so this device shows the result at once (best effort: the action
//! is done once the server answered).

use super::client::decoded;
use super::devices::post_signed_in;
use super::wire::{self, CRITIQUE_WEEKS_PATH, FACILITATOR_ACTIONS_PATH};
use crate::client::{Client, EntryRef};
use crate::domain::critique_week::{self, CritiqueWeek, CritiqueWeekChange};
use crate::domain::facilitation::{self, FacilitatorAction};
use crate::error::{Error, Result};

impl Client {
    /// Changes a week's critique in the selected cohort (facilitators only), then syncs so this
    /// device shows it at once. Checked here first with the server's own rules, so a wrong
    /// time, lead or link is a typed error even offline; the server checks again.
    pub fn change_critique_week(&self, change: &CritiqueWeekChange) -> Result<CritiqueWeek> {
        let link = self.server_link()?;
        let membership = self.membership()?;
        let roster = self.facilitators_roster(change.lead.as_deref())?;
        critique_week::check_change(&self.program()?.enrollment.blueprint, &roster, change)?;
        let answer = post_signed_in(&link, CRITIQUE_WEEKS_PATH, &membership.cohort_id, wire::encode(change))?;
        let changed: CritiqueWeek = decoded(&answer)?;
        self.sync_after_action();
        Ok(changed)
    }

    /// Hides a submission, feedback or reply on every device (its author sees it was hidden
    /// and why; figures still count it, reports never hold its text).
    pub fn hide_entry(&self, entry: &EntryRef, reason: &str) -> Result<()> {
        let (week, entry, reason) = (entry.week, entry.key.clone(), reason.to_owned());
        self.facilitate(FacilitatorAction::Hide { week, entry, reason })
    }

    /// Shows a hidden entry again.
    pub fn show_entry(&self, entry: &EntryRef) -> Result<()> {
        self.facilitate(FacilitatorAction::Show { week: entry.week, entry: entry.key.clone() })
    }

    /// Marks a piece of feedback as a model of good feedback, on every device.
    pub fn endorse_feedback(&self, feedback: &EntryRef) -> Result<()> {
        self.facilitate(FacilitatorAction::Endorse { week: feedback.week, feedback: feedback.key.clone() })
    }

    /// Announces something to the whole cohort; returns the announcement's key.
    pub fn announce(&self, body: &str) -> Result<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.facilitate(FacilitatorAction::Announce { id: id.clone(), body: body.to_owned() })?;
        Ok(crate::docs::schema::entry_key(&self.my_user_id()?, &id))
    }

    /// A private note to one member of the cohort (a nudge, a word of thanks): it reaches her
    /// devices only, never the rest of the cohort.
    pub fn send_note(&self, member: &str, body: &str) -> Result<()> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.facilitate(FacilitatorAction::Note { id, member: member.to_owned(), body: body.to_owned() })
    }

    /// Marks a learner as having stopped practising: from today her review assignments go to
    /// the others on every device (each submission keeps two reviewers); she stays a member.
    pub fn pause_member(&self, member: &str) -> Result<()> {
        self.facilitate(FacilitatorAction::Pause { member: member.to_owned() })
    }

    /// Marks a paused learner back: assignments count her again from today.
    pub fn resume_member(&self, member: &str) -> Result<()> {
        self.facilitate(FacilitatorAction::Resume { member: member.to_owned() })
    }

    fn facilitate(&self, action: FacilitatorAction) -> Result<()> {
        let link = self.server_link()?;
        let membership = self.membership()?;
        let naming = match &action {
            FacilitatorAction::Note { member, .. }
            | FacilitatorAction::Pause { member }
            | FacilitatorAction::Resume { member } => Some(member.as_str()),
            _ => None,
        };
        let roster = self.facilitators_roster(naming)?;
        facilitation::check(&action, &self.program()?.enrollment.blueprint, &roster)?;
        // The entry must be one the week holds (feedback, to endorse), as the server checks.
        let named = match &action {
            FacilitatorAction::Hide { week, entry, .. } | FacilitatorAction::Show { week, entry } => {
                Some((*week, entry, "entry"))
            }
            FacilitatorAction::Endorse { week, feedback } => Some((*week, feedback, "feedback")),
            _ => None,
        };
        if let Some((week, key, what)) = named {
            let rows = self.week_rows(week)?;
            let feedback = rows.feedback.iter().any(|f| f.meta.key == *key);
            let other =
                rows.submissions.iter().any(|s| s.meta.key == *key) || rows.replies.iter().any(|r| r.meta.key == *key);
            if !(feedback || (other && what == "entry")) {
                return Err(Error::UnknownEntry { what, week, key: key.clone() });
            }
        }
        post_signed_in(&link, FACILITATOR_ACTIONS_PATH, &membership.cohort_id, wire::encode(&action))?;
        self.sync_after_action();
        Ok(())
    }

    /// The action is done once the server answered: a sync that fails now (the connection
    /// dropped) is left to the next one, so the app never reports a done action as failed and
    /// the person never sends it twice.
    fn sync_after_action(&self) {
        if let Err(err) = self.sync_now() {
            tracing::warn!(%err, "the sync after a facilitator's action failed; the next sync brings it");
        }
    }

    /// The selected cohort's roster, when she facilitates it (a learner, by the role the server
    /// gave her membership, gets `FacilitatorOnly` even offline). A roster that does not list
    /// her or a member she names yet (she joined, or they did, since the last sync) is synced
    /// first, so the checks run on what the server will check against.
    fn facilitators_roster(&self, naming: Option<&str>) -> Result<crate::domain::roster::Roster> {
        let membership = self.membership()?;
        // A database from before roles were kept has none: the roster decides.
        if self.membership_row(&membership.cohort_id)?.role == "learner" {
            return Err(Error::FacilitatorOnly);
        }
        let current = |roster: &crate::domain::roster::Roster| {
            roster.is_facilitator(&membership.user_id)
                && naming.is_none_or(|user| user.trim().is_empty() || roster.member(user).is_some())
        };
        let roster = self.roster()?;
        if current(&roster) {
            return Ok(roster);
        }
        self.sync_now()?;
        let roster = self.roster()?;
        if roster.is_facilitator(&membership.user_id) { Ok(roster) } else { Err(Error::FacilitatorOnly) }
    }
}

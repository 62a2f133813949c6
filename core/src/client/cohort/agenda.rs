//! The weekly critique's agenda: which shared work the cohort talks through, in what order.
//! Facilitators and the member leading the week's critique write it; each adds, moves and removes
//! their own items (the validator allows no edits of another's entries); every member reads it.

use automerge::ScalarValue;

use super::*;
use crate::docs::projection::AgendaRow;
use crate::domain::roles::WeeklyRole;

/// Room between neighbouring positions, so a move usually changes one item only.
const GAP: i64 = 1024;

impl Client {
    /// The live items of a week's agenda, in order.
    pub fn agenda(&self, week: u32) -> Result<Vec<AgendaRow>> {
        let mut items: Vec<AgendaRow> =
            self.week_rows(week)?.agenda.into_iter().filter(|a| !a.meta.retracted).collect();
        items.sort_by(|a, b| {
            (a.position, a.meta.created_at, &a.meta.key).cmp(&(b.position, b.meta.created_at, &b.meta.key))
        });
        Ok(items)
    }

    /// Puts a shared piece of work of the week on its critique agenda, last.
    pub fn add_agenda_item(&self, submission: &EntryRef, note: &str) -> Result<EntryRef> {
        self.check_agenda_writer(submission.week)?;
        let note = note.trim();
        if note.chars().count() > MAX_BODY_CHARS {
            return Err(DomainError::invalid("note", format!("is longer than {MAX_BODY_CHARS} characters")).into());
        }
        let rows = self.week_rows(submission.week)?;
        if !rows.submissions.iter().any(|s| s.meta.key == submission.key && !s.meta.retracted) {
            let key = submission.key.clone();
            return Err(Error::UnknownEntry { what: "submission", week: submission.week, key });
        }
        let last = self.agenda(submission.week)?.last().map_or(0, |a| a.position);
        let fields = [
            (field::SUBMISSION, ScalarValue::from(submission.key.as_str())),
            (field::POSITION, ScalarValue::Int(last + GAP)),
            (field::NOTE, ScalarValue::from(note)),
            (field::CREATED_AT, ScalarValue::Int(self.now().timestamp_millis())),
        ];
        self.add_entry(submission.week, Container::Agenda, &fields)
    }

    /// Moves one of this writer's items to `index` in the agenda (0 = first).
    pub fn move_agenda_item(&self, item: &EntryRef, index: u32) -> Result<()> {
        self.own_agenda_item(item)?;
        let others: Vec<AgendaRow> = self.agenda(item.week)?.into_iter().filter(|a| a.meta.key != item.key).collect();
        let at = (index as usize).min(others.len());
        let before = at.checked_sub(1).map(|i| others[i].position);
        let after = others.get(at).map(|a| a.position);
        let position = match (before, after) {
            (None, None) => GAP,
            (None, Some(next)) => next - GAP,
            (Some(prev), None) => prev + GAP,
            (Some(prev), Some(next)) => prev + (next - prev) / 2,
        };
        // No room between two neighbours: the tie breaks by creation, which may be wrong; the
        // gap makes this need hundreds of moves between the same two items.
        let edited = ScalarValue::Int(self.now().timestamp_millis());
        self.change_entry(
            item.week,
            Container::Agenda,
            &item.key,
            &[(field::POSITION, ScalarValue::Int(position)), (field::EDITED_AT, edited)],
        )
    }

    /// Takes one of this writer's items off the agenda.
    pub fn remove_agenda_item(&self, item: &EntryRef) -> Result<()> {
        self.own_agenda_item(item)?;
        let edited = ScalarValue::Int(self.now().timestamp_millis());
        self.change_entry(
            item.week,
            Container::Agenda,
            &item.key,
            &[(field::RETRACTED, ScalarValue::from(true)), (field::EDITED_AT, edited)],
        )
    }

    /// Facilitators, and the member leading this week's critique; anyone else gets
    /// [`Error::FacilitatorOnly`].
    fn check_agenda_writer(&self, week: u32) -> Result<()> {
        let me = self.membership()?.user_id;
        let roles = self.week_roles(week)?;
        let writes = roles.role_of(&me) == Some(WeeklyRole::Facilitator) || roles.critique_lead == Some(me);
        if writes { Ok(()) } else { Err(Error::FacilitatorOnly) }
    }

    fn own_agenda_item(&self, item: &EntryRef) -> Result<()> {
        self.check_agenda_writer(item.week)?;
        let me = self.membership()?.user_id;
        let items = self.week_rows(item.week)?.agenda;
        let found = items
            .iter()
            .find(|a| a.meta.key == item.key && !a.meta.retracted)
            .ok_or_else(|| Error::UnknownEntry { what: "agenda item", week: item.week, key: item.key.clone() })?;
        if found.meta.author != me {
            return Err(Error::NotYourEntry(item.key.clone()));
        }
        Ok(())
    }
}

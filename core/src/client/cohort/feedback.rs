//! Structured feedback on a peer's submission, threaded replies, helpfulness ratings, edits and
//! retractions of one's own entries, the co-written weekly synthesis and attendance.

use automerge::ScalarValue;

use crate::client::Client;
use crate::client::intents::Intent;
use crate::docs::check_id;
use crate::docs::schema::{Container, field, key_author};
use crate::domain::DomainError;
use crate::error::{Error, Result};

use super::*;

impl Client {
    /// Writes feedback on a submission. After the week's window closes it is still kept, flagged
    /// late.
    pub fn give_feedback(&self, submission: &EntryRef, input: &FeedbackInput) -> Result<EntryRef> {
        self.write_feedback(submission, input, &[])
    }

    /// Reviews a capstone against the capstone brief's rubric: `scores` rates every criterion
    /// of the rubric, in its order, from 1 (not yet) to 5 (fully).
    pub fn give_capstone_feedback(
        &self,
        submission: &EntryRef,
        input: &FeedbackInput,
        scores: &[u32],
    ) -> Result<EntryRef> {
        let rows = self.week_rows(submission.week)?;
        let target = rows.submissions.iter().find(|s| s.meta.key == submission.key).ok_or_else(|| {
            Error::UnknownEntry { what: "submission", week: submission.week, key: submission.key.clone() }
        })?;
        if target.kind != "capstone" {
            return Err(DomainError::invalid("submission", "rubric scores are for capstones").into());
        }
        let rubric = self.program()?.pack.capstone.as_ref().map_or(0, |c| c.rubric.len());
        if scores.len() != rubric {
            let problem =
                format!("{} scores for a rubric of {rubric} criteria; score each criterion once", scores.len());
            return Err(DomainError::invalid("scores", problem).into());
        }
        if let Some(bad) = scores.iter().find(|s| !(1..=5).contains(*s)) {
            return Err(DomainError::invalid("scores", format!("{bad} is outside 1..=5")).into());
        }
        self.write_feedback(submission, input, scores)
    }

    fn write_feedback(&self, submission: &EntryRef, input: &FeedbackInput, scores: &[u32]) -> Result<EntryRef> {
        let body = checked_text("body", &input.body, MAX_BODY_CHARS)?;
        let suggestion = match input.suggestion.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => checked_text("suggestion", s, MAX_BODY_CHARS)?,
            _ => String::new(),
        };
        let me = self.membership()?.user_id;
        let rows = self.week_rows(submission.week)?;
        let target = rows.submissions.iter().find(|s| s.meta.key == submission.key).ok_or_else(|| {
            Error::UnknownEntry { what: "submission", week: submission.week, key: submission.key.clone() }
        })?;
        if target.meta.author == me {
            return Err(DomainError::invalid("submission", "give feedback on someone else's work").into());
        }
        // The criteria a reviewer may name: the capstone brief's for a capstone, else its prompt's.
        let program = self.program()?;
        let rubric = match (target.kind.as_str(), target.prompt_id.as_deref()) {
            ("capstone", _) => program.pack.capstone.as_ref().map_or(0, |c| c.rubric.len()),
            (_, Some(id)) => program.pack.prompts.iter().find(|p| p.id == id).map_or(0, |p| p.rubric.len()),
            (_, None) => 0,
        };
        if let Some(outside) = input.criteria.iter().find(|&&c| c as usize >= rubric) {
            let problem = match rubric {
                0 => format!("criterion {outside}: this submission's prompt has no rubric"),
                n => format!("criterion {outside} is not in the rubric (criteria 0 to {})", n - 1),
            };
            return Err(DomainError::invalid("criteria", problem).into());
        }
        let mut criteria = input.criteria.clone();
        criteria.sort_unstable();
        criteria.dedup();
        let criteria = serde_json::to_string(&criteria).map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut fields = vec![
            (field::SUBMISSION, ScalarValue::from(submission.key.as_str())),
            (field::BODY, body.into()),
            (field::SUGGESTION, suggestion.into()),
            (field::CRITERIA, criteria.into()),
            (field::CREATED_AT, ScalarValue::Int(self.now().timestamp_millis())),
            (field::RETRACTED, false.into()),
        ];
        if !scores.is_empty() {
            let scores = serde_json::to_string(scores).map_err(|e| Error::Corrupt(e.to_string()))?;
            fields.push((field::SCORES, scores.into()));
        }
        self.add_entry(submission.week, Container::Feedback, &fields)
    }

    /// Replies in a feedback thread, to the feedback itself or to an earlier reply.
    pub fn reply(&self, feedback: &EntryRef, parent: Option<&EntryRef>, body: &str) -> Result<EntryRef> {
        let body = checked_text("body", body, MAX_BODY_CHARS)?;
        let rows = self.week_rows(feedback.week)?;
        if !rows.feedback.iter().any(|f| f.meta.key == feedback.key) {
            return Err(Error::UnknownEntry { what: "feedback", week: feedback.week, key: feedback.key.clone() });
        }
        if let Some(parent) = parent
            && (parent.week != feedback.week
                || !rows.replies.iter().any(|r| r.meta.key == parent.key && r.feedback == feedback.key))
        {
            return Err(Error::UnknownEntry {
                what: "reply in this thread",
                week: parent.week,
                key: parent.key.clone(),
            });
        }
        let fields = [
            (field::FEEDBACK, ScalarValue::from(feedback.key.as_str())),
            (field::PARENT, parent.map(|p| p.key.as_str()).unwrap_or_default().into()),
            (field::BODY, body.into()),
            (field::CREATED_AT, ScalarValue::Int(self.now().timestamp_millis())),
            (field::RETRACTED, false.into()),
        ];
        self.add_entry(feedback.week, Container::Replies, &fields)
    }

    /// Rates how helpful feedback on one's own submission was (1–5). Rating again changes the
    /// score.
    pub fn rate_feedback(&self, feedback: &EntryRef, score: u8) -> Result<EntryRef> {
        if !(1..=5).contains(&score) {
            return Err(DomainError::invalid("score", format!("{score} is outside 1..=5")).into());
        }
        let me = self.membership()?.user_id;
        let rows = self.week_rows(feedback.week)?;
        let on = rows.feedback.iter().find(|f| f.meta.key == feedback.key).ok_or_else(|| Error::UnknownEntry {
            what: "feedback",
            week: feedback.week,
            key: feedback.key.clone(),
        })?;
        if key_author(&on.submission) != Some(me.as_str()) {
            return Err(Error::NotYourSubmission(feedback.key.clone()));
        }
        let now = ScalarValue::Int(self.now().timestamp_millis());
        if let Some(existing) = rows.ratings.iter().find(|r| r.meta.author == me && r.feedback == feedback.key) {
            let key = existing.meta.key.clone();
            let fields = [(field::SCORE, ScalarValue::Int(i64::from(score))), (field::EDITED_AT, now)];
            self.change_entry(feedback.week, Container::Ratings, &key, &fields)?;
            return Ok(EntryRef { week: feedback.week, key });
        }
        let fields = [
            (field::FEEDBACK, ScalarValue::from(feedback.key.as_str())),
            (field::SCORE, ScalarValue::Int(i64::from(score))),
            (field::CREATED_AT, now),
        ];
        self.add_entry(feedback.week, Container::Ratings, &fields)
    }

    /// Changes the text of one's own submission, feedback or reply.
    pub fn edit_entry(&self, entry: &EntryRef, body: &str) -> Result<()> {
        let body = checked_text("body", body, MAX_BODY_CHARS)?;
        let container = self.own_entry_container(entry)?;
        let fields = [
            (field::BODY, ScalarValue::from(body)),
            (field::EDITED_AT, ScalarValue::Int(self.now().timestamp_millis())),
        ];
        self.change_entry(entry.week, container, &entry.key, &fields)
    }

    /// Retracts one's own submission, feedback or reply. It stays visible as retracted.
    pub fn retract_entry(&self, entry: &EntryRef) -> Result<()> {
        let container = self.own_entry_container(entry)?;
        let fields = [
            (field::RETRACTED, ScalarValue::from(true)),
            (field::EDITED_AT, ScalarValue::Int(self.now().timestamp_millis())),
        ];
        self.change_entry(entry.week, container, &entry.key, &fields)
    }

    /// Co-writes the week's synthesis: deletes `delete` characters at `position` and inserts
    /// `insert` (positions count Unicode code points).
    pub fn edit_synthesis(&self, week: u32, position: usize, delete: usize, insert: &str) -> Result<()> {
        let inserted = insert.chars().count();
        if inserted > MAX_BODY_CHARS {
            return Err(DomainError::invalid("insert", format!("is longer than {MAX_BODY_CHARS} characters")).into());
        }
        let length = self.synthesis(week)?.chars().count();
        if length.saturating_sub(delete.min(length)) + inserted > MAX_SYNTHESIS_CHARS {
            return Err(DomainError::invalid(
                "insert",
                format!("the synthesis would be longer than {MAX_SYNTHESIS_CHARS} characters"),
            )
            .into());
        }
        self.apply_intent(&Intent::Synthesis { week, position, delete, insert: insert.to_owned() }).map(|_| ())
    }

    /// [`Client::edit_synthesis`] with positions in UTF-16 code units, as Kotlin, Swift and the
    /// web count them (a text field's selection); a position inside a character is refused.
    pub fn edit_synthesis_utf16(&self, week: u32, position: usize, delete: usize, insert: &str) -> Result<()> {
        let text = self.synthesis(week)?;
        let start = chars_at_utf16(&text, position, "position")?;
        let end = chars_at_utf16(&text, position.saturating_add(delete), "delete")?;
        self.edit_synthesis(week, start, end - start, insert)
    }

    pub fn synthesis(&self, week: u32) -> Result<String> {
        Ok(self.week_rows(week)?.synthesis)
    }

    /// The facilitator records who attended a weekly critique.
    pub fn record_attendance(&self, week: u32, member: &str, present: bool) -> Result<()> {
        check_id("member", member)?;
        let at = self.now().timestamp_millis();
        self.apply_intent(&Intent::Attendance { week, member: member.to_owned(), present, at }).map(|_| ())
    }

    // ---- roles, assignments, windows ------------------------------------------------------
}

/// The character (code point) offset of a UTF-16 offset into `text`; past the end is the end.
fn chars_at_utf16(text: &str, utf16: usize, field: &str) -> Result<usize> {
    let mut units = 0;
    for (chars, c) in text.chars().enumerate() {
        if units == utf16 {
            return Ok(chars);
        }
        units += c.len_utf16();
        if units > utf16 {
            return Err(DomainError::invalid(field, format!("UTF-16 offset {utf16} falls inside a character")).into());
        }
    }
    Ok(text.chars().count())
}

#[cfg(test)]
mod tests {
    use super::chars_at_utf16;

    #[test]
    fn utf16_offsets_become_character_offsets_and_never_split_a_character() {
        let text = "a🙂b"; // 🙂 is two UTF-16 units, one character
        assert_eq!(chars_at_utf16(text, 0, "position").unwrap(), 0);
        assert_eq!(chars_at_utf16(text, 1, "position").unwrap(), 1);
        assert!(chars_at_utf16(text, 2, "position").is_err(), "inside the emoji");
        assert_eq!(chars_at_utf16(text, 3, "position").unwrap(), 2);
        assert_eq!(chars_at_utf16(text, 4, "position").unwrap(), 3);
        assert_eq!(chars_at_utf16(text, 99, "position").unwrap(), 3);
    }
}

//! Sharing work with the cohort: a logged practice (never its private text), capstones and public
//! reflections, each a submission in the week's document.

use automerge::ScalarValue;
use uuid::Uuid;

use crate::client::Client;
use crate::docs::schema::{Container, field};
use crate::domain::DomainError;
use crate::domain::blueprint::Phase;
use crate::error::{Error, Result};
use crate::store::practice::{self as logs, PracticeStatus};
use crate::sync::limits::MAX_VALUE_CHARS;

use super::*;

impl Client {
    /// Shares a logged practice with the cohort as a submission in this week's document. The
    /// private reflection is not shared; `body` is what the learner chooses to show.
    ///
    /// A practice is shared once: its submission's key is made from the log's id, so sharing it
    /// again — on this device or another of hers, even offline — returns the same submission
    /// (edit it with [`Client::edit_entry`]), and the submission names the log it came from.
    pub fn share_practice(&self, log_id: Uuid, title: &str, body: &str) -> Result<EntryRef> {
        let log = self.store().read(|conn| logs::log(conn, log_id))?.ok_or(Error::UnknownPracticeLog(log_id))?;
        if log.status != PracticeStatus::Completed {
            return Err(DomainError::invalid("log_id", "only a completed practice can be shared").into());
        }
        if let Some(shared) = self.practice_submission(log_id, log.local_date)? {
            return Ok(shared);
        }
        self.share(WorkKind::Practice, title, body, Some(&log.prompt.prompt_id), &[], Some(log_id))
    }

    /// The submission a practice log was shared as, if it was: looked for from the log's week
    /// to this one.
    pub fn practice_submission(&self, log_id: Uuid, logged_on: chrono::NaiveDate) -> Result<Option<EntryRef>> {
        let key = crate::docs::schema::entry_key(&self.membership()?.user_id, &log_id.to_string());
        let program = self.program()?;
        let blueprint = &program.enrollment.blueprint;
        let Some(now) = blueprint.position_on(self.today_date()?).week else { return Ok(None) };
        let from = blueprint.position_on(logged_on).week.unwrap_or(1).min(now);
        for week in from..=now {
            if self.week_rows(week)?.submissions.iter().any(|s| s.meta.key == key) {
                return Ok(Some(EntryRef { week, key }));
            }
        }
        Ok(None)
    }

    /// Shares work with the cohort. Attachments are references (links, file ids), never bytes.
    pub fn share_work(
        &self,
        kind: WorkKind,
        title: &str,
        body: &str,
        prompt_id: Option<&str>,
        attachments: &[String],
    ) -> Result<EntryRef> {
        self.share(kind, title, body, prompt_id, attachments, None)
    }

    fn share(
        &self,
        kind: WorkKind,
        title: &str,
        body: &str,
        prompt_id: Option<&str>,
        attachments: &[String],
        practice_log: Option<Uuid>,
    ) -> Result<EntryRef> {
        let title = checked_text("title", title, MAX_TITLE_CHARS)?;
        let body = checked_text("body", body, MAX_BODY_CHARS)?;
        let week = self.current_week()?;
        if kind != WorkKind::Practice
            && self.program()?.enrollment.blueprint.phase_of_week(week) != Phase::Consolidation
        {
            return Err(DomainError::invalid(
                "kind",
                format!("a {} is shared in the consolidation weeks", kind.as_str()),
            )
            .into());
        }
        let attachments = serde_json::to_string(attachments).map_err(|e| Error::Corrupt(e.to_string()))?;
        if attachments.chars().count() > MAX_VALUE_CHARS {
            return Err(DomainError::invalid(
                "attachments",
                format!("the references take more than {MAX_VALUE_CHARS} characters"),
            )
            .into());
        }
        let now = self.now().timestamp_millis();
        let fields = [
            (field::KIND, ScalarValue::from(kind.as_str())),
            (field::TITLE, title.into()),
            (field::BODY, body.into()),
            (field::PROMPT_ID, prompt_id.unwrap_or_default().into()),
            (field::ATTACHMENTS, attachments.into()),
            (field::CREATED_AT, ScalarValue::Int(now)),
            (field::RETRACTED, false.into()),
            (field::PRACTICE_LOG, practice_log.map(|id| id.to_string()).unwrap_or_default().into()),
        ];
        let entry_id = practice_log.unwrap_or_else(Uuid::now_v7).to_string();
        self.add_entry_with_id(week, Container::Submissions, entry_id, &fields)
    }
}

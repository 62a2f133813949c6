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
    pub fn share_practice(&self, log_id: Uuid, title: &str, body: &str) -> Result<EntryRef> {
        let log = self.store().read(|conn| logs::log(conn, log_id))?.ok_or(Error::UnknownPracticeLog(log_id))?;
        if log.status != PracticeStatus::Completed {
            return Err(DomainError::invalid("log_id", "only a completed practice can be shared").into());
        }
        self.share_work(WorkKind::Practice, title, body, Some(&log.prompt.prompt_id), &[])
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
        ];
        self.add_entry(week, Container::Submissions, &fields)
    }
}

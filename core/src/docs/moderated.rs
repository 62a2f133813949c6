//! A week's rows as one member sees them after facilitators' moderation (written into the cohort
//! document by the server). Pure: the same rows, moderation and viewer give the same view on
//! every device.

use std::collections::HashMap;

use super::cohort::ModerationRow;
use super::projection::{EntryMeta, WeekRows};

/// A hidden submission, feedback or reply is left out for everyone but its author and the
/// facilitators, who see it marked with the reason; endorsed feedback carries who endorsed it.
pub fn moderated(mut rows: WeekRows, moderation: &[ModerationRow], viewer: &str, facilitator: bool) -> WeekRows {
    if moderation.is_empty() {
        return rows;
    }
    let by_entry: HashMap<&str, &ModerationRow> = moderation.iter().map(|m| (m.entry.as_str(), m)).collect();
    let mark = |meta: &mut EntryMeta| -> bool {
        let hidden = by_entry.get(meta.key.as_str()).and_then(|m| m.hidden.as_ref());
        meta.hidden = hidden.map(|h| h.reason.clone());
        hidden.is_none() || facilitator || meta.author == viewer
    };
    rows.submissions.retain_mut(|s| mark(&mut s.meta));
    rows.replies.retain_mut(|r| mark(&mut r.meta));
    rows.feedback.retain_mut(|f| mark(&mut f.meta));
    for f in &mut rows.feedback {
        f.endorsed_by = by_entry.get(f.meta.key.as_str()).and_then(|m| m.endorsed_by.clone());
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::cohort::HiddenMark;
    use crate::docs::projection::{FeedbackRow, SubmissionRow};

    fn meta(key: &str) -> EntryMeta {
        EntryMeta {
            key: key.into(),
            author: key.split('/').next().unwrap().into(),
            created_at: 1,
            edited_at: None,
            retracted: false,
            hidden: None,
        }
    }

    #[test]
    fn a_hidden_entry_is_gone_for_peers_and_marked_for_its_author_and_facilitators() {
        let rows = WeekRows {
            submissions: vec![SubmissionRow {
                meta: meta("ana/s1"),
                kind: "practice".into(),
                title: "t".into(),
                body: "b".into(),
                prompt_id: None,
                attachments: vec![],
                practice_log: None,
            }],
            feedback: ["ben/f1", "cy/f2"]
                .map(|key| FeedbackRow {
                    meta: meta(key),
                    submission: "ana/s1".into(),
                    body: "x".into(),
                    suggestion: None,
                    criteria: vec![],
                    scores: vec![],
                    endorsed_by: None,
                })
                .to_vec(),
            ..Default::default()
        };
        let moderation = [
            ModerationRow {
                week: 1,
                entry: "ben/f1".into(),
                hidden: Some(HiddenMark { reason: "Personal attack".into(), by: "fay".into() }),
                endorsed_by: None,
            },
            ModerationRow { week: 1, entry: "cy/f2".into(), hidden: None, endorsed_by: Some("fay".into()) },
        ];
        let keys = |rows: &WeekRows| rows.feedback.iter().map(|f| f.meta.key.clone()).collect::<Vec<_>>();
        let ana = moderated(rows.clone(), &moderation, "ana", false);
        assert_eq!(keys(&ana), ["cy/f2"]);
        assert_eq!(ana.feedback[0].endorsed_by.as_deref(), Some("fay"));
        let ben = moderated(rows.clone(), &moderation, "ben", false);
        assert_eq!(ben.feedback[0].meta.hidden.as_deref(), Some("Personal attack"), "the author sees why");
        let fay = moderated(rows, &moderation, "fay", true);
        assert_eq!(keys(&fay), ["ben/f1", "cy/f2"]);
    }
}

//! A week's projected rows reduced to the facts the cohort metrics read. Used by the facilitator's
//! device (rows from its SQLite projections) and by the server (rows projected in the background).

use std::collections::HashMap;

use crate::domain::cohort_metrics::{AttendanceFact, FeedbackFact, SubmissionFact, criteria_addressed};
use crate::domain::prompt_pack::PromptPack;

use super::projection::WeekRows;

/// Submissions and feedback of `week`, retracted entries left out. Feedback counts only on an
/// existing submission of someone else. A rating counts only when the projection counted it
/// (given by the submission's author); the newest such rating wins.
pub fn week_facts(week: u32, rows: &WeekRows, pack: &PromptPack) -> (Vec<SubmissionFact>, Vec<FeedbackFact>) {
    let rubric_sizes: HashMap<&str, u32> =
        pack.prompts.iter().map(|p| (p.id.as_str(), p.rubric.len() as u32)).collect();
    let submission_of: HashMap<&str, (&str, u32)> = rows
        .submissions
        .iter()
        .map(|s| {
            let rubric = s.prompt_id.as_deref().and_then(|id| rubric_sizes.get(id)).copied().unwrap_or(0);
            (s.meta.key.as_str(), (s.meta.author.as_str(), rubric))
        })
        .collect();
    let mut ratings: HashMap<&str, (i64, i64)> = HashMap::new();
    for rating in rows.ratings.iter().filter(|r| r.counted) {
        let at = rating.meta.edited_at.unwrap_or(rating.meta.created_at);
        let slot = ratings.entry(rating.feedback.as_str()).or_insert((at, rating.score));
        if at >= slot.0 {
            *slot = (at, rating.score);
        }
    }
    let submissions = rows
        .submissions
        .iter()
        .filter(|s| !s.meta.retracted)
        .map(|s| SubmissionFact {
            week,
            key: s.meta.key.clone(),
            author: s.meta.author.clone(),
            kind: s.kind.clone(),
            prompt_id: s.prompt_id.clone(),
            practice_log: s.practice_log.clone(),
        })
        .collect();
    // Feedback counts only on a submission that exists, and never on the reviewer's own: a key
    // that names no submission credits nobody and clears no review owed.
    let feedback = rows
        .feedback
        .iter()
        .filter(|f| !f.meta.retracted)
        .filter_map(|f| {
            let (submission_author, rubric_size) = submission_of.get(f.submission.as_str()).copied()?;
            (submission_author != f.meta.author).then(|| FeedbackFact {
                week,
                author: f.meta.author.clone(),
                submission_author: submission_author.to_owned(),
                submission: f.submission.clone(),
                has_suggestion: f.suggestion.as_deref().is_some_and(|s| !s.trim().is_empty()),
                criteria_addressed: criteria_addressed(&f.criteria, rubric_size),
                rubric_size,
                helpfulness: ratings.get(f.meta.key.as_str()).and_then(|(_, score)| u8::try_from(*score).ok()),
            })
        })
        .collect();
    (submissions, feedback)
}

/// Who was at the week's critique: per member, the facilitators' newest record.
pub fn week_attendance(week: u32, rows: &WeekRows) -> Vec<AttendanceFact> {
    let mut newest: HashMap<&str, (i64, &str, bool)> = HashMap::new();
    for a in &rows.attendance {
        let stamp = (a.meta.edited_at.unwrap_or(a.meta.created_at), a.meta.key.as_str(), a.present);
        let slot = newest.entry(a.member.as_str()).or_insert(stamp);
        if (stamp.0, stamp.1) > (slot.0, slot.1) {
            *slot = stamp;
        }
    }
    let mut facts: Vec<AttendanceFact> = newest
        .into_iter()
        .map(|(member, (_, _, present))| AttendanceFact { week, member: member.to_owned(), present })
        .collect();
    facts.sort_by(|a, b| a.member.cmp(&b.member));
    facts
}

//! Prompt analytics for curriculum teams: per prompt and pack version, how often it was started,
//! completed and abandoned, how long it took against the minutes it states, how often it led to
//! transfer evidence, how often it was shared with the cohort, and how helpful the feedback on
//! those shares was rated. From the same facts as the cohort figures ([`super::cohort_metrics`]).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::cohort_metrics::{FeedbackFact, LogFact, SubmissionFact, counted_logs};
use super::prompt_pack::PromptPack;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptRow {
    pub prompt_id: String,
    pub pack_version: u32,
    /// From the program's current pack (empty for a prompt it no longer holds).
    pub title: String,
    pub week: Option<u32>,
    pub day: Option<u32>,
    /// The minutes the prompt states, for the program's current pack version (none for an
    /// older version: what it stated is not kept).
    pub stated_minutes: Option<u32>,
    /// Practices begun and finished either way (a corrected log counts once, as corrected).
    pub started: u32,
    pub completed: u32,
    pub abandoned: u32,
    /// Abandoned ÷ started.
    pub abandoned_share: Option<f64>,
    /// The median minutes of completed practices with a duration.
    pub median_minutes: Option<f64>,
    /// Median ÷ stated: above 1 the prompt takes longer than it says.
    pub overrun: Option<f64>,
    /// Completed practices with transfer evidence ÷ completed.
    pub transfer_share: Option<f64>,
    /// Practices of it shared with a cohort.
    pub shared: u32,
    /// Feedback given on those shares, and the mean helpfulness (1–5) their authors rated it.
    pub feedback: u32,
    pub mean_helpfulness: Option<f64>,
}

/// One row per prompt and pack version practised, the rows a curriculum team should look at
/// first on top: most abandoned, then most overrun.
pub fn prompt_analytics(
    pack: &PromptPack,
    logs: &[LogFact],
    submissions: &[SubmissionFact],
    feedback: &[FeedbackFact],
) -> Vec<PromptRow> {
    let counted = counted_logs(logs);
    let version_of_log: HashMap<&str, u32> = logs.iter().map(|l| (l.id.as_str(), l.pack_version)).collect();
    let newest: HashMap<&str, u32> = counted.iter().fold(HashMap::new(), |mut acc, l| {
        let v = acc.entry(l.prompt_id.as_str()).or_insert(0);
        *v = (*v).max(l.pack_version);
        acc
    });

    #[derive(Default)]
    struct Tally {
        started: u32,
        completed: u32,
        abandoned: u32,
        minutes: Vec<f64>,
        transfer: u32,
        shared: u32,
        feedback: u32,
        ratings: Vec<u8>,
    }
    let mut tallies: BTreeMap<(String, u32), Tally> = BTreeMap::new();
    for log in &counted {
        let tally = tallies.entry((log.prompt_id.clone(), log.pack_version)).or_default();
        tally.started += 1;
        if log.completed {
            tally.completed += 1;
            tally.transfer += u32::from(log.transfer);
            if log.duration_secs > 0 {
                tally.minutes.push(log.duration_secs as f64 / 60.0);
            }
        } else {
            tally.abandoned += 1;
        }
    }
    // A share is of the version its log was practised in (else the newest version practised).
    let mut share_of: HashMap<&str, (String, u32)> = HashMap::new();
    for s in submissions.iter().filter(|s| s.kind == "practice") {
        let Some(prompt) = s.prompt_id.as_deref() else { continue };
        let version = s
            .practice_log
            .as_deref()
            .and_then(|log| version_of_log.get(log).copied())
            .or_else(|| newest.get(prompt).copied())
            .unwrap_or(pack.version);
        tallies.entry((prompt.to_owned(), version)).or_default().shared += 1;
        share_of.insert(s.key.as_str(), (prompt.to_owned(), version));
    }
    for f in feedback {
        let Some(key) = share_of.get(f.submission.as_str()) else { continue };
        let tally = tallies.entry(key.clone()).or_default();
        tally.feedback += 1;
        tally.ratings.extend(f.helpfulness);
    }

    let share = |part: u32, whole: u32| (whole > 0).then(|| f64::from(part) / f64::from(whole));
    let mut rows: Vec<PromptRow> = tallies
        .into_iter()
        .map(|((prompt_id, pack_version), t)| {
            let prompt = pack.prompt(&prompt_id);
            let median_minutes = median(t.minutes);
            // What an older version stated is not kept: no figure rather than today's.
            let stated_minutes = prompt.filter(|_| pack_version == pack.version).map(|p| p.minutes);
            PromptRow {
                title: prompt.map(|p| p.title.clone()).unwrap_or_default(),
                week: prompt.map(|p| p.week),
                day: prompt.map(|p| p.day),
                stated_minutes,
                overrun: median_minutes.zip(stated_minutes.filter(|m| *m > 0)).map(|(m, s)| m / f64::from(s)),
                median_minutes,
                abandoned_share: share(t.abandoned, t.started),
                transfer_share: share(t.transfer, t.completed),
                mean_helpfulness: (!t.ratings.is_empty())
                    .then(|| t.ratings.iter().map(|r| f64::from(*r)).sum::<f64>() / t.ratings.len() as f64),
                started: t.started,
                completed: t.completed,
                abandoned: t.abandoned,
                shared: t.shared,
                feedback: t.feedback,
                prompt_id,
                pack_version,
            }
        })
        .collect();
    let key = |r: &PromptRow| (r.abandoned_share.unwrap_or(0.0), r.overrun.unwrap_or(0.0));
    rows.sort_by(|a, b| key(b).partial_cmp(&key(a)).unwrap_or(std::cmp::Ordering::Equal));
    rows
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) { (values[mid - 1] + values[mid]) / 2.0 } else { values[mid] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::prompt_pack::parse_pack;

    fn log(id: &str, prompt: &str, version: u32, completed: bool, secs: u64, transfer: bool) -> LogFact {
        LogFact {
            id: id.into(),
            user_id: "u".into(),
            local_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
            completed,
            duration_secs: secs,
            transfer,
            corrects: None,
            late_arrival: false,
            prompt_id: prompt.into(),
            pack_version: version,
        }
    }

    #[test]
    fn each_version_of_a_prompt_gets_its_figures_and_the_most_abandoned_comes_first() {
        let pack = parse_pack(crate::DEFAULT_PROMPT_PACK_NAME, crate::DEFAULT_PROMPT_PACK).unwrap();
        let (a, b) = (&pack.prompts[1], &pack.prompts[2]);
        let (old, now) = (pack.version - 1, pack.version);
        let mut corrected = log("l5", &b.id, old, true, 600, false);
        corrected.corrects = Some("l4".into());
        let logs = [
            log("l1", &a.id, old, true, 600, true),
            log("l2", &a.id, old, true, 1200, false),
            log("l3", &a.id, now, true, 900, false),
            log("l4", &b.id, old, true, 60, false),
            corrected,
            log("l6", &b.id, old, false, 0, false),
        ];
        let submissions = [SubmissionFact {
            week: 0,
            key: "u/l1".into(),
            author: "u".into(),
            kind: "practice".into(),
            prompt_id: Some(a.id.clone()),
            practice_log: Some("l1".into()),
        }];
        let rated = |helpfulness| FeedbackFact {
            week: 0,
            author: "v".into(),
            submission_author: "u".into(),
            submission: "u/l1".into(),
            has_suggestion: false,
            criteria_addressed: 0,
            rubric_size: 0,
            helpfulness,
        };
        let rows = prompt_analytics(&pack, &logs, &submissions, &[rated(Some(4)), rated(Some(5)), rated(None)]);
        assert_eq!(rows.len(), 3);
        let first = &rows[0];
        assert_eq!((first.prompt_id.as_str(), first.started, first.abandoned), (b.id.as_str(), 2, 1));
        assert_eq!(first.abandoned_share, Some(0.5));
        assert_eq!(first.median_minutes, Some(10.0), "the correction counts, the log it voids does not");
        let a1 = rows.iter().find(|r| r.prompt_id == a.id && r.pack_version == old).unwrap();
        assert_eq!((a1.started, a1.completed, a1.shared, a1.feedback), (2, 2, 1, 3));
        assert_eq!(a1.median_minutes, Some(15.0));
        assert_eq!(a1.transfer_share, Some(0.5));
        assert_eq!(a1.mean_helpfulness, Some(4.5));
        assert_eq!(a1.overrun, None, "what an older version stated is not kept");
        let a2 = rows.iter().find(|r| r.prompt_id == a.id && r.pack_version == now).unwrap();
        assert_eq!((a2.shared, a2.mean_helpfulness), (0, None));
        assert_eq!(a2.overrun, Some(15.0 / f64::from(a.minutes)), "the current version's stated minutes");
    }
}

//! Calibration in week 0: learners rate example submissions (a pack's exemplars) on their
//! prompt's rubric before they rate each other, and see how close they came to the reference
//! ratings. Agreement is measured per criterion: the mean absolute difference from the reference
//! (0 is perfect, 4 the most) and the share of criteria within one point of it.

use serde::{Deserialize, Serialize};

use super::DomainError;
use super::prompt_pack::{Exemplar, PromptPack};

pub const MIN_SCORE: u8 = 1;
pub const MAX_SCORE: u8 = 5;

/// How close a learner's (or a cohort's) ratings came to the references.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Exemplars rated.
    pub rated: u32,
    /// Mean |score − reference| over every criterion rated (none before any rating).
    pub mean_abs_difference: Option<f64>,
    /// Share of criteria rated within one point of the reference.
    pub within_one: Option<f64>,
}

/// The exemplar `id` of `pack`, and its rubric.
pub fn exemplar<'a>(pack: &'a PromptPack, id: &str) -> Result<(&'a Exemplar, &'a [String]), DomainError> {
    let exemplar = pack.exemplars.iter().find(|e| e.id == id).ok_or_else(|| {
        DomainError::invalid("exemplar_id", format!("{id:?} is not an exemplar of this program's pack"))
    })?;
    let rubric = pack.prompt(&exemplar.prompt_id).map_or(&[][..], |p| p.rubric.as_slice());
    Ok((exemplar, rubric))
}

/// Scores as a rubric takes them: one per criterion, each 1..=5, naming what is wrong.
pub fn check_scores(rubric: &[String], scores: &[u8]) -> Result<(), DomainError> {
    if scores.len() != rubric.len() {
        return Err(DomainError::invalid(
            "scores",
            format!("{} scores for {} rubric criteria; give one per criterion", scores.len(), rubric.len()),
        ));
    }
    if let Some((index, score)) = scores.iter().enumerate().find(|(_, s)| !(MIN_SCORE..=MAX_SCORE).contains(*s)) {
        return Err(DomainError::invalid(
            format!("scores[{index}]"),
            format!("{score} for {:?} is outside {MIN_SCORE}..={MAX_SCORE}", rubric[index]),
        ));
    }
    Ok(())
}

/// Agreement over `(scores, reference)` pairs of exemplars rated.
pub fn agreement<'a>(ratings: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Agreement {
    let (mut rated, mut criteria, mut difference, mut close) = (0u32, 0u32, 0u32, 0u32);
    for (scores, reference) in ratings {
        rated += 1;
        for (score, want) in scores.iter().zip(reference) {
            let off = u32::from(score.abs_diff(*want));
            criteria += 1;
            difference += off;
            close += u32::from(off <= 1);
        }
    }
    let share = |part: u32| (criteria > 0).then(|| f64::from(part) / f64::from(criteria));
    Agreement { rated, mean_abs_difference: share(difference), within_one: share(close) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_need_one_per_criterion_within_the_scale_and_agreement_counts_each_criterion() {
        let rubric = vec!["Listens".to_owned(), "Asks".to_owned(), "Summarises".to_owned()];
        assert!(check_scores(&rubric, &[3, 4, 5]).is_ok());
        let short = check_scores(&rubric, &[3, 4]).unwrap_err().to_string();
        assert!(short.contains("scores") && short.contains("3 rubric criteria"), "{short}");
        let high = check_scores(&rubric, &[3, 6, 5]).unwrap_err().to_string();
        assert!(high.contains("scores[1]") && high.contains("Asks"), "{high}");
        assert!(check_scores(&rubric, &[0, 1, 1]).is_err());

        let a = agreement([(&[3u8, 4, 5][..], &[3u8, 2, 5][..]), (&[1u8, 1, 1][..], &[2u8, 1, 4][..])]);
        assert_eq!(a.rated, 2);
        // Differences 0, 2, 0, 1, 0, 3 over 6 criteria; within one: 4 of 6.
        assert_eq!(a.mean_abs_difference, Some(1.0));
        assert_eq!(a.within_one, Some(4.0 / 6.0));
        assert_eq!(agreement([]).mean_abs_difference, None);
    }
}

//! Calibration in week 0: she rates the pack's exemplars offline on their prompt's rubric and sees
//! how close she came to the reference ratings; the ratings go with the next sync, so the program
//! report shows every learner's and every cohort's agreement.

use super::Client;
use crate::domain::calibration::{self, Agreement};
use crate::domain::prompt_pack::Exemplar;
use crate::error::{Error, Result};
use crate::store::calibration as ratings;

/// An exemplar as the calibration screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExemplarView {
    pub exemplar: Exemplar,
    /// The criteria to rate it on (its prompt's rubric), in order.
    pub rubric: Vec<String>,
    /// Her newest scores, if she rated it; the reference is in `exemplar` once she has.
    pub my_scores: Option<Vec<u8>>,
    /// Why the server refused her rating (e.g. the program's pack on the server has no such
    /// exemplar), if it did: it does not count in the report.
    pub refused: Option<String>,
}

impl Client {
    /// The program's exemplars with their rubrics and her scores. The reference ratings are
    /// left out of an exemplar she has not rated yet, so they cannot guide her.
    pub fn calibration_exemplars(&self) -> Result<Vec<ExemplarView>> {
        let program = self.program()?;
        let mine = self.store().read(|conn| ratings::ratings(conn, &program.enrollment.program_id))?;
        Ok(program
            .pack
            .exemplars
            .iter()
            .map(|exemplar| {
                let rating = mine.iter().find(|r| r.exemplar_id == exemplar.id);
                let my_scores = rating.map(|r| r.scores.clone());
                let refused = rating.and_then(|r| r.refused.clone());
                let rubric = program.pack.prompt(&exemplar.prompt_id).map(|p| p.rubric.clone()).unwrap_or_default();
                let reference = if my_scores.is_some() { exemplar.reference.clone() } else { Vec::new() };
                ExemplarView { exemplar: Exemplar { reference, ..exemplar.clone() }, rubric, my_scores, refused }
            })
            .collect())
    }

    /// Rates an exemplar (one score 1..=5 per rubric criterion; rating again replaces her
    /// scores) and returns her agreement over every exemplar she rated.
    pub fn rate_exemplar(&self, exemplar_id: &str, scores: &[u8]) -> Result<Agreement> {
        let program = self.program()?;
        if program.enrollment.blueprint.control_arm {
            return Err(Error::ControlArm);
        }
        let (exemplar, rubric) = calibration::exemplar(&program.pack, exemplar_id)?;
        calibration::check_scores(rubric, scores)?;
        let at = self.now().timestamp_millis();
        let program_id = &program.enrollment.program_id;
        self.store().write(|tx| ratings::rate(tx, program_id, &exemplar.id, scores, at))?;
        self.my_calibration()
    }

    /// How close her ratings came to the references, over every exemplar she rated.
    pub fn my_calibration(&self) -> Result<Agreement> {
        let program = self.program()?;
        let mine = self.store().read(|conn| ratings::ratings(conn, &program.enrollment.program_id))?;
        let pairs: Vec<(&[u8], &[u8])> = mine
            .iter()
            .filter_map(|r| {
                let exemplar = program.pack.exemplars.iter().find(|e| e.id == r.exemplar_id)?;
                Some((r.scores.as_slice(), exemplar.reference.as_slice()))
            })
            .collect();
        Ok(calibration::agreement(pairs))
    }
}

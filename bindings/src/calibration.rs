//! Calibration in week 0: the pack's exemplars with their rubrics, her ratings of them, and how
//! close she came to the reference ratings.

use microcohort_core::ExemplarView;
use microcohort_core::domain::calibration::Agreement;
use microcohort_core::domain::prompt_pack::Exemplar;

use crate::client::Client;
use crate::error::Result;

#[uniffi::remote(Record)]
pub struct Exemplar {
    pub id: String,
    pub prompt_id: String,
    pub title: String,
    pub body: String,
    /// The reference ratings, one per rubric criterion: empty until she has rated it.
    pub reference: Vec<u8>,
}

#[uniffi::remote(Record)]
pub struct ExemplarView {
    pub exemplar: Exemplar,
    pub rubric: Vec<String>,
    pub my_scores: Option<Vec<u8>>,
    /// Why the server refused her rating, if it did.
    pub refused: Option<String>,
}

#[uniffi::remote(Record)]
pub struct Agreement {
    pub rated: u32,
    /// Mean |score − reference| per criterion (0 is perfect).
    pub mean_abs_difference: Option<f64>,
    /// Share of criteria within one point of the reference.
    pub within_one: Option<f64>,
}

#[uniffi::export]
impl Client {
    /// The program's calibration exemplars with their rubrics and her scores.
    pub async fn calibration_exemplars(&self) -> Result<Vec<ExemplarView>> {
        self.run(move |core| core.calibration_exemplars()).await
    }

    /// Rates an exemplar, one score 1..=5 per rubric criterion (sent with the next sync), and
    /// returns her agreement over all she rated. `InvalidInput(scores)` or
    /// `InvalidInput(scores[i])` for scores the rubric does not take, `InvalidInput(exemplar_id)`
    /// for an unknown exemplar; `Rejected(CONTROL_ARM)` in a control arm.
    pub async fn rate_exemplar(&self, exemplar_id: String, scores: Vec<u8>) -> Result<Agreement> {
        self.run(move |core| core.rate_exemplar(&exemplar_id, &scores)).await
    }

    /// How close her ratings came to the references.
    pub async fn my_calibration(&self) -> Result<Agreement> {
        self.run(move |core| core.my_calibration()).await
    }
}

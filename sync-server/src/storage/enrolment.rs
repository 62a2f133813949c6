//! Enrolment into a program's arms: the program, not the operator, places a new learner — in the
//! arm its seeded draw gives (or the one the operator chose), in that arm's cohort with the most
//! room. The draw and the seed are recorded with the invite, so exports show how every learner
//! came to be in her arm and anyone can reproduce the draws.

use microcohort_core::domain::arms::{self, Arm, Assignment};

use super::documents::{internal, now_ms, program_of_cohort};
use super::primitives::{NewInvite, Tx};
use crate::error::ApiError;

/// A learner to place in a program.
pub struct Placement<'a> {
    pub program_id: &'a str,
    /// The operator's choice; `None` draws the arm.
    pub arm: Option<Arm>,
    /// The seed of the program's draws, if the operator gives it: only before the first draw
    /// (or the same one again). Without it the first draw picks one at random and records it.
    pub seed: Option<u64>,
}

/// Where a placed learner's invite leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub cohort_id: String,
    pub arm: Arm,
    pub assignment: Assignment,
}

/// The largest seed: seeds are stored as signed 64-bit integers.
pub const MAX_SEED: u64 = i64::MAX as u64;

/// Places a learner and writes her invite (`invite` with its cohort and assignment filled in).
pub fn place(tx: &dyn Tx, placement: &Placement<'_>, invite: NewInvite<'_>) -> Result<Placed, ApiError> {
    // Locked first: the draw count and the cohorts' room are read after any concurrent
    // placement in this program committed.
    let randomisation = tx
        .lock_arm_randomisation(placement.program_id)?
        .ok_or_else(|| ApiError::NotFound(format!("no program {}", placement.program_id)))?;
    if placement.seed.is_some_and(|s| s > MAX_SEED) {
        return Err(ApiError::BadRequest(format!("seed: at most {MAX_SEED}")));
    }
    let (arm, assignment) = match placement.arm {
        Some(arm) => (arm, Assignment::Operator),
        None => draw(tx, placement, randomisation)?,
    };
    let cohort_id = roomiest_cohort(tx, placement.program_id, arm)?;
    let recorded = serde_json::to_string(&assignment).map_err(internal)?;
    super::people::create_invite(
        tx,
        &NewInvite { cohort_id: &cohort_id, assignment: Some(&recorded), role: "learner", ..invite },
    )?;
    Ok(Placed { cohort_id, arm, assignment })
}

/// The program's next draw, counted and recorded in this transaction (under the program's lock,
/// so concurrent enrolments never share a draw).
fn draw(
    tx: &dyn Tx,
    placement: &Placement<'_>,
    (stored, draws): (Option<i64>, i64),
) -> Result<(Arm, Assignment), ApiError> {
    let seed = match (stored, placement.seed) {
        (Some(stored), Some(given)) if stored as u64 != given => {
            return Err(ApiError::Conflict(format!(
                "program {} draws its arms from seed {stored}; a seed cannot change after the first draw",
                placement.program_id
            )));
        }
        (Some(stored), _) => stored as u64,
        (None, Some(given)) => given,
        (None, None) => rand::random::<u64>() & MAX_SEED,
    };
    let draw = u64::try_from(draws).map_err(internal)?;
    tx.set_arm_randomisation(placement.program_id, seed as i64, draws + 1)?;
    Ok((arms::draw(seed, draw), Assignment::Random { seed, draw }))
}

/// The arm's cohort with the fewest learners (members and open invites), which must have room.
fn roomiest_cohort(tx: &dyn Tx, program_id: &str, arm: Arm) -> Result<String, ApiError> {
    let cohorts = tx.arm_cohorts(program_id, arm.as_str(), now_ms())?;
    let create = || {
        format!(
            "program {program_id} has no cohort in the {} arm with room; create one with `admin create-cohort --program \
             {program_id} --arm {}`",
            arm.as_str(),
            arm.as_str()
        )
    };
    let (cohort_id, held) =
        cohorts.into_iter().min_by_key(|(id, held)| (*held, id.clone())).ok_or_else(|| ApiError::Conflict(create()))?;
    // A control arm has no peers, so no size; a cohort's maximum holds for invites too.
    if arm == Arm::Cohort {
        let max = program_of_cohort(tx, &cohort_id)?.blueprint.cohort_size.max;
        if held >= i64::from(max) {
            return Err(ApiError::Conflict(create()));
        }
    }
    Ok(cohort_id)
}

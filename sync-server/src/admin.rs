//! Operator commands, run against the same storage as the server (safe while it runs: SQLite
//! serialises the writes).

use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::domain::time::{parse_time_zone, parse_wall_time};

use crate::error::ApiError;
use crate::storage::Storage;

pub struct NewProgram<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub start_date: &'a str,
    pub time_zone: &'a str,
    pub critique_weekday: Option<&'a str>,
    pub critique_time: Option<&'a str>,
    /// Hours after a critique starts that its week's feedback window stays open (default 48).
    pub feedback_window_hours: Option<u32>,
    /// Learners a cohort should have, `min..=max` (default 10..=12; at most 20).
    pub cohort_size: Option<(u32, u32)>,
    /// `None`: the default pack that ships with the core.
    pub pack_path: Option<&'a std::path::Path>,
}

pub fn create_program(storage: &dyn Storage, p: &NewProgram<'_>) -> Result<(), ApiError> {
    let bad = |e: &dyn std::fmt::Display| ApiError::BadRequest(e.to_string());
    let start = p
        .start_date
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("start date {:?} is not YYYY-MM-DD", p.start_date)))?;
    let zone = parse_time_zone(p.time_zone).map_err(|e| bad(&e))?;
    let mut blueprint = Blueprint::default_90_days(start, zone);
    if let Some(day) = p.critique_weekday {
        blueprint.critique.weekday =
            day.parse().map_err(|_| ApiError::BadRequest(format!("weekday {day:?} is not mon..sun")))?;
    }
    if let Some(time) = p.critique_time {
        blueprint.critique.time = parse_wall_time("critique time", time).map_err(|e| bad(&e))?;
    }
    if let Some(hours) = p.feedback_window_hours {
        blueprint.feedback_window_hours = hours;
    }
    if let Some((min, max)) = p.cohort_size {
        blueprint.cohort_size = microcohort_core::domain::roster::CohortSize { min, max };
    }
    blueprint.validate().map_err(|e| bad(&e))?;
    let (file, toml) = match p.pack_path {
        Some(path) => (
            path.file_name().map_or("pack.toml".into(), |n| n.to_string_lossy().into_owned()),
            std::fs::read_to_string(path).map_err(|e| ApiError::BadRequest(format!("{}: {e}", path.display())))?,
        ),
        None => {
            (microcohort_core::DEFAULT_PROMPT_PACK_NAME.to_owned(), microcohort_core::DEFAULT_PROMPT_PACK.to_owned())
        }
    };
    let blueprint_json = serde_json::to_string(&blueprint).map_err(|e| ApiError::Internal(e.to_string()))?;
    storage.create_program(p.id, p.title, &blueprint_json, &file, &toml)
}

/// One facilitator's load across programs.
pub struct Load {
    pub user_id: String,
    pub name: String,
    pub programs: usize,
    pub cohorts: usize,
    pub learners: usize,
}

pub fn facilitator_load(storage: &dyn Storage) -> Result<Vec<Load>, ApiError> {
    let mut by_person: std::collections::BTreeMap<String, (String, std::collections::BTreeSet<String>, usize, usize)> =
        Default::default();
    for cohort in storage.cohorts()? {
        let members = storage.members(&cohort.id)?;
        let active = members.iter().filter(|m| m.left_on.is_none());
        let learners = active.clone().filter(|m| m.role == "learner").count();
        for f in active.filter(|m| m.role == "facilitator") {
            let entry = by_person
                .entry(f.user_id.clone())
                .or_insert_with(|| (f.display_name.clone(), std::collections::BTreeSet::new(), 0, 0));
            entry.1.insert(cohort.program_id.clone());
            entry.2 += 1;
            entry.3 += learners;
        }
    }
    Ok(by_person
        .into_iter()
        .map(|(user_id, (name, programs, cohorts, learners))| Load {
            user_id,
            name,
            programs: programs.len(),
            cohorts,
            learners,
        })
        .collect())
}

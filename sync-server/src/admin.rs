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

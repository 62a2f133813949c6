//! Reads for the facilitator's offline dashboard.

use chrono::NaiveDate;
use rusqlite::Connection;

use crate::domain::cohort_metrics::LogFact;
use crate::error::{Error, Result};

/// A cohort's members' practice logs relayed to this (facilitator's) device.
pub fn cohort_log_facts(conn: &Connection, cohort_id: &str) -> Result<Vec<LogFact>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, local_date, status, duration_secs, transfer_kind, corrects, late_arrival
         FROM cohort_practice_logs WHERE cohort_id = ?1",
    )?;
    let rows = stmt.query_map([cohort_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, bool>(7)?,
        ))
    })?;
    rows.map(|row| {
        let (id, user_id, date, status, duration, transfer, corrects, late_arrival) = row?;
        let local_date: NaiveDate =
            date.parse().map_err(|_| Error::Corrupt(format!("practice log {id} has local date {date:?}")))?;
        Ok(LogFact {
            id,
            user_id,
            local_date,
            completed: status == "completed",
            duration_secs: duration.unwrap_or(0).max(0) as u64,
            transfer: transfer.is_some(),
            corrects,
            late_arrival,
            ..Default::default()
        })
    })
    .collect()
}

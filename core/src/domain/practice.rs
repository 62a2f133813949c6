//! The practice lifecycle's rules: what a finished practice may contain.
//!
//! A practice is started (the timer runs), then finished with a duration, a private reflection and
//! optional transfer evidence — or abandoned. Logs are append-only: a correction is a new log that
//! voids the old one.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::DomainError;
use super::blueprint::Blueprint;

/// Longest practice we accept: a 10–15 minute practice that ran over 4 hours is a forgotten timer
/// or a jumped clock, not a practice.
pub const MAX_DURATION_SECS: u32 = 4 * 60 * 60;
pub const MAX_REFLECTION_CHARS: usize = 10_000;
pub const MAX_EVIDENCE_CHARS: usize = 2_000;
pub const MAX_LINK_CHARS: usize = 2_048;
/// Practice logs (completed, abandoned or corrections) one local day may hold: far more than any
/// learner records, few enough that the server can bound what a device uploads.
pub const MAX_LOGS_PER_DAY: usize = 48;
/// How far from the program a practice log's day may lie (a learner may practise a library
/// prompt before the start or after the end; a year either side is far more than anyone does).
const LOG_DAYS_AROUND_PROGRAM: u64 = 366;

/// The first and last day a practice log of the program may fall on.
pub fn log_days(blueprint: &Blueprint) -> (NaiveDate, NaiveDate) {
    let around = Days::new(LOG_DAYS_AROUND_PROGRAM);
    (blueprint.start_date - around, blueprint.end_date() + around)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransferKind {
    /// "I used this at work."
    AppliedAtWork,
    /// "I added this to my portfolio."
    Portfolio,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AppliedAtWork => "applied_at_work",
            Self::Portfolio => "portfolio",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "applied_at_work" => Some(Self::AppliedAtWork),
            "portfolio" => Some(Self::Portfolio),
            _ => None,
        }
    }
}

/// Evidence that a practice transferred to real work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferEvidence {
    pub kind: TransferKind,
    pub note: String,
    pub link: Option<String>,
}

/// What the learner supplies when finishing (or correcting) a practice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PracticeOutcome {
    /// The timer's duration. `None` means "measure it from the clock".
    pub duration_secs: Option<u32>,
    /// Private to the learner unless they share the practice.
    pub reflection: String,
    pub transfer: Option<TransferEvidence>,
}

/// A validated outcome, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedOutcome {
    pub duration_secs: u32,
    pub reflection: String,
    pub transfer: Option<TransferEvidence>,
}

/// Validates an outcome. Without an explicit duration, it is measured from `started_at` to `now`;
/// a device clock that moved backwards or far forward makes that measure meaningless, and the
/// error says so instead of storing a negative or absurd duration.
pub fn check_outcome(
    outcome: &PracticeOutcome,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<CheckedOutcome, DomainError> {
    let duration_secs = match outcome.duration_secs {
        Some(secs) => check_duration(i64::from(secs))?,
        None => {
            let measured = (now - started_at).num_seconds();
            if measured < 0 {
                return Err(DomainError::invalid(
                    "duration_secs",
                    "the device clock moved backwards since the practice started; pass the timer's duration",
                ));
            }
            check_duration(measured)?
        }
    };
    let reflection = outcome.reflection.trim().to_owned();
    if reflection.chars().count() > MAX_REFLECTION_CHARS {
        return Err(DomainError::invalid("reflection", format!("is longer than {MAX_REFLECTION_CHARS} characters")));
    }
    let transfer = outcome.transfer.as_ref().map(check_transfer).transpose()?;
    Ok(CheckedOutcome { duration_secs, reflection, transfer })
}

fn check_duration(secs: i64) -> Result<u32, DomainError> {
    if secs <= 0 {
        return Err(DomainError::invalid("duration_secs", format!("{secs} s: a practice lasts at least one second")));
    }
    if secs > i64::from(MAX_DURATION_SECS) {
        return Err(DomainError::invalid(
            "duration_secs",
            format!("{secs} s is more than 4 hours; pass the real duration or abandon the practice"),
        ));
    }
    Ok(secs as u32)
}

/// Transfer evidence as a learner may record (or share) it: a note, and an http(s) link if any.
pub fn check_transfer(evidence: &TransferEvidence) -> Result<TransferEvidence, DomainError> {
    let note = evidence.note.trim().to_owned();
    if note.is_empty() {
        return Err(DomainError::invalid("transfer.note", "say in a few words how you applied it"));
    }
    if note.chars().count() > MAX_EVIDENCE_CHARS {
        return Err(DomainError::invalid("transfer.note", format!("is longer than {MAX_EVIDENCE_CHARS} characters")));
    }
    let link = match evidence.link.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(link) => {
            let web = link.starts_with("https://") || link.starts_with("http://");
            if !web || link.len() > MAX_LINK_CHARS || link.chars().any(char::is_whitespace) {
                return Err(DomainError::invalid(
                    "transfer.link",
                    format!("{link:?} is not an http(s) link of at most {MAX_LINK_CHARS} characters"),
                ));
            }
            Some(link.to_owned())
        }
    };
    Ok(TransferEvidence { kind: evidence.kind, note, link })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t0() -> DateTime<Utc> {
        "2026-03-01T07:30:00Z".parse().unwrap()
    }

    #[test]
    fn measures_duration_from_the_clock_when_not_given() {
        let outcome = PracticeOutcome { reflection: " went well ".into(), ..Default::default() };
        let checked = check_outcome(&outcome, t0(), t0() + Duration::minutes(12)).unwrap();
        assert_eq!(checked.duration_secs, 720);
        assert_eq!(checked.reflection, "went well");
    }

    #[test]
    fn clock_jumps_and_absurd_durations_are_named() {
        let outcome = PracticeOutcome::default();
        let back = check_outcome(&outcome, t0(), t0() - Duration::minutes(5)).unwrap_err();
        assert!(back.to_string().contains("moved backwards"));
        let forward = check_outcome(&outcome, t0(), t0() + Duration::days(3)).unwrap_err();
        assert!(forward.to_string().contains("duration_secs"));
        let zero = PracticeOutcome { duration_secs: Some(0), ..Default::default() };
        assert!(check_outcome(&zero, t0(), t0()).is_err());
        // An explicit timer duration wins over a wrong clock.
        let timed = PracticeOutcome { duration_secs: Some(600), ..Default::default() };
        assert_eq!(check_outcome(&timed, t0(), t0() - Duration::hours(1)).unwrap().duration_secs, 600);
    }

    #[test]
    fn transfer_evidence_needs_a_note_and_a_web_link() {
        let mut outcome = PracticeOutcome {
            duration_secs: Some(600),
            transfer: Some(TransferEvidence { kind: TransferKind::Portfolio, note: "".into(), link: None }),
            ..Default::default()
        };
        assert!(check_outcome(&outcome, t0(), t0()).unwrap_err().to_string().contains("transfer.note"));
        outcome.transfer = Some(TransferEvidence {
            kind: TransferKind::Portfolio,
            note: "Wrote it up".into(),
            link: Some("javascript:alert(1)".into()),
        });
        assert!(check_outcome(&outcome, t0(), t0()).unwrap_err().to_string().contains("transfer.link"));
    }
}

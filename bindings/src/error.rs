//! The one error an app sees. Each case says what the app should do: retry later, sign in again,
//! show the reason, point at the field, offer an app update — never a crash.

use std::panic::{AssertUnwindSafe, catch_unwind};

use microcohort_core::Error as CoreError;
use microcohort_core::docs::guard::DocError;
use microcohort_core::domain::DomainError;

#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum MicrocohortError {
    /// The server could not be reached or is busy: keep working offline and sync later.
    #[error("{detail}")]
    Offline { detail: String },
    /// No secure connection to the server could be made (an untrusted or wrong certificate, or
    /// `https` to a server that speaks plain HTTP): retrying will not help; check the address or
    /// the server's certificate. `detail` names the cause.
    #[error("{detail}")]
    Tls { detail: String },
    /// This device's sign-in is no longer valid: join again with an invite code.
    #[error("{detail}")]
    Unauthorized { detail: String },
    /// The action is not allowed now; `code` says which rule (switch on it, and word it in the
    /// app's language), `reason` is an English default for the user.
    #[error("{reason}")]
    Rejected { code: RejectCode, reason: String },
    /// Bad input; `field` names the argument or record field at fault.
    #[error("invalid {field}: {detail}")]
    InvalidInput { field: String, detail: String },
    /// The device has not joined a program, a cohort or a server yet.
    #[error("{detail}")]
    NotJoined { detail: String },
    /// Data written by a newer app version: ask the user to update.
    #[error("{detail}")]
    UpdateRequired { detail: String },
    /// The device database could not be read or written.
    #[error("{detail}")]
    Storage { detail: String },
    /// The database file is already open (in this process, or another): open one client per
    /// database file and share it (UI and background sync alike).
    #[error("{detail}")]
    AlreadyOpen { detail: String },
    /// The app's secure storage (the `SecretStore` it gave `open`) failed, or this database's
    /// secrets are there and no store was given. A `SecretStore` implementation throws this too.
    #[error("{detail}")]
    SecretStore { detail: String },
    /// A bug in the library; the call had no effect and the app can carry on.
    #[error("{detail}")]
    Internal { detail: String },
}

/// Why an action was not allowed: stable across versions, for an app to switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RejectCode {
    /// Someone else's submission, feedback or reply: only its author changes it.
    NotYourEntry,
    /// Feedback on someone else's submission: only the submission's author rates it.
    NotYourSubmission,
    /// Only the cohort's facilitators may do this (the cohort dashboard, attendance).
    FacilitatorOnly,
    /// The cohort has its maximum of learners.
    CohortFull,
    /// A practice is already under way: finish or abandon it first.
    PracticeInProgress,
    /// A change the cohort's rules do not allow (a role, a closed container, a forged entry).
    CohortRules,
    /// The server does not allow it (a spent code, someone else's device, a learner's dashboard).
    ServerForbidden,
    /// It conflicts with what the server holds (another person's code on this device).
    ServerConflict,
    /// The server has no such thing.
    ServerNotFound,
    /// Larger than the server accepts.
    TooLarge,
    /// The server found the request malformed.
    BadRequest,
    /// A control arm's membership: no cohort to share work or feedback with.
    ControlArm,
}

pub type Result<T, E = MicrocohortError> = std::result::Result<T, E>;

/// Runs a core call, turning its error into the app's and a panic into `Internal`.
pub fn guarded<T>(call: impl FnOnce() -> microcohort_core::Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(result) => result.map_err(Into::into),
        Err(panic) => Err(internal_failure(panic.as_ref())),
    }
}

pub(crate) fn internal_failure(panic: &(dyn std::any::Any + Send)) -> MicrocohortError {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown failure".into());
    MicrocohortError::Internal { detail: format!("internal error: {what}") }
}

pub(crate) fn invalid(field: &str, detail: impl Into<String>) -> MicrocohortError {
    MicrocohortError::InvalidInput { field: field.into(), detail: detail.into() }
}

impl From<CoreError> for MicrocohortError {
    fn from(err: CoreError) -> Self {
        let detail = err.to_string();
        let field = |name: &str| Self::InvalidInput { field: name.into(), detail: detail.clone() };
        let rejected = |code: RejectCode| Self::Rejected { code, reason: detail.clone() };
        match &err {
            CoreError::Domain(DomainError::InvalidField { field, problem }) => {
                Self::InvalidInput { field: field.clone(), detail: problem.clone() }
            }
            CoreError::Domain(DomainError::InvalidTimeZone { .. }) => field("time_zone"),
            CoreError::Domain(DomainError::InvalidPromptPack { .. } | DomainError::PackDoesNotCoverProgram { .. })
            | CoreError::UnknownPack(_)
            | CoreError::PackVersionConflict { .. } => field("prompt_pack"),
            CoreError::Domain(DomainError::CohortFull { .. }) => rejected(RejectCode::CohortFull),
            CoreError::PracticeInProgress(_) => rejected(RejectCode::PracticeInProgress),
            CoreError::NotYourEntry(_) => rejected(RejectCode::NotYourEntry),
            CoreError::NotYourSubmission(_) => rejected(RejectCode::NotYourSubmission),
            CoreError::FacilitatorOnly => rejected(RejectCode::FacilitatorOnly),
            CoreError::ControlArm => rejected(RejectCode::ControlArm),
            CoreError::Rejected(_) => rejected(RejectCode::CohortRules),
            CoreError::UnknownPrompt { .. } => field("prompt_id"),
            CoreError::UnknownPractice(_) | CoreError::PracticeAlreadyFinished(_) => field("practice_id"),
            CoreError::UnknownPracticeLog(_) | CoreError::AlreadyCorrected { .. } => field("log_id"),
            CoreError::UnknownEntry { what, .. } => field(what),
            CoreError::NotEnrolled | CoreError::NotInCohort | CoreError::NotLinked => Self::NotJoined { detail },
            CoreError::Document(DocError::SchemaTooNew { .. }) | CoreError::SchemaTooNew { .. } => {
                Self::UpdateRequired { detail }
            }
            CoreError::Network(_) => Self::Offline { detail },
            CoreError::Tls(_) => Self::Tls { detail },
            CoreError::Server { status, .. } if *status == 429 || *status >= 500 => Self::Offline { detail },
            CoreError::Server { status, .. } => rejected(match status {
                403 => RejectCode::ServerForbidden,
                404 => RejectCode::ServerNotFound,
                409 => RejectCode::ServerConflict,
                413 => RejectCode::TooLarge,
                _ => RejectCode::BadRequest,
            }),
            CoreError::Unauthorized => Self::Unauthorized { detail },
            CoreError::SecretStore(_) => Self::SecretStore { detail },
            CoreError::AlreadyOpen(_) | CoreError::OpenInAnotherProcess(_) => Self::AlreadyOpen { detail },
            CoreError::Document(_) | CoreError::NotADatabase(_) | CoreError::Corrupt(_) | CoreError::Storage(_) => {
                Self::Storage { detail }
            }
        }
    }
}

/// A listener that threw: the library logs it and carries on.
impl From<uniffi::UnexpectedUniFFICallbackError> for MicrocohortError {
    fn from(err: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Internal { detail: format!("listener failed: {}", err.reason) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(err: CoreError) -> MicrocohortError {
        err.into()
    }

    #[test]
    fn each_core_failure_becomes_the_case_an_app_acts_on() {
        assert!(matches!(mapped(CoreError::Network("no route".into())), MicrocohortError::Offline { .. }));
        let busy = CoreError::Server { status: 503, message: "busy".into() };
        assert!(matches!(mapped(busy), MicrocohortError::Offline { .. }));
        let refused = CoreError::Server { status: 413, message: "too large".into() };
        assert!(matches!(mapped(refused), MicrocohortError::Rejected { code: RejectCode::TooLarge, reason }
            if reason.contains("too large") && !reason.contains("413")));
        let tls = CoreError::Tls("invalid peer certificate: UnknownIssuer".into());
        assert!(matches!(mapped(tls), MicrocohortError::Tls { detail } if detail.contains("UnknownIssuer")));
        // Not allowed is `Rejected`, whichever call finds it.
        let code = |err| match mapped(err) {
            MicrocohortError::Rejected { code, .. } => Some(code),
            _ => None,
        };
        assert_eq!(code(CoreError::NotYourSubmission("k".into())), Some(RejectCode::NotYourSubmission));
        assert_eq!(code(CoreError::NotYourEntry("k".into())), Some(RejectCode::NotYourEntry));
        assert_eq!(code(CoreError::FacilitatorOnly), Some(RejectCode::FacilitatorOnly));
        let full = CoreError::Domain(DomainError::CohortFull { learners: 13, max: 12 });
        assert_eq!(code(full), Some(RejectCode::CohortFull));
        let taken = CoreError::Server { status: 409, message: "another person".into() };
        assert_eq!(code(taken), Some(RejectCode::ServerConflict));
        assert!(matches!(mapped(CoreError::Unauthorized), MicrocohortError::Unauthorized { .. }));
        assert!(matches!(mapped(CoreError::NotLinked), MicrocohortError::NotJoined { .. }));
        let schema = CoreError::SchemaTooNew { found: 9, supported: 3 };
        assert!(matches!(mapped(schema), MicrocohortError::UpdateRequired { .. }));
        let bad = CoreError::Domain(DomainError::invalid("score", "7 is outside 1..=5"));
        assert!(matches!(mapped(bad), MicrocohortError::InvalidInput { field, detail }
            if field == "score" && detail == "7 is outside 1..=5"));
        assert!(matches!(mapped(CoreError::Corrupt("chunk".into())), MicrocohortError::Storage { .. }));
    }

    #[test]
    fn a_panic_is_an_internal_error_with_its_message() {
        let err = guarded::<()>(|| panic!("boom")).unwrap_err();
        assert!(matches!(err, MicrocohortError::Internal { detail } if detail.contains("boom")));
    }
}

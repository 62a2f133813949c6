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
    /// The action is not allowed now (someone else's entry, a practice already running, a change
    /// the server refused); `reason` is for the user.
    #[error("{reason}")]
    Rejected { reason: String },
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
    /// A bug in the library; the call had no effect and the app can carry on.
    #[error("{detail}")]
    Internal { detail: String },
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
        match &err {
            CoreError::Domain(DomainError::InvalidField { field, problem }) => {
                Self::InvalidInput { field: field.clone(), detail: problem.clone() }
            }
            CoreError::Domain(DomainError::InvalidTimeZone { .. }) => field("time_zone"),
            CoreError::Domain(DomainError::InvalidPromptPack { .. } | DomainError::PackDoesNotCoverProgram { .. })
            | CoreError::UnknownPack(_)
            | CoreError::PackVersionConflict { .. } => field("prompt_pack"),
            CoreError::Domain(DomainError::CohortFull { .. })
            | CoreError::PracticeInProgress(_)
            | CoreError::NotYourEntry(_)
            | CoreError::NotYourSubmission(_)
            | CoreError::FacilitatorOnly
            | CoreError::Rejected(_) => Self::Rejected { reason: detail },
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
            CoreError::Server { .. } => Self::Rejected { reason: detail },
            CoreError::Unauthorized => Self::Unauthorized { detail },
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
        assert!(matches!(mapped(refused), MicrocohortError::Rejected { reason }
            if reason.contains("too large") && !reason.contains("413")));
        let tls = CoreError::Tls("invalid peer certificate: UnknownIssuer".into());
        assert!(matches!(mapped(tls), MicrocohortError::Tls { detail } if detail.contains("UnknownIssuer")));
        // Not allowed is `Rejected`, whichever call finds it.
        assert!(matches!(mapped(CoreError::NotYourSubmission("k".into())), MicrocohortError::Rejected { .. }));
        assert!(matches!(mapped(CoreError::NotYourEntry("k".into())), MicrocohortError::Rejected { .. }));
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

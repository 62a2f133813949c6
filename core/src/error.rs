//! The core's error type: rich enough for the apps to tell the learner what went wrong.
//! On any error nothing has been written.

use uuid::Uuid;

use crate::domain::DomainError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, named by field (also invalid time zones and malformed prompt packs).
    #[error(transparent)]
    Domain(#[from] DomainError),

    #[error("not enrolled in a program yet")]
    NotEnrolled,

    #[error("prompt pack {0:?} has not been imported")]
    UnknownPack(String),

    #[error("prompt pack {pack_id:?} has no prompt {prompt_id:?}")]
    UnknownPrompt { pack_id: String, prompt_id: String },

    #[error(
        "prompt pack {pack_id:?} version {version} was already imported with different content; \
         give the changed pack a new version number"
    )]
    PackVersionConflict { pack_id: String, version: u32 },

    #[error("no practice {0} is in progress")]
    UnknownPractice(Uuid),

    #[error("practice {0} is already finished")]
    PracticeAlreadyFinished(Uuid),

    #[error("practice {0} is still in progress; finish or abandon it first")]
    PracticeInProgress(Uuid),

    #[error("no practice log {0}")]
    UnknownPracticeLog(Uuid),

    #[error("practice log {log} was already corrected by {by}; correct the newest version")]
    AlreadyCorrected { log: Uuid, by: Uuid },

    #[error("this device has not joined a cohort yet")]
    NotInCohort,

    /// A control arm runs the practice loop alone: there is no one to share with or review.
    #[error("this membership is in the program's control arm: it has no cohort to share work or feedback with")]
    ControlArm,

    #[error("only the cohort's facilitators may do this (the agenda also takes the week's critique lead)")]
    FacilitatorOnly,

    #[error("no {what} {key:?} in week {week}")]
    UnknownEntry { what: &'static str, week: u32, key: String },

    #[error("entry {0:?} belongs to someone else; only its author may change it")]
    NotYourEntry(String),

    #[error("feedback {0:?} is on someone else's submission; only the submission's author rates it")]
    NotYourSubmission(String),

    #[error(transparent)]
    Document(#[from] crate::docs::guard::DocError),

    #[error(transparent)]
    Rejected(#[from] crate::policy::Rejection),

    #[error("could not reach the sync server: {0}")]
    Network(String),

    /// No secure connection could be made: an untrusted or wrong certificate, or `https` to a
    /// server that speaks plain HTTP. Retrying does not help; the address or certificate must change.
    #[error("could not open a secure connection to the sync server: {0}")]
    Tls(String),

    /// The server answered with a refusal. `status` is for programs; the message, for people,
    /// never carries it.
    #[error("the sync server refused the request: {message}")]
    Server { status: u16, message: String },

    /// The app's secure storage (Keychain, Keystore) failed, or this database's secrets are there
    /// and no store was given.
    #[error("the app's secure storage failed: {0}")]
    SecretStore(String),

    #[error("this device is not signed in (its token was revoked or is wrong); join again with an invite code")]
    Unauthorized,

    #[error("this device is not linked to a sync server yet; join with an invite code first")]
    NotLinked,

    #[error("the database has schema version {found}, newer than this app supports ({supported}); update the app")]
    SchemaTooNew { found: u32, supported: u32 },

    #[error("{0} is not a Microcohort database")]
    NotADatabase(String),

    #[error("{0} is already open in this app; use the client that has it open (one per database file)")]
    AlreadyOpen(String),

    #[error("{0} is open in another process of this app; only one may use a database file at a time")]
    OpenInAnotherProcess(String),

    #[error("stored data is unreadable: {0}")]
    Corrupt(String),

    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),
}

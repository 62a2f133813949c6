//! Storage behind the server. Handlers see only [`Storage`]; the embedded SQLite implementation
//! is the default (one file, zero set-up), PostgreSQL serves several server processes at once.
//!
//! The rules (validation, heads, watermarks, joining, admin writes) are written once in
//! [`documents`], [`round_trip`] and [`operations`] over the row operations of
//! [`primitives::Tx`], which each database implements.
//!
//! The hot path never loads an automerge document: changes are rows `(doc_id, hash, actor, seq,
//! deps, body, doc_seq)`, heads are kept per document, and what a device lacks is every change
//! after the newest of the heads it was last given (all of them were stored by then).

/// The admin writes of [`Storage`], the same for every database: each runs its rule from
/// [`operations`] in one of the implementation's write transactions (`self.write`, with the
/// implementation's `server_actor`).
macro_rules! admin_writes {
    () => {
        fn create_program(
            &self,
            id: &str,
            title: &str,
            blueprint_json: &str,
            pack_file: &str,
            pack_toml: &str,
        ) -> Result<(), ApiError> {
            let (blueprint, pack_id, pack_version) =
                operations::check_program(id, blueprint_json, pack_file, pack_toml)?;
            let program = NewProgram {
                id,
                title,
                blueprint: blueprint_json,
                pack_id: &pack_id,
                pack_version,
                pack_file,
                pack_toml,
            };
            self.write(|tx| operations::create_program(tx, &program, &blueprint))
        }

        fn create_cohort_in_arm(
            &self,
            id: &str,
            program_id: &str,
            title: &str,
            arm: microcohort_core::domain::arms::Arm,
        ) -> Result<(), ApiError> {
            self.write(|tx| operations::create_cohort(tx, id, program_id, title, arm))
        }

        fn enrol(
            &self,
            placement: &enrolment::Placement<'_>,
            display_name: &str,
            time_zone: &str,
            valid_days: u32,
        ) -> Result<(String, enrolment::Placed), ApiError> {
            let code = auth::new_invite_code();
            let code_hash = auth::hash_invite(&code);
            let expires_at = Some(super::documents::now_ms() + i64::from(valid_days) * 86_400_000);
            let invite = NewInvite {
                code_hash: &code_hash,
                cohort_id: "",
                role: "learner",
                display_name,
                time_zone,
                for_user: None,
                expires_at,
                assignment: None,
            };
            let placed = self.write(|tx| enrolment::place(tx, placement, invite.clone()))?;
            Ok((code, placed))
        }

        fn create_invite_valid_for(
            &self,
            cohort_id: &str,
            role: &str,
            display_name: &str,
            time_zone: &str,
            for_user: Option<&str>,
            valid_days: u32,
        ) -> Result<String, ApiError> {
            let code = auth::new_invite_code();
            let code_hash = auth::hash_invite(&code);
            let expires_at = Some(super::documents::now_ms() + i64::from(valid_days) * 86_400_000);
            let invite = NewInvite {
                code_hash: &code_hash,
                cohort_id,
                role,
                display_name,
                time_zone,
                for_user,
                expires_at,
                assignment: None,
            };
            self.write(|tx| people::create_invite(tx, &invite))?;
            Ok(code)
        }

        fn list_invites(&self, cohort_id: &str) -> Result<Vec<InviteRow>, ApiError> {
            self.write(|tx| tx.invites_of(cohort_id))
        }

        fn revoke_invite(&self, invite_id: &str) -> Result<(), ApiError> {
            let id = invite_id.trim().to_ascii_uppercase();
            if id.len() != people::INVITE_ID_CHARS || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ApiError::BadRequest(format!("{invite_id:?} is not an invite id from list-invites")));
            }
            match self.write(|tx| tx.expire_invite(&id, super::documents::now_ms()))? {
                true => Ok(()),
                false => Err(ApiError::NotFound(format!("no unused invite {invite_id}"))),
            }
        }

        fn join(&self, request: &people::JoinRequest<'_>) -> Result<JoinResponse, ApiError> {
            self.write(|tx| people::join(tx, &self.server_actor, request))
        }

        fn link(&self, request: &people::JoinRequest<'_>) -> Result<JoinResponse, ApiError> {
            self.write(|tx| people::link(tx, request))
        }

        fn memberships(&self, user_id: &str) -> Result<Vec<microcohort_core::sync::wire::MembershipInfo>, ApiError> {
            self.write(|tx| people::memberships(tx, user_id))
        }

        fn create_link_code(&self, device: &Device) -> Result<(String, i64), ApiError> {
            let code = auth::new_invite_code();
            let expires_at = self.write(|tx| people::create_link_code(tx, device, &auth::hash_invite(&code)))?;
            Ok((code, expires_at))
        }

        fn revoke_device(&self, device_id: &str) -> Result<(), ApiError> {
            self.write(|tx| people::revoke_device(tx, device_id))
        }

        fn revoke_own_device(&self, user_id: &str, device_id: &str) -> Result<(), ApiError> {
            self.write(|tx| people::revoke_own_device(tx, user_id, device_id))
        }

        fn devices(&self, user_id: &str) -> Result<Vec<crate::storage::primitives::DeviceRecord>, ApiError> {
            self.write(|tx| tx.user_devices(user_id))
        }

        fn remove_member(
            &self,
            cohort_id: &str,
            user_id: &str,
            left_on: Option<chrono::NaiveDate>,
        ) -> Result<chrono::NaiveDate, ApiError> {
            self.write(|tx| operations::remove_member(tx, &self.server_actor, cohort_id, user_id, left_on))
        }

        fn change_critique_week(
            &self,
            cohort_id: &str,
            change: &microcohort_core::domain::critique_week::CritiqueWeekChange,
        ) -> Result<microcohort_core::domain::critique_week::CritiqueWeek, ApiError> {
            self.write(|tx| operations::change_critique_week(tx, &self.server_actor, cohort_id, change))
        }

        fn facilitate(
            &self,
            cohort_id: &str,
            by: &str,
            action: &microcohort_core::domain::facilitation::FacilitatorAction,
        ) -> Result<(), ApiError> {
            self.write(|tx| operations::facilitate(tx, &self.server_actor, cohort_id, by, action))
        }

        fn import_baseline(
            &self,
            program_id: &str,
            learners: &[microcohort_core::domain::baseline::BaselineLearner],
        ) -> Result<usize, ApiError> {
            self.write(|tx| operations::import_baseline(tx, program_id, learners))
        }

        fn set_joined_on(&self, cohort_id: &str, user_id: &str, joined_on: chrono::NaiveDate) -> Result<(), ApiError> {
            self.write(|tx| operations::set_joined_on(tx, &self.server_actor, cohort_id, user_id, joined_on))
        }

        fn repair_document(&self, doc_id: &str) -> Result<Vec<repair::Offending>, ApiError> {
            self.write(|tx| repair::repair(tx, doc_id, super::documents::now_ms()))
        }
    };
}

pub mod admission;
mod checkpoints;
pub mod documents;
mod durability;
pub mod enrolment;
pub mod graph_cache;
pub mod group_commit;
pub mod log_rules;
pub mod operations;
pub mod people;
pub mod postgres;
pub mod postgres_schema;
pub mod primitives;
pub use primitives::InviteRow;
pub mod repair;
pub mod round_trip;
#[cfg(test)]
mod sample_changes;
pub mod schema;
pub mod sqlite;

use microcohort_core::policy::RejectReason;
use microcohort_core::sync::request::check_request;
use microcohort_core::sync::wire::{JoinResponse, SyncRequest, SyncResponse};

use crate::error::ApiError;
use microcohort_core::sync::request::CheckedRequest;

/// New changes after which the background compaction writes a document's snapshot again: kept
/// small, since a device that lacks much of a document is sent its snapshot instead of changes.
pub const SNAPSHOT_AFTER_CHANGES: u64 = 32;

/// An authenticated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub device_id: String,
    pub user_id: String,
    pub cohort_id: String,
    pub role: String,
}

/// What a sync did, for metrics.
#[derive(Debug, Clone, Default)]
pub struct SyncStats {
    pub changes_stored: u64,
    pub documents_created: u64,
    pub rejected: Vec<RejectReason>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramRow {
    pub id: String,
    pub title: String,
    pub pack_id: String,
    pub pack_version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortRow {
    pub id: String,
    pub program_id: String,
    pub title: String,
    pub members: u32,
    /// `cohort` or `control`.
    pub arm: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    /// The person's active devices (in any cohort).
    pub devices: u32,
    pub left_on: Option<String>,
}

pub trait Storage: Send + Sync + 'static {
    fn authenticate(&self, token_hash: &[u8]) -> Result<Option<Device>, ApiError>;
    /// Redeems an invite code: the device, and the person and her roster entry if they are new.
    fn join(&self, request: &people::JoinRequest<'_>) -> Result<JoinResponse, ApiError>;
    /// Redeems a link code another device of the person showed.
    fn link(&self, request: &people::JoinRequest<'_>) -> Result<JoinResponse, ApiError>;
    /// The person's memberships that have not ended, with their programs.
    fn memberships(&self, user_id: &str) -> Result<Vec<microcohort_core::sync::wire::MembershipInfo>, ApiError>;
    /// The device speaking for its person's membership of `cohort_id` (`None`: she is not, or no
    /// longer, a member there).
    fn device_in_cohort(&self, device: &Device, cohort_id: &str) -> Result<Option<Device>, ApiError> {
        let members = self.members(cohort_id)?;
        Ok(members.into_iter().find(|m| m.user_id == device.user_id && m.left_on.is_none()).map(|m| Device {
            cohort_id: cohort_id.to_owned(),
            role: m.role,
            ..device.clone()
        }))
    }
    /// A link code for the device's person: `(code, expires_at ms)`, shown once.
    fn create_link_code(&self, device: &Device) -> Result<(String, i64), ApiError>;
    /// One round trip, on a request checked by [`check_request`].
    fn sync(&self, device: &Device, request: CheckedRequest) -> Result<(SyncResponse, SyncStats), ApiError>;
    /// A request checked, then run: what the HTTP handler does after decoding the body.
    fn sync_request(&self, device: &Device, request: SyncRequest) -> Result<(SyncResponse, SyncStats), ApiError> {
        let checked = check_request(&device.cohort_id, request)?;
        self.sync(device, checked)
    }
    /// `(documents, changes)` stored.
    fn counts(&self) -> Result<(u64, u64), ApiError>;
    /// The database answers a query (`/healthz`).
    fn ping(&self) -> Result<(), ApiError>;
    /// A document's saved bytes (its snapshot and the change rows after it) and the `doc_seq`
    /// they reach; off the sync path (reports read documents this way).
    fn saved_document(&self, doc_id: &str) -> Result<(Vec<u8>, i64), ApiError>;
    /// Writes a snapshot of every document with at least `min_new_changes` changes since its
    /// last one; returns how many were written. A document that does not load is logged and
    /// skipped. Run in the background, never on the sync path.
    fn compact(&self, min_new_changes: u64) -> Result<usize, ApiError>;
    /// Every stored document that does not load, does not survive save→load, or holds changes
    /// the trust boundary refuses (`admin check`).
    fn check_documents(&self) -> Result<Vec<repair::DocProblem>, ApiError>;
    /// Removes a document's offending changes and those built on them (`admin repair`).
    fn repair_document(&self, doc_id: &str) -> Result<Vec<repair::Offending>, ApiError>;

    fn create_program(
        &self,
        id: &str,
        title: &str,
        blueprint_json: &str,
        pack_file: &str,
        pack_toml: &str,
    ) -> Result<(), ApiError>;
    fn create_cohort(&self, id: &str, program_id: &str, title: &str) -> Result<(), ApiError> {
        self.create_cohort_in_arm(id, program_id, title, microcohort_core::domain::arms::Arm::Cohort)
    }
    /// A cohort of the cohort arm, or a control arm (the practice loop alone).
    fn create_cohort_in_arm(
        &self,
        id: &str,
        program_id: &str,
        title: &str,
        arm: microcohort_core::domain::arms::Arm,
    ) -> Result<(), ApiError>;
    /// Places a new learner in the program (the arm drawn or chosen, the arm's cohort with most
    /// room) and returns her invite code (shown once) and where it leads.
    fn enrol(
        &self,
        placement: &enrolment::Placement<'_>,
        display_name: &str,
        time_zone: &str,
        valid_days: u32,
    ) -> Result<(String, enrolment::Placed), ApiError>;
    /// Returns the invite code (shown once), valid for [`people::INVITE_DAYS`]. `for_user`: an
    /// existing person (a new device of hers, or another cohort); otherwise the invite creates one.
    fn create_invite(
        &self,
        cohort_id: &str,
        role: &str,
        display_name: &str,
        time_zone: &str,
        for_user: Option<&str>,
    ) -> Result<String, ApiError> {
        self.create_invite_valid_for(cohort_id, role, display_name, time_zone, for_user, people::INVITE_DAYS)
    }
    /// An invite valid for `valid_days` days.
    fn create_invite_valid_for(
        &self,
        cohort_id: &str,
        role: &str,
        display_name: &str,
        time_zone: &str,
        for_user: Option<&str>,
        valid_days: u32,
    ) -> Result<String, ApiError>;
    /// A cohort's invites, newest first, used and expired ones included.
    fn list_invites(&self, cohort_id: &str) -> Result<Vec<InviteRow>, ApiError>;
    /// Ends an unused invite at once (its id from `list_invites`).
    fn revoke_invite(&self, invite_id: &str) -> Result<(), ApiError>;
    fn revoke_device(&self, device_id: &str) -> Result<(), ApiError>;
    /// A person signs out one of her own devices.
    fn revoke_own_device(&self, user_id: &str, device_id: &str) -> Result<(), ApiError>;
    /// A person's devices, newest first, revoked ones included.
    fn devices(&self, user_id: &str) -> Result<Vec<crate::storage::primitives::DeviceRecord>, ApiError>;
    /// Records that a member left the cohort on `left_on` (default: today in the cohort's zone).
    /// Their devices stop syncing; roles are recomputed from the week after, or from this week
    /// if they left before it began. Returns the date recorded.
    fn remove_member(
        &self,
        cohort_id: &str,
        user_id: &str,
        left_on: Option<chrono::NaiveDate>,
    ) -> Result<chrono::NaiveDate, ApiError>;
    /// A facilitator's change of one week's critique (see [`operations::change_critique_week`]).
    fn change_critique_week(
        &self,
        cohort_id: &str,
        change: &microcohort_core::domain::critique_week::CritiqueWeekChange,
    ) -> Result<microcohort_core::domain::critique_week::CritiqueWeek, ApiError>;
    /// Replaces a program's imported baseline (see [`operations::import_baseline`]).
    fn import_baseline(
        &self,
        program_id: &str,
        learners: &[microcohort_core::domain::baseline::BaselineLearner],
    ) -> Result<usize, ApiError>;
    /// A facilitator's action by `by` (see [`operations::facilitate`]).
    fn facilitate(
        &self,
        cohort_id: &str,
        by: &str,
        action: &microcohort_core::domain::facilitation::FacilitatorAction,
    ) -> Result<(), ApiError>;
    /// Dates a membership from `joined_on` (see [`operations::set_joined_on`]).
    fn set_joined_on(&self, cohort_id: &str, user_id: &str, joined_on: chrono::NaiveDate) -> Result<(), ApiError>;
    fn programs(&self) -> Result<Vec<ProgramRow>, ApiError>;
    fn cohorts(&self) -> Result<Vec<CohortRow>, ApiError>;
    fn members(&self, cohort_id: &str) -> Result<Vec<MemberRow>, ApiError>;
}

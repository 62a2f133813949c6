//! The few row operations the storage rules need, one implementation per database. Everything
//! that decides something (validation, actor binding, watermarks, heads, rosters, invites) lives
//! once in [`super::documents`], [`super::round_trip`] and [`super::operations`] on top of these.
//!
//! Every method runs inside the caller's write transaction. Binary columns are `&[u8]`; times are
//! milliseconds since the epoch.

use microcohort_core::sync::wire::{PackFile, WireProfile};

use crate::error::ApiError;

pub type R<T> = Result<T, ApiError>;

/// A program as stored, joined to one of its cohorts, without its prompt pack's text (which
/// a sync needs only when the device's pack is older).
pub struct ProgramRecord {
    pub program_id: String,
    pub title: String,
    pub blueprint: String,
    pub pack_version: u32,
    /// The cohort's changed critique weeks (JSON).
    pub critique_weeks: String,
    /// `cohort` or `control`.
    pub arm: String,
}

/// A learner's newest rating of an exemplar (`$1` cohort, `$2` user, `$3` exemplar, `$4` scores
/// as JSON, `$5` rated at): an older one arriving late changes nothing.
pub const CALIBRATION_UPSERT: &str =
    "INSERT INTO calibration_ratings (cohort_id, user_id, exemplar_id, scores, rated_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (cohort_id, user_id, exemplar_id) DO UPDATE SET scores = excluded.scores, rated_at = excluded.rated_at
     WHERE calibration_ratings.rated_at < excluded.rated_at";

/// Keeps a transfer story once per log (`$1`..`$9`: the fields of [`StoryRecord`] in order).
pub const STORY_INSERT: &str =
    "INSERT INTO transfer_stories (log_id, user_id, cohort_id, prompt_id, local_date, kind, note, link, shared_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (log_id) DO NOTHING";

/// A transfer story as the server keeps it (and the report reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryRecord {
    pub log_id: String,
    pub user_id: String,
    pub cohort_id: String,
    pub prompt_id: String,
    pub local_date: String,
    pub kind: String,
    pub note: String,
    pub link: Option<String>,
    pub shared_at: i64,
}

/// A program's cohorts in an arm (`$1` program, `$2` arm) with how many learners each holds or
/// has invited (open invites unexpired at `$3`), for placing a learner where there is most room.
pub const ARM_COHORTS: &str = "SELECT c.id,
         (SELECT COUNT(*) FROM members m WHERE m.cohort_id = c.id AND m.role = 'learner' AND m.left_on IS NULL)
       + (SELECT COUNT(*) FROM invites i WHERE i.cohort_id = c.id AND i.role = 'learner' AND i.used_at IS NULL
            AND i.for_user IS NULL AND (i.expires_at IS NULL OR i.expires_at > $3))
     FROM cohorts c WHERE c.program_id = $1 AND c.arm = $2 ORDER BY c.id";

/// A facilitator's private note to one member (`seq` is the server's, 0 before it is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteRecord {
    pub cohort_id: String,
    pub seq: i64,
    pub id: String,
    pub from_user: String,
    pub to_user: String,
    pub body: String,
    pub created_at: i64,
}

/// One `members` row, as text.
pub struct MemberRecord {
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    pub time_zone: String,
    pub day_start_minutes: i64,
    pub joined_on: String,
    pub left_on: Option<String>,
    pub paused_on: Option<String>,
}

/// One row of the validator's index: an entry object, where and under which key, and whose.
pub struct ObjectRow {
    pub counter: i64,
    pub actor: Vec<u8>,
    pub container: String,
    pub key: String,
    pub owner: String,
    /// When the server stored the change that created it (ms).
    pub stored_at: i64,
}

/// One stored change row.
pub struct ChangeRecord {
    pub doc_seq: i64,
    pub hash: Vec<u8>,
    pub body: Vec<u8>,
}

/// A change's place in its document's graph.
pub struct GraphRow {
    pub doc_seq: i64,
    pub hash: Vec<u8>,
    pub actor: Vec<u8>,
    pub seq: i64,
    /// Dependency hashes, 32 bytes each.
    pub deps: Vec<u8>,
}

/// A change to insert.
pub struct NewChange<'a> {
    pub hash: &'a [u8],
    pub actor: &'a [u8],
    pub seq: i64,
    pub deps: &'a [u8],
    pub body: &'a [u8],
    /// Its operations' counters: `start_op..=max_op` (`max_op = start_op - 1` for none).
    pub start_op: i64,
    pub max_op: i64,
    /// Every change stored with a `doc_seq` up to this one is in its history; `None`: every
    /// change stored before it (it builds on all the document's heads).
    pub base_seq: Option<i64>,
}

pub struct NewLog<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub cohort_id: &'a str,
    pub local_date: &'a str,
    pub body: &'a str,
}

#[derive(Clone, Copy)]
pub struct NewInvite<'a> {
    pub code_hash: &'a [u8],
    pub cohort_id: &'a str,
    pub role: &'a str,
    pub display_name: &'a str,
    pub time_zone: &'a str,
    /// An existing person (a new device of hers, or another cohort); `None` creates one.
    pub for_user: Option<&'a str>,
    /// When it stops working (ms); `None`: never (invites made before invites expired).
    pub expires_at: Option<i64>,
    /// How the learner was assigned to the cohort's arm (JSON), when the program placed her.
    pub assignment: Option<&'a str>,
}

/// An invite as `admin list-invites` shows it (never its code: only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRow {
    /// The first characters of the code's hash, in hex: enough to name it for revoking.
    pub id: String,
    pub role: String,
    pub display_name: String,
    pub for_user: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub used_at: Option<i64>,
}

/// An invite as stored, unused.
pub struct OpenInvite {
    pub cohort_id: String,
    pub role: String,
    pub display_name: String,
    pub time_zone: String,
    pub for_user: Option<String>,
    pub expires_at: Option<i64>,
}

/// One of a person's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub device_id: String,
    pub cohort_id: String,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub struct NewProgram<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub blueprint: &'a str,
    pub pack_id: &'a str,
    pub pack_version: u32,
    pub pack_file: &'a str,
    pub pack_toml: &'a str,
}

pub trait Tx {
    // ---- documents ----
    /// Holds the document's row until the transaction ends, so writers to one document commit
    /// in the order they assign `doc_seq` (a no-op where there is only one writer).
    fn lock_doc(&self, doc: &str) -> R<()>;
    /// Stores a change with the document's next `doc_seq` (creating the document's row); returns
    /// that `doc_seq`.
    fn append_change(&self, doc: &str, change: &NewChange<'_>) -> R<i64>;
    /// The `doc_seq` of a stored change.
    fn change_seq(&self, doc: &str, hash: &[u8]) -> R<Option<i64>>;
    /// `(max_op, base_seq)` of a stored change.
    fn change_facts(&self, doc: &str, hash: &[u8]) -> R<Option<(i64, i64)>>;
    /// The `doc_seq` of an actor's change number `seq`.
    fn actor_change_seq(&self, doc: &str, actor: &[u8], seq: i64) -> R<Option<i64>>;
    /// `(seq, max_op)` of an actor's last change in the document.
    fn actor_tip(&self, doc: &str, actor: &[u8]) -> R<Option<(i64, i64)>>;
    /// The body of the actor's change holding operation `counter`.
    fn change_with_op(&self, doc: &str, actor: &[u8], counter: i64) -> R<Option<Vec<u8>>>;
    /// The document's changes after `doc_seq` as nodes of its graph (no bodies), in order.
    fn graph_after(&self, doc: &str, after: i64) -> R<Vec<GraphRow>>;
    /// Removes some of a document's heads and adds one.
    fn replace_heads(&self, doc: &str, removed: &[&[u8]], added: &[u8]) -> R<()>;
    /// The document's heads, sorted.
    fn heads(&self, doc: &str) -> R<Vec<Vec<u8>>>;
    /// Up to `limit` change rows with `doc_seq > after`, in order.
    fn changes_after(&self, doc: &str, after: i64, limit: i64) -> R<Vec<ChangeRecord>>;
    /// The latest snapshot: `(upto_seq, bytes)`.
    fn snapshot(&self, doc: &str) -> R<Option<(i64, Vec<u8>)>>;
    /// The `doc_seq` of the document's newest change (`None` for a document never written).
    fn last_seq(&self, doc: &str) -> R<Option<i64>>;
    /// The `upto_seq` of the latest snapshot, without its bytes.
    fn snapshot_upto(&self, doc: &str) -> R<Option<i64>>;
    /// The hash of the change stored at a `doc_seq`.
    fn change_at(&self, doc: &str, doc_seq: i64) -> R<Option<Vec<u8>>>;
    /// Stores a snapshot unless one covering more is already there.
    fn put_snapshot(&self, doc: &str, upto_seq: i64, bytes: &[u8]) -> R<()>;
    /// An entry object's `(container, owner)`.
    fn object(&self, doc: &str, counter: i64, actor: &[u8]) -> R<Option<(String, String)>>;
    /// Whether an entry with this key exists in the container.
    fn entry_exists(&self, doc: &str, container: &str, key: &str) -> R<bool>;
    fn insert_object(&self, doc: &str, object: &ObjectRow) -> R<()>;
    /// `None`: unbound; `Some(None)`: the server's.
    fn actor_owner(&self, actor: &[u8]) -> R<Option<Option<String>>>;
    /// Binds an actor unless it already is bound (first binding wins).
    fn bind_actor(&self, actor: &[u8], user_id: Option<&str>) -> R<()>;
    /// The error for a write that lost a race with another server process; the transaction is
    /// run again from the start.
    fn lost_race(&self, what: String) -> ApiError;
    /// Bytes of changes a user stored in a document.
    fn user_doc_bytes(&self, doc: &str, user_id: &str) -> R<i64>;
    fn add_user_doc_bytes(&self, doc: &str, user_id: &str, bytes: i64) -> R<()>;

    // ---- repair ----
    /// Every document with stored changes.
    fn doc_ids(&self) -> R<Vec<String>>;
    /// Whether `admin repair` removed this change from the document.
    fn was_removed(&self, doc: &str, hash: &[u8]) -> R<bool>;
    /// Deletes a change row and records why.
    fn remove_change(&self, doc: &str, hash: &[u8], reason: &str, now: i64) -> R<()>;
    /// Deletes what is derived from a document's change rows: heads, entry index, snapshot and
    /// per-user bytes (rebuilt by the caller).
    fn clear_derived(&self, doc: &str) -> R<()>;

    // ---- programs, cohorts, members ----
    fn cohort_program(&self, cohort_id: &str) -> R<Option<ProgramRecord>>;
    /// The program's prompt pack, text included.
    fn program_pack(&self, program_id: &str) -> R<Option<PackFile>>;
    fn program_blueprint(&self, program_id: &str) -> R<Option<String>>;
    fn program_has_cohorts(&self, program_id: &str) -> R<bool>;
    fn upsert_program(&self, program: &NewProgram<'_>, now: i64) -> R<()>;
    fn cohort_exists(&self, cohort_id: &str) -> R<bool>;
    fn insert_cohort(&self, id: &str, program_id: &str, title: &str, arm: &str, now: i64) -> R<()>;
    /// The program's cohorts in `arm`, each with its learners who have not left plus its open
    /// invites for new learners (unexpired at `now`), by id.
    fn arm_cohorts(&self, program_id: &str, arm: &str, now: i64) -> R<Vec<(String, i64)>>;
    /// The program's randomisation: its seed (none before the first draw) and draws made, read
    /// under a lock on the program's row held to the end of the transaction, so concurrent
    /// placements in one program run one after the other (none for no such program).
    fn lock_arm_randomisation(&self, program_id: &str) -> R<Option<(Option<i64>, i64)>>;
    fn set_arm_randomisation(&self, program_id: &str, seed: i64, draws: i64) -> R<()>;
    fn roster_rows(&self, cohort_id: &str) -> R<Vec<MemberRecord>>;
    fn insert_member(&self, cohort_id: &str, member: &MemberRecord) -> R<()>;
    fn set_left_on(&self, cohort_id: &str, user_id: &str, left_on: &str) -> R<()>;
    fn set_paused_on(&self, cohort_id: &str, user_id: &str, paused_on: Option<&str>) -> R<()>;
    fn set_joined_on(&self, cohort_id: &str, user_id: &str, joined_on: &str) -> R<()>;
    /// Replaces a program's imported baseline (`active_dates`: a JSON list of dates).
    fn replace_baseline(&self, program_id: &str, learners: &[(String, String, String)]) -> R<()>;
    /// The cohort's changed critique weeks (JSON), as its document now holds them.
    fn set_critique_weeks(&self, cohort_id: &str, weeks: &str) -> R<()>;
    /// Stores a facilitator's private note once (by its author and id), numbered after the
    /// cohort's last in commit order.
    fn insert_note(&self, note: &NoteRecord) -> R<()>;
    /// Up to `limit` notes to a member in a cohort after `after`, oldest first.
    fn notes_after(&self, cohort_id: &str, to_user: &str, after: i64, limit: i64) -> R<Vec<NoteRecord>>;
    /// Cohorts the user is a member of and has not left.
    fn active_cohorts(&self, user_id: &str) -> R<Vec<String>>;
    /// Her current zone and day start on one of her memberships.
    fn set_member_day(&self, cohort_id: &str, user_id: &str, time_zone: &str, day_start_minutes: i64) -> R<()>;

    // ---- people ----
    /// The person's profile, if she exists.
    fn user_profile(&self, user_id: &str) -> R<Option<WireProfile>>;
    /// Creates a person with a zone (from her first invite) and no profile change yet; an
    /// existing one is left as she is.
    fn insert_user(&self, user_id: &str, time_zone: &str, now: i64) -> R<()>;
    fn put_user_profile(&self, user_id: &str, profile: &WireProfile) -> R<()>;
    /// Until when (ms) she has looked at her cohort's news, on any of her devices (0: never).
    fn seen_until(&self, user_id: &str) -> R<i64>;
    /// Moves her unread mark forward to `at` (never back).
    fn raise_seen_until(&self, user_id: &str, at: i64) -> R<()>;

    // ---- invites and devices ----
    fn open_invite(&self, code_hash: &[u8]) -> R<Option<OpenInvite>>;
    /// Marks an invite used by `user_id`; false if it was used meanwhile.
    fn claim_invite(&self, code_hash: &[u8], user_id: &str, now: i64) -> R<bool>;
    fn insert_invite(&self, invite: &NewInvite<'_>, now: i64) -> R<()>;
    /// A cohort's invites, newest first.
    fn invites_of(&self, cohort_id: &str) -> R<Vec<InviteRow>>;
    /// Expires the unused invite whose hash starts with `id` (upper-case hex); false if none.
    fn expire_invite(&self, id: &str, now: i64) -> R<bool>;
    fn insert_device(&self, id: &str, user_id: &str, cohort_id: &str, token_hash: &[u8], name: &str, now: i64)
    -> R<()>;
    /// Revokes an active device; false if there was none.
    fn revoke_device(&self, device_id: &str, now: i64) -> R<bool>;
    /// A person's devices, newest first, revoked ones included.
    fn user_devices(&self, user_id: &str) -> R<Vec<DeviceRecord>>;
    fn insert_link_code(
        &self,
        code_hash: &[u8],
        user_id: &str,
        cohort_id: &str,
        shown_by: &str,
        expires_at: i64,
    ) -> R<()>;
    /// Marks a link code used and returns its `(user_id, cohort_id)`, if it was unused and had not
    /// expired at `now`.
    fn claim_link_code(&self, code_hash: &[u8], now: i64) -> R<Option<(String, String)>>;

    // ---- practice logs ----
    /// Stores a log once (by id), with a cohort sequence number that grows in commit order.
    fn insert_practice_log(&self, log: &NewLog<'_>, now: i64) -> R<()>;
    fn practice_log_exists(&self, id: &str) -> R<bool>;
    /// Keys of the feedback and replies of a document first stored after `after_ms`.
    fn entries_stored_after(&self, doc: &str, after_ms: i64) -> R<Vec<String>>;
    /// The user a stored log belongs to.
    fn practice_log_user(&self, id: &str) -> R<Option<String>>;
    /// A stored log's user, cohort and body.
    fn practice_log_body(&self, id: &str) -> R<Option<(String, String, String)>>;
    /// Keeps a transfer story once per log (a resend changes nothing).
    fn insert_story(&self, story: &StoryRecord) -> R<()>;
    /// Keeps a learner's rating of an exemplar unless a newer one (by `rated_at`) is kept.
    fn upsert_calibration(
        &self,
        cohort_id: &str,
        user_id: &str,
        exemplar_id: &str,
        scores: &str,
        rated_at: i64,
    ) -> R<()>;
    /// How many logs a user has for a local day.
    fn logs_on_day(&self, user_id: &str, local_date: &str) -> R<i64>;
    /// `(seq, body)` of one user's logs (in all her cohorts) after `after`, oldest first.
    fn own_logs_after(&self, user_id: &str, after: i64, limit: i64) -> R<Vec<(i64, String)>>;
    /// `(seq, body)` of a cohort's logs after `after`, except one user's, oldest first.
    fn practice_logs_after(&self, cohort_id: &str, after: i64, except_user: &str, limit: i64) -> R<Vec<(i64, String)>>;
}

//! What one sync may carry and make the server do. Every bound sits well above what an honest
//! device ever sends: the device's sync client pages long uploads to stay within them, and the
//! server refuses a request past any of them with an error naming the bound, writing nothing.

use crate::domain::practice::MAX_LOGS_PER_DAY as LOGS_PER_DAY;

/// Bytes of one change. The largest the app writes (a 10,000-character feedback with a
/// 10,000-character suggestion, or a synthesis edit of 10,000 characters) stays under 100 KiB.
pub const MAX_CHANGE_BYTES: usize = 256 * 1024;

/// Operations in one change, counted from its encoded columns before anything is expanded
/// (deleting a whole 20,000-character synthesis and writing 10,000 new characters is 30,000).
pub const MAX_CHANGE_OPS: u64 = 32_768;

/// Predecessors named by all operations of one change, counted the same way.
pub const MAX_CHANGE_PREDS: u64 = 65_536;

/// Bytes that the strings of one change's key and mark columns expand to (a run of one long key
/// repeated for every operation would otherwise multiply).
pub const MAX_CHANGE_STRING_BYTES: u64 = 1024 * 1024;

/// Characters of one text value: the app's own cap on bodies, suggestions and attachment lists.
pub const MAX_VALUE_CHARS: usize = 10_000;

/// Changes in one request, every document together.
pub const MAX_CHANGES_PER_REQUEST: usize = 2_000;

/// Bytes of change data in one request (the whole body may be at most 4 MiB).
pub const MAX_REQUEST_CHANGE_BYTES: usize = 3 * 1024 * 1024;

/// Memberships in one `/v1/sync/memberships` round trip (a facilitator of many cohorts syncs the
/// rest in the next one).
pub const MAX_MEMBERSHIPS_PER_REQUEST: usize = 16;

/// Documents in one request: the cohort document and every week of the longest program (52).
pub const MAX_DOCS_PER_REQUEST: usize = 64;

/// Heads a device may name for one document.
pub const MAX_KNOWN_HEADS: usize = 256;

/// Practice logs in one request (and transfer stories).
pub const MAX_LOGS_PER_REQUEST: usize = 500;

/// Calibration ratings in one request (a pack holds at most 50 exemplars).
pub const MAX_CALIBRATION_PER_REQUEST: usize = 100;

/// Practice logs one learner may record for one local day (the app refuses more).
pub const MAX_LOGS_PER_DAY: usize = LOGS_PER_DAY;

/// Bytes of changes one user may store in one document.
pub const MAX_USER_BYTES_PER_DOC: u64 = 4 * 1024 * 1024;

/// Bytes of changes one response carries; a longer catch-up continues in the next round trip.
pub const MAX_RESPONSE_CHANGE_BYTES: usize = 4 * 1024 * 1024;

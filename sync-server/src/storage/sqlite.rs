//! The embedded default: one SQLite file in the data directory, WAL, one writer connection.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, Change, ChangeHash};
use microcohort_core::docs::guard::{self, decode_change};
use microcohort_core::docs::schema::Container;
use microcohort_core::docs::{DocId, check_id, cohort as cohort_doc, genesis};
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::domain::practice::MAX_DURATION_SECS;
use microcohort_core::domain::prompt_pack::parse_pack;
use microcohort_core::domain::roles::roles_for_week;
use microcohort_core::domain::roster::{Member, MemberRole, Roster};
use microcohort_core::policy::{
    ActorDirectory, ObjKey, ObjectIndex, ObjectKind, Owner, RejectReason, Submitter, server_created_entries, validate,
};
use microcohort_core::sync::wire::{
    DocPull, DocStatus, JoinResponse, PackFile, ProgramInfo, SyncRequest, SyncResponse, WireLog,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_bytes::ByteBuf;

use super::{CohortRow, Device, MemberRow, ProgramRow, Storage, SyncStats};
use crate::auth;
use crate::error::ApiError;

pub struct SqliteStorage {
    conn: Mutex<Connection>,
    server_actor: ActorId,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(err.to_string())
}

impl SqliteStorage {
    pub fn open(path: &Path) -> Result<Self, ApiError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a change the server acknowledged survives a power cut, not only a crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(128);
        super::schema::migrate(&mut conn)?;
        let stored: Option<Vec<u8>> =
            conn.query_row("SELECT value FROM meta WHERE key = 'server_actor'", [], |r| r.get(0)).optional()?;
        let server_actor = match stored {
            Some(bytes) => ActorId::from(bytes),
            None => {
                let actor = ActorId::random();
                conn.execute("INSERT INTO meta (key, value) VALUES ('server_actor', ?1)", [actor.to_bytes()])?;
                conn.execute("INSERT OR IGNORE INTO actors (actor, user_id) VALUES (?1, NULL)", [actor.to_bytes()])?;
                actor
            }
        };
        Ok(Self { conn: Mutex::new(conn), server_actor })
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }
}

// ---- documents as change rows ---------------------------------------------------------------

fn change_exists(tx: &Transaction<'_>, doc: &str, hash: &ChangeHash) -> rusqlite::Result<bool> {
    tx.prepare_cached("SELECT 1 FROM changes WHERE doc_id = ?1 AND hash = ?2")?
        .query_row(params![doc, hash.0.as_slice()], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

/// Stores one change (its dependencies are present) and moves the document's heads.
fn store_change(tx: &Transaction<'_>, doc: &str, change: &Change) -> rusqlite::Result<()> {
    let seq: i64 = tx
        .prepare_cached(
            "INSERT INTO docs (doc_id, last_seq) VALUES (?1, 1)
             ON CONFLICT (doc_id) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
        )?
        .query_row([doc], |r| r.get(0))?;
    let deps: Vec<u8> = change.deps().iter().flat_map(|h| h.0).collect();
    tx.prepare_cached(
        "INSERT INTO changes (doc_id, hash, actor, seq, deps, body, doc_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        doc,
        change.hash().0.as_slice(),
        change.actor_id().to_bytes(),
        change.seq() as i64,
        deps,
        change.raw_bytes(),
        seq
    ])?;
    for dep in change.deps() {
        tx.prepare_cached("DELETE FROM doc_heads WHERE doc_id = ?1 AND hash = ?2")?
            .execute(params![doc, dep.0.as_slice()])?;
    }
    tx.prepare_cached("INSERT OR IGNORE INTO doc_heads (doc_id, hash) VALUES (?1, ?2)")?
        .execute(params![doc, change.hash().0.as_slice()])?;
    Ok(())
}

fn store_objects(tx: &Transaction<'_>, doc: &str, created: &[(ObjKey, ObjectKind)]) -> rusqlite::Result<()> {
    for ((counter, actor), kind) in created {
        if let ObjectKind::Entry { container, owner } = kind {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO doc_objects (doc_id, counter, actor, container, owner) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![doc, *counter as i64, actor.to_bytes(), container.name(), owner])?;
        }
    }
    Ok(())
}

fn load_index(tx: &Transaction<'_>, doc: &DocId) -> rusqlite::Result<ObjectIndex> {
    let mut index = ObjectIndex::for_doc(doc);
    let mut stmt = tx.prepare_cached("SELECT counter, actor, container, owner FROM doc_objects WHERE doc_id = ?1")?;
    let rows = stmt.query_map([doc.to_string()], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
    })?;
    for row in rows {
        let (counter, actor, container, owner) = row?;
        if let Some(container) = Container::from_name(&container) {
            index.insert((counter as u64, ActorId::from(actor)), ObjectKind::Entry { container, owner });
        }
    }
    Ok(index)
}

fn heads(tx: &Transaction<'_>, doc: &str) -> rusqlite::Result<Vec<ByteBuf>> {
    let mut stmt = tx.prepare_cached("SELECT hash FROM doc_heads WHERE doc_id = ?1 ORDER BY hash")?;
    let rows = stmt.query_map([doc], |r| r.get::<_, Vec<u8>>(0))?;
    rows.map(|r| r.map(ByteBuf::from)).collect()
}

/// Actor bindings from the table, plus those made earlier in the same request.
struct Bindings<'a> {
    tx: &'a Transaction<'a>,
    pending: HashMap<ActorId, Owner>,
}

impl ActorDirectory for Bindings<'_> {
    fn owner_of(&self, actor: &ActorId) -> Option<Owner> {
        if let Some(owner) = self.pending.get(actor) {
            return Some(owner.clone());
        }
        let row: Option<Option<String>> = self
            .tx
            .prepare_cached("SELECT user_id FROM actors WHERE actor = ?1")
            .and_then(|mut s| s.query_row([actor.to_bytes()], |r| r.get(0)).optional())
            .ok()
            .flatten();
        row.map(|user| user.map_or(Owner::Server, Owner::User))
    }
}

/// Applies a server-authored edit to a document (roster changes): the only place the server
/// loads a document, and never on the sync path.
fn server_edit(
    tx: &Transaction<'_>,
    server_actor: &ActorId,
    doc: &DocId,
    edit: impl FnOnce(&mut AutoCommit) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let id = doc.to_string();
    let bodies = saved_document(tx, &id)?.0;
    let mut index = load_index(tx, doc)?;
    let mut am = if bodies.is_empty() {
        let mut fresh = genesis(doc);
        for change in fresh.get_changes(&[]) {
            store_change(tx, &id, &change)?;
        }
        fresh
    } else {
        guard::load(&bodies).map_err(internal)?
    };
    am.set_actor(server_actor.clone());
    edit(&mut am)?;
    if let Some(hash) = am.commit_with(CommitOptions::default().with_time(chrono::Utc::now().timestamp())) {
        let change = am.get_change_by_hash(&hash).ok_or_else(|| internal("committed change vanished"))?;
        store_change(tx, &id, &change)?;
        let created = server_created_entries(&change, &mut index);
        store_objects(tx, &id, &created)?;
    }
    Ok(())
}

/// A document's saved bytes: its latest snapshot followed by the change rows after it (automerge
/// loads the concatenation), and the last `doc_seq` they cover.
fn saved_document(tx: &Connection, doc: &str) -> Result<(Vec<u8>, i64), ApiError> {
    let snapshot: Option<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT upto_seq, bytes FROM doc_snapshots WHERE doc_id = ?1")?
        .query_row([doc], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (mut upto, mut bytes) = snapshot.unwrap_or((0, Vec::new()));
    let mut stmt =
        tx.prepare_cached("SELECT doc_seq, body FROM changes WHERE doc_id = ?1 AND doc_seq > ?2 ORDER BY doc_seq")?;
    let rows = stmt.query_map(params![doc, upto], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
    for row in rows {
        let (seq, body) = row?;
        upto = seq;
        bytes.extend(body);
    }
    Ok((bytes, upto))
}

fn blueprint_of_cohort(tx: &Connection, cohort_id: &str) -> Result<(String, Blueprint, PackFile, String), ApiError> {
    let row: Option<(String, String, String, String, u32, String, String)> = tx
        .prepare_cached(
            "SELECT p.id, p.title, p.blueprint, p.pack_id, p.pack_version, p.pack_file, p.pack_toml
             FROM cohorts c JOIN programs p ON p.id = c.program_id WHERE c.id = ?1",
        )?
        .query_row([cohort_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .optional()?;
    let (program_id, title, blueprint, pack_id, version, file_name, toml) =
        row.ok_or_else(|| ApiError::NotFound(format!("cohort {cohort_id} has no program")))?;
    let parsed: Blueprint = serde_json::from_str(&blueprint).map_err(internal)?;
    Ok((program_id, parsed, PackFile { pack_id, version, file_name, toml }, title))
}

fn roster(tx: &Connection, cohort_id: &str) -> Result<Roster, ApiError> {
    let sql = "SELECT user_id, display_name, role, time_zone, joined_on, left_on FROM members WHERE cohort_id = ?1";
    microcohort_core::store::cohort::roster_from(tx, sql, cohort_id).map_err(internal)
}

// ---- the sync round trip --------------------------------------------------------------------

struct DocWork {
    doc: DocId,
    id: String,
    changes: Vec<Change>,
    known: Vec<ByteBuf>,
}

fn check_log(log: &WireLog, program_id: &str) -> Result<(), ApiError> {
    let bad =
        |field: &str, problem: &str| Err(ApiError::BadRequest(format!("practice log {}: {field}: {problem}", log.id)));
    if uuid::Uuid::parse_str(&log.id).is_err() {
        return bad("id", "not a UUID");
    }
    if log.program_id != program_id {
        return bad("program_id", "not this cohort's program");
    }
    if !matches!(log.status.as_str(), "completed" | "abandoned") {
        return bad("status", "must be completed or abandoned");
    }
    if log.duration_secs.is_some_and(|d| d == 0 || d > MAX_DURATION_SECS) {
        return bad("duration_secs", "outside 1 s..=4 h");
    }
    if log.local_date.parse::<chrono::NaiveDate>().is_err() {
        return bad("local_date", "not a YYYY-MM-DD date");
    }
    if log.time_zone.parse::<chrono_tz::Tz>().is_err() {
        return bad("time_zone", "not an IANA zone");
    }
    Ok(())
}

impl SqliteStorage {
    fn sync_in(
        &self,
        tx: &Transaction<'_>,
        device: &Device,
        request: SyncRequest,
    ) -> Result<(SyncResponse, SyncStats), ApiError> {
        let (program_id, blueprint, pack, _) = blueprint_of_cohort(tx, &device.cohort_id)?;
        // Decode everything first: malformed input is refused before anything is written.
        let mut work = Vec::with_capacity(request.docs.len());
        for push in request.docs {
            let doc = DocId::parse(&push.doc_id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            if doc.cohort_id() != device.cohort_id {
                return Err(ApiError::Forbidden(format!("{} is another cohort's document", push.doc_id)));
            }
            if let DocId::Week { week, .. } = doc
                && week > blueprint.weeks
            {
                return Err(ApiError::NotFound(format!("{}: the program has no week {week}", push.doc_id)));
            }
            let changes = push
                .changes
                .iter()
                .map(|bytes| decode_change(bytes))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::BadRequest(format!("{}: {e}", push.doc_id)))?;
            work.push(DocWork { id: doc.to_string(), doc, changes, known: push.known_server_heads });
        }
        for log in &request.practice_logs {
            check_log(log, &program_id)?;
        }

        let roster = roster(tx, &device.cohort_id)?;
        let facilitator = device.role == "facilitator";
        let mut stats = SyncStats::default();
        let mut docs = Vec::with_capacity(work.len());
        let mut bindings = Bindings { tx, pending: HashMap::new() };
        for item in work {
            let pushed: HashSet<ChangeHash> = item.changes.iter().map(|c| c.hash()).collect();
            let may_edit_synthesis = match item.doc {
                DocId::Week { week, .. } => {
                    roles_for_week(&blueprint, &roster, week).may_edit_synthesis(&device.user_id)
                }
                DocId::Cohort { .. } => false,
            };
            let submitter = Submitter { user_id: &device.user_id, facilitator, may_edit_synthesis };
            let status = self.accept_changes(tx, &item, submitter, &mut bindings, &mut stats)?;
            let (changes, server_heads) = match &status {
                DocStatus::NeedFrom => (Vec::new(), heads(tx, &item.id)?),
                // All or nothing for the document, answered with the server's full copy so the
                // device can replace its branch.
                DocStatus::Rejected { .. } => {
                    (self.changes_after(tx, &item.id, 0, &HashSet::new())?, heads(tx, &item.id)?)
                }
                DocStatus::Ok => {
                    let watermark = self.watermark(tx, &item.id, &item.known)?;
                    (self.changes_after(tx, &item.id, watermark, &pushed)?, heads(tx, &item.id)?)
                }
            };
            docs.push(DocPull { doc_id: item.id, status, changes, server_heads });
        }

        let mut acked = Vec::with_capacity(request.practice_logs.len());
        for mut log in request.practice_logs {
            log.user_id = device.user_id.clone();
            let body = serde_json::to_string(&log).map_err(internal)?;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO practice_logs (id, user_id, cohort_id, body, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![log.id, device.user_id, device.cohort_id, body, now_ms()])?;
            acked.push(log.id);
        }

        let (practice_logs, logs_watermark) = if facilitator {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, body FROM practice_logs WHERE cohort_id = ?1 AND seq > ?2 AND user_id != ?3 ORDER BY seq LIMIT 5000",
            )?;
            let rows = stmt.query_map(params![device.cohort_id, request.logs_since as i64, device.user_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut logs = Vec::new();
            let mut watermark = request.logs_since;
            for row in rows {
                let (seq, body) = row?;
                watermark = watermark.max(seq as u64);
                logs.push(serde_json::from_str::<WireLog>(&body).map_err(internal)?);
            }
            (logs, watermark)
        } else {
            (Vec::new(), request.logs_since)
        };
        let prompts = (pack.version > request.prompts_since).then_some(pack);
        let response = SyncResponse {
            docs,
            practice_logs_acked: acked,
            practice_logs,
            logs_watermark,
            prompts,
            server_time: now_ms(),
        };
        Ok((response, stats))
    }

    /// Validates and stores a document's new changes, all or nothing.
    fn accept_changes(
        &self,
        tx: &Transaction<'_>,
        item: &DocWork,
        submitter: Submitter<'_>,
        bindings: &mut Bindings<'_>,
        stats: &mut SyncStats,
    ) -> Result<DocStatus, ApiError> {
        let mut fresh = Vec::new();
        for change in &item.changes {
            if !change_exists(tx, &item.id, &change.hash())?
                && !fresh.iter().any(|c: &&Change| c.hash() == change.hash())
            {
                fresh.push(change);
            }
        }
        if fresh.is_empty() {
            return Ok(DocStatus::Ok);
        }
        let mut index = load_index(tx, &item.doc)?;
        let mut accepted: Vec<(&Change, Vec<(ObjKey, ObjectKind)>)> = Vec::new();
        // Actors this document's batch binds to the submitter (undone if the batch is refused).
        let mut new_actors: Vec<ActorId> = Vec::new();
        for change in fresh {
            let dep_known = |dep: &ChangeHash| -> Result<bool, ApiError> {
                Ok(accepted.iter().any(|(c, _)| c.hash() == *dep) || change_exists(tx, &item.id, dep)?)
            };
            for dep in change.deps() {
                if !dep_known(dep)? {
                    return Ok(DocStatus::NeedFrom);
                }
            }
            // Two different changes with one actor and sequence number would make every device
            // refuse the document from then on.
            let reused = accepted.iter().any(|(c, _)| c.actor_id() == change.actor_id() && c.seq() == change.seq())
                || tx
                    .prepare_cached("SELECT 1 FROM changes WHERE doc_id = ?1 AND actor = ?2 AND seq = ?3")?
                    .query_row(params![item.id, change.actor_id().to_bytes(), change.seq() as i64], |_| Ok(()))
                    .optional()?
                    .is_some();
            if reused {
                stats.rejected.push(RejectReason::Malformed);
                return Ok(DocStatus::Rejected {
                    reason: RejectReason::Malformed.as_str().into(),
                    detail: format!("actor {} already used sequence number {}", change.actor_id(), change.seq()),
                });
            }
            match validate(&item.doc, change, submitter, &*bindings, &index) {
                Ok(created) => {
                    for (id, kind) in &created {
                        index.insert(id.clone(), kind.clone());
                    }
                    if bindings.owner_of(change.actor_id()).is_none() {
                        new_actors.push(change.actor_id().clone());
                        bindings.pending.insert(change.actor_id().clone(), Owner::User(submitter.user_id.to_owned()));
                    }
                    accepted.push((change, created));
                }
                Err(rejection) => {
                    for actor in &new_actors {
                        bindings.pending.remove(actor);
                    }
                    stats.rejected.push(rejection.reason);
                    tracing::info!(doc = %item.id, user = submitter.user_id, reason = rejection.reason.as_str(), detail = %rejection.detail, "change rejected");
                    return Ok(DocStatus::Rejected {
                        reason: rejection.reason.as_str().into(),
                        detail: rejection.detail,
                    });
                }
            }
        }
        for (change, created) in &accepted {
            store_change(tx, &item.id, change)?;
            store_objects(tx, &item.id, created)?;
        }
        for actor in &new_actors {
            tx.prepare_cached("INSERT OR IGNORE INTO actors (actor, user_id) VALUES (?1, ?2)")?
                .execute(params![actor.to_bytes(), submitter.user_id])?;
        }
        stats.changes_stored += accepted.len() as u64;
        Ok(DocStatus::Ok)
    }

    /// The newest `doc_seq` among the heads a device was given; every change up to it was stored
    /// when those heads were answered. Unknown heads (another server's data) count as nothing.
    fn watermark(&self, tx: &Transaction<'_>, doc: &str, known: &[ByteBuf]) -> Result<i64, ApiError> {
        let mut newest = 0;
        for head in known {
            let seq: Option<i64> = tx
                .prepare_cached("SELECT doc_seq FROM changes WHERE doc_id = ?1 AND hash = ?2")?
                .query_row(params![doc, head.as_slice()], |r| r.get(0))
                .optional()?;
            match seq {
                Some(seq) => newest = newest.max(seq),
                None => return Ok(0),
            }
        }
        Ok(newest)
    }

    fn changes_after(
        &self,
        tx: &Transaction<'_>,
        doc: &str,
        after: i64,
        skip: &HashSet<ChangeHash>,
    ) -> Result<Vec<ByteBuf>, ApiError> {
        let mut stmt =
            tx.prepare_cached("SELECT hash, body FROM changes WHERE doc_id = ?1 AND doc_seq > ?2 ORDER BY doc_seq")?;
        let rows = stmt.query_map(params![doc, after], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (hash, body) = row?;
            let known = ChangeHash::try_from(hash.as_slice()).map(|h| skip.contains(&h)).unwrap_or(false);
            if !known {
                out.push(ByteBuf::from(body));
            }
        }
        Ok(out)
    }
}

impl Storage for SqliteStorage {
    fn authenticate(&self, token_hash: &[u8]) -> Result<Option<Device>, ApiError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT d.id, d.user_id, d.cohort_id, m.role FROM devices d
                     JOIN members m ON m.cohort_id = d.cohort_id AND m.user_id = d.user_id
                     WHERE d.token_hash = ?1 AND d.revoked_at IS NULL AND m.left_on IS NULL",
                )?
                .query_row([token_hash], |r| {
                    Ok(Device { device_id: r.get(0)?, user_id: r.get(1)?, cohort_id: r.get(2)?, role: r.get(3)? })
                })
                .optional()?)
        })
    }

    fn join(
        &self,
        code_hash: &[u8],
        device_name: &str,
        token_hash: &[u8],
        token: &str,
    ) -> Result<JoinResponse, ApiError> {
        self.write(|tx| {
            let invite: Option<(String, String, String, String)> = tx
                .query_row(
                    "SELECT cohort_id, role, display_name, time_zone FROM invites WHERE code_hash = ?1 AND used_at IS NULL",
                    [code_hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let (cohort_id, role, display_name, time_zone) =
                invite.ok_or_else(|| ApiError::Forbidden("this invite code is unknown or was already used".into()))?;
            let (program_id, blueprint, pack, title) = blueprint_of_cohort(tx, &cohort_id)?;
            let user_id = uuid::Uuid::now_v7().simple().to_string();
            let device_id = uuid::Uuid::now_v7().simple().to_string();
            let member = Member {
                user_id: user_id.clone(),
                display_name: display_name.clone(),
                role: MemberRole::parse(&role).unwrap_or(MemberRole::Learner),
                time_zone: time_zone.clone(),
                // The cohort's calendar day, which is what weeks and rotations count in.
                joined_on: chrono::Utc::now().with_timezone(&blueprint.cohort_time_zone).date_naive(),
                left_on: None,
            };
            // The roster document first: it refuses a learner past the cohort's maximum.
            server_edit(tx, &self.server_actor, &DocId::cohort(&cohort_id), |am| {
                cohort_doc::add_member(am, &member, blueprint.cohort_size).map(|_| ()).map_err(|e| ApiError::Forbidden(e.to_string()))
            })?;
            tx.execute(
                "INSERT INTO members (cohort_id, user_id, display_name, role, time_zone, joined_on) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![cohort_id, user_id, display_name, role, time_zone, member.joined_on.to_string()],
            )?;
            tx.execute(
                "INSERT INTO devices (id, user_id, cohort_id, token_hash, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![device_id, user_id, cohort_id, token_hash, device_name.chars().take(100).collect::<String>(), now_ms()],
            )?;
            tx.execute("UPDATE invites SET used_at = ?1, user_id = ?2 WHERE code_hash = ?3", params![now_ms(), user_id, code_hash])?;
            Ok(JoinResponse {
                device_id,
                device_token: token.to_owned(),
                user_id,
                cohort_id,
                role,
                program: ProgramInfo {
                    program_id,
                    title,
                    blueprint_json: serde_json::to_string(&blueprint).map_err(internal)?,
                    pack,
                },
            })
        })
    }

    fn sync(&self, device: &Device, request: SyncRequest) -> Result<(SyncResponse, SyncStats), ApiError> {
        self.write(|tx| self.sync_in(tx, device, request))
    }

    fn counts(&self) -> Result<(u64, u64), ApiError> {
        self.read(|conn| {
            let docs: i64 = conn.query_row("SELECT COUNT(*) FROM docs", [], |r| r.get(0))?;
            let changes: i64 = conn.query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))?;
            Ok((docs.max(0) as u64, changes.max(0) as u64))
        })
    }

    fn compact(&self, min_new_changes: u64) -> Result<usize, ApiError> {
        let due: Vec<String> = self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT d.doc_id FROM docs d LEFT JOIN doc_snapshots s ON s.doc_id = d.doc_id
                 WHERE d.last_seq - COALESCE(s.upto_seq, 0) >= ?1",
            )?;
            let rows = stmt.query_map([min_new_changes as i64], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })?;
        for doc in &due {
            // One short transaction per document, so syncs are never held up for long.
            self.write(|tx| {
                let (bytes, upto) = saved_document(tx, doc)?;
                let snapshot = guard::load(&bytes).map_err(internal)?.save();
                tx.execute(
                    "INSERT INTO doc_snapshots (doc_id, upto_seq, bytes) VALUES (?1, ?2, ?3)
                     ON CONFLICT (doc_id) DO UPDATE SET upto_seq = ?2, bytes = ?3",
                    params![doc, upto, snapshot],
                )?;
                Ok(())
            })?;
        }
        Ok(due.len())
    }

    fn create_program(
        &self,
        id: &str,
        title: &str,
        blueprint_json: &str,
        pack_file: &str,
        pack_toml: &str,
    ) -> Result<(), ApiError> {
        check_id("program id", id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let blueprint: Blueprint =
            serde_json::from_str(blueprint_json).map_err(|e| ApiError::BadRequest(format!("blueprint: {e}")))?;
        blueprint.validate().map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let pack = parse_pack(pack_file, pack_toml).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        pack.check_covers(&blueprint).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        self.write(|tx| {
            // Devices receive the blueprint when they join; changing it under running cohorts
            // would make the server judge roles and weeks differently from honest devices.
            let existing: Option<String> =
                tx.query_row("SELECT blueprint FROM programs WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            let has_cohorts = tx.query_row("SELECT 1 FROM cohorts WHERE program_id = ?1 LIMIT 1", [id], |_| Ok(())).optional()?.is_some();
            if let Some(existing) = existing
                && has_cohorts
                && serde_json::from_str::<Blueprint>(&existing).ok().as_ref() != Some(&blueprint)
            {
                return Err(ApiError::BadRequest(format!(
                    "program {id} already has cohorts; its schedule cannot change (a new pack version can)"
                )));
            }
            tx.execute(
                "INSERT INTO programs (id, title, blueprint, pack_id, pack_version, pack_file, pack_toml, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET title = ?2, blueprint = ?3, pack_id = ?4, pack_version = ?5, pack_file = ?6, pack_toml = ?7",
                params![id, title, blueprint_json, pack.id, pack.version, pack_file, pack_toml, now_ms()],
            )?;
            Ok(())
        })
    }

    fn create_cohort(&self, id: &str, program_id: &str, title: &str) -> Result<(), ApiError> {
        check_id("cohort id", id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        self.write(|tx| {
            let exists: bool =
                tx.query_row("SELECT 1 FROM programs WHERE id = ?1", [program_id], |_| Ok(())).optional()?.is_some();
            if !exists {
                return Err(ApiError::NotFound(format!("no program {program_id}")));
            }
            tx.execute(
                "INSERT INTO cohorts (id, program_id, title, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, program_id, title, now_ms()],
            )
            .map_err(|e| ApiError::BadRequest(format!("cohort {id}: {e}")))?;
            Ok(())
        })
    }

    fn create_invite(
        &self,
        cohort_id: &str,
        role: &str,
        display_name: &str,
        time_zone: &str,
    ) -> Result<String, ApiError> {
        if MemberRole::parse(role).is_none() {
            return Err(ApiError::BadRequest(format!("role {role:?} must be learner or facilitator")));
        }
        time_zone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| ApiError::BadRequest(format!("unknown time zone {time_zone:?}")))?;
        let code = auth::new_invite_code();
        self.write(|tx| {
            let exists = tx.query_row("SELECT 1 FROM cohorts WHERE id = ?1", [cohort_id], |_| Ok(())).optional()?.is_some();
            if !exists {
                return Err(ApiError::NotFound(format!("no cohort {cohort_id}")));
            }
            tx.execute(
                "INSERT INTO invites (code_hash, cohort_id, role, display_name, time_zone, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![auth::hash_invite(&code), cohort_id, role, display_name, time_zone, now_ms()],
            )?;
            Ok(())
        })?;
        Ok(code)
    }

    fn revoke_device(&self, device_id: &str) -> Result<(), ApiError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE devices SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                params![now_ms(), device_id],
            )?;
            if changed == 0 {
                return Err(ApiError::NotFound(format!("no active device {device_id}")));
            }
            Ok(())
        })
    }

    fn remove_member(
        &self,
        cohort_id: &str,
        user_id: &str,
        left_on: Option<chrono::NaiveDate>,
    ) -> Result<chrono::NaiveDate, ApiError> {
        self.write(|tx| {
            let (_, blueprint, _, _) = blueprint_of_cohort(tx, cohort_id)?;
            let left_on =
                left_on.unwrap_or_else(|| chrono::Utc::now().with_timezone(&blueprint.cohort_time_zone).date_naive());
            let members = roster(tx, cohort_id)?;
            let mut member = members
                .member(user_id)
                .cloned()
                .ok_or_else(|| ApiError::NotFound(format!("no member {user_id} in {cohort_id}")))?;
            member.left_on = Some(left_on);
            server_edit(tx, &self.server_actor, &DocId::cohort(cohort_id), |am| {
                cohort_doc::put_member(am, &member).map_err(internal)
            })?;
            tx.execute(
                "UPDATE members SET left_on = ?1 WHERE cohort_id = ?2 AND user_id = ?3",
                params![left_on.to_string(), cohort_id, user_id],
            )?;
            Ok(left_on)
        })
    }

    fn programs(&self) -> Result<Vec<ProgramRow>, ApiError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT id, title, pack_id, pack_version FROM programs ORDER BY id")?;
            let rows = stmt.query_map([], |r| {
                Ok(ProgramRow { id: r.get(0)?, title: r.get(1)?, pack_id: r.get(2)?, pack_version: r.get(3)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn cohorts(&self) -> Result<Vec<CohortRow>, ApiError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT c.id, c.program_id, c.title, (SELECT COUNT(*) FROM members m WHERE m.cohort_id = c.id) FROM cohorts c ORDER BY c.id",
            )?;
            let rows = stmt.query_map([], |r| Ok(CohortRow { id: r.get(0)?, program_id: r.get(1)?, title: r.get(2)?, members: r.get(3)? }))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn members(&self, cohort_id: &str) -> Result<Vec<MemberRow>, ApiError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT m.user_id, m.display_name, m.role,
                        (SELECT COUNT(*) FROM devices d WHERE d.user_id = m.user_id AND d.revoked_at IS NULL)
                 FROM members m WHERE m.cohort_id = ?1 ORDER BY m.role, m.display_name",
            )?;
            let rows = stmt.query_map([cohort_id], |r| {
                Ok(MemberRow { user_id: r.get(0)?, display_name: r.get(1)?, role: r.get(2)?, devices: r.get(3)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_cover_the_change_rows_and_later_writes_build_on_them() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(&dir.path().join("db.sqlite")).unwrap();
        let blueprint = Blueprint::default_90_days(chrono::Utc::now().date_naive(), chrono_tz::UTC);
        storage
            .create_program(
                "p1",
                "P",
                &serde_json::to_string(&blueprint).unwrap(),
                microcohort_core::DEFAULT_PROMPT_PACK_NAME,
                microcohort_core::DEFAULT_PROMPT_PACK,
            )
            .unwrap();
        storage.create_cohort("c1", "p1", "C").unwrap();
        let join = |name: &str| {
            let code = storage.create_invite("c1", "learner", name, "UTC").unwrap();
            let token = auth::new_token();
            storage.join(&auth::hash_invite(&code), "phone", &auth::hash_secret(&token), &token).unwrap()
        };
        for name in ["A", "B", "C"] {
            join(name);
        }
        // Genesis + 3 roster changes: due at a threshold of 4, not at 5.
        assert_eq!(storage.compact(5).unwrap(), 0);
        assert_eq!(storage.compact(4).unwrap(), 1);
        assert_eq!(storage.compact(1).unwrap(), 0, "nothing new since");
        join("D");
        let roster = storage.read(|conn| {
            let (bytes, upto) = saved_document(conn, "cohort:c1")?;
            assert_eq!(upto, 5);
            Ok(cohort_doc::roster(&guard::load(&bytes).map_err(internal)?))
        });
        assert_eq!(roster.unwrap().members().len(), 4);
    }
}

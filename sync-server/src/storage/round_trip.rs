//! The sync round trip over [`Tx`]: decode and check everything, validate and store each
//! document's new changes (all or nothing per document), answer with what the device lacks,
//! store practice logs and relay them to facilitators.

use std::collections::HashSet;

use automerge::{ActorId, Change, ChangeHash};
use microcohort_core::docs::DocId;
use microcohort_core::docs::guard::decode_change;
use microcohort_core::domain::practice::MAX_DURATION_SECS;
use microcohort_core::domain::roles::roles_for_week;
use microcohort_core::policy::{ActorDirectory, ObjKey, ObjectKind, Owner, RejectReason, Submitter, validate};
use microcohort_core::sync::wire::{DocPull, DocStatus, SyncRequest, SyncResponse, WireLog};
use serde_bytes::ByteBuf;

use super::documents::{
    Bindings, heads, internal, load_index, now_ms, pack_of, program_of_cohort, roster, store_change, store_objects,
};
use super::primitives::Tx;
use super::{Device, SyncStats};
use crate::error::ApiError;

/// Facilitators receive at most this many practice logs per round trip (the rest next time).
const LOGS_PER_RESPONSE: i64 = 5000;

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

pub fn sync(tx: &dyn Tx, device: &Device, request: &SyncRequest) -> Result<(SyncResponse, SyncStats), ApiError> {
    let program = program_of_cohort(tx, &device.cohort_id)?;
    let (program_id, blueprint) = (&program.program_id, &program.blueprint);
    // Decode everything first: malformed input is refused before anything is written.
    let mut work = Vec::with_capacity(request.docs.len());
    for push in &request.docs {
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
        work.push(DocWork { id: doc.to_string(), doc, changes, known: push.known_server_heads.clone() });
    }
    for log in &request.practice_logs {
        check_log(log, program_id)?;
    }
    // Every document this request may write is locked up front, in one order for all requests,
    // so concurrent writers to several documents never wait on each other in a cycle.
    let mut writes: Vec<&str> = work.iter().filter(|w| !w.changes.is_empty()).map(|w| w.id.as_str()).collect();
    writes.sort_unstable();
    writes.dedup();
    for doc in writes {
        tx.lock_doc(doc)?;
    }

    let roster = roster(tx, &device.cohort_id)?;
    let facilitator = device.role == "facilitator";
    let mut stats = SyncStats::default();
    let mut docs = Vec::with_capacity(work.len());
    let mut bindings = Bindings::new(tx);
    for item in work {
        let pushed: HashSet<ChangeHash> = item.changes.iter().map(|c| c.hash()).collect();
        let may_edit_synthesis = match item.doc {
            DocId::Week { week, .. } => roles_for_week(blueprint, &roster, week).may_edit_synthesis(&device.user_id),
            DocId::Cohort { .. } => false,
        };
        let submitter = Submitter { user_id: &device.user_id, facilitator, may_edit_synthesis };
        let status = accept_changes(tx, &item, submitter, &mut bindings, &mut stats)?;
        // Heads before changes: read unlocked, the changes then cover at least those heads.
        let server_heads = heads(tx, &item.id)?;
        let changes = match &status {
            DocStatus::NeedFrom => Vec::new(),
            // All or nothing for the document, answered with the server's full copy so the
            // device can replace its branch.
            DocStatus::Rejected { .. } => changes_after(tx, &item.id, 0, &HashSet::new())?,
            DocStatus::Ok => {
                let watermark = watermark(tx, &item.id, &item.known)?;
                changes_after(tx, &item.id, watermark, &pushed)?
            }
        };
        docs.push(DocPull { doc_id: item.id, status, changes, server_heads });
    }

    let mut acked = Vec::with_capacity(request.practice_logs.len());
    for log in &request.practice_logs {
        let log = WireLog { user_id: device.user_id.clone(), ..log.clone() };
        let body = serde_json::to_string(&log).map_err(internal)?;
        tx.insert_practice_log(&log.id, &device.user_id, &device.cohort_id, &body, now_ms())?;
        acked.push(log.id);
    }

    let (practice_logs, logs_watermark) = if facilitator {
        let since = i64::try_from(request.logs_since).unwrap_or(i64::MAX);
        let mut logs = Vec::new();
        let mut watermark = request.logs_since;
        for (seq, body) in tx.practice_logs_after(&device.cohort_id, since, &device.user_id, LOGS_PER_RESPONSE)? {
            watermark = watermark.max(seq as u64);
            logs.push(serde_json::from_str::<WireLog>(&body).map_err(internal)?);
        }
        (logs, watermark)
    } else {
        (Vec::new(), request.logs_since)
    };
    let prompts = if program.pack_version > request.prompts_since { Some(pack_of(tx, program_id)?) } else { None };
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
    tx: &dyn Tx,
    item: &DocWork,
    submitter: Submitter<'_>,
    bindings: &mut Bindings<'_>,
    stats: &mut SyncStats,
) -> Result<DocStatus, ApiError> {
    let mut fresh = Vec::new();
    for change in &item.changes {
        if tx.change_seq(&item.id, &change.hash().0)?.is_none()
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
        for dep in change.deps() {
            let known = accepted.iter().any(|(c, _)| c.hash() == *dep) || tx.change_seq(&item.id, &dep.0)?.is_some();
            if !known {
                return Ok(DocStatus::NeedFrom);
            }
        }
        // Two different changes with one actor and sequence number would make every device
        // refuse the document from then on.
        let reused = accepted.iter().any(|(c, _)| c.actor_id() == change.actor_id() && c.seq() == change.seq())
            || tx.actor_seq_used(&item.id, change.actor_id().to_bytes(), change.seq() as i64)?;
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
                return Ok(DocStatus::Rejected { reason: rejection.reason.as_str().into(), detail: rejection.detail });
            }
        }
    }
    for (change, created) in &accepted {
        store_change(tx, &item.id, change)?;
        store_objects(tx, &item.id, created)?;
    }
    for actor in &new_actors {
        tx.bind_actor(actor.to_bytes(), Some(submitter.user_id))?;
        // Another server process may have bound the actor first; the changes were judged as
        // the submitter's, so judge them again.
        if tx.actor_owner(actor.to_bytes())? != Some(Some(submitter.user_id.to_owned())) {
            return Err(tx.lost_race(format!("actor {actor} was bound concurrently")));
        }
    }
    stats.changes_stored += accepted.len() as u64;
    Ok(DocStatus::Ok)
}

/// The newest `doc_seq` among the heads a device was given; every change up to it was stored
/// when those heads were answered (`doc_seq` grows in commit order per document). Unknown heads
/// count as nothing.
fn watermark(tx: &dyn Tx, doc: &str, known: &[ByteBuf]) -> Result<i64, ApiError> {
    let mut newest = 0;
    for head in known {
        match tx.change_seq(doc, head)? {
            Some(seq) => newest = newest.max(seq),
            None => return Ok(0),
        }
    }
    Ok(newest)
}

fn changes_after(tx: &dyn Tx, doc: &str, after: i64, skip: &HashSet<ChangeHash>) -> Result<Vec<ByteBuf>, ApiError> {
    let mut out = Vec::new();
    for row in tx.changes_after(doc, after)? {
        let known = ChangeHash::try_from(row.hash.as_slice()).map(|h| skip.contains(&h)).unwrap_or(false);
        if !known {
            out.push(ByteBuf::from(row.body));
        }
    }
    Ok(out)
}

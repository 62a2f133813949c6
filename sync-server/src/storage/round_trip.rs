//! The sync round trip over [`Tx`], on a request already decoded and bounded outside the storage
//! lock (`microcohort_core::sync::request`): validate each document's new changes and prove its history
//! stays well formed (all or nothing per document), store them, answer with what the device lacks
//! (a page at a time), store practice logs and relay them to facilitators.

use std::collections::{HashMap, HashSet};

use automerge::ChangeHash;
use microcohort_core::docs::DocId;
use microcohort_core::domain::arms::Arm;
use microcohort_core::domain::calibration;
use microcohort_core::domain::practice::check_transfer;
use microcohort_core::domain::practice::log_days;
use microcohort_core::domain::prompt_pack::parse_pack;
use microcohort_core::domain::roles::roles_for_week;
use microcohort_core::domain::roster::Roster;
use microcohort_core::policy::{RejectReason, Submitter};
use microcohort_core::sync::limits::{MAX_LOGS_PER_DAY, MAX_RESPONSE_CHANGE_BYTES};
use microcohort_core::sync::wire::{DocPull, DocStatus, RefusedLog, SyncResponse, WireLog, WireNote};
use serde_bytes::ByteBuf;

use super::admission::{self, Verdict};
use super::documents::{Bindings, CohortProgram, heads, internal, now_ms, pack_of, program_of_cohort, roster};
use super::graph_cache::GraphCache;
use super::log_rules::{self, LogRules, LogVerdict};
use super::primitives::{NewLog, StoryRecord, Tx};
use super::{Device, SyncStats};
use crate::error::ApiError;
use microcohort_core::sync::request::CheckedRequest;

/// Facilitators receive at most this many practice logs per round trip (the rest next time).
const LOGS_PER_RESPONSE: i64 = 5000;
/// Private notes per response; a device asks again after the last.
const NOTES_PER_RESPONSE: i64 = 100;
/// Change rows read at a time while filling a response.
const ROWS_PER_READ: i64 = 512;
/// A device that lacks at least this many of the changes a stored snapshot covers gets the
/// snapshot (one compressed document) instead of those changes.
const CATCH_UP_CHANGES: i64 = 64;

/// One round trip on one connection (a request that writes nothing reads beside the writer).
pub fn sync(
    tx: &dyn Tx,
    graphs: &GraphCache,
    rules: &LogRules,
    device: &Device,
    request: &CheckedRequest,
) -> Result<(SyncResponse, SyncStats), ApiError> {
    let stored = check_and_store(tx, graphs, rules, device, request)?;
    answer(tx, device, request, stored)
}

/// Checks and stores in one transaction (nothing can move in between).
pub fn check_and_store(
    tx: &dyn Tx,
    graphs: &GraphCache,
    rules: &LogRules,
    device: &Device,
    request: &CheckedRequest,
) -> Result<Stored, ApiError> {
    let checked = check_docs(tx, graphs, device, request, false)?;
    store(tx, graphs, rules, device, request, checked)
}

/// What the checking half of a round trip found, before anything is written.
#[derive(Clone)]
pub struct Checked {
    program: CohortProgram,
    /// Per document of the request: whether the user may edit its synthesis, the verdict, and
    /// the document's version it was reached at (checked for a later transaction).
    verdicts: Vec<(WeekRights, Verdict, Option<admission::DocVersion>)>,
}

/// The checking half, which writes nothing, for a [`store`] in a later transaction: the program's
/// bounds, then each document's new changes against what is stored (see
/// [`admission`](super::admission)), with the document's version they were checked at.
pub fn check(tx: &dyn Tx, graphs: &GraphCache, device: &Device, request: &CheckedRequest) -> Result<Checked, ApiError> {
    check_docs(tx, graphs, device, request, true)
}

/// `for_later`: record each document's version, for a write in another transaction.
fn check_docs(
    tx: &dyn Tx,
    graphs: &GraphCache,
    device: &Device,
    request: &CheckedRequest,
    for_later: bool,
) -> Result<Checked, ApiError> {
    let program = program_of_cohort(tx, &device.cohort_id)?;
    let blueprint = &program.blueprint;
    for item in &request.docs {
        if let DocId::Week { week, .. } = item.doc
            && week > blueprint.weeks
        {
            return Err(ApiError::NotFound(format!("{}: the program has no week {week}", item.id)));
        }
    }
    // Roles matter only to changes; a sync that pushes none never reads the roster.
    let roster = if request.writes() { roster(tx, &device.cohort_id)? } else { Roster::new(Vec::new()) };
    let mut bindings = Bindings::new(tx);
    let mut verdicts = Vec::with_capacity(request.docs.len());
    for item in &request.docs {
        let rights = match item.doc {
            DocId::Week { week, .. } => {
                let roles = roles_for_week(blueprint, &roster, week);
                WeekRights {
                    may_edit_synthesis: roles.may_edit_synthesis(&device.user_id),
                    leads_critique: roles.critique_lead.as_deref() == Some(device.user_id.as_str()),
                }
            }
            DocId::Cohort { .. } => WeekRights::default(),
        };
        let (verdict, seen) = match (item.changes.is_empty(), program.arm) {
            (true, _) => (Verdict::Answer(DocStatus::Ok, None), None),
            // Nothing is written to a control arm's documents; its practice logs still count.
            (false, Arm::Control) => {
                let detail = format!("{} is a control arm: it has no peers to share with", device.cohort_id);
                (Verdict::Answer(DocStatus::Rejected { reason: "control_arm".into(), detail }, None), None)
            }
            (false, Arm::Cohort) => {
                let seen = if for_later { Some(admission::version(tx, &item.id)?) } else { None };
                let submitter = submitter(device, rights);
                (admission::check(tx, graphs, item, submitter, &mut bindings, seen.clone())?, seen)
            }
        };
        verdicts.push((rights, verdict, seen));
    }
    Ok(Checked { program, verdicts })
}

/// What a member's weekly role lets her write in a week document.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct WeekRights {
    may_edit_synthesis: bool,
    leads_critique: bool,
}

fn submitter(device: &Device, rights: WeekRights) -> Submitter<'_> {
    Submitter {
        user_id: &device.user_id,
        facilitator: device.role == "facilitator",
        may_edit_synthesis: rights.may_edit_synthesis,
        leads_critique: rights.leads_critique,
    }
}

/// What the write half of a round trip did.
pub struct Stored {
    program: CohortProgram,
    statuses: Vec<DocStatus>,
    acked: Vec<String>,
    refused: Vec<RefusedLog>,
    stories: (Vec<String>, Vec<RefusedLog>),
    calibration: CalibrationAnswer,
    stats: SyncStats,
}

/// Calibration ratings kept (`(exemplar, rated_at)`) and refused.
type CalibrationAnswer = (Vec<(String, i64)>, Vec<RefusedLog>);

/// The write half, in the storage's write transaction: stores what was checked (all or nothing
/// per document; a document written to since it was checked in an earlier transaction is
/// checked again here) and the practice logs.
pub fn store(
    tx: &dyn Tx,
    graphs: &GraphCache,
    rules: &LogRules,
    device: &Device,
    request: &CheckedRequest,
    checked: Checked,
) -> Result<Stored, ApiError> {
    let Checked { program, verdicts } = checked;
    let resent = check_logs(tx, device, request, &program.program_id, &program.blueprint)?;
    // Every document this request may write is locked up front, in one order for all requests,
    // so concurrent writers to several documents never wait on each other in a cycle.
    let mut writes: Vec<&str> = request.docs.iter().filter(|w| !w.changes.is_empty()).map(|w| w.id.as_str()).collect();
    writes.sort_unstable();
    for doc in writes {
        tx.lock_doc(doc)?;
    }

    let mut stats = SyncStats::default();
    let mut statuses = Vec::with_capacity(request.docs.len());
    let mut bindings = Bindings::new(tx);
    for (item, (rights, verdict, seen)) in request.docs.iter().zip(verdicts) {
        let check_again = match &verdict {
            Verdict::Store(admitted) => !admission::still_valid(tx, item, &device.user_id, admitted)?,
            // A refusal (or a missing dependency) reached before this transaction may rest on
            // reads from either side of another writer's commit: it stands only if the document
            // has not moved since.
            Verdict::Answer(status, _) => match &seen {
                Some(seen) if *status != DocStatus::Ok => admission::version(tx, &item.id)? != *seen,
                _ => false,
            },
        };
        let verdict = match check_again {
            true => admission::check(tx, graphs, item, submitter(device, rights), &mut bindings, None)?,
            false => verdict,
        };
        statuses.push(match verdict {
            Verdict::Store(admitted) => admission::write(tx, item, &device.user_id, admitted, &mut stats)?,
            Verdict::Answer(status, reason) => {
                stats.rejected.extend(reason);
                status
            }
        });
    }

    let mut acked = Vec::with_capacity(request.practice_logs.len());
    let mut refused = Vec::new();
    let today = chrono::Utc::now().date_naive();
    for log in &request.practice_logs {
        if resent.contains(log.id.as_str()) {
            // A resend: it was judged when it first arrived.
            acked.push(log.id.clone());
            continue;
        }
        let late_arrival = match log_rules::judge(log, program.blueprint.start_date, today, rules) {
            LogVerdict::Refuse(refusal) => {
                refused.push(refusal);
                continue;
            }
            LogVerdict::Keep { late_arrival } => late_arrival,
        };
        let owner = match &log.corrects {
            Some(corrected) => tx.practice_log_user(corrected)?,
            None => None,
        };
        if let Some(refusal) = log_rules::refuse_correction(log, &device.user_id, owner.as_deref()) {
            refused.push(refusal);
            continue;
        }
        let log = WireLog { user_id: device.user_id.clone(), late_arrival, ..log.clone() };
        let body = serde_json::to_string(&log).map_err(internal)?;
        let row = NewLog {
            id: &log.id,
            user_id: &device.user_id,
            cohort_id: &device.cohort_id,
            local_date: &log.local_date,
            body: &body,
        };
        tx.insert_practice_log(&row, now_ms())?;
        acked.push(log.id);
    }
    let stories = store_stories(tx, device, request, &program.program_id)?;
    let calibration = store_calibration(tx, device, request, &program)?;
    Ok(Stored { program, statuses, acked, refused, stories, calibration, stats })
}

/// Calibration ratings, each of an exemplar of the program's pack with one score 1..=5 per
/// criterion of its rubric.
fn store_calibration(
    tx: &dyn Tx,
    device: &Device,
    request: &CheckedRequest,
    program: &CohortProgram,
) -> Result<CalibrationAnswer, ApiError> {
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    if request.calibration.is_empty() {
        return Ok((acked, refused));
    }
    // Calibration prepares peer feedback: a control arm gives none.
    if program.arm == Arm::Control {
        let refuse = |r: &microcohort_core::sync::wire::WireCalibration| RefusedLog {
            id: r.exemplar_id.clone(),
            reason: "control_arm".into(),
            detail: format!("{} is a control arm: it gives no peer feedback to calibrate", device.cohort_id),
        };
        return Ok((acked, request.calibration.iter().map(refuse).collect()));
    }
    let file = pack_of(tx, &program.program_id)?;
    let pack = parse_pack(&file.file_name, &file.toml).map_err(internal)?;
    for rating in &request.calibration {
        let id = rating.exemplar_id.clone();
        let checked =
            calibration::exemplar(&pack, &id).and_then(|(_, rubric)| calibration::check_scores(rubric, &rating.scores));
        match checked {
            Ok(()) => {
                let scores = serde_json::to_string(&rating.scores).map_err(internal)?;
                tx.upsert_calibration(&device.cohort_id, &device.user_id, &id, &scores, rating.rated_at)?;
                acked.push((id, rating.rated_at));
            }
            Err(err) => {
                let reason = if pack.exemplars.iter().any(|e| e.id == id) { "scores" } else { "unknown_exemplar" };
                refused.push(RefusedLog { id, reason: reason.into(), detail: err.to_string() });
            }
        }
    }
    Ok((acked, refused))
}

/// Transfer stories, each about a log of hers the server holds (stored before, or just now).
fn store_stories(
    tx: &dyn Tx,
    device: &Device,
    request: &CheckedRequest,
    program_id: &str,
) -> Result<(Vec<String>, Vec<RefusedLog>), ApiError> {
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    let refuse = |id: &str, reason: &str, detail: &str| RefusedLog {
        id: id.to_owned(),
        reason: reason.to_owned(),
        detail: detail.to_owned(),
    };
    for story in &request.stories {
        let Some((owner, cohort_id, body)) = tx.practice_log_body(&story.log_id)? else {
            refused.push(refuse(&story.log_id, "unknown_log", "the server has no such practice log"));
            continue;
        };
        if owner != device.user_id {
            refused.push(refuse(&story.log_id, "not_yours", "a story is about one of her own practice logs"));
            continue;
        }
        // The server wrote this body itself.
        let log: WireLog = serde_json::from_str(&body).map_err(internal)?;
        if log.program_id != program_id {
            refused.push(refuse(&story.log_id, "other_program", "the log belongs to another program"));
            continue;
        }
        // Checked as the request was decoded; kept as checked (trimmed, no empty link).
        let evidence = check_transfer(&story.evidence).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        tx.insert_story(&StoryRecord {
            log_id: story.log_id.clone(),
            user_id: device.user_id.clone(),
            cohort_id,
            prompt_id: log.prompt_id,
            local_date: log.local_date,
            kind: evidence.kind.as_str().to_owned(),
            note: evidence.note,
            link: evidence.link,
            shared_at: now_ms(),
        })?;
        acked.push(story.log_id.clone());
    }
    Ok((acked, refused))
}

/// The read half, on what is committed (after the write half's commit, outside its lock): what
/// each device lacks, a page at a time, the cohort's practice logs for a facilitator, and a
/// newer prompt pack.
pub fn answer(
    tx: &dyn Tx,
    device: &Device,
    request: &CheckedRequest,
    stored: Stored,
) -> Result<(SyncResponse, SyncStats), ApiError> {
    let Stored { program, statuses, acked, refused, stories, calibration, mut stats } = stored;
    let mut docs = Vec::with_capacity(request.docs.len());
    let mut budget = MAX_RESPONSE_CHANGE_BYTES;
    for (item, status) in request.docs.iter().zip(statuses) {
        // Heads before changes: the changes then cover at least those heads.
        let mut server_heads = heads(tx, &item.id)?;
        let watermark = match status {
            DocStatus::Ok => watermark(tx, &item.id, &item.known)?,
            _ => Some(0),
        };
        let status = match (status, watermark) {
            (DocStatus::Ok, None) if removed_head(tx, &item.id, &item.known)? => repaired(&mut stats, &item.id),
            (status, _) => status,
        };
        let (changes, more, snapshot) = match &status {
            // The device drops its branch (or learns what to resend) and asks again.
            DocStatus::NeedFrom | DocStatus::Rejected { .. } => (Vec::new(), false, None),
            DocStatus::Ok => {
                let pushed: HashSet<ChangeHash> = item.changes.iter().map(|c| c.hash).collect();
                let watermark = watermark.unwrap_or(0);
                // A device that lacks much of the document starts from its saved form.
                let snapshot = match request.accepts_snapshots {
                    true => catch_up_snapshot(tx, &item.id, watermark, &mut budget)?,
                    false => None,
                };
                let (after, last) = match &snapshot {
                    Some(snapshot) => (snapshot.upto, Some(snapshot.last.clone())),
                    None => (watermark, None),
                };
                let page = page(tx, &item.id, after, last, &pushed, &mut budget)?;
                if page.more {
                    // What the device will hold after this page: everything up to its last change.
                    server_heads = match page.last {
                        Some(last) => vec![ByteBuf::from(last)],
                        None => item.known.clone(),
                    };
                }
                (page.changes, page.more, snapshot.map(|s| ByteBuf::from(s.bytes)))
            }
        };
        let moved = !item.changes.is_empty() || !changes.is_empty() || snapshot.is_some();
        let late_entries = match (&item.doc, moved) {
            (DocId::Week { week, .. }, true) => late_entries(tx, &item.id, &program.blueprint, *week)?,
            _ => Vec::new(),
        };
        docs.push(DocPull { doc_id: item.id.clone(), status, changes, server_heads, more, snapshot, late_entries });
    }

    let program_id = &program.program_id;
    let facilitator = device.role == "facilitator";
    let (practice_logs, logs_watermark) = if facilitator {
        let since = i64::try_from(request.logs_since).unwrap_or(i64::MAX);
        let mut logs = Vec::new();
        let mut watermark = request.logs_since;
        for (seq, body) in tx.practice_logs_after(&device.cohort_id, since, &device.user_id, LOGS_PER_RESPONSE)? {
            watermark = watermark.max(seq as u64);
            // Another person's private text is not the facilitator's, even sealed.
            let log = serde_json::from_str::<WireLog>(&body).map_err(internal)?;
            logs.push(WireLog { sealed: None, ..log });
        }
        (logs, watermark)
    } else {
        (Vec::new(), request.logs_since)
    };
    let prompts = if program.pack_version > request.prompts_since { Some(pack_of(tx, program_id)?) } else { None };
    let (history, history_next) = match request.history_after {
        Some(after) => own_history(tx, device, after)?,
        None => (Vec::new(), None),
    };
    let notes = match request.notes_after {
        Some(after) => tx
            .notes_after(
                &device.cohort_id,
                &device.user_id,
                i64::try_from(after).unwrap_or(i64::MAX),
                NOTES_PER_RESPONSE,
            )?
            .into_iter()
            .map(|n| WireNote {
                seq: u64::try_from(n.seq).unwrap_or(0),
                id: n.id,
                from: n.from_user,
                body: n.body,
                created_at: n.created_at,
            })
            .collect(),
        None => Vec::new(),
    };
    let response = SyncResponse {
        docs,
        practice_logs_acked: acked,
        practice_logs_refused: refused,
        practice_logs,
        logs_watermark,
        prompts,
        server_time: now_ms(),
        profile: tx.user_profile(&device.user_id)?,
        seen_until: tx.seen_until(&device.user_id)?,
        history,
        history_next,
        notes,
        stories_acked: stories.0,
        stories_refused: stories.1,
        calibration_acked: calibration.0,
        calibration_refused: calibration.1,
    };
    Ok((response, stats))
}

/// The week's feedback and replies stored after its window closed (none while it is open).
fn late_entries(
    tx: &dyn Tx,
    doc: &str,
    blueprint: &microcohort_core::domain::blueprint::Blueprint,
    week: u32,
) -> Result<Vec<String>, ApiError> {
    match blueprint.feedback_closes_at(week) {
        Some(closes) if closes.timestamp_millis() <= now_ms() => {
            tx.entries_stored_after(doc, closes.timestamp_millis())
        }
        _ => Ok(Vec::new()),
    }
}

/// A page of the person's own practice logs for a device that asked (a new device of hers), and
/// where the next page starts (`None`: that was all).
fn own_history(tx: &dyn Tx, device: &Device, after: u64) -> Result<(Vec<WireLog>, Option<u64>), ApiError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let rows = tx.own_logs_after(&device.user_id, after, LOGS_PER_RESPONSE)?;
    let next = (rows.len() as i64 == LOGS_PER_RESPONSE).then(|| rows.last().map(|(seq, _)| *seq as u64)).flatten();
    let logs = rows
        .iter()
        .map(|(_, body)| serde_json::from_str::<WireLog>(body).map_err(internal))
        .collect::<Result<_, _>>()?;
    Ok((logs, next))
}

/// Practice logs belong to this cohort's program, lie within a year of it, and no learner records
/// more than [`MAX_LOGS_PER_DAY`] for one day (logs already stored are resends and count once).
/// Returns the ids of those resends.
fn check_logs<'a>(
    tx: &dyn Tx,
    device: &Device,
    request: &'a CheckedRequest,
    program_id: &str,
    blueprint: &microcohort_core::domain::blueprint::Blueprint,
) -> Result<HashSet<&'a str>, ApiError> {
    let (earliest, latest) = log_days(blueprint);
    let mut per_day: HashMap<&str, i64> = HashMap::new();
    let mut resent = HashSet::new();
    for log in &request.practice_logs {
        let bad = |problem: String| ApiError::BadRequest(format!("practice log {}: {problem}", log.id));
        if log.program_id != program_id {
            return Err(bad("program_id: not this cohort's program".into()));
        }
        let day: chrono::NaiveDate = log.local_date.parse().map_err(|_| bad("local_date: not a date".into()))?;
        if day < earliest || day > latest {
            return Err(bad(format!("local_date: {day} is more than a year from the program")));
        }
        if tx.practice_log_exists(&log.id)? {
            resent.insert(log.id.as_str());
            continue;
        }
        let count = match per_day.get_mut(log.local_date.as_str()) {
            Some(count) => count,
            None => per_day.entry(&log.local_date).or_insert(tx.logs_on_day(&device.user_id, &log.local_date)?),
        };
        *count += 1;
        if *count > MAX_LOGS_PER_DAY as i64 {
            return Err(ApiError::TooLarge(format!(
                "practice logs: more than {MAX_LOGS_PER_DAY} for {day} by one learner (too_many_logs)"
            )));
        }
    }
    Ok(resent)
}

/// The answer to a device whose copy holds changes `admin repair` removed.
fn repaired(stats: &mut SyncStats, doc: &str) -> DocStatus {
    stats.rejected.push(RejectReason::Repaired);
    admission::repaired(doc)
}

/// The newest `doc_seq` among the heads a device was given; every change up to it was stored
/// when those heads were answered (`doc_seq` grows in commit order per document). `None` when a
/// head is unknown: the device is sent everything.
fn watermark(tx: &dyn Tx, doc: &str, known: &[ByteBuf]) -> Result<Option<i64>, ApiError> {
    let mut newest = 0;
    for head in known {
        match tx.change_seq(doc, head)? {
            Some(seq) => newest = newest.max(seq),
            None => return Ok(None),
        }
    }
    Ok(Some(newest))
}

/// Whether a device's heads include a change `admin repair` removed.
fn removed_head(tx: &dyn Tx, doc: &str, known: &[ByteBuf]) -> Result<bool, ApiError> {
    for head in known {
        if tx.was_removed(doc, head)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A document's saved form for a device that lacks much of it.
struct Snapshot {
    /// The last `doc_seq` it covers, and the hash of that change.
    upto: i64,
    last: Vec<u8>,
    bytes: Vec<u8>,
}

/// The stored snapshot, when it covers at least [`CATCH_UP_CHANGES`] changes the device lacks and
/// fits what is left of the response.
fn catch_up_snapshot(tx: &dyn Tx, doc: &str, watermark: i64, budget: &mut usize) -> Result<Option<Snapshot>, ApiError> {
    match tx.snapshot_upto(doc)? {
        Some(upto) if upto >= watermark + CATCH_UP_CHANGES => {}
        _ => return Ok(None),
    }
    let Some((upto, bytes)) = tx.snapshot(doc)? else { return Ok(None) };
    let Some(last) = tx.change_at(doc, upto)? else { return Ok(None) };
    if bytes.len() > *budget {
        return Ok(None);
    }
    *budget -= bytes.len();
    Ok(Some(Snapshot { upto, last, bytes }))
}

/// Changes for a response, in `doc_seq` order, within what is left of its byte budget.
struct Page {
    changes: Vec<ByteBuf>,
    /// The budget ran out before the document's last change.
    more: bool,
    /// The hash of the last change the device holds when the page is cut short.
    last: Option<Vec<u8>>,
}

/// Changes after `after`; `last` is the change at `after` when the device will hold it.
fn page(
    tx: &dyn Tx,
    doc: &str,
    after: i64,
    last: Option<Vec<u8>>,
    skip: &HashSet<ChangeHash>,
    budget: &mut usize,
) -> Result<Page, ApiError> {
    let mut page = Page { changes: Vec::new(), more: false, last };
    let mut cursor = after;
    loop {
        let rows = tx.changes_after(doc, cursor, ROWS_PER_READ)?;
        let done = (rows.len() as i64) < ROWS_PER_READ;
        for row in rows {
            cursor = row.doc_seq;
            let known = ChangeHash::try_from(row.hash.as_slice()).map(|h| skip.contains(&h)).unwrap_or(false);
            if known {
                continue;
            }
            if row.body.len() > *budget {
                page.more = true;
                return Ok(page);
            }
            *budget -= row.body.len();
            page.changes.push(ByteBuf::from(row.body));
            page.last = Some(row.hash);
        }
        if done {
            page.last = None;
            return Ok(page);
        }
    }
}

//! What the server holds, as xAPI 2.0 statements: pure mapping, no IO.
//!
//! Each statement's id is a UUID v5 of what it records (its kind and our own id), so building it
//! again, after a restart or on another server process, gives the same id and the same bytes:
//! the LRS keeps one copy however often it is sent. Statements name learners by their account on
//! this server only (no display name) and carry no free text: no reflection, no note, no
//! feedback body, only ids, choices and scores.

use chrono::{DateTime, SecondsFormat};
use microcohort_core::docs::projection::{EntryMeta, WeekRows};
use microcohort_core::domain::calibration::agreement;
use microcohort_core::sync::wire::WireLog;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use uuid::Uuid;

/// The xAPI version the statements follow (sent as `X-Experience-API-Version`).
pub const XAPI_VERSION: &str = "2.0.0";

/// Verbs: the ADL vocabulary where it has one, then cmi5, Activity Streams and the TinCan registry.
pub mod verbs {
    pub const COMPLETED: (&str, &str) = ("http://adlnet.gov/expapi/verbs/completed", "completed");
    pub const ABANDONED: (&str, &str) = ("https://w3id.org/xapi/adl/verbs/abandoned", "abandoned");
    pub const SHARED: (&str, &str) = ("http://adlnet.gov/expapi/verbs/shared", "shared");
    pub const SUBMITTED: (&str, &str) = ("http://activitystrea.ms/schema/1.0/submit", "submitted");
    pub const COMMENTED: (&str, &str) = ("http://adlnet.gov/expapi/verbs/commented", "commented");
    pub const RATED: (&str, &str) = ("http://id.tincanapi.com/verb/rated", "rated");
    pub const SCORED: (&str, &str) = ("http://adlnet.gov/expapi/verbs/scored", "scored");
    pub const VOIDED: (&str, &str) = ("http://adlnet.gov/expapi/verbs/voided", "voided");
}

/// Every statement id is a UUID v5 in this namespace (itself the v5 of a fixed URL).
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:microcohort:xapi:statements")
}

/// The id of the statement recording `what` (for example `practice:<log id>`).
pub fn statement_id(what: &str) -> Uuid {
    Uuid::new_v5(&namespace(), what.as_bytes())
}

/// A statement ready for the queue. `voids` names the statement a voiding statement voids: it
/// is queued only when that one was, so an LRS never hears of a void before the statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub id: Uuid,
    pub voids: Option<Uuid>,
    pub json: String,
}

/// What an id may hold as it is in an IRI path segment; everything else is percent-encoded
/// (ids come from devices and packs, and a space or `#` would make an invalid IRI).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn seg(id: &str) -> String {
    utf8_percent_encode(id, SEGMENT).to_string()
}

/// Where the statements are about: the server's address (the learners' accounts and every
/// activity id live under it), the program and the cohort.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub home: &'a str,
    pub program_id: &'a str,
    pub cohort_id: &'a str,
}

impl Scope<'_> {
    fn iri(&self, path: &str) -> String {
        format!("{}/xapi/{path}", self.home.trim_end_matches('/'))
    }

    fn actor(&self, user_id: &str) -> Value {
        json!({ "objectType": "Agent", "account": { "homePage": self.home, "name": user_id } })
    }

    fn activity(&self, path: &str, kind: &str, name: &str) -> Value {
        json!({
            "objectType": "Activity",
            "id": self.iri(path),
            "definition": { "type": self.iri(&format!("activity-types/{kind}")), "name": { "en": name } },
        })
    }

    fn extension(&self, name: &str) -> String {
        self.iri(&format!("extensions/{name}"))
    }

    /// The program and the cohort, as context; the learner's registration is one per program.
    fn context(&self, user_id: &str, extensions: Value) -> Value {
        let registration = statement_id(&format!("registration:{}:{user_id}", self.program_id));
        let mut context = json!({
            "registration": registration.to_string(),
            "contextActivities": { "grouping": [
                self.activity(&format!("programs/{}", seg(self.program_id)), "program", self.program_id),
                self.activity(&format!("cohorts/{}", seg(self.cohort_id)), "cohort", self.cohort_id),
            ] },
        });
        if extensions.as_object().is_some_and(|e| !e.is_empty()) {
            context["extensions"] = extensions;
        }
        context
    }

    fn prompt(&self, prompt_id: &str) -> Value {
        self.activity(&format!("programs/{}/prompts/{}", seg(self.program_id), seg(prompt_id)), "prompt", prompt_id)
    }

    fn submission(&self, week: u32, key: &str) -> Value {
        self.activity(
            &format!("cohorts/{}/weeks/{week}/submissions/{}", seg(self.cohort_id), seg(key)),
            "submission",
            key,
        )
    }
}

fn verb((id, display): (&str, &str)) -> Value {
    json!({ "id": id, "display": { "en": display } })
}

/// Milliseconds since the epoch as an xAPI timestamp; a device clock far out of range is
/// clamped, so the statement stays valid and its bytes stay the same.
fn timestamp(ms: i64) -> String {
    let ms = ms.clamp(0, 253_402_300_799_999);
    DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn finish(what: &str, mut body: Value, at_ms: i64, voids: Option<Uuid>) -> Statement {
    let id = statement_id(what);
    body["id"] = json!(id.to_string());
    body["timestamp"] = json!(timestamp(at_ms));
    body["version"] = json!(XAPI_VERSION);
    Statement { id, voids, json: body.to_string() }
}

/// Voids the statement recorded as `what`: a correction, a retraction.
fn voiding(scope: &Scope, actor: &str, what: &str, at_ms: i64) -> Statement {
    let voided = statement_id(what);
    let body = json!({
        "actor": scope.actor(actor),
        "verb": verb(verbs::VOIDED),
        "object": { "objectType": "StatementRef", "id": voided.to_string() },
    });
    finish(&format!("voided:{what}"), body, at_ms, Some(voided))
}

/// A practice log: completed or abandoned, its length and whether it carried transfer evidence
/// (the kind only, never the note); a correction also voids the log it corrects.
pub fn practice(scope: &Scope, log: &WireLog) -> Vec<Statement> {
    let completed = log.status == "completed";
    let mut result = json!({ "completion": completed });
    if let Some(secs) = log.duration_secs {
        result["duration"] = json!(format!("PT{secs}S"));
    }
    if let Some(kind) = &log.transfer_kind {
        result["extensions"] = json!({ scope.extension("transfer-kind"): kind });
    }
    let extensions = json!({
        scope.extension("pack-version"): log.pack_version,
        scope.extension("local-date"): log.local_date,
        scope.extension("time-zone"): log.time_zone,
        scope.extension("late-arrival"): log.late_arrival,
    });
    let body = json!({
        "actor": scope.actor(&log.user_id),
        "verb": verb(if completed { verbs::COMPLETED } else { verbs::ABANDONED }),
        "object": scope.prompt(&log.prompt_id),
        "result": result,
        "context": scope.context(&log.user_id, extensions),
    });
    let mut out = vec![finish(&format!("practice:{}", log.id), body, log.started_at, None)];
    if let Some(corrected) = &log.corrects {
        out.push(voiding(scope, &log.user_id, &format!("practice:{corrected}"), log.recorded_at));
    }
    out
}

fn week_extensions(scope: &Scope, week: u32) -> Value {
    json!({ scope.extension("week"): week })
}

/// A week's shares and capstones, the feedback on them and the ratings of that feedback; what
/// its author retracted is voided.
pub fn week(scope: &Scope, week: u32, rows: &WeekRows) -> Vec<Statement> {
    let mut out = Vec::new();
    let retracted = |out: &mut Vec<Statement>, meta: &EntryMeta, what: &str| {
        out.push(voiding(scope, &meta.author, what, meta.edited_at.unwrap_or(meta.created_at)));
    };
    let authors: std::collections::HashMap<&str, &str> =
        rows.submissions.iter().map(|s| (s.meta.key.as_str(), s.meta.author.as_str())).collect();
    for s in &rows.submissions {
        let what = format!("submission:{}:{}", scope.cohort_id, s.meta.key);
        if s.meta.retracted {
            retracted(&mut out, &s.meta, &what);
            continue;
        }
        let mut extensions = week_extensions(scope, week);
        extensions[scope.extension("kind")] = json!(s.kind);
        if let Some(prompt) = &s.prompt_id {
            extensions[scope.extension("prompt")] = json!(scope.prompt(prompt)["id"]);
        }
        let mut context = scope.context(&s.meta.author, extensions);
        if let Some(log) = &s.practice_log {
            context["statement"] =
                json!({ "objectType": "StatementRef", "id": statement_id(&format!("practice:{log}")).to_string() });
        }
        let body = json!({
            "actor": scope.actor(&s.meta.author),
            "verb": verb(if s.kind == "capstone" { verbs::SUBMITTED } else { verbs::SHARED }),
            "object": scope.submission(week, &s.meta.key),
            "context": context,
        });
        out.push(finish(&what, body, s.meta.created_at, None));
    }
    for f in &rows.feedback {
        let what = format!("feedback:{}:{}", scope.cohort_id, f.meta.key);
        if f.meta.retracted {
            retracted(&mut out, &f.meta, &what);
            continue;
        }
        // As the report counts it: on a submission that exists, never on the reviewer's own.
        let Some(author) = authors.get(f.submission.as_str()) else { continue };
        if *author == f.meta.author {
            continue;
        }
        let mut result_extensions = json!({
            scope.extension("criteria-addressed"): f.criteria,
            scope.extension("has-suggestion"): f.suggestion.as_deref().is_some_and(|s| !s.trim().is_empty()),
        });
        if !f.scores.is_empty() {
            result_extensions[scope.extension("criteria-scores")] = json!(f.scores);
        }
        let body = json!({
            "actor": scope.actor(&f.meta.author),
            "verb": verb(verbs::COMMENTED),
            "object": scope.submission(week, &f.submission),
            "result": { "extensions": result_extensions },
            "context": scope.context(&f.meta.author, week_extensions(scope, week)),
        });
        out.push(finish(&what, body, f.meta.created_at, None));
    }
    let feedback_on: std::collections::HashMap<&str, &str> =
        rows.feedback.iter().map(|f| (f.meta.key.as_str(), f.submission.as_str())).collect();
    // Counted as the report counts them; a score outside the scale would be an invalid result.
    for r in rows.ratings.iter().filter(|r| r.counted && !r.meta.retracted && (1..=5).contains(&r.score)) {
        let Some(submission) = feedback_on.get(r.feedback.as_str()) else { continue };
        // Each version of a rating is its own statement: a changed rating is a new judgement.
        let at = r.meta.edited_at.unwrap_or(r.meta.created_at);
        let what = format!("rating:{}:{}:{at}", scope.cohort_id, r.meta.key);
        let feedback = scope.activity(
            &format!(
                "cohorts/{}/weeks/{week}/submissions/{}/feedback/{}",
                seg(scope.cohort_id),
                seg(submission),
                seg(&r.feedback)
            ),
            "feedback",
            &r.feedback,
        );
        let body = json!({
            "actor": scope.actor(&r.meta.author),
            "verb": verb(verbs::RATED),
            "object": feedback,
            "result": { "score": { "raw": r.score, "min": 1, "max": 5 } },
            "context": scope.context(&r.meta.author, week_extensions(scope, week)),
        });
        out.push(finish(&what, body, at, None));
    }
    out
}

/// A learner's calibration rating of an exemplar, with how close it came to the reference:
/// `scaled` is the share of criteria within one point of it.
pub fn calibration(
    scope: &Scope,
    user_id: &str,
    exemplar_id: &str,
    scores: &[u8],
    reference: Option<&[u8]>,
    rated_at: i64,
) -> Statement {
    let mut result = json!({ "extensions": { scope.extension("criteria-scores"): scores } });
    if let Some(reference) = reference {
        let agreement = agreement([(scores, reference)]);
        if let (Some(close), Some(off)) = (agreement.within_one, agreement.mean_abs_difference) {
            result["score"] = json!({ "scaled": close });
            result["extensions"][scope.extension("mean-difference")] = json!(off);
        }
    }
    let exemplar = scope.activity(
        &format!("programs/{}/exemplars/{}", seg(scope.program_id), seg(exemplar_id)),
        "exemplar",
        exemplar_id,
    );
    let body = json!({
        "actor": scope.actor(user_id),
        "verb": verb(verbs::SCORED),
        "object": exemplar,
        "result": result,
        "context": scope.context(user_id, json!({})),
    });
    finish(&format!("calibration:{}:{user_id}:{exemplar_id}:{rated_at}", scope.program_id), body, rated_at, None)
}

#[cfg(test)]
mod tests {
    use microcohort_core::docs::projection::{FeedbackRow, RatingRow, SubmissionRow};

    use super::*;

    fn log(status: &str) -> WireLog {
        WireLog {
            id: "log-1".into(),
            user_id: "u1".into(),
            program_id: "p1".into(),
            pack_id: "pack".into(),
            pack_version: 3,
            prompt_id: "w01-d1".into(),
            started_at: 1_767_261_600_000,
            time_zone: "Europe/Berlin".into(),
            local_date: "2026-01-01".into(),
            status: status.into(),
            duration_secs: Some(600),
            transfer_kind: Some("applied_at_work".into()),
            corrects: None,
            recorded_at: 1_767_262_200_000,
            sealed: Some(serde_bytes::ByteBuf::from(b"PRIVATE reflection".to_vec())),
            late_arrival: false,
        }
    }

    const SCOPE: Scope = Scope { home: "https://learn.example.org", program_id: "p1", cohort_id: "c1" };

    #[test]
    fn a_practice_becomes_one_statement_with_the_same_id_and_bytes_every_time() {
        let first = practice(&SCOPE, &log("completed"));
        assert_eq!(first, practice(&SCOPE, &log("completed")));
        assert_eq!(first.len(), 1);
        let body: Value = serde_json::from_str(&first[0].json).unwrap();
        assert_eq!(body["id"], first[0].id.to_string());
        assert_eq!(body["verb"]["id"], verbs::COMPLETED.0);
        assert_eq!(body["actor"]["account"], json!({ "homePage": "https://learn.example.org", "name": "u1" }));
        assert_eq!(body["object"]["id"], "https://learn.example.org/xapi/programs/p1/prompts/w01-d1");
        assert_eq!(body["result"]["duration"], "PT600S");
        assert_eq!(body["timestamp"], "2026-01-01T10:00:00.000Z");
        assert!(!first[0].json.contains("PRIVATE"), "the sealed reflection never goes");
        let abandoned = practice(&SCOPE, &log("abandoned"));
        assert_eq!(abandoned[0].id, first[0].id, "one log, one statement id");
        assert!(abandoned[0].json.contains(verbs::ABANDONED.0));
    }

    #[test]
    fn a_correction_voids_the_statement_of_the_log_it_corrects() {
        let mut correction = log("completed");
        correction.id = "log-2".into();
        correction.corrects = Some("log-1".into());
        let statements = practice(&SCOPE, &correction);
        assert_eq!(statements.len(), 2);
        let original = practice(&SCOPE, &log("completed"))[0].id;
        assert_eq!(statements[1].voids, Some(original));
        let body: Value = serde_json::from_str(&statements[1].json).unwrap();
        assert_eq!(body["object"], json!({ "objectType": "StatementRef", "id": original.to_string() }));
        assert_eq!(body["verb"]["id"], verbs::VOIDED.0);
    }

    #[test]
    fn calibration_statements_differ_per_rating_and_score_agreement() {
        let one = calibration(&SCOPE, "u1", "ex-1", &[3, 5], Some(&[3, 3]), 10);
        let again = calibration(&SCOPE, "u1", "ex-1", &[3, 3], Some(&[3, 3]), 20);
        assert_ne!(one.id, again.id, "a new rating is a new statement");
        let body: Value = serde_json::from_str(&one.json).unwrap();
        assert_eq!(body["result"]["score"]["scaled"], 0.5);
    }

    fn meta(key: &str, author: &str, at: i64) -> EntryMeta {
        EntryMeta {
            key: key.into(),
            author: author.into(),
            created_at: at,
            edited_at: None,
            retracted: false,
            hidden: None,
        }
    }

    fn submission(key: &str, author: &str, kind: &str) -> SubmissionRow {
        SubmissionRow {
            meta: meta(key, author, 1_000),
            kind: kind.into(),
            title: "TITLE".into(),
            body: "BODY".into(),
            prompt_id: Some("w12-capstone".into()),
            attachments: vec![],
            practice_log: None,
        }
    }

    fn feedback(key: &str, author: &str, on: &str) -> FeedbackRow {
        FeedbackRow {
            meta: meta(key, author, 2_000),
            submission: on.into(),
            body: "FEEDBACK TEXT".into(),
            suggestion: Some("SUGGESTION".into()),
            criteria: vec![0, 2],
            scores: vec![4, 5, 3],
            endorsed_by: None,
        }
    }

    fn rating(key: &str, author: &str, feedback: &str, score: i64, counted: bool) -> RatingRow {
        RatingRow { meta: meta(key, author, 3_000), feedback: feedback.into(), score, counted }
    }

    #[test]
    fn a_week_gives_what_the_report_counts_and_voids_what_was_retracted() {
        let mut retracted = submission("s2", "ben", "practice");
        retracted.meta.retracted = true;
        retracted.meta.edited_at = Some(5_000);
        let rows = WeekRows {
            submissions: vec![submission("s1", "ana", "capstone"), retracted],
            feedback: vec![feedback("f1", "ben", "s1"), feedback("own", "ana", "s1"), feedback("lost", "ben", "nope")],
            ratings: vec![
                rating("r1", "ana", "f1", 5, true),
                rating("r2", "cy", "f1", 1, false),
                rating("r3", "ana", "f1", 9, true),
            ],
            ..Default::default()
        };
        let statements = week(&SCOPE, 12, &rows);
        let bodies: Vec<Value> = statements.iter().map(|s| serde_json::from_str(&s.json).unwrap()).collect();
        let verbs: Vec<&str> = bodies.iter().map(|b| b["verb"]["display"]["en"].as_str().unwrap()).collect();
        // The capstone, the retraction's void, Ben's feedback (not Ana's on her own, not on no
        // submission), Ana's counted rating within the scale.
        assert_eq!(verbs, ["submitted", "voided", "commented", "rated"]);
        assert_eq!(statements[1].voids, Some(statement_id("submission:c1:s2")));
        assert_eq!(bodies[0]["object"]["id"], "https://learn.example.org/xapi/cohorts/c1/weeks/12/submissions/s1");
        assert_eq!(
            bodies[2]["result"]["extensions"]["https://learn.example.org/xapi/extensions/criteria-scores"],
            json!([4, 5, 3])
        );
        assert_eq!(bodies[3]["result"]["score"], json!({ "raw": 5, "min": 1, "max": 5 }));
        assert_eq!(bodies[3]["timestamp"], "1970-01-01T00:00:03.000Z");
        for text in ["TITLE", "BODY", "FEEDBACK TEXT", "SUGGESTION"] {
            assert!(statements.iter().all(|s| !s.json.contains(text)), "{text} is free text");
        }
        assert_eq!(week(&SCOPE, 12, &rows), statements, "the same rows give the same statements");
    }

    #[test]
    fn ids_from_devices_are_encoded_in_activity_iris() {
        let mut odd = log("completed");
        odd.prompt_id = "w01 d1#x/y".into();
        let body: Value = serde_json::from_str(&practice(&SCOPE, &odd)[0].json).unwrap();
        assert_eq!(body["object"]["id"], "https://learn.example.org/xapi/programs/p1/prompts/w01%20d1%23x%2Fy");
    }

    #[test]
    fn out_of_range_device_times_still_give_valid_timestamps() {
        assert_eq!(timestamp(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(i64::MAX), "9999-12-31T23:59:59.999Z");
    }
}

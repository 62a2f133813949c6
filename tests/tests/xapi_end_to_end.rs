//! Learning records reach the organisation's LRS (a real Ralph LRS on loopback): every practice,
//! share, feedback, rating, calibration rating and correction becomes one xAPI statement, the
//! LRS stores each exactly once across an LRS outage and a kill -9 of the server, sync never
//! waits for the LRS, `admin xapi-export` writes the same statements, and nothing private goes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::Utc;
use microcohort_core::domain::practice::{PracticeOutcome, TransferEvidence, TransferKind};
use microcohort_core::domain::prompt_pack::parse_pack;
use microcohort_core::{Client, FeedbackInput, ManualClock};
use microcohort_tests::{
    Backend, LRS_PASSWORD, LRS_USER, RalphLrs, ServerProcess, TestData, admin, http_get, member_device,
    on_both_backends, program_under_way, user_id_of,
};
use serde_json::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");
const HOME: &str = "https://learn.example.org";
const REFLECTION: &str = "PRIVATE: I rushed the last part";
const NOTE: &str = "NOTE: asked the quiet colleague first";
const FEEDBACK: &str = "BODY: your opening question landed well";

on_both_backends!(every_record_reaches_the_lrs_once_across_an_outage_and_a_restart);

fn xapi_flags(lrs: &RalphLrs) -> Vec<String> {
    let flags = ["--xapi-endpoint", &lrs.endpoint(), "--xapi-username", LRS_USER, "--xapi-password", LRS_PASSWORD];
    let more = ["--xapi-interval-secs", "1", "--xapi-home-page", HOME];
    flags.iter().chain(more.iter()).map(|s| s.to_string()).collect()
}

/// Two server processes on one PostgreSQL database both queue what their devices sync; one
/// sends at a time, and the LRS gets every statement once.
#[test]
fn two_servers_on_one_postgres_send_each_statement_once() {
    let Some(lrs) = RalphLrs::start() else { return };
    let Some(data) = TestData::new(Backend::Postgres) else { return };
    program_under_way(SERVER, data.path(), 3, &["c1"]);
    let flags = xapi_flags(&lrs);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (one, two) =
        (ServerProcess::start(SERVER, data.path(), &flags), ServerProcess::start(SERVER, data.path(), &flags));
    let clock = ManualClock::new(Utc::now());
    let ana = member_device(SERVER, &one, data.path(), &clock, "Ana", "learner");
    let ben = member_device(SERVER, &two, data.path(), &clock, "Ben", "learner");
    for _ in 0..15 {
        practise(&ana, &clock, 5);
        practise(&ben, &clock, 6);
        ana.sync_now().unwrap();
        ben.sync_now().unwrap();
    }
    wait_delivered(data.path(), 30, 0, &lrs);
    let statements = exported(data.path());
    assert_eq!(statements.len(), 30);
    lrs_holds_exactly(&lrs, &statements);
}

fn practise(device: &Client, clock: &ManualClock, minutes: u32) -> uuid::Uuid {
    let session = device.start_practice(None).unwrap();
    clock.advance(chrono::Duration::minutes(i64::from(minutes)));
    let outcome = PracticeOutcome {
        duration_secs: Some(minutes * 60),
        reflection: REFLECTION.into(),
        transfer: Some(TransferEvidence { kind: TransferKind::AppliedAtWork, note: NOTE.into(), link: None }),
    };
    device.finish_practice(session.id, &outcome).unwrap().id
}

/// `admin xapi-status`'s first line: (pending, delivered, refused).
fn queue(data: &Path) -> (u64, u64, u64) {
    let status = admin(SERVER, data, &["xapi-status"]);
    let first = status.lines().next().unwrap_or_default().to_owned();
    let numbers: Vec<u64> = first.split_whitespace().filter_map(|word| word.parse().ok()).collect();
    assert_eq!(numbers.len(), 3, "{status}");
    (numbers[0], numbers[1], numbers[2])
}

/// Waits until the queue holds `want` statements delivered and `refused` refused, none pending.
fn wait_delivered(data: &Path, want: u64, refused: u64, lrs: &RalphLrs) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts = queue(data);
        if counts == (0, want, refused) {
            return;
        }
        assert!(Instant::now() < deadline, "queue {counts:?}, want {want} delivered; LRS log:\n{}", lrs.log());
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The statements `admin xapi-export` writes for program p1.
fn exported(data: &Path) -> Vec<Value> {
    let file = data.join("p1-statements.json");
    let export = ["xapi-export", "--program", "p1", "--to", file.to_str().unwrap(), "--xapi-home-page", HOME];
    let said = admin(SERVER, data, &export);
    let statements: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(said.starts_with(&format!("{} statements of p1", statements.len())), "{said}");
    statements
}

fn ids(statements: &[Value]) -> Vec<String> {
    statements.iter().map(|s| s["id"].as_str().expect("an id").to_owned()).collect()
}

fn verbs(statements: &[Value]) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for s in statements {
        *count.entry(s["verb"]["display"]["en"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    count
}

/// The LRS holds exactly the exported statements, each once, with the same content.
fn lrs_holds_exactly(lrs: &RalphLrs, export: &[Value]) {
    let stored = lrs.stored();
    let stored_ids = ids(&stored);
    let unique: BTreeSet<&String> = stored_ids.iter().collect();
    assert_eq!(unique.len(), stored_ids.len(), "a statement stored twice: {stored_ids:?}");
    assert_eq!(unique, ids(export).iter().collect::<BTreeSet<_>>(), "the LRS holds what the server queued");
    for statement in export {
        let twin = stored.iter().find(|s| s["id"] == statement["id"]).unwrap();
        for field in ["actor", "verb", "object", "result", "context", "timestamp"] {
            assert_eq!(twin[field], statement[field], "{field} of {}", statement["id"]);
        }
    }
}

/// A statement the LRS will refuse (it names no actor), queued as if the server had made it,
/// under another program so the export of p1 leaves it out.
fn queue_a_statement_the_lrs_refuses(data: &TestData) {
    const BAD_ID: &str = "00000000-0000-4000-8000-000000000000";
    let bad = serde_json::json!({
        "id": BAD_ID,
        "verb": { "id": "http://adlnet.gov/expapi/verbs/completed" },
        "object": { "objectType": "Activity", "id": format!("{HOME}/xapi/nothing") },
    })
    .to_string();
    let sql = "INSERT INTO xapi_statements (id, program_id, statement) VALUES ($1, 'elsewhere', $2)";
    match data.database_url() {
        Some(url) => {
            let mut db = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
            db.execute(sql, &[&BAD_ID.to_owned(), &bad]).unwrap();
        }
        None => {
            let db = rusqlite::Connection::open(data.path().join(microcohort_server::storage::sqlite::DATABASE_FILE))
                .unwrap();
            db.busy_timeout(Duration::from_secs(10)).unwrap();
            db.execute(&sql.replace('$', "?"), [BAD_ID, &bad]).unwrap();
        }
    }
}

fn every_record_reaches_the_lrs_once_across_an_outage_and_a_restart(backend: Backend) {
    let Some(mut lrs) = RalphLrs::start() else { return };
    let Some(data) = TestData::new(backend) else { return };
    program_under_way(SERVER, data.path(), 3, &["c1"]);
    let flags = xapi_flags(&lrs);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut server = ServerProcess::start(SERVER, data.path(), &flags);
    queue_a_statement_the_lrs_refuses(&data);
    let clock = ManualClock::new(Utc::now());
    let [ana, ben] = ["Ana", "Ben"].map(|name| member_device(SERVER, &server, data.path(), &clock, name, "learner"));
    let (ana_id, ben_id) = (user_id_of(SERVER, data.path(), "c1", "Ana"), user_id_of(SERVER, data.path(), "c1", "Ben"));

    // A day of work: Ana practises and shares it, corrects the length of another practice, and
    // rates an exemplar; Ben abandons one, then gives her feedback, which she rates.
    let shared_log = practise(&ana, &clock, 11);
    let wrong = practise(&ana, &clock, 30);
    let correction = PracticeOutcome { duration_secs: Some(9 * 60), ..Default::default() };
    let corrected = ana.correct_practice(wrong, &correction).unwrap().id;
    let session = ben.start_practice(None).unwrap();
    ben.abandon_practice(session.id).unwrap();
    let share = ana.share_practice(shared_log, "Listening first", "What I tried").unwrap();
    let pack = parse_pack(microcohort_core::DEFAULT_PROMPT_PACK_NAME, microcohort_core::DEFAULT_PROMPT_PACK).unwrap();
    ana.rate_exemplar(&pack.exemplars[0].id, &pack.exemplars[0].reference).unwrap();
    ana.sync_now().unwrap();
    ben.sync_now().unwrap();
    let input = FeedbackInput { body: FEEDBACK.into(), suggestion: Some("Pause longer".into()), ..Default::default() };
    let feedback = ben.give_feedback(&share, &input).unwrap();
    ben.sync_now().unwrap();
    ana.sync_now().unwrap();
    ana.rate_feedback(&feedback, 4).unwrap();
    ana.sync_now().unwrap();

    // 3 practices + 1 correction + 1 voiding, 1 share, 1 feedback, 1 rating, 1 calibration; the
    // statement the LRS refused is set aside with its reason and held up nothing.
    wait_delivered(data.path(), 9, 1, &lrs);
    let status = admin(SERVER, data.path(), &["xapi-status"]);
    assert!(status.contains("refused 00000000-0000-4000-8000-000000000000: 422"), "{status}");
    let first = exported(data.path());
    assert_eq!(
        verbs(&first),
        BTreeMap::from(
            [
                ("completed", 3),
                ("abandoned", 1),
                ("voided", 1),
                ("shared", 1),
                ("commented", 1),
                ("rated", 1),
                ("scored", 1)
            ]
            .map(|(verb, n)| (verb.to_owned(), n))
        )
    );
    lrs_holds_exactly(&lrs, &first);

    // What a statement says: Ana's shared practice, under the server's home page.
    let practice = first.iter().find(|s| s["verb"]["display"]["en"] == "shared").unwrap();
    assert_eq!(practice["actor"]["account"], serde_json::json!({ "homePage": HOME, "name": ana_id }));
    assert_eq!(practice["context"]["contextActivities"]["grouping"][0]["id"], format!("{HOME}/xapi/programs/p1"));
    let shared_practice = &practice["context"]["statement"]["id"];
    let original = first.iter().find(|s| &s["id"] == shared_practice).expect("the share names its practice");
    assert_eq!(original["result"]["duration"], "PT660S");
    assert_eq!(original["result"]["completion"], true);
    let voided = first.iter().find(|s| s["verb"]["display"]["en"] == "voided").unwrap();
    let corrected_one = first.iter().find(|s| s["id"] == voided["object"]["id"]).expect("the void names a statement");
    assert_eq!(corrected_one["result"]["duration"], "PT1800S", "the correction voids the wrong length");
    assert!(first.iter().any(|s| s["result"]["duration"] == "PT540S"), "the correction {corrected} is recorded");
    let rating = first.iter().find(|s| s["verb"]["display"]["en"] == "rated").unwrap();
    assert_eq!(rating["result"]["score"]["raw"], 4);
    let comment = first.iter().find(|s| s["verb"]["display"]["en"] == "commented").unwrap();
    assert_eq!(comment["actor"]["account"]["name"], ben_id.as_str());
    let calibration = first.iter().find(|s| s["verb"]["display"]["en"] == "scored").unwrap();
    assert_eq!(calibration["result"]["score"]["scaled"], 1.0, "rated exactly as the reference");
    // Nothing private or free-form goes: no reflection, no transfer note, no feedback text, no name.
    let raw = serde_json::to_string(&lrs.stored()).unwrap();
    for secret in [REFLECTION, NOTE, FEEDBACK, "Pause longer", "Ana", "Ben"] {
        assert!(!raw.contains(secret), "{secret:?} reached the LRS");
    }
    // The LRS serves them through its xAPI API.
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{LRS_USER}:{LRS_PASSWORD}"));
    let (status, _, body) = http_get(
        ([127, 0, 0, 1], lrs.port).into(),
        &format!("/xAPI/statements?statementId={}", practice["id"].as_str().unwrap()),
        &[("Authorization", &format!("Basic {credentials}")), ("X-Experience-API-Version", "2.0.0")],
    );
    assert_eq!(status, 200, "{body}");
    // The statement itself, as xAPI says, or (Ralph) inside a statement result.
    let answer: Value = serde_json::from_str(&body).unwrap();
    let served = if answer["statements"].is_array() { &answer["statements"][0] } else { &answer };
    assert_eq!(served["id"], practice["id"]);

    // The LRS goes away: sync goes on as before, and the new records wait in the queue.
    lrs.stop();
    let began = Instant::now();
    practise(&ana, &clock, 12);
    ana.sync_now().expect("sync does not wait for the LRS");
    practise(&ben, &clock, 8);
    ben.sync_now().expect("sync does not wait for the LRS");
    assert!(began.elapsed() < Duration::from_secs(20), "sync took {:?} with the LRS down", began.elapsed());
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue(data.path()).0 < 2 {
        assert!(Instant::now() < deadline, "the new records were not queued: {:?}", queue(data.path()));
        std::thread::sleep(Duration::from_millis(250));
    }
    let status = admin(SERVER, data.path(), &["xapi-status"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status_now = status;
    while !status_now.contains("waiting after") {
        assert!(Instant::now() < deadline, "no delivery attempt recorded: {status_now}");
        std::thread::sleep(Duration::from_millis(250));
        status_now = admin(SERVER, data.path(), &["xapi-status"]);
    }

    // The server is killed while they wait, and starts again; then the LRS comes back.
    server.kill();
    server.restart();
    lrs.start_again();
    wait_delivered(data.path(), 11, 1, &lrs);
    let second = exported(data.path());
    assert_eq!(ids(&second)[..first.len()], ids(&first)[..], "what was exported before is exported the same");
    assert_eq!(verbs(&second)["completed"], 5);
    lrs_holds_exactly(&lrs, &second);
    // Syncing again, and restarting again, sends nothing twice.
    ana.sync_now().unwrap();
    server.restart();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(queue(data.path()), (0, 11, 1));
    lrs_holds_exactly(&lrs, &second);
}

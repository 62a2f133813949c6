//! A real `microcohort-server` process on loopback and real core clients going on- and offline.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc};
use microcohort_core::docs::{DocId, genesis};
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::sync::wire::{self, DocPush, DocStatus, JoinRequest, SyncRequest, SyncResponse};
use microcohort_core::{Client, EntryRef, Error, FeedbackInput, SystemClock};
use microcohort_tests::{
    Backend, ServerProcess, TestData, admin, join_device, program_under_way, raw_get, raw_join, raw_post,
    server_command,
};
use rand::{Rng, SeedableRng};
use serde_bytes::ByteBuf;

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");
const LEARNERS: usize = 12;

microcohort_tests::on_both_backends!(
    a_cohort_converges_through_the_server_despite_offline_periods_and_a_killed_server,
    hostile_and_broken_requests_get_clear_errors_and_change_nothing,
    a_device_that_syncs_too_fast_is_told_when_to_retry,
    a_malicious_client_is_rejected_for_each_forbidden_operation_and_others_are_unaffected,
    connections_cut_mid_request_and_mid_response_lose_and_duplicate_nothing,
    a_refused_branch_is_replaced_by_the_cohorts_copy_and_the_users_intents_are_replayed,
    a_long_upload_and_a_long_catch_up_take_several_round_trips_and_lose_nothing,
    devices_far_behind_receive_the_saved_document_and_end_where_the_others_do,
);

/// A program that started 8 days ago (so today is in week 1) with cohorts `c1` and `c2`;
/// returns its start date.
fn prepared(data: &Path) -> String {
    program_under_way(SERVER, data, 8, &["c1", "c2"])
}

fn invite(data: &Path, cohort: &str, role: &str, name: &str) -> String {
    admin(SERVER, data, &["invite", "--cohort", cohort, "--role", role, "--name", name])
}

fn raw_sync(server: &ServerProcess, token: &str, request: &SyncRequest) -> (u16, Option<SyncResponse>) {
    let (status, _, bytes) = raw_post(server.address, "/v1/sync", Some(token), &wire::encode(request));
    (status, (status == 200).then(|| wire::decode(&bytes).unwrap()))
}

fn sync_tolerating_outage(client: &Client) {
    match client.sync_now() {
        Ok(_) | Err(Error::Network(_)) => {}
        Err(other) => panic!("sync failed: {other}"),
    }
}

fn a_cohort_converges_through_the_server_despite_offline_periods_and_a_killed_server(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    prepared(data.path());
    let codes: Vec<String> =
        (0..LEARNERS).map(|i| invite(data.path(), "c1", "learner", &format!("Learner {i}"))).collect();
    let facilitator_code = invite(data.path(), "c1", "facilitator", "Fay");
    let mut server = ServerProcess::start(SERVER, data.path(), &[]);

    let learners: Vec<Client> = codes.iter().map(|code| join_device(&server, code)).collect();
    let facilitator = join_device(&server, &facilitator_code);
    let week = learners[0].today().unwrap().position.week.expect("in the program");
    assert_eq!(week, 1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);

    for round in 0..6 {
        for (i, learner) in learners.iter().enumerate() {
            let session = learner.start_practice(None).unwrap();
            let log = learner
                .finish_practice(session.id, &PracticeOutcome { duration_secs: Some(600), ..Default::default() })
                .unwrap();
            if rng.random_bool(0.5) {
                learner.share_practice(log.id, &format!("Round {round} by {i}"), "What I tried").unwrap();
            }
            let rows = learner.week_rows(week).unwrap();
            let mine = format!("{}/", learner.my_user_id().unwrap());
            let peers: Vec<_> = rows.submissions.iter().filter(|s| !s.meta.key.starts_with(&mine)).collect();
            if !peers.is_empty() && rng.random_bool(0.6) {
                let target = EntryRef { week, key: peers[rng.random_range(0..peers.len())].meta.key.clone() };
                let input = FeedbackInput {
                    body: format!("Feedback from {i}"),
                    suggestion: Some("Try it tomorrow".into()),
                    criteria: vec![0],
                };
                learner.give_feedback(&target, &input).unwrap();
            }
            if rng.random_bool(0.6) {
                sync_tolerating_outage(learner);
            }
        }
        if round == 3 {
            // The server dies mid-sync and comes back.
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    for learner in &learners {
                        sync_tolerating_outage(learner);
                    }
                });
                std::thread::sleep(Duration::from_millis(rng.random_range(5..60)));
                server.kill();
                std::thread::sleep(Duration::from_millis(200));
                server.restart();
            });
        }
        if rng.random_bool(0.7) {
            sync_tolerating_outage(&facilitator);
        }
    }

    // Everyone comes back online.
    for _ in 0..2 {
        for client in learners.iter().chain([&facilitator]) {
            client.sync_with_retry(5).unwrap();
        }
    }
    let cohort = facilitator.roster().unwrap();
    assert_eq!(cohort.members().len(), LEARNERS + 1);
    let docs: Vec<String> = std::iter::once(DocId::cohort("c1"))
        .chain((0..=week).map(|w| DocId::week("c1", w)))
        .map(|d| d.to_string())
        .collect();
    for doc in &docs {
        let heads = facilitator.doc_heads(doc).unwrap();
        for learner in &learners {
            assert_eq!(learner.doc_heads(doc).unwrap(), heads, "{doc}");
        }
    }
    let rows = facilitator.week_rows(week).unwrap();
    assert!(!rows.submissions.is_empty() && !rows.feedback.is_empty());
    for learner in &learners {
        assert_eq!(learner.week_rows(week).unwrap(), rows);
        assert_eq!(learner.sync_status().unwrap().pending_practice_logs, 0);
        assert!(learner.sync_status().unwrap().last_error.is_none());
    }
    // The facilitator has every learner's practice log exactly once, without reflections.
    let relayed = facilitator.cohort_practice_logs().unwrap();
    let relayed_ids: Vec<String> = relayed.iter().map(|(id, ..)| id.clone()).collect();
    let unique: HashSet<&String> = relayed_ids.iter().collect();
    assert_eq!(unique.len(), relayed_ids.len(), "no duplicates");
    let logged: HashSet<String> =
        learners.iter().flat_map(|l| l.practice_logs().unwrap()).map(|l| l.id.to_string()).collect();
    assert_eq!(unique.into_iter().cloned().collect::<HashSet<_>>(), logged);
    assert_eq!(logged.len(), LEARNERS * 6);

    // A clean shutdown on SIGTERM.
    assert!(server.terminate().success());
}

fn hostile_and_broken_requests_get_clear_errors_and_change_nothing(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    let start = prepared(data.path());
    let code = invite(data.path(), "c1", "learner", "Ana");
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let joined = raw_join(&server, &code);
    let token = joined.device_token.as_str();

    assert_eq!(raw_get(server.address, "/healthz").0, 200);
    // A used invite, an unknown invite.
    let (status, _, _) = raw_post(
        server.address,
        "/v1/join",
        None,
        &wire::encode(&JoinRequest { invite_code: code.clone(), device_name: "x".into(), expected_user: None }),
    );
    assert_eq!(status, 403);
    // Malformed CBOR, named.
    let (status, _, body) = raw_post(server.address, "/v1/sync", Some(token), b"\xff\xfe not cbor");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("CBOR"));
    // Missing and wrong tokens.
    let empty = SyncRequest::default();
    assert_eq!(raw_sync(&server, "mct_wrong", &empty).0, 401);
    assert_eq!(raw_post(server.address, "/v1/sync", None, &wire::encode(&empty)).0, 401);
    // Garbage automerge bytes, named with their document.
    let garbage = SyncRequest {
        docs: vec![DocPush {
            doc_id: "week:c1:1".into(),
            changes: vec![ByteBuf::from(b"not a change".to_vec())],
            ..Default::default()
        }],
        ..Default::default()
    };
    let (status, _, body) = raw_post(server.address, "/v1/sync", Some(token), &wire::encode(&garbage));
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("week:c1:1"));
    // Another cohort's document; a week the program does not have.
    let other =
        SyncRequest { docs: vec![DocPush { doc_id: "week:c2:1".into(), ..Default::default() }], ..Default::default() };
    assert_eq!(raw_sync(&server, token, &other).0, 403);
    let beyond =
        SyncRequest { docs: vec![DocPush { doc_id: "week:c1:99".into(), ..Default::default() }], ..Default::default() };
    assert_eq!(raw_sync(&server, token, &beyond).0, 404);
    // An oversized body.
    let (status, _, _) = raw_post(server.address, "/v1/sync", Some(token), &vec![0u8; 5 * 1024 * 1024]);
    assert_eq!(status, 413);
    // A revoked device.
    assert_eq!(raw_sync(&server, token, &empty).0, 200);
    admin(SERVER, data.path(), &["revoke-device", "--device", &joined.device_id]);
    assert_eq!(raw_sync(&server, token, &empty).0, 401);
    // A running program's schedule cannot be changed under its cohorts.
    let moved = server_command(SERVER, data.path())
        .args(["admin", "create-program", "--id", "p1", "--title", "P", "--start", "2020-01-06", "--time-zone", "UTC"])
        .output()
        .unwrap();
    assert!(!moved.status.success());
    assert!(
        String::from_utf8_lossy(&moved.stderr).contains("cannot change"),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    admin(
        SERVER,
        data.path(),
        &["create-program", "--id", "p1", "--title", "Renamed", "--start", &start, "--time-zone", "UTC"],
    );
    // Nothing above stored a change.
    let metrics = raw_get(server.address, "/metrics").1;
    assert!(metrics.contains("microcohort_changes_stored 0"), "{metrics}");
}

fn a_device_that_syncs_too_fast_is_told_when_to_retry(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    prepared(data.path());
    let code = invite(data.path(), "c1", "learner", "Ana");
    let server = ServerProcess::start(SERVER, data.path(), &["--rate-burst", "3", "--rate-per-second", "1"]);
    let token = raw_join(&server, &code).device_token;
    let statuses: Vec<u16> = (0..5).map(|_| raw_sync(&server, &token, &SyncRequest::default()).0).collect();
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert_eq!(statuses[4], 429);
    let (_, headers, _) = raw_post(server.address, "/v1/sync", Some(&token), &wire::encode(&SyncRequest::default()));
    assert!(headers.to_ascii_lowercase().contains("retry-after: 1"), "{headers}");
}

/// Changes made with the automerge API directly, as a malicious client would.
fn forged(base: &AutoCommit, actor: &[u8], edit: impl FnOnce(&mut AutoCommit)) -> Vec<ByteBuf> {
    let mut doc = base.clone();
    let heads = doc.get_heads();
    doc.set_actor(ActorId::from(actor));
    edit(&mut doc);
    doc.commit_with(CommitOptions::default().with_time(0));
    doc.get_changes(&heads).into_iter().map(|c| ByteBuf::from(c.raw_bytes().to_vec())).collect()
}

fn a_malicious_client_is_rejected_for_each_forbidden_operation_and_others_are_unaffected(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    prepared(data.path());
    let victim_code = invite(data.path(), "c1", "learner", "Victim");
    let attacker_code = invite(data.path(), "c1", "learner", "Mallory");
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let victim = join_device(&server, &victim_code);
    let session = victim.start_practice(None).unwrap();
    let log = victim
        .finish_practice(session.id, &PracticeOutcome { duration_secs: Some(600), ..Default::default() })
        .unwrap();
    let shared = victim.share_practice(log.id, "Mine", "My words").unwrap();
    victim.sync_now().unwrap();
    let victim_rows = victim.week_rows(1).unwrap();

    let attacker = raw_join(&server, &attacker_code);
    let doc_id = "week:c1:1";
    // The attacker's copy of the server's document.
    let fetch =
        SyncRequest { docs: vec![DocPush { doc_id: doc_id.into(), ..Default::default() }], ..Default::default() };
    let (_, response) = raw_sync(&server, &attacker.device_token, &fetch);
    let mut base = genesis(&DocId::week("c1", 1));
    for change in &response.unwrap().docs[0].changes {
        base.apply_changes([automerge::Change::try_from(change.as_slice()).unwrap()]).unwrap();
    }
    let known: Vec<ByteBuf> = base.get_heads().iter().map(|h| ByteBuf::from(h.0.to_vec())).collect();
    let submissions = base.get(ROOT, "submissions").unwrap().unwrap().1;
    let victim_entry = base.get(&submissions, shared.key.as_str()).unwrap().unwrap().1;
    let victim_user = shared.key.split('/').next().unwrap().to_owned();

    let attacks: Vec<(&str, Vec<ByteBuf>)> = vec![
        ("root_write", forged(&base, b"mallory-1", |d| d.put(ROOT, "schema", 9).unwrap())),
        (
            "foreign_key",
            forged(&base, b"mallory-2", |d| {
                d.put_object(&submissions, format!("{victim_user}/fake").as_str(), ObjType::Map).unwrap();
            }),
        ),
        ("foreign_edit", forged(&base, b"mallory-3", |d| d.put(&victim_entry, "body", "hacked").unwrap())),
        ("entry_deleted", forged(&base, b"mallory-4", |d| d.delete(&submissions, shared.key.as_str()).unwrap())),
        (
            "role_required",
            forged(&base, b"mallory-5", |d| {
                let agenda = d.get(ROOT, "agenda").unwrap().unwrap().1;
                d.put_object(&agenda, format!("{}/a", attacker.user_id).as_str(), ObjType::Map).unwrap();
            }),
        ),
    ];
    for (expected, changes) in attacks {
        let push = DocPush { doc_id: doc_id.into(), known_server_heads: known.clone(), changes, client_heads: vec![] };
        let (status, response) =
            raw_sync(&server, &attacker.device_token, &SyncRequest { docs: vec![push], ..Default::default() });
        assert_eq!(status, 200);
        let pull = &response.unwrap().docs[0];
        let reason = match &pull.status {
            DocStatus::Rejected { reason, .. } => reason.clone(),
            other => panic!("{expected}: accepted as {other:?}"),
        };
        // The entry-deletion attack targets another user's key, which the key rule catches first.
        let allowed: &[&str] =
            if expected == "entry_deleted" { &["entry_deleted", "foreign_key"] } else { &[expected] };
        assert!(allowed.contains(&reason.as_str()), "{expected}: rejected as {reason}");
    }
    // A forged actor: the victim's own actor id, sent by the attacker.
    let head = base.get_heads()[0];
    let victim_actor = base.get_change_by_hash(&head).unwrap().actor_id().to_bytes().to_vec();
    let spoof = forged(&base, &victim_actor, |d| {
        d.put_object(&submissions, format!("{}/s", attacker.user_id).as_str(), ObjType::Map).unwrap();
    });
    let push =
        DocPush { doc_id: doc_id.into(), known_server_heads: known.clone(), changes: spoof, client_heads: vec![] };
    let (_, response) =
        raw_sync(&server, &attacker.device_token, &SyncRequest { docs: vec![push], ..Default::default() });
    assert!(
        matches!(&response.unwrap().docs[0].status, DocStatus::Rejected { reason, .. } if reason == "forged_actor")
    );

    // Two different changes with one actor and sequence number: the second is refused, so no
    // device ever meets a document automerge would refuse.
    let own = |name: &str| {
        let key = format!("{}/{name}", attacker.user_id);
        forged(&base, b"mallory-dup", |d| {
            d.put_object(&submissions, key.as_str(), ObjType::Map).unwrap();
        })
    };
    let push = |changes| SyncRequest {
        docs: vec![DocPush { doc_id: doc_id.into(), known_server_heads: known.clone(), changes, client_heads: vec![] }],
        ..Default::default()
    };
    let (_, first) = raw_sync(&server, &attacker.device_token, &push(own("x")));
    assert_eq!(first.unwrap().docs[0].status, DocStatus::Ok);
    let (_, second) = raw_sync(&server, &attacker.device_token, &push(own("y")));
    assert!(matches!(&second.unwrap().docs[0].status, DocStatus::Rejected { reason, .. } if reason == "bad_seq"));

    // The victim and an honest newcomer see exactly the victim's data (and the attacker's own
    // legitimate entry).
    victim.sync_now().unwrap();
    let rows = victim.week_rows(1).unwrap();
    assert_eq!(rows.submissions.iter().find(|s| s.meta.key == shared.key), victim_rows.submissions.first());
    assert_eq!(rows.submissions.len(), 2, "the victim's and the attacker's own");
    let newcomer = join_device(&server, &invite(data.path(), "c1", "learner", "Newcomer"));
    newcomer.sync_now().unwrap();
    assert_eq!(newcomer.week_rows(1).unwrap(), rows);
    let metrics = raw_get(server.address, "/metrics").1;
    assert!(metrics.contains("microcohort_rejected_changes_total{reason=\"root_write\"} 1"), "{metrics}");
}

fn connections_cut_mid_request_and_mid_response_lose_and_duplicate_nothing(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    prepared(data.path());
    let codes: Vec<String> = (0..4).map(|i| invite(data.path(), "c1", "learner", &format!("Learner {i}"))).collect();
    let facilitator_code = invite(data.path(), "c1", "facilitator", "Fay");
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let proxy = microcohort_tests::FaultyProxy::start(server.address);
    let join = |code: &str| {
        let client = Client::open_in_memory(Arc::new(SystemClock)).unwrap();
        client.join_server(&proxy.url(), code, "phone", "UTC").unwrap();
        client
    };
    let learners: Vec<Client> = codes.iter().map(|c| join(c)).collect();
    let facilitator = join(&facilitator_code);
    proxy.set_faults(true);
    let mut failures = 0;
    for round in 0..8 {
        for (i, learner) in learners.iter().enumerate() {
            let session = learner.start_practice(None).unwrap();
            let log = learner
                .finish_practice(session.id, &PracticeOutcome { duration_secs: Some(600), ..Default::default() })
                .unwrap();
            learner.share_practice(log.id, &format!("Round {round} by {i}"), "What I tried").unwrap();
            match learner.sync_now() {
                Ok(_) => {}
                Err(Error::Network(_) | Error::Server { .. }) => failures += 1,
                Err(other) => panic!("unexpected: {other}"),
            }
        }
        let _ = facilitator.sync_now();
    }
    assert!(proxy.cuts.load(std::sync::atomic::Ordering::Relaxed) > 0, "the proxy cut connections");
    assert!(failures > 0, "some syncs failed mid-flight");
    proxy.set_faults(false);
    for _ in 0..2 {
        for client in learners.iter().chain([&facilitator]) {
            client.sync_with_retry(5).unwrap();
        }
    }
    let week = 1;
    let rows = facilitator.week_rows(week).unwrap();
    assert_eq!(rows.submissions.len(), 4 * 8, "every share arrived exactly once");
    for learner in &learners {
        assert_eq!(learner.week_rows(week).unwrap(), rows);
    }
    let relayed: Vec<String> = facilitator.cohort_practice_logs().unwrap().into_iter().map(|(id, ..)| id).collect();
    let unique: HashSet<&String> = relayed.iter().collect();
    assert_eq!((relayed.len(), unique.len()), (32, 32), "every practice log relayed exactly once");
}

fn a_refused_branch_is_replaced_by_the_cohorts_copy_and_the_users_intents_are_replayed(backend: Backend) {
    use microcohort_core::domain::roles::WeeklyRole;
    let Some(data) = TestData::new(backend) else { return };
    // Today is week 5, day 1: the first rotation week.
    program_under_way(SERVER, data.path(), 34, &["c1"]);
    let codes: Vec<String> = (0..6).map(|i| invite(data.path(), "c1", "learner", &format!("L{i}"))).collect();
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let devices: Vec<Client> = codes.iter().map(|c| join_device(&server, c)).collect();
    for d in &devices {
        d.sync_now().unwrap();
    }
    let roles = devices[0].week_roles(5).unwrap();
    assert!(roles.rotation);
    // A synthesizer with someone before them in the roster: when that person leaves, the
    // synthesizer's position and so their role shift.
    let position = roles.roles.iter().position(|(_, r)| *r == WeeklyRole::Synthesizer).unwrap();
    assert!(position > 0);
    let synthesizer_id = roles.roles[position].0.clone();
    let leaver_id = roles.roles[0].0.clone();
    let by_id = |id: &str| devices.iter().find(|d| d.my_user_id().unwrap() == id).unwrap();
    let synthesizer = by_id(&synthesizer_id);
    let other = devices.iter().find(|d| {
        let id = d.my_user_id().unwrap();
        id != synthesizer_id && id != leaver_id
    });
    let other = other.unwrap();

    let session = other.start_practice(None).unwrap();
    let log =
        other.finish_practice(session.id, &PracticeOutcome { duration_secs: Some(600), ..Default::default() }).unwrap();
    let shared = other.share_practice(log.id, "Shared", "What I tried").unwrap();
    other.sync_now().unwrap();
    synthesizer.sync_now().unwrap();

    // Offline, the synthesizer gives feedback and drafts the synthesis...
    let feedback = synthesizer
        .give_feedback(&shared, &FeedbackInput { body: "Clear and kind".into(), suggestion: None, criteria: vec![0] })
        .unwrap();
    synthesizer.edit_synthesis(5, 0, 0, "This week we practised pausing.").unwrap();
    // ...while the member before them leaves, which makes them a reviewer this week.
    let today = chrono::Utc::now().date_naive().to_string();
    admin(SERVER, data.path(), &["remove-member", "--cohort", "c1", "--user", &leaver_id, "--left-on", &today]);

    let outcome = synthesizer.sync_now().unwrap();
    assert_eq!(outcome.rejected, vec![("week:c1:5".to_owned(), "role_required".to_owned())]);
    assert_eq!(synthesizer.my_role(5).unwrap(), Some(WeeklyRole::Reviewer));
    // The feedback was replayed onto the cohort's copy and sent; the synthesis edit is kept as
    // a failed intent with its reason.
    let failed = synthesizer.failed_intents().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].description, "synthesis edit in week 5");
    assert!(failed[0].reason.contains("role_required"), "{}", failed[0].reason);
    assert!(synthesizer.sync_status().unwrap().last_error.unwrap().contains("re-applied"));
    other.sync_now().unwrap();
    let rows = other.week_rows(5).unwrap();
    assert!(rows.feedback.iter().any(|f| f.meta.key == feedback.key && f.body == "Clear and kind"));
    assert!(rows.synthesis.is_empty());
    assert_eq!(synthesizer.week_rows(5).unwrap(), rows);
}

/// Two server processes over one PostgreSQL, the cohort's devices split between them and
/// syncing at the same time: every device ends with the same documents, and the facilitator
/// (on one server) has every practice log exactly once, whichever server received it.
#[test]
fn two_server_processes_over_one_postgresql_converge() {
    const MEMBERS: usize = 8;
    const ROUNDS: usize = 5;
    let Some(data) = TestData::new(Backend::Postgres) else { return };
    prepared(data.path());
    let codes: Vec<String> = (0..MEMBERS).map(|i| invite(data.path(), "c1", "learner", &format!("L{i}"))).collect();
    let facilitator_code = invite(data.path(), "c1", "facilitator", "Fay");
    let servers = [ServerProcess::start(SERVER, data.path(), &[]), ServerProcess::start(SERVER, data.path(), &[])];
    // Even members join and sync through the first server, odd ones through the second.
    let learners: Vec<Client> = codes.iter().enumerate().map(|(i, code)| join_device(&servers[i % 2], code)).collect();
    let facilitator = join_device(&servers[1], &facilitator_code);
    let week = 1;

    for round in 0..ROUNDS {
        std::thread::scope(|scope| {
            for (i, learner) in learners.iter().enumerate() {
                scope.spawn(move || {
                    let session = learner.start_practice(None).unwrap();
                    let log = learner
                        .finish_practice(
                            session.id,
                            &PracticeOutcome { duration_secs: Some(300), ..Default::default() },
                        )
                        .unwrap();
                    learner.share_practice(log.id, &format!("Round {round} by {i}"), "What I tried").unwrap();
                    learner.sync_with_retry(5).unwrap();
                    let rows = learner.week_rows(week).unwrap();
                    let mine = format!("{}/", learner.my_user_id().unwrap());
                    if let Some(peer) = rows.submissions.iter().find(|s| !s.meta.key.starts_with(&mine)) {
                        let target = EntryRef { week, key: peer.meta.key.clone() };
                        let input = FeedbackInput {
                            body: format!("From {i} in round {round}"),
                            suggestion: None,
                            criteria: vec![0],
                        };
                        learner.give_feedback(&target, &input).unwrap();
                    }
                    learner.sync_with_retry(5).unwrap();
                });
            }
            scope.spawn(|| facilitator.sync_with_retry(5).unwrap());
        });
    }
    for _ in 0..2 {
        for client in learners.iter().chain([&facilitator]) {
            client.sync_with_retry(5).unwrap();
        }
    }

    for doc in [DocId::cohort("c1").to_string(), DocId::week("c1", week).to_string()] {
        let heads = facilitator.doc_heads(&doc).unwrap();
        for learner in &learners {
            assert_eq!(learner.doc_heads(&doc).unwrap(), heads, "{doc}");
        }
    }
    let rows = facilitator.week_rows(week).unwrap();
    assert_eq!(rows.submissions.len(), MEMBERS * ROUNDS, "every share stored once");
    for learner in &learners {
        assert_eq!(learner.week_rows(week).unwrap(), rows);
    }
    assert_eq!(facilitator.roster().unwrap().members().len(), MEMBERS + 1);
    let relayed: Vec<String> = facilitator.cohort_practice_logs().unwrap().into_iter().map(|(id, ..)| id).collect();
    let unique: HashSet<String> = relayed.iter().cloned().collect();
    assert_eq!(unique.len(), relayed.len(), "no practice log relayed twice");
    let logged: HashSet<String> =
        learners.iter().flat_map(|l| l.practice_logs().unwrap()).map(|l| l.id.to_string()).collect();
    assert_eq!(logged.len(), MEMBERS * ROUNDS);
    assert_eq!(unique, logged, "every practice log relayed");

    // The operator's listings read the shared database.
    assert!(admin(SERVER, data.path(), &["list-programs"]).starts_with("p1\tEveryday Leadership\t"));
    let cohorts = admin(SERVER, data.path(), &["list-cohorts"]);
    assert!(cohorts.contains(&format!("c1\tp1\tCohort c1\t{} members\tcohort arm", MEMBERS + 1)), "{cohorts}");
    let members = admin(SERVER, data.path(), &["list-members", "--cohort", "c1"]);
    assert_eq!(members.lines().count(), MEMBERS + 1);
    assert!(members.lines().all(|line| line.ends_with("\t1 devices")), "{members}");
}

/// Past the bounds of one request (2,000 changes) and of one response (4 MiB of changes), a sync
/// continues in further round trips within the same call, and ends with everything.
fn a_long_upload_and_a_long_catch_up_take_several_round_trips_and_lose_nothing(backend: Backend) {
    use microcohort_core::sync::limits::{MAX_CHANGES_PER_REQUEST, MAX_RESPONSE_CHANGE_BYTES};
    use microcohort_tests::forge::Forger;
    let Some(data) = TestData::new(backend) else { return };
    let start = prepared(data.path());
    let codes: Vec<String> =
        ["Ana", "Cy", "Ben", "Dee"].iter().map(|n| invite(data.path(), "c1", "learner", n)).collect();
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    // Ana writes the week's synthesis offline, one character at a time.
    let ana = join_device(&server, &codes[0]);
    let ana_id = ana.my_user_id().unwrap();
    admin(SERVER, data.path(), &["set-joined-on", "--cohort", "c1", "--user", &ana_id, "--date", &start]);
    ana.sync_now().unwrap();
    let edits = MAX_CHANGES_PER_REQUEST + 100;
    for n in 0..edits {
        ana.edit_synthesis(1, n, 0, if n % 2 == 0 { "a" } else { "b" }).unwrap();
    }
    let upload = ana.sync_now().unwrap();
    assert!(upload.rounds >= 2, "{edits} changes went up in {} round trips", upload.rounds);
    assert!(upload.changes_sent >= edits, "{upload:?}");
    // Ben's and Dee's clients (raw) add over 4 MiB of long entries (each of them within the 4 MiB
    // one user may store in a document): a newcomer's first sync pages them.
    let mut pushed = 0;
    for (n, code) in codes[2..].iter().enumerate() {
        let raw = raw_join(&server, code);
        let fetch = SyncRequest {
            docs: vec![DocPush { doc_id: "week:c1:1".into(), ..Default::default() }],
            ..Default::default()
        };
        let (_, fetched) = raw_sync(&server, &raw.device_token, &fetch);
        let mut forger = Forger::from_changes(genesis(&DocId::week("c1", 1)), &fetched.unwrap().docs[0].changes);
        let actor = ActorId::random();
        let upto = (n + 1) * (MAX_RESPONSE_CHANGE_BYTES / 2 + 200_000);
        while pushed < upto {
            let known: Vec<ByteBuf> = forger.heads().iter().map(|h| ByteBuf::from(h.0.to_vec())).collect();
            let mut batch = Vec::new();
            for _ in 0..5 {
                let key = format!("{}/long-{pushed}", raw.user_id);
                let feedback = forger.container("feedback");
                let change = forger.change(&actor, |d| {
                    let entry = d.put_object(&feedback, key.as_str(), ObjType::Map).unwrap();
                    for field in ["body", "suggestion", "note"] {
                        d.put(&entry, field, "\u{1F331}".repeat(10_000)).unwrap();
                    }
                });
                forger.keep(&change);
                pushed += change.raw_bytes().len();
                batch.push(ByteBuf::from(change.raw_bytes().to_vec()));
            }
            let push =
                DocPush { doc_id: "week:c1:1".into(), known_server_heads: known, changes: batch, client_heads: vec![] };
            let request = SyncRequest { docs: vec![push], ..Default::default() };
            let (status, response) = raw_sync(&server, &raw.device_token, &request);
            assert_eq!(status, 200);
            assert_eq!(response.unwrap().docs[0].status, DocStatus::Ok);
        }
    }
    let cy = join_device(&server, &codes[1]);
    let catch_up = cy.sync_now().unwrap();
    assert!(catch_up.rounds >= 2, "over {pushed} bytes came down in {} round trips", catch_up.rounds);
    ana.sync_now().unwrap();
    let rows = cy.week_rows(1).unwrap();
    assert_eq!(rows, ana.week_rows(1).unwrap());
    assert_eq!(rows.synthesis.chars().count(), edits);
    assert!(rows.feedback.len() * 3 * 40_000 > MAX_RESPONSE_CHANGE_BYTES);
    assert_eq!(cy.doc_heads("week:c1:1").unwrap(), ana.doc_heads("week:c1:1").unwrap());
}

/// A device that lacks much of a document receives the server's snapshot of it (one compressed
/// document) and the changes after it; one that kept up receives changes. They end with the same
/// heads and rows, and a device far behind with unsent work of its own merges it too.
fn devices_far_behind_receive_the_saved_document_and_end_where_the_others_do(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    let start = prepared(data.path());
    let codes: Vec<String> = ["Ana", "Ben", "Cy"].iter().map(|n| invite(data.path(), "c1", "learner", n)).collect();
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let devices: Vec<Client> = codes.iter().map(|code| join_device(&server, code)).collect();
    for device in &devices {
        let user = device.my_user_id().unwrap();
        admin(SERVER, data.path(), &["set-joined-on", "--cohort", "c1", "--user", &user, "--date", &start]);
        device.sync_now().unwrap();
    }
    let (writer, follower, behind) = (&devices[0], &devices[1], &devices[2]);
    for n in 0..150 {
        writer.edit_synthesis(1, n, 0, "w").unwrap();
        if n % 30 == 0 {
            writer.sync_now().unwrap();
            follower.sync_now().unwrap();
        }
    }
    writer.sync_now().unwrap();
    // Offline meanwhile, Cy wrote at the start of the synthesis.
    behind.edit_synthesis(1, 0, 0, "Cy: ").unwrap();
    admin(SERVER, data.path(), &["compact"]);

    let caught_up = behind.sync_now().unwrap();
    assert!(caught_up.snapshots_received >= 1, "{caught_up:?}");
    let newcomer = join_device(&server, &invite(data.path(), "c1", "learner", "Dee"));
    let fresh = newcomer.sync_now().unwrap();
    assert!(fresh.snapshots_received >= 1, "{fresh:?}");
    let kept_up = follower.sync_now().unwrap();
    assert_eq!(kept_up.snapshots_received, 0, "a device that kept up receives changes");
    writer.sync_now().unwrap();
    newcomer.sync_now().unwrap();

    let heads: Vec<_> =
        [writer, follower, behind, &newcomer].iter().map(|d| d.doc_heads("week:c1:1").unwrap()).collect();
    assert!(heads.windows(2).all(|w| w[0] == w[1]), "{heads:?}");
    let synthesis = writer.synthesis(1).unwrap();
    // Both were typed at the start of an empty synthesis: automerge orders them, nothing is lost.
    assert!(synthesis.contains("Cy: ") && synthesis.matches('w').count() == 150, "{synthesis}");
    for device in [follower, behind, &newcomer] {
        assert_eq!(device.week_rows(1).unwrap(), writer.week_rows(1).unwrap());
    }
}

//! PostgreSQL storage under concurrency, below HTTP: two storages over one database stand for
//! two server processes.

use std::sync::atomic::{AtomicBool, Ordering};

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc};
use microcohort_core::docs::{DocId, genesis};
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::sync::wire::{DocPush, DocStatus, SyncRequest};
use microcohort_server::auth;
use microcohort_server::storage::postgres::PostgresStorage;
use microcohort_server::storage::{Device, Storage};
use microcohort_tests::PostgresInstance;
use serde_bytes::ByteBuf;

const WRITERS: usize = 4;
const CHANGES_EACH: usize = 12;

fn program(storage: &dyn Storage) {
    let start = chrono::Utc::now().date_naive() - chrono::Days::new(8);
    let blueprint = Blueprint::default_90_days(start, chrono_tz::UTC);
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
}

fn member(storage: &dyn Storage, name: &str) -> Device {
    let code = storage.create_invite("c1", "learner", name, "UTC", None).unwrap();
    let token = auth::new_token();
    storage
        .join(&microcohort_server::storage::people::JoinRequest::new(
            &auth::hash_invite(&code),
            "phone",
            &auth::hash_secret(&token),
            &token,
        ))
        .unwrap();
    storage.authenticate(&auth::hash_secret(&token)).unwrap().unwrap()
}

fn push(doc: &str, changes: Vec<ByteBuf>, known: Vec<ByteBuf>) -> SyncRequest {
    SyncRequest {
        docs: vec![DocPush { doc_id: doc.into(), changes, known_server_heads: known, client_heads: vec![] }],
        ..Default::default()
    }
}

fn bytes(doc: &mut AutoCommit, since: &[automerge::ChangeHash]) -> Vec<ByteBuf> {
    doc.get_changes(since).into_iter().map(|c| ByteBuf::from(c.raw_bytes().to_vec())).collect()
}

/// Writers push every change to both processes at once while a reader keeps syncing through
/// them with the heads it was last given: no push fails, every change is stored once, and the
/// reader never misses one (it would if a process could commit a lower `doc_seq` after a
/// higher one was visible).
#[test]
fn two_processes_store_each_change_once_and_a_reader_misses_none() {
    let Some(pg) = PostgresInstance::start() else { return };
    let nodes = [PostgresStorage::open(&pg.url, 4).unwrap(), PostgresStorage::open(&pg.url, 4).unwrap()];
    program(&nodes[0]);
    let writers: Vec<Device> = (0..WRITERS).map(|i| member(&nodes[i % 2], &format!("W{i}"))).collect();
    let reader = member(&nodes[1], "Reader");
    let doc_id = DocId::week("c1", 1);
    let doc = doc_id.to_string();
    let done = AtomicBool::new(false);

    let seen = std::thread::scope(|scope| {
        let mut running = Vec::new();
        for (i, writer) in writers.iter().enumerate() {
            let (nodes, doc, doc_id) = (&nodes, &doc, &doc_id);
            running.push(scope.spawn(move || {
                let mut am = genesis(doc_id);
                am.set_actor(ActorId::from(format!("writer-{i}").into_bytes()));
                // The genesis changes go with the first push, from every writer at once.
                let mut since = Vec::new();
                for n in 0..CHANGES_EACH {
                    let submissions = am.get(ROOT, "submissions").unwrap().unwrap().1;
                    am.put_object(&submissions, format!("{}/{n}", writer.user_id).as_str(), ObjType::Map).unwrap();
                    am.commit();
                    let request = push(doc, bytes(&mut am, &since), vec![]);
                    since = am.get_heads();
                    // The same push through both processes at the same moment.
                    std::thread::scope(|both| {
                        for node in nodes {
                            let request = &request;
                            both.spawn(move || {
                                let (response, _) = node.sync_request(writer, request.clone()).unwrap();
                                assert_eq!(response.docs[0].status, DocStatus::Ok, "writer {i} change {n}");
                            });
                        }
                    });
                }
            }));
        }
        let (nodes, doc, done, reader) = (&nodes, &doc, &done, &reader);
        let reading = scope.spawn(move || {
            let mut copy = AutoCommit::new();
            let mut known: Vec<ByteBuf> = Vec::new();
            let mut turn = 0;
            loop {
                let last = done.load(Ordering::SeqCst);
                let (response, _) = nodes[turn % 2].sync_request(reader, push(doc, vec![], known.clone())).unwrap();
                turn += 1;
                let pull = &response.docs[0];
                for change in &pull.changes {
                    copy.apply_changes([automerge::Change::try_from(change.as_slice()).unwrap()]).unwrap();
                }
                known = pull.server_heads.clone();
                if last {
                    return copy;
                }
            }
        });
        // Stop the reader before reporting a failed writer, so a failure never hangs the test.
        let writers_ok = running.into_iter().map(|w| w.join()).all(|outcome| outcome.is_ok());
        done.store(true, Ordering::SeqCst);
        let seen = reading.join().unwrap();
        assert!(writers_ok, "a push failed");
        seen
    });

    let submissions = seen.get(ROOT, "submissions").unwrap().expect("the reader has the submissions").1;
    assert_eq!(seen.length(&submissions), WRITERS * CHANGES_EACH, "the reader has every change");
    let genesis_changes = genesis(&doc_id).get_changes(&[]).len();
    let stored = nodes[0].sync_request(&reader, push(&doc, vec![], vec![])).unwrap().0.docs.remove(0).changes.len();
    assert_eq!(stored, genesis_changes + WRITERS * CHANGES_EACH, "every change stored exactly once");
}

/// Two processes redeeming one invite code at the same moment: one device joins, the other
/// is told the code was used, and the roster has one member.
#[test]
fn one_invite_redeemed_through_two_processes_at_once_joins_once() {
    let Some(pg) = PostgresInstance::start() else { return };
    let nodes = [PostgresStorage::open(&pg.url, 2).unwrap(), PostgresStorage::open(&pg.url, 2).unwrap()];
    program(&nodes[0]);
    let code = nodes[0].create_invite("c1", "learner", "Ana", "UTC", None).unwrap();
    let outcomes: Vec<bool> = std::thread::scope(|scope| {
        let joins: Vec<_> = nodes
            .iter()
            .map(|node| {
                let code = &code;
                scope.spawn(move || {
                    let token = auth::new_token();
                    node.join(&microcohort_server::storage::people::JoinRequest::new(
                        &auth::hash_invite(code),
                        "phone",
                        &auth::hash_secret(&token),
                        &token,
                    ))
                    .is_ok()
                })
            })
            .collect();
        joins.into_iter().map(|j| j.join().unwrap()).collect()
    });
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
    assert_eq!(nodes[1].members("c1").unwrap().len(), 1);
}

/// Both processes compacting at once, while a third writes: snapshots never go backwards and
/// a document loads the same afterwards.
#[test]
fn compaction_from_two_processes_is_safe() {
    let Some(pg) = PostgresInstance::start() else { return };
    let nodes = [PostgresStorage::open(&pg.url, 2).unwrap(), PostgresStorage::open(&pg.url, 2).unwrap()];
    program(&nodes[0]);
    for i in 0..6 {
        member(&nodes[i % 2], &format!("M{i}"));
    }
    std::thread::scope(|scope| {
        for node in &nodes {
            scope.spawn(move || node.compact(1).unwrap());
        }
        scope.spawn(|| member(&nodes[0], "Late"));
    });
    nodes[1].compact(1).unwrap();
    // The server's next roster edit builds on the snapshots (a stale one would reuse its
    // actor's sequence number and fail), and the roster document has everyone.
    let last = member(&nodes[1], "Last");
    let (response, _) = nodes[0].sync_request(&last, push("cohort:c1", vec![], vec![])).unwrap();
    let mut roster = AutoCommit::new();
    for change in &response.docs[0].changes {
        roster.apply_changes([automerge::Change::try_from(change.as_slice()).unwrap()]).unwrap();
    }
    assert_eq!(microcohort_core::docs::cohort::roster(&roster).members().len(), 8);
    assert_eq!(nodes[0].members("c1").unwrap().len(), 8);
}

/// A database written by a newer server is refused, and left as it was.
#[test]
fn a_newer_schema_is_refused_without_writing() {
    let Some(pg) = PostgresInstance::start() else { return };
    drop(PostgresStorage::open(&pg.url, 1).unwrap());
    let mut client = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    client.execute("UPDATE schema_version SET version = 99", &[]).unwrap();
    client.execute("DELETE FROM meta", &[]).unwrap();
    let refused = PostgresStorage::open(&pg.url, 1).err().expect("refused");
    assert!(refused.contains("newer"), "{refused}");
    let version: i32 = client.query_one("SELECT version FROM schema_version", &[]).unwrap().get(0);
    assert_eq!(version, 99);
    let meta: i64 = client.query_one("SELECT COUNT(*) FROM meta", &[]).unwrap().get(0);
    assert_eq!(meta, 0, "nothing written");
}

//! Writes the fuzz targets' seed inputs into `fuzz/seeds/<target>/`: honest changes of the sample
//! week and hostile ones made from them, and sync requests that carry them. Run after a change to
//! the wire format: `cargo run -p microcohort-tests --bin fuzz-seeds`.

use std::path::{Path, PathBuf};

use automerge::ActorId;
use microcohort_core::domain::critique_week::CritiqueWeekChange;
use microcohort_core::domain::facilitation::FacilitatorAction;
use microcohort_core::domain::practice::{TransferEvidence, TransferKind};
use microcohort_core::policy::sample::SampleWeek;
use microcohort_core::sync::wire::{self, DocPush, SyncRequest, WireCalibration, WireLog, WireStory};
use microcohort_tests::forge::{Forger, bad_checksum, compressed, declaring_ops, huge_value, with_seq, with_start_op};
use serde_bytes::ByteBuf;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let week = SampleWeek::new();
    let heads = week.week.clone().get_heads();

    let changes = root.join("change_checks");
    std::fs::create_dir_all(&changes).expect("seed directory");
    let mut hostile = Vec::new();
    for (n, change) in week.candidates.iter().enumerate() {
        write(&changes, &format!("honest-{n}"), change.raw_bytes());
        hostile.push((format!("seq-{n}"), with_seq(change, change.seq() + 1)));
        hostile.push((format!("counter-{n}"), with_start_op(change, 3)));
        hostile.push((format!("checksum-{n}"), bad_checksum(change.raw_bytes())));
    }
    // A long, repetitive value: automerge sends it as a DEFLATE chunk.
    let forger = Forger { doc: week.week.clone() };
    let long = huge_value(&forger, &ActorId::from(&b"m"[..]), "mallory/long", 20_000);
    hostile.push(("compressed".into(), compressed(&long)));
    hostile.push(("many-ops".into(), declaring_ops(&ActorId::from(&b"m"[..]), 1, 60, &heads, 1_000_000)));
    for (name, bytes) in &hostile {
        write(&changes, name, bytes);
    }

    let requests = root.join("sync_request");
    std::fs::create_dir_all(&requests).expect("seed directory");
    let push = |changes: Vec<Vec<u8>>| DocPush {
        doc_id: "week:c1:6".into(),
        known_server_heads: heads.iter().map(|h| ByteBuf::from(h.0.to_vec())).collect(),
        changes: changes.into_iter().map(ByteBuf::from).collect(),
        client_heads: vec![],
    };
    let log = WireLog {
        id: "0192a7a0-0000-7000-8000-000000000000".into(),
        user_id: String::new(),
        program_id: "p1".into(),
        pack_id: "everyday-leadership".into(),
        pack_version: 1,
        prompt_id: "d1".into(),
        started_at: 0,
        time_zone: "Europe/Berlin".into(),
        local_date: "2026-03-02".into(),
        status: "completed".into(),
        duration_secs: Some(600),
        transfer_kind: Some("applied_at_work".into()),
        corrects: None,
        recorded_at: 0,
        sealed: None,
        late_arrival: false,
    };
    let samples = [
        ("empty", SyncRequest::default()),
        ("no-op", SyncRequest { docs: vec![push(vec![])], ..Default::default() }),
        (
            "honest",
            SyncRequest {
                docs: vec![push(week.candidates.iter().map(|c| c.raw_bytes().to_vec()).collect())],
                stories: vec![WireStory {
                    log_id: log.id.clone(),
                    evidence: TransferEvidence {
                        kind: TransferKind::AppliedAtWork,
                        note: "Asked first, then spoke".into(),
                        link: Some("https://example.org/n".into()),
                    },
                }],
                calibration: vec![WireCalibration {
                    exemplar_id: "ex-listening-defaults-vague".into(),
                    scores: vec![2, 1, 2],
                    rated_at: 1,
                }],
                practice_logs: vec![log],
                prompts_since: 1,
                logs_since: 0,
                ..Default::default()
            },
        ),
        (
            "hostile",
            SyncRequest { docs: vec![push(hostile.into_iter().map(|(_, b)| b).collect())], ..Default::default() },
        ),
    ];
    for (name, request) in samples {
        write(&requests, name, &wire::encode(&request));
    }
    // A facilitator's requests: a week's critique changed, and each kind of action.
    let moved = "2026-03-27T18:30:00".parse().ok();
    let change = CritiqueWeekChange { week: 12, moved_to: moved, link: Some("https://m.example/w".into()), lead: None };
    write(&requests, "critique-week", &wire::encode(&change));
    let actions = [
        ("hide", FacilitatorAction::Hide { week: 1, entry: "ben/f1".into(), reason: "A personal attack".into() }),
        ("endorse", FacilitatorAction::Endorse { week: 1, feedback: "cy/f2".into() }),
        ("note", FacilitatorAction::Note { id: "n1".into(), member: "ana".into(), body: "Ten minutes today?".into() }),
    ];
    for (name, action) in actions {
        write(&requests, name, &wire::encode(&action));
    }
    println!("seeds written to {}", root.display());
}

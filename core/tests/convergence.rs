//! Convergence: 12 replicas (11 learners and a facilitator) make random offline edits, exchange
//! changes in random partial orders, and must end with identical heads and identical projections.

mod support;

use microcohort_core::domain::roles::WeeklyRole;
use microcohort_core::{Client, EntryRef, FeedbackInput, WorkKind};
use proptest::prelude::*;
use support::cohort::{cohort_devices, send, sync_all, week_doc};

const DEVICES: usize = 12;
const WEEK: u32 = 5;
/// A prompt with a 3-criterion rubric, which feedback addresses.
const RUBRIC_PROMPT: &str = "w00-d1-why-you-lead";

#[derive(Debug, Clone)]
enum Op {
    Share,
    Feedback { pick: usize, suggestion: bool },
    Reply { pick: usize, nested: bool },
    Rate { pick: usize, score: u8 },
    Edit { pick: usize },
    Retract { pick: usize },
    Synthesis { pick: usize, delete: usize, text: String },
    Sync { to: usize },
}

fn op() -> impl Strategy<Value = (usize, Op)> {
    let op = prop_oneof![
        3 => Just(Op::Share),
        4 => (any::<usize>(), any::<bool>()).prop_map(|(pick, suggestion)| Op::Feedback { pick, suggestion }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, nested)| Op::Reply { pick, nested }),
        2 => (any::<usize>(), 1u8..=5).prop_map(|(pick, score)| Op::Rate { pick, score }),
        1 => any::<usize>().prop_map(|pick| Op::Edit { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Retract { pick }),
        2 => (any::<usize>(), 0usize..4, "[a-zé🌱 ]{0,6}").prop_map(|(pick, delete, text)| Op::Synthesis { pick, delete, text }),
        3 => (0..DEVICES).prop_map(|to| Op::Sync { to }),
    ];
    (0..DEVICES, op)
}

fn nth<T: Clone>(items: &[T], pick: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[pick % items.len()].clone())
}

fn apply(devices: &[Client], users: &[String], device: usize, op: &Op) {
    let d = &devices[device];
    let me = &users[device];
    let rows = d.week_rows(WEEK).unwrap();
    let entry = |key: &str| EntryRef { week: WEEK, key: key.to_owned() };
    match op {
        Op::Share => {
            if me != "fac" {
                d.share_work(WorkKind::Practice, "Shared practice", "What I tried today", Some(RUBRIC_PROMPT), &[])
                    .unwrap();
            }
        }
        Op::Feedback { pick, suggestion } => {
            let others: Vec<String> =
                rows.submissions.iter().filter(|s| &s.meta.author != me).map(|s| s.meta.key.clone()).collect();
            if let Some(key) = nth(&others, *pick) {
                let input = FeedbackInput {
                    body: "Specific and kind".into(),
                    suggestion: suggestion.then(|| "Try it in a meeting".to_owned()),
                    criteria: vec![(*pick % 3) as u32],
                };
                d.give_feedback(&entry(&key), &input).unwrap();
            }
        }
        Op::Reply { pick, nested } => {
            if let Some(fb) = nth(&rows.feedback, *pick) {
                let parent = rows
                    .replies
                    .iter()
                    .find(|r| r.feedback == fb.meta.key)
                    .filter(|_| *nested)
                    .map(|r| entry(&r.meta.key));
                d.reply(&entry(&fb.meta.key), parent.as_ref(), "Thanks").unwrap();
            }
        }
        Op::Rate { pick, score } => {
            let mine: Vec<String> = rows
                .feedback
                .iter()
                .filter(|f| f.submission.starts_with(&format!("{me}/")))
                .map(|f| f.meta.key.clone())
                .collect();
            if let Some(key) = nth(&mine, *pick) {
                d.rate_feedback(&entry(&key), *score).unwrap();
            }
        }
        Op::Edit { pick } | Op::Retract { pick } => {
            let own: Vec<String> = rows
                .submissions
                .iter()
                .map(|s| &s.meta)
                .chain(rows.feedback.iter().map(|f| &f.meta))
                .chain(rows.replies.iter().map(|r| &r.meta))
                .filter(|m| &m.author == me)
                .map(|m| m.key.clone())
                .collect();
            if let Some(key) = nth(&own, *pick) {
                match op {
                    Op::Edit { .. } => d.edit_entry(&entry(&key), "Edited after thinking it over").unwrap(),
                    _ => d.retract_entry(&entry(&key)).unwrap(),
                }
            }
        }
        Op::Synthesis { pick, delete, text } => {
            let role = d.my_role(WEEK).unwrap();
            if matches!(role, Some(WeeklyRole::Synthesizer | WeeklyRole::Facilitator)) {
                let length = rows.synthesis.chars().count();
                let position = pick % (length + 1);
                let delete = (*delete).min(length - position);
                d.edit_synthesis(WEEK, position, delete, text).unwrap();
            }
        }
        Op::Sync { to } => {
            if *to != device {
                send(d, &devices[*to], &week_doc(WEEK));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn twelve_replicas_converge_to_identical_heads_and_projections(
        ops in proptest::collection::vec(op(), 1..30),
        merge_order in Just((0..DEVICES).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        // Week 5 (rotation) runs 5–11 April 2026.
        let (devices, _) = cohort_devices(DEVICES - 1, "2026-04-07T08:00:00Z");
        let users: Vec<String> = (0..DEVICES - 1).map(support::cohort::learner_id).chain(["fac".to_owned()]).collect();
        for (device, op) in &ops {
            apply(&devices, &users, *device, op);
        }
        // Merge in a random order: each device pulls from the next in the shuffled ring, twice
        // round, then everyone with everyone.
        let doc = week_doc(WEEK);
        for _ in 0..2 {
            for pair in merge_order.windows(2) {
                send(&devices[pair[0]], &devices[pair[1]], &doc);
            }
        }
        sync_all(&devices, &doc);
        let heads = devices[0].doc_heads(&doc).unwrap();
        let rows = devices[0].week_rows(WEEK).unwrap();
        for device in &devices[1..] {
            prop_assert_eq!(&device.doc_heads(&doc).unwrap(), &heads);
            prop_assert_eq!(&device.week_rows(WEEK).unwrap(), &rows);
        }
        // A rebuild from the stored documents gives the same rows.
        devices[3].rebuild_projections().unwrap();
        prop_assert_eq!(&devices[3].week_rows(WEEK).unwrap(), &rows);
    }
}

//! Random malformed changes against the server's checks: every one is either refused, or the
//! document with it still applies, saves, loads with the same heads, and merges into another
//! device's copy. Changes are made by rewriting honest ones (sequence numbers, counters,
//! dependencies, objects, keys, elements, predecessors, actions) and by corrupting their bytes.

use std::num::NonZeroU64;

use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType, SortedVec};
use automerge::{Change, ObjType, ScalarValue};
use microcohort_core::policy::sample::SampleWeek;
use microcohort_tests::forge::rewrite;
use proptest::prelude::*;

/// One way to rewrite a change.
#[derive(Debug, Clone)]
enum Mutation {
    Seq(u64),
    StartOp(u64),
    DropDep,
    AddDep(usize),
    Obj { op: usize, target: Option<usize> },
    MapKey { op: usize },
    Element { op: usize, target: Option<usize> },
    ToggleInsert { op: usize },
    AddPred { op: usize, target: usize },
    ClearPreds { op: usize },
    Action { op: usize, kind: u8 },
    DropOp { op: usize },
    DuplicateOp { op: usize },
    FlipByte { at: usize, bits: u8 },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0u64..5).prop_map(Mutation::Seq),
        (1u64..40).prop_map(Mutation::StartOp),
        Just(Mutation::DropDep),
        (0usize..64).prop_map(Mutation::AddDep),
        (0usize..32, proptest::option::of(0usize..256)).prop_map(|(op, target)| Mutation::Obj { op, target }),
        (0usize..32).prop_map(|op| Mutation::MapKey { op }),
        (0usize..32, proptest::option::of(0usize..256)).prop_map(|(op, target)| Mutation::Element { op, target }),
        (0usize..32).prop_map(|op| Mutation::ToggleInsert { op }),
        (0usize..32, 0usize..256).prop_map(|(op, target)| Mutation::AddPred { op, target }),
        (0usize..32).prop_map(|op| Mutation::ClearPreds { op }),
        (0usize..32, 0u8..6).prop_map(|(op, kind)| Mutation::Action { op, kind }),
        (0usize..32).prop_map(|op| Mutation::DropOp { op }),
        (0usize..32).prop_map(|op| Mutation::DuplicateOp { op }),
        (0usize..4096, 1u8..=255).prop_map(|(at, bits)| Mutation::FlipByte { at, bits }),
        (0usize..4096).prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn mutate(world: &SampleWeek, change: &Change, mutations: &[Mutation]) -> Vec<u8> {
    let pick = |i: usize| world.op_ids[i % world.op_ids.len()].clone();
    let structural: Vec<&Mutation> =
        mutations.iter().filter(|m| !matches!(m, Mutation::FlipByte { .. } | Mutation::Truncate { .. })).collect();
    let mut bytes = rewrite(change, |c| {
        for m in &structural {
            let n = c.operations.len().max(1);
            match m {
                Mutation::Seq(seq) => c.seq = *seq,
                Mutation::StartOp(start) => c.start_op = NonZeroU64::new(*start).unwrap_or(NonZeroU64::MIN),
                Mutation::DropDep => {
                    c.deps.pop();
                }
                Mutation::AddDep(i) => {
                    c.deps.push(world.hashes[i % world.hashes.len()]);
                    c.deps.sort();
                }
                Mutation::Obj { op, target } => {
                    if let Some(o) = c.operations.get_mut(op % n) {
                        o.obj = target.map_or(ObjectId::Root, |t| ObjectId::Id(pick(t)));
                    }
                }
                Mutation::MapKey { op } => {
                    if let Some(o) = c.operations.get_mut(op % n) {
                        o.key = Key::Map("body".into());
                    }
                }
                Mutation::Element { op, target } => {
                    if let Some(o) = c.operations.get_mut(op % n) {
                        o.key = Key::Seq(target.map_or(ElementId::Head, |t| ElementId::Id(pick(t))));
                    }
                }
                Mutation::ToggleInsert { op } => {
                    if let Some(o) = c.operations.get_mut(op % n) {
                        o.insert = !o.insert;
                    }
                }
                Mutation::AddPred { op, target } => {
                    if let Some(o) = c.operations.get_mut(op % n) {
                        let mut preds: Vec<OpId> = o.pred.iter().cloned().collect();
                        preds.push(pick(*target));
                        o.pred = SortedVec::from(preds);
                    }
                }
                Mutation::ClearPreds { op } => {
                    if let Some(o) = c.operations.get_mut(op % n) {
                        o.pred = SortedVec::new();
                    }
                }
                Mutation::Action { op, kind } => {
                    if let Some(o) = c.operations.get_mut(op % n) {
                        o.action = match kind {
                            0 => OpType::Delete,
                            1 => OpType::Put(ScalarValue::Str("z".into())),
                            2 => OpType::Put(ScalarValue::Int(7)),
                            3 => OpType::Make(ObjType::Map),
                            4 => OpType::Make(ObjType::Text),
                            _ => OpType::Make(ObjType::List),
                        };
                    }
                }
                Mutation::DropOp { op } => {
                    if !c.operations.is_empty() {
                        c.operations.remove(op % n);
                    }
                }
                Mutation::DuplicateOp { op } => {
                    if let Some(o) = c.operations.get(op % n).cloned() {
                        c.operations.insert(op % n, o);
                    }
                }
                Mutation::FlipByte { .. } | Mutation::Truncate { .. } => {}
            }
        }
    });
    for m in mutations {
        match m {
            Mutation::FlipByte { at, bits } if !bytes.is_empty() => {
                let at = at % bytes.len();
                bytes[at] ^= bits;
            }
            Mutation::Truncate { at } if !bytes.is_empty() => bytes.truncate(at % bytes.len()),
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn a_malformed_change_is_refused_or_leaves_the_document_sound(
        candidate in 0usize..6,
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        WEEK.with(|week| {
            let bytes = mutate(week, &week.candidates[candidate], &mutations);
            if let Some(change) = week.admit(&bytes) {
                prop_assert_eq!(week.stays_sound(change), Ok(()), "{:?}", mutations);
            }
            Ok(())
        })?;
    }
}

thread_local! {
    static WEEK: SampleWeek = SampleWeek::new();
}

#[test]
fn the_honest_changes_pass_every_check_and_stay_sound() {
    let week = SampleWeek::new();
    for change in &week.candidates {
        let admitted = week.admit(change.raw_bytes()).expect("an honest change passes");
        assert_eq!(week.stays_sound(admitted), Ok(()));
    }
}

//! Cohort document costs (the design notes quote ~36 ms to load a 90-day cohort with 3,240 feedback
//! items stored as plain strings):
//! - loading all of a cohort's feedback from saved bytes;
//! - projecting one busy week into rows;
//! - one member giving feedback in a busy week through the Client (commit, validate, persist,
//!   re-project);
//! - a new device's first sync: the cohort document and 13 weeks of about 250 entries each
//!   arrive as the server's saved documents, and the Client takes each in one load (store and
//!   project included). Target: 100 ms.
//!
//! Run: `cargo bench -p microcohort-core --bench cohort_docs`

use std::sync::Arc;

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, ScalarValue};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use microcohort_core::docs::guard;
use microcohort_core::docs::projection::project_week;
use microcohort_core::docs::schema::{Container, field};
use microcohort_core::docs::week::add_entry;
use microcohort_core::docs::{DocId, genesis};
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::{Client, Enrollment, EntryRef, FeedbackInput, ManualClock, WorkKind};

const MEMBERS: usize = 12;

/// A week document where each of 12 members shares one practice and gives `per_member` feedback.
fn busy_week(week: u32, per_member: usize) -> AutoCommit {
    let mut am = genesis(&DocId::week("c1", week));
    for m in 0..MEMBERS {
        am.set_actor(ActorId::from(format!("member-{m}").as_bytes()));
        let author = format!("u{m:02}");
        add_entry(&mut am, Container::Submissions, &author, "s", &[(field::BODY, "What I tried".into())]).unwrap();
        am.commit_with(CommitOptions::default().with_time(0));
    }
    for m in 0..MEMBERS {
        am.set_actor(ActorId::from(format!("member-{m}").as_bytes()));
        let author = format!("u{m:02}");
        for i in 0..per_member {
            let target = format!("u{:02}/s", (m + 1 + i % (MEMBERS - 1)) % MEMBERS);
            let fields = [
                (field::SUBMISSION, ScalarValue::from(target.as_str())),
                (field::BODY, "You paused before advising; name the feeling next time.".into()),
                (field::SUGGESTION, "Try it in tomorrow's stand-up.".into()),
                (field::CRITERIA, "[0,2]".into()),
                (field::CREATED_AT, ScalarValue::Int(0)),
                (field::RETRACTED, false.into()),
            ];
            add_entry(&mut am, Container::Feedback, &author, &format!("f{i}"), &fields).unwrap();
            am.commit_with(CommitOptions::default().with_time(0));
        }
    }
    am
}

fn load_and_project(c: &mut Criterion) {
    // 12 weeks × 12 members × 22–23 feedback ≈ 3,240 items, one saved document per week.
    let weeks: Vec<Vec<u8>> = (1..=12).map(|w| busy_week(w, 23).save()).collect();
    c.bench_function("load_12_weeks_3312_feedback", |b| {
        b.iter(|| weeks.iter().map(|bytes| guard::load(bytes).unwrap()).collect::<Vec<_>>())
    });
    let week = busy_week(5, 23);
    c.bench_function("project_week_276_feedback", |b| b.iter(|| project_week(&week)));
}

/// A device of cohort c1's member u99, enrolled, its database in `dir`.
fn member_device(dir: &std::path::Path) -> Client {
    let clock = ManualClock::new("2026-03-10T07:00:00Z".parse().unwrap());
    let client = Client::open(dir.join("device.sqlite"), Arc::new(clock)).unwrap();
    client.import_default_prompt_pack().unwrap();
    client
        .enroll(Enrollment {
            program_id: "bench".into(),
            program_title: "Bench".into(),
            pack_id: "everyday-leadership".into(),
            blueprint: Blueprint::default_90_days("2026-03-02".parse().unwrap(), chrono_tz::Europe::Berlin),
            learner_time_zone: "Europe/Berlin".into(),
        })
        .unwrap();
    client.join_cohort("c1", "u99").unwrap();
    client
}

fn give_feedback(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let client = member_device(dir.path());
    // Week 1 arrives busy from peers, then this member shares and gets going.
    let mut peers = busy_week(1, 23);
    let changes: Vec<Vec<u8>> = peers.get_changes(&[]).into_iter().map(|c| c.raw_bytes().to_vec()).collect();
    client.receive_changes("week:c1:1", &changes).unwrap();
    client.share_work(WorkKind::Practice, "Mine", "Body", None, &[]).unwrap();
    let target = EntryRef { week: 1, key: "u00/s".into() };
    let input =
        FeedbackInput { body: "Clear and kind.".into(), suggestion: Some("Ask first.".into()), criteria: vec![1] };
    c.bench_function("give_feedback_in_a_week_of_276", |b| {
        b.iter_batched(|| (), |()| client.give_feedback(&target, &input).unwrap(), BatchSize::PerIteration)
    });
}

fn first_sync_of_a_new_device(c: &mut Criterion) {
    // 12 members × (1 submission + 20 feedback) = 252 entries a week, weeks 0 to 12.
    let mut saved: Vec<(String, Vec<u8>)> = vec![("cohort:c1".into(), genesis(&DocId::cohort("c1")).save())];
    saved.extend((0..=12).map(|w| (DocId::week("c1", w).to_string(), busy_week(w, 20).save())));
    c.bench_function("new_device_takes_13_weeks_of_252_entries", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let client = member_device(dir.path());
                (dir, client)
            },
            |(_dir, client)| {
                for (doc, bytes) in &saved {
                    client.receive_snapshot(doc, bytes).unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(8));
    targets = load_and_project, give_feedback, first_sync_of_a_new_device
}
criterion_main!(benches);

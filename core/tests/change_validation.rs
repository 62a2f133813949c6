//! The validator against changes built directly with the automerge API — what a malicious or
//! buggy client could send — not only through the Client's own functions.

use std::collections::HashMap;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ObjType, ROOT, ReadDoc};
use microcohort_core::docs::{DocId, genesis, genesis_actor};
use microcohort_core::policy::{
    ActorDirectory, History, KnownHistory, ObjectIndex, Owner, RejectReason, Submitter, check_change, check_history,
    validate,
};

const ALICE: &str = "alice";
const MALLORY: &str = "mallory";

fn actor(name: &str) -> ActorId {
    ActorId::from(format!("actor-of-{name}").as_bytes())
}

/// The server's view: which actor belongs to whom.
struct Bindings(HashMap<ActorId, Owner>);

impl ActorDirectory for Bindings {
    fn owner_of(&self, actor: &ActorId) -> Option<Owner> {
        self.0.get(actor).cloned()
    }
}

struct World {
    doc: DocId,
    am: AutoCommit,
    index: ObjectIndex,
    bindings: Bindings,
    history: KnownHistory,
}

fn member(user: &str) -> Submitter<'_> {
    Submitter { user_id: user, facilitator: false, may_edit_synthesis: false, leads_critique: false }
}

impl World {
    fn new(doc: DocId) -> Self {
        let am = genesis(&doc);
        let index = ObjectIndex::for_doc(&doc);
        let mut bindings = HashMap::new();
        bindings.insert(genesis_actor(&doc), Owner::Server);
        bindings.insert(actor(ALICE), Owner::User(ALICE.into()));
        bindings.insert(actor(MALLORY), Owner::User(MALLORY.into()));
        let mut history = KnownHistory::default();
        for change in am.clone().get_changes(&[]) {
            history.add(&change.decode(), change.hash());
        }
        Self { doc, am, index, bindings: Bindings(bindings), history }
    }

    /// Makes a change as `as_actor` with raw automerge calls and returns it (not yet applied here).
    fn change(&self, as_actor: &str, edit: impl FnOnce(&mut AutoCommit)) -> (AutoCommit, Change) {
        let mut fork = self.am.clone();
        fork.set_actor(actor(as_actor));
        edit(&mut fork);
        let hash = fork.commit_with(CommitOptions::default().with_time(1)).expect("a change");
        let change = fork.get_change_by_hash(&hash).expect("committed");
        (fork, change)
    }

    /// Every check the server makes on a change from a device: its bytes, the validator, and
    /// the document's history.
    fn check(&mut self, change: &Change, submitter: Submitter<'_>) -> Result<(), RejectReason> {
        let checked = check_change(change.raw_bytes()).map_err(|r| r.reason)?;
        if self.history.max_op(&checked.hash).is_some() {
            return Ok(()); // already stored: the server skips it
        }
        let created = validate(&self.doc, &checked, submitter, &self.bindings, &self.index).map_err(|r| r.reason)?;
        check_history(&checked, &self.history).map_err(|r| r.reason)?;
        for entry in created {
            self.index.add_entry(&entry);
        }
        self.history.add_checked(&checked);
        Ok(())
    }

    /// Validates and, if accepted, applies the change as the server would.
    fn submit(
        &mut self,
        as_actor: &str,
        submitter: Submitter<'_>,
        edit: impl FnOnce(&mut AutoCommit),
    ) -> Result<(), RejectReason> {
        let (fork, change) = self.change(as_actor, edit);
        self.check(&change, submitter)?;
        self.am = fork;
        Ok(())
    }

    fn container(&self, name: &str) -> automerge::ObjId {
        self.am.get(ROOT, name).unwrap().unwrap().1
    }

    fn entry(&self, container: &str, key: &str) -> automerge::ObjId {
        self.am.get(self.container(container), key).unwrap().unwrap().1
    }
}

fn alice_submits(world: &mut World) {
    let submissions = world.container("submissions");
    world
        .submit(ALICE, member(ALICE), |am| {
            let entry = am.put_object(&submissions, "alice/s1", ObjType::Map).unwrap();
            am.put(&entry, "body", "my practice").unwrap();
            am.put(&entry, "retracted", false).unwrap();
        })
        .expect("an honest submission passes");
}

#[test]
fn honest_changes_pass_including_edits_of_ones_own_entries() {
    let mut w = World::new(DocId::week("c1", 2));
    alice_submits(&mut w);
    let entry = w.entry("submissions", "alice/s1");
    w.submit(ALICE, member(ALICE), |am| {
        am.put(&entry, "body", "edited").unwrap();
        am.put(&entry, "retracted", true).unwrap();
    })
    .unwrap();
    // The genesis itself, sent verbatim by any device, is accepted.
    let mut fresh = genesis(&w.doc);
    let genesis_change = fresh.get_changes(&[]).pop().unwrap();
    assert_eq!(w.check(&genesis_change, member(MALLORY)), Ok(()));
}

#[test]
fn writing_to_the_document_root_is_refused() {
    let mut w = World::new(DocId::week("c1", 2));
    let result = w.submit(MALLORY, member(MALLORY), |am| am.put(ROOT, "schema", 99).unwrap());
    assert_eq!(result, Err(RejectReason::RootWrite));
    let result = w.submit(MALLORY, member(MALLORY), |am| {
        am.put_object(ROOT, "submissions", ObjType::Map).unwrap();
    });
    assert_eq!(result, Err(RejectReason::RootWrite));
}

#[test]
fn entries_under_another_users_key_are_refused() {
    let mut w = World::new(DocId::week("c1", 2));
    let feedback = w.container("feedback");
    let result = w.submit(MALLORY, member(MALLORY), |am| {
        let forged = am.put_object(&feedback, "alice/f1", ObjType::Map).unwrap();
        am.put(&forged, "body", "words alice never wrote").unwrap();
    });
    assert_eq!(result, Err(RejectReason::ForeignKey));
    let result = w.submit(MALLORY, member(MALLORY), |am| {
        am.put_object(&feedback, "no-slash-key", ObjType::Map).unwrap();
    });
    assert_eq!(result, Err(RejectReason::ForeignKey));
}

#[test]
fn overwriting_or_deleting_another_users_values_is_refused() {
    let mut w = World::new(DocId::week("c1", 2));
    alice_submits(&mut w);
    let entry = w.entry("submissions", "alice/s1");
    let submissions = w.container("submissions");
    assert_eq!(
        w.submit(MALLORY, member(MALLORY), |am| am.put(&entry, "body", "hacked").unwrap()),
        Err(RejectReason::ForeignEdit)
    );
    assert_eq!(
        w.submit(MALLORY, member(MALLORY), |am| am.delete(&entry, "body").unwrap()),
        Err(RejectReason::ForeignEdit)
    );
    assert_eq!(
        w.submit(MALLORY, member(MALLORY), |am| am.delete(&submissions, "alice/s1").unwrap()),
        Err(RejectReason::ForeignKey)
    );
    // Nor re-created over itself, which would wipe its fields.
    assert_eq!(
        w.submit(ALICE, member(ALICE), |am| {
            am.put_object(&submissions, "alice/s1", ObjType::Map).unwrap();
        }),
        Err(RejectReason::EntryDeleted)
    );
    // Not even one's own entry is deleted: it is retracted instead.
    assert_eq!(
        w.submit(ALICE, member(ALICE), |am| am.delete(&submissions, "alice/s1").unwrap()),
        Err(RejectReason::EntryDeleted)
    );
}

#[test]
fn a_forged_actor_is_refused() {
    let mut w = World::new(DocId::week("c1", 2));
    let submissions = w.container("submissions");
    // Mallory sends a change made with Alice's actor id.
    let result = w.submit(ALICE, member(MALLORY), |am| {
        am.put_object(&submissions, "mallory/s1", ObjType::Map).unwrap();
    });
    assert_eq!(result, Err(RejectReason::ForgedActor));
    // ...or with the document's genesis (server) actor.
    let mut fork = w.am.clone();
    fork.set_actor(genesis_actor(&w.doc));
    fork.put_object(&submissions, "mallory/s2", ObjType::Map).unwrap();
    let hash = fork.commit_with(CommitOptions::default().with_time(0)).unwrap();
    let change = fork.get_change_by_hash(&hash).unwrap();
    assert_eq!(w.check(&change, member(MALLORY)), Err(RejectReason::ForgedActor));
}

#[test]
fn server_only_containers_and_facilitator_containers_are_guarded() {
    let mut cohort = World::new(DocId::cohort("c1"));
    let roster = cohort.container("roster");
    let result = cohort.submit(MALLORY, member(MALLORY), |am| {
        let me = am.put_object(&roster, "mallory/me", ObjType::Map).unwrap();
        am.put(&me, "role", "facilitator").unwrap();
    });
    assert_eq!(result, Err(RejectReason::ServerOnly));
    let profiles = cohort.container("profiles");
    cohort
        .submit(MALLORY, member(MALLORY), |am| {
            let me = am.put_object(&profiles, "mallory/profile", ObjType::Map).unwrap();
            am.put(&me, "display_name", "Mal").unwrap();
        })
        .expect("a member keeps their own profile entry");

    let mut week = World::new(DocId::week("c1", 2));
    let agenda = week.container("agenda");
    let add = |am: &mut AutoCommit| {
        am.put_object(&agenda, "mallory/a1", ObjType::Map).unwrap();
    };
    assert_eq!(week.submit(MALLORY, member(MALLORY), add), Err(RejectReason::RoleRequired));
    let lead = Submitter { leads_critique: true, ..member(ALICE) };
    let add_own = |am: &mut AutoCommit| {
        am.put_object(&agenda, "alice/a1", ObjType::Map).unwrap();
    };
    assert_eq!(week.submit(ALICE, lead, add_own), Ok(()), "the week's critique lead writes the agenda");
    let facilitator = Submitter { facilitator: true, ..member(MALLORY) };
    assert_eq!(week.submit(MALLORY, facilitator, add), Ok(()));
}

#[test]
fn only_synthesizers_and_facilitators_edit_the_synthesis_but_they_edit_each_others_words() {
    let mut w = World::new(DocId::week("c1", 6));
    let text = w.container("synthesis");
    let synthesizer = |user| Submitter { may_edit_synthesis: true, ..member(user) };
    w.submit(ALICE, synthesizer(ALICE), |am| am.splice_text(&text, 0, 0, "Alice's draft").unwrap()).unwrap();
    assert_eq!(
        w.submit(MALLORY, member(MALLORY), |am| am.splice_text(&text, 0, 5, "").unwrap()),
        Err(RejectReason::RoleRequired)
    );
    // A fellow synthesizer may rewrite Alice's words: the synthesis is co-written.
    w.submit(MALLORY, synthesizer(MALLORY), |am| am.splice_text(&text, 0, 7, "Our").unwrap()).unwrap();
    assert_eq!(w.am.text(&text).unwrap(), "Our draft");
}

#[test]
fn entries_stay_flat_and_unknown_objects_are_refused() {
    let mut w = World::new(DocId::week("c1", 2));
    let submissions = w.container("submissions");
    let nested = w.submit(MALLORY, member(MALLORY), |am| {
        let entry = am.put_object(&submissions, "mallory/s1", ObjType::Map).unwrap();
        am.put_object(&entry, "nested", ObjType::List).unwrap();
    });
    assert_eq!(nested, Err(RejectReason::NotFlat));
    let scalar = w.submit(MALLORY, member(MALLORY), |am| am.put(&submissions, "mallory/s2", "just a string").unwrap());
    assert_eq!(scalar, Err(RejectReason::NotFlat));

    // An object the server never accepted (created in a change it refused or never saw).
    let (mut unseen, _) = w.change(MALLORY, |am| {
        am.put_object(&submissions, "mallory/s3", ObjType::Map).unwrap();
    });
    let ghost = unseen.get(&submissions, "mallory/s3").unwrap().unwrap().1;
    unseen.put(&ghost, "body", "x").unwrap();
    let hash = unseen.commit_with(CommitOptions::default().with_time(2)).unwrap();
    let change = unseen.get_change_by_hash(&hash).unwrap();
    assert_eq!(w.check(&change, member(MALLORY)), Err(RejectReason::UnknownObject));
}

//! What the validator knows about a document's objects without loading it: the genesis
//! containers (their ids are the same everywhere) and every entry with its owner.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use automerge::legacy::{Key, ObjectId, OpId};
use automerge::{ActorId, AutoCommit, ObjId as ExId, ObjType, ROOT, ReadDoc};

use super::history::OpFacts;
use super::{ActorDirectory, Owner};
use crate::docs::schema::{Container, key_author};
use crate::docs::{DocId, genesis, genesis_actor};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    Container(Container),
    Entry { container: Container, owner: String },
}

/// An object id as `(counter, actor)`, as decoded changes name objects.
pub type ObjKey = (u64, ActorId);

/// An entry a change creates: its object, its container and key, and its owner (empty for the
/// server's roster entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub id: ObjKey,
    pub container: Container,
    pub key: String,
    pub owner: String,
}

#[derive(Debug, Clone, Default)]
pub struct ObjectIndex {
    objects: HashMap<ObjKey, ObjectKind>,
    /// Every entry key in use, by container: an entry is created once.
    keys: HashSet<(Container, String)>,
    /// Actors seen creating entries, with the entry's owner: enough to bind actors on a device.
    actors: HashMap<ActorId, Owner>,
}

fn obj_key(id: &ExId) -> Option<ObjKey> {
    match id {
        ExId::Id(counter, actor, _) => Some((*counter, actor.clone())),
        ExId::Root => None,
    }
}

/// What the validator asks about a document's objects: the device answers from an
/// [`ObjectIndex`] of its copy, the server from its entry table, row by row.
pub trait Objects {
    fn kind(&self, id: &ObjKey) -> Option<ObjectKind>;
    /// Whether an entry with this key exists in the container.
    fn has_entry(&self, container: Container, key: &str) -> bool;
}

/// The operation counters of a document kind's containers in its genesis: the same for every
/// document of the kind (only the genesis actor differs), so worked out once.
fn container_counters(doc: &DocId) -> &'static [(Container, u64)] {
    static COHORT: OnceLock<Vec<(Container, u64)>> = OnceLock::new();
    static WEEK: OnceLock<Vec<(Container, u64)>> = OnceLock::new();
    let (cell, sample) = match doc {
        DocId::Cohort { .. } => (&COHORT, DocId::cohort("c")),
        DocId::Week { .. } => (&WEEK, DocId::week("c", 1)),
    };
    cell.get_or_init(|| {
        let skeleton = genesis(&sample);
        sample
            .containers()
            .iter()
            .filter_map(|container| match skeleton.get(ROOT, container.name()) {
                Ok(Some((_, id))) => obj_key(&id).map(|(counter, _)| (*container, counter)),
                _ => None,
            })
            .collect()
    })
}

/// The operation that made one of the document's genesis containers, known without reading or
/// decoding the genesis change (every device builds the same one); `None` for any other.
pub fn genesis_container(doc: &DocId, id: &OpId) -> Option<OpFacts> {
    let (container, _) = container_counters(doc).iter().find(|(_, counter)| *counter == id.counter())?;
    if *id.actor() != genesis_actor(doc) {
        return None;
    }
    let made = if container.is_text() { ObjType::Text } else { ObjType::Map };
    let key = Key::Map(container.name().into());
    Some(OpFacts { obj: ObjectId::Root, key, insert: false, made: Some(made), seq: 1 })
}

impl ObjectIndex {
    /// The containers of a document, from its genesis.
    pub fn for_doc(doc: &DocId) -> Self {
        let mut index = Self::default();
        let actor = genesis_actor(doc);
        for (container, counter) in container_counters(doc) {
            index.objects.insert((*counter, actor.clone()), ObjectKind::Container(*container));
        }
        index.actors.insert(actor, Owner::Server);
        index
    }

    /// Everything a device's copy of the document says: containers, entries, entry creators.
    pub fn from_document(doc: &DocId, am: &AutoCommit) -> Self {
        let mut index = Self::for_doc(doc);
        for container in doc.containers().iter().filter(|c| !c.is_text()) {
            let Ok(Some((_, parent))) = am.get(ROOT, container.name()) else { continue };
            let keys: Vec<String> = am.map_range(&parent, ..).map(|item| item.key.to_string()).collect();
            for key in keys {
                let Ok(Some((_, id))) = am.get(&parent, key.as_str()) else { continue };
                let Some(obj) = obj_key(&id) else { continue };
                // Roster and critique entries have bare keys and belong to the server.
                let owner = match (container, key_author(&key)) {
                    (c, _) if c.server_keyed() => Owner::Server,
                    (_, Some(author)) => Owner::User(author.to_owned()),
                    (_, None) => continue,
                };
                index.actors.entry(obj.1.clone()).or_insert_with(|| owner.clone());
                let owner = match owner {
                    Owner::User(user) => user,
                    Owner::Server => String::new(),
                };
                index.add_entry(&NewEntry { id: obj, container: *container, key, owner });
            }
        }
        index
    }

    /// Records an entry: its object, its key, and its creator's actor as its owner's.
    pub fn add_entry(&mut self, entry: &NewEntry) {
        let who = if entry.owner.is_empty() { Owner::Server } else { Owner::User(entry.owner.clone()) };
        self.actors.entry(entry.id.1.clone()).or_insert(who);
        self.keys.insert((entry.container, entry.key.clone()));
        let kind = ObjectKind::Entry { container: entry.container, owner: entry.owner.clone() };
        self.objects.insert(entry.id.clone(), kind);
    }

    /// Binds an actor explicitly (a device's own actor, the server's actor).
    pub fn bind(&mut self, actor: ActorId, owner: Owner) {
        self.actors.insert(actor, owner);
    }
}

impl Objects for ObjectIndex {
    fn kind(&self, id: &ObjKey) -> Option<ObjectKind> {
        self.objects.get(id).cloned()
    }

    fn has_entry(&self, container: Container, key: &str) -> bool {
        self.keys.contains(&(container, key.to_owned()))
    }
}

impl ActorDirectory for ObjectIndex {
    fn owner_of(&self, actor: &ActorId) -> Option<Owner> {
        self.actors.get(actor).cloned()
    }
}

#[cfg(test)]
mod tests {
    use automerge::legacy::OpType;

    use super::*;

    #[test]
    fn genesis_containers_are_known_exactly_as_the_genesis_change_holds_them() {
        for doc in [DocId::cohort("c7"), DocId::week("c7", 3)] {
            let change = genesis(&doc).get_changes(&[]).pop().unwrap().decode();
            let mut containers = 0;
            for (offset, op) in change.operations.iter().enumerate() {
                let id = OpId::new(change.start_op.get() + offset as u64, &change.actor_id);
                let expected = matches!(op.action, OpType::Make(_)).then(|| OpFacts::of(op, 1));
                containers += usize::from(expected.is_some());
                assert_eq!(genesis_container(&doc, &id), expected, "{doc} operation {offset}");
                let elsewhere = OpId::new(id.counter(), &genesis_actor(&DocId::week("c8", 3)));
                assert_eq!(genesis_container(&doc, &elsewhere), None, "another document's genesis");
            }
            assert_eq!(containers, doc.containers().len());
        }
    }
}

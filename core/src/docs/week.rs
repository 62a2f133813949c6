//! Writing entries into documents. Each function makes ops on an open document; the caller
//! commits, validates and persists.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue};

use super::guard::DocError;
use super::schema::{Container, entry_key};

/// A field value to write.
pub type Field<'a> = (&'a str, ScalarValue);

fn container(am: &AutoCommit, container: Container) -> Result<ObjId, DocError> {
    match am.get(ROOT, container.name()) {
        Ok(Some((_, id))) => Ok(id),
        _ => Err(DocError::Malformed(format!("document has no `{}`", container.name()))),
    }
}

fn failed(err: automerge::AutomergeError) -> DocError {
    DocError::Malformed(err.to_string())
}

/// Creates the entry `"<author>/<entry_id>"` in a container with its fields. Returns its key.
pub fn add_entry(
    am: &mut AutoCommit,
    into: Container,
    author: &str,
    entry_id: &str,
    fields: &[Field<'_>],
) -> Result<String, DocError> {
    let parent = container(am, into)?;
    let key = entry_key(author, entry_id);
    let entry = am.put_object(&parent, key.as_str(), ObjType::Map).map_err(failed)?;
    for (name, value) in fields {
        am.put(&entry, *name, value.clone()).map_err(failed)?;
    }
    Ok(key)
}

/// The object of an existing entry.
pub fn entry(am: &AutoCommit, within: Container, key: &str) -> Option<ObjId> {
    let parent = container(am, within).ok()?;
    match am.get(&parent, key) {
        Ok(Some((value, id))) if value.is_object() => Some(id),
        _ => None,
    }
}

/// Overwrites fields of an existing entry (only the fields given: never the whole entry).
pub fn set_fields(am: &mut AutoCommit, within: Container, key: &str, fields: &[Field<'_>]) -> Result<(), DocError> {
    let entry = entry(am, within, key).ok_or_else(|| DocError::Malformed(format!("no entry {key}")))?;
    for (name, value) in fields {
        am.put(&entry, *name, value.clone()).map_err(failed)?;
    }
    Ok(())
}

/// A scalar field of an entry object.
pub fn scalar(am: &AutoCommit, entry: &ObjId, name: &str) -> Option<ScalarValue> {
    match am.get(entry, name) {
        Ok(Some((value, _))) => value.as_scalar().cloned(),
        _ => None,
    }
}

/// Splices the shared synthesis text (positions in Unicode scalar values).
pub fn splice_synthesis(am: &mut AutoCommit, position: usize, delete: usize, insert: &str) -> Result<(), DocError> {
    let text = container(am, Container::Synthesis)?;
    let length = am.length(&text);
    if position > length || delete > length - position {
        return Err(DocError::Malformed(format!(
            "synthesis edit at {position}+{delete} is outside its {length} characters"
        )));
    }
    am.splice_text(&text, position, delete as isize, insert).map_err(failed)
}

pub fn synthesis(am: &AutoCommit) -> String {
    container(am, Container::Synthesis).ok().and_then(|text| am.text(&text).ok()).unwrap_or_default()
}

//! The cached prompt library: every imported version of every pack, so an old practice log keeps
//! pointing at the exact prompt text it was done with.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::domain::prompt_pack::{Capstone, Prompt, PromptPack};
use crate::error::{Error, Result};

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Imported,
    /// The same version with the same content was already there: nothing written.
    Unchanged,
}

pub fn import(tx: &Transaction<'_>, pack: &PromptPack, source_name: &str, now_millis: i64) -> Result<ImportOutcome> {
    if let Some(existing) = load(tx, &pack.id, pack.version)? {
        return if &existing == pack {
            Ok(ImportOutcome::Unchanged)
        } else {
            Err(Error::PackVersionConflict { pack_id: pack.id.clone(), version: pack.version })
        };
    }
    let capstone = pack.capstone.as_ref().map(json).transpose()?;
    tx.execute(
        "INSERT INTO prompt_packs (pack_id, version, title, description, capstone, roles, source_name, imported_at,
             exemplars)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            pack.id,
            pack.version,
            pack.title,
            pack.description,
            capstone,
            json(&pack.roles)?,
            source_name,
            now_millis,
            json(&pack.exemplars)?
        ],
    )?;
    let mut insert = tx.prepare(
        "INSERT INTO prompts (pack_id, version, prompt_id, position, week, day, title, minutes, tags, rubric, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for (position, p) in pack.prompts.iter().enumerate() {
        insert.execute(params![
            pack.id,
            pack.version,
            p.id,
            position as i64,
            p.week,
            p.day,
            p.title,
            p.minutes,
            json(&p.tags)?,
            json(&p.rubric)?,
            p.body
        ])?;
    }
    Ok(ImportOutcome::Imported)
}

pub fn latest_version(conn: &Connection, pack_id: &str) -> Result<Option<u32>> {
    Ok(conn
        .query_row("SELECT MAX(version) FROM prompt_packs WHERE pack_id = ?1", [pack_id], |row| row.get(0))
        .optional()?
        .flatten())
}

/// The newest imported version of a pack (what a program runs on).
pub fn latest(conn: &Connection, pack_id: &str) -> Result<PromptPack> {
    let unknown = || Error::UnknownPack(pack_id.to_owned());
    let version = latest_version(conn, pack_id)?.ok_or_else(unknown)?;
    load(conn, pack_id, version)?.ok_or_else(unknown)
}

pub fn load(conn: &Connection, pack_id: &str, version: u32) -> Result<Option<PromptPack>> {
    let header = conn
        .query_row(
            "SELECT title, description, capstone, roles, exemplars FROM prompt_packs WHERE pack_id = ?1 AND version = ?2",
            params![pack_id, version],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((title, description, capstone, roles, exemplars)) = header else {
        return Ok(None);
    };
    let capstone: Option<Capstone> = capstone.as_deref().map(from_json).transpose()?;
    let roles = from_json(&roles)?;
    let exemplars = from_json(&exemplars)?;
    let mut stmt = conn.prepare(
        "SELECT prompt_id, week, day, title, minutes, tags, rubric, body FROM prompts
         WHERE pack_id = ?1 AND version = ?2 ORDER BY position",
    )?;
    let rows = stmt.query_map(params![pack_id, version], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, u32>(1)?,
            row.get::<_, u32>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, u32>(4)?,
            row.get::<_, String>(5)?,
            row.get::<_, String>(6)?,
            row.get::<_, String>(7)?,
        ))
    })?;
    let mut prompts = Vec::new();
    for row in rows {
        let (id, week, day, title, minutes, tags, rubric, body) = row?;
        prompts.push(Prompt {
            id,
            week,
            day,
            title,
            minutes,
            tags: from_json(&tags)?,
            rubric: from_json(&rubric)?,
            body,
        });
    }
    Ok(Some(PromptPack { id: pack_id.to_owned(), version, title, description, capstone, prompts, roles, exemplars }))
}

/// One prompt of one pack version (for showing an old log with the text it was done with).
pub fn prompt(conn: &Connection, pack_id: &str, version: u32, prompt_id: &str) -> Result<Option<Prompt>> {
    conn.query_row(
        "SELECT week, day, title, minutes, tags, rubric, body FROM prompts
         WHERE pack_id = ?1 AND version = ?2 AND prompt_id = ?3",
        params![pack_id, version, prompt_id],
        |row| {
            Ok((
                row.get::<_, u32>(0)?,
                row.get::<_, u32>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, u32>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
            ))
        },
    )
    .optional()?
    .map(|(week, day, title, minutes, tags, rubric, body)| {
        Ok(Prompt {
            id: prompt_id.to_owned(),
            week,
            day,
            title,
            minutes,
            tags: from_json(&tags)?,
            rubric: from_json(&rubric)?,
            body,
        })
    })
    .transpose()
}

pub(crate) fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|err| Error::Corrupt(err.to_string()))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|err| Error::Corrupt(err.to_string()))
}

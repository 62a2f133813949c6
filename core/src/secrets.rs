//! Where the device's secrets live: its sign-in token and the key its person's private text is
//! sealed with. An app hands the core a [`SecretStore`] (the Keychain on iOS, the Keystore on
//! Android) and then neither secret is in the database file, so a backup or a copied file holds
//! no sign-in and no key. Without one (servers, tools, tests) the database keeps them.
//!
//! A database that used to keep them moves them into the app's store the first time it is opened
//! with one: copied first, then removed from the file, so a crash in between only repeats the copy.
//! Names are scoped by a random id of the database file, so two databases of one app never share
//! a secret and a secret left behind by a deleted database is never picked up by a new one.

use std::sync::Arc;

use rusqlite::{Connection, Transaction};

use crate::error::{Error, Result};
use crate::private_text::PersonKey;

/// The app's secure storage, implemented by the app shell. Calls come from the core's threads
/// (never the main thread) and may block briefly.
pub trait SecretStore: Send + Sync {
    /// The value stored under `name`, or `None` if there is none.
    fn get(&self, name: &str) -> std::result::Result<Option<Vec<u8>>, String>;
    /// Stores `value` under `name`, replacing what was there.
    fn set(&self, name: &str, value: &[u8]) -> std::result::Result<(), String>;
    /// Removes `name`; removing what is not there is no error.
    fn remove(&self, name: &str) -> std::result::Result<(), String>;
}

const TOKEN: &str = "device-token";
const KEY: &str = "person-key";

/// The client's view of its secrets: in the database file, or in the app's store.
pub(crate) enum Secrets {
    InDatabase,
    InApp { store: Arc<dyn SecretStore>, scope: String },
}

fn failed(err: String) -> Error {
    Error::SecretStore(err)
}

#[cfg_attr(not(feature = "sync-client"), allow(dead_code))]
impl Secrets {
    /// Chooses where this database's secrets are, moving them out of the file if an app store is
    /// given. Without a store, a database whose secrets already moved out cannot sign in: that
    /// is an error, not a silent sign-out.
    pub(crate) fn settle(conn: &mut Connection, app: Option<Arc<dyn SecretStore>>) -> Result<Self> {
        let (scope, moved_out): (String, bool) =
            conn.query_row("SELECT scope, in_app_store FROM secret_home WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let Some(store) = app else {
            if moved_out {
                return Err(Error::SecretStore(
                    "this database keeps its sign-in and key in the app's secure storage; open it with that store"
                        .into(),
                ));
            }
            return Ok(Self::InDatabase);
        };
        if !moved_out {
            let token = crate::store::sync_state::link(conn)?.map(|l| l.device_token).filter(|t| !t.is_empty());
            let key = crate::store::person::key(conn)?;
            let secrets = Self::InApp { store: store.clone(), scope: scope.clone() };
            if let Some(token) = &token {
                secrets.set(TOKEN, token.as_bytes())?;
            }
            if let Some(key) = &key {
                secrets.set(KEY, key.as_bytes())?;
            }
            let tx = conn.transaction()?;
            tx.execute("UPDATE server_link SET device_token = ''", [])?;
            tx.execute("DELETE FROM person_key", [])?;
            tx.execute("UPDATE secret_home SET in_app_store = 1", [])?;
            tx.commit()?;
        }
        Ok(Self::InApp { store, scope })
    }

    fn name(scope: &str, what: &str) -> String {
        format!("microcohort/{scope}/{what}")
    }

    fn set(&self, what: &str, value: &[u8]) -> Result<()> {
        match self {
            Self::InDatabase => Ok(()),
            Self::InApp { store, scope } => store.set(&Self::name(scope, what), value).map_err(failed),
        }
    }

    fn get(&self, what: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Self::InDatabase => Ok(None),
            Self::InApp { store, scope } => store.get(&Self::name(scope, what)).map_err(failed),
        }
    }

    /// The token to keep in the database: the token itself, or nothing once the app store has it
    /// (stored there before the caller's transaction commits, so the database never names a
    /// token the store lacks).
    pub(crate) fn keep_token(&self, token: &str) -> Result<String> {
        match self {
            Self::InDatabase => Ok(token.to_owned()),
            Self::InApp { .. } => self.set(TOKEN, token.as_bytes()).map(|()| String::new()),
        }
    }

    /// The device's token, given what the database holds.
    pub(crate) fn token(&self, in_database: &str) -> Result<String> {
        if !in_database.is_empty() {
            return Ok(in_database.to_owned());
        }
        // Gone from the app's store (a restore onto another phone, a wiped keychain): this
        // device must sign in again.
        let bytes = self.get(TOKEN)?.ok_or(Error::Unauthorized)?;
        String::from_utf8(bytes).map_err(|_| Error::SecretStore("the stored device token is not text".into()))
    }

    /// Keeps the person's key: in the app's store, or in the database through `tx`.
    pub(crate) fn keep_key(&self, tx: &Transaction<'_>, key: &PersonKey) -> Result<()> {
        match self {
            Self::InDatabase => crate::store::person::save_key(tx, key),
            Self::InApp { .. } => self.set(KEY, key.as_bytes()),
        }
    }

    pub(crate) fn key(&self, conn: &Connection) -> Result<Option<PersonKey>> {
        match self {
            Self::InDatabase => crate::store::person::key(conn),
            Self::InApp { .. } => Ok(self.get(KEY)?.and_then(|bytes| PersonKey::from_bytes(&bytes))),
        }
    }

    /// Forgets the person's secrets (her data is being deleted from this device).
    pub(crate) fn forget(&self) -> Result<()> {
        match self {
            Self::InDatabase => Ok(()),
            Self::InApp { store, scope } => {
                store.remove(&Self::name(scope, TOKEN)).map_err(failed)?;
                store.remove(&Self::name(scope, KEY)).map_err(failed)
            }
        }
    }
}

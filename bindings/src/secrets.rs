//! The app's secure storage, implemented in Kotlin (Android Keystore) or Swift (Keychain) and
//! handed to `Client.open`: the device token and the key of the person's private text live there,
//! never in the database file.

use std::sync::Arc;

use crate::error::MicrocohortError;

/// Implemented by the app. Names are stable, app-unique strings; values are small byte strings.
/// Called from the core's threads, never the main thread. Throw `MicrocohortException.SecretStore`
/// when the storage fails; the call that needed the secret then fails with it and writes nothing.
#[uniffi::export(with_foreign)]
pub trait SecretStore: Send + Sync {
    /// The value under `name`, or null if there is none.
    fn get(&self, name: String) -> Result<Option<Vec<u8>>, MicrocohortError>;
    /// Stores `value` under `name`, replacing what was there.
    fn set(&self, name: String, value: Vec<u8>) -> Result<(), MicrocohortError>;
    /// Removes `name`; removing what is not there is no error.
    fn remove(&self, name: String) -> Result<(), MicrocohortError>;
}

/// The app's store as the core sees it.
pub(crate) struct AppSecrets(pub(crate) Arc<dyn SecretStore>);

impl microcohort_core::secrets::SecretStore for AppSecrets {
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get(name.to_owned()).map_err(|e| e.to_string())
    }

    fn set(&self, name: &str, value: &[u8]) -> Result<(), String> {
        self.0.set(name.to_owned(), value.to_vec()).map_err(|e| e.to_string())
    }

    fn remove(&self, name: &str) -> Result<(), String> {
        self.0.remove(name.to_owned()).map_err(|e| e.to_string())
    }
}

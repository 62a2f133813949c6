//! Microcohort for Android and iOS: a uniffi layer over [`microcohort_core::Client`].
//!
//! No logic lives here — conversion and error mapping only (architecture §2). If a function needs an
//! `if` about the product, that belongs in the core.
//!
//! - [`client`]: the one `Client` object the apps use (learner, member and facilitator).
//! - [`memberships`]: the person's memberships on the device (one selected for the screens).
//! - [`facilitators`]: what facilitators do through the server (critique weeks, moderation, messages).
//! - [`types`]: the records and enums it exchanges.
//! - [`notification_types`]: the notification plan's records.
//! - [`events`]: the app's listener for data and sync-status changes, and its `Subscription`.
//! - [`error`]: the one error enum an app can act on.
//! - [`android_tls`]: the JNI call that lets the TLS verifier read Android's trust store.
//! - [`secrets`]: the app's secure storage (Keychain, Keystore) that holds the device's secrets.

pub mod android_tls;
pub mod calibration;
pub mod client;
pub mod error;
pub mod events;
pub mod facilitators;
pub mod memberships;
pub mod notification_types;
pub mod program_types;
pub mod secrets;
pub mod stories;
pub mod types;

pub use client::Client;
pub use error::MicrocohortError;

uniffi::setup_scaffolding!("microcohort");

/// Panics on purpose, so the app's tests can check that a failure inside the library reaches them
/// as an `Internal` error and never takes the process down.
#[cfg(feature = "testing")]
#[uniffi::export]
pub fn trigger_internal_failure_for_tests() -> Result<(), MicrocohortError> {
    error::guarded(|| panic!("internal failure triggered by a test"))
}

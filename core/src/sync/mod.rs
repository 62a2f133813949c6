//! Sync with the server (architecture §4): one HTTP round trip carries every document's changes, new
//! practice logs and prompt-pack updates.
//!
//! - [`wire`]: the CBOR request and response types, shared with the server.
//! - [`limits`] and [`request`]: the bounds on a request and the checks the server runs on one
//!   before its storage is touched.
//! - `address` (feature `sync-client`): the server address a person typed, checked;
//! - `client` (feature `sync-client`): the device side, on reqwest and the core's own tokio runtime;
//!   `devices`: the person's devices, listed and signed out from any of them; `facilitators`:
//!   what a facilitator does through the server (a week's critique, moderation, messages).

pub mod limits;
pub mod request;
pub mod wire;

#[cfg(feature = "sync-client")]
mod address;
#[cfg(feature = "sync-client")]
mod client;
#[cfg(feature = "sync-client")]
mod devices;
#[cfg(feature = "sync-client")]
mod facilitators;
#[cfg(feature = "sync-client")]
mod person;
#[cfg(feature = "sync-client")]
pub use address::server_address;
#[cfg(feature = "sync-client")]
pub use client::{FailedIntent, JoinOutcome, SyncOutcome, SyncStatus, spawn_on_runtime};
#[cfg(feature = "sync-client")]
pub use devices::DeviceLink;

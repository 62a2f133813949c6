//! The Microcohort sync server: authenticates devices, authorizes every CRDT change with the
//! core's validator, relays practice logs to facilitators and serves the program's prompts.
//!
//! - [`app`]: the axum router, shared state and cross-cutting layers (limits, timeouts, tracing).
//! - [`listener`]: the accept loop (connection caps, header and stall timeouts).
//! - [`limits`]: request rates per device and per client address.
//! - [`auth`]: device tokens and invite codes (random, stored only as hashes), the bearer extractor.
//! - [`sync`]: the `/v1/sync` round trip.
//! - [`storage`]: the storage trait, its SQLite and PostgreSQL implementations, and the sync rules
//!   they share.
//! - [`admin`]: the operator's commands (programs, cohorts, invites, revocation).
//! - [`backup`]: backing up and restoring the embedded database.
//! - [`metrics`]: Prometheus text metrics.
//! - [`response_headers`]: the request id and security headers on every response.
//! - [`tls`]: HTTPS without a proxy.
//! - [`xapi`]: learning records as xAPI statements, queued and delivered to the organisation's LRS.
//! - [`cli`]: the `microcohort-server` command line (`serve`, `admin …`, `demo`).
//! - `demo` (feature `demo`, on by default): a simulated cohort driven through the program.

pub mod admin;
pub mod app;
pub mod auth;
pub mod backup;
pub mod cli;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod report;
pub mod response_headers;
pub mod storage;
pub mod sync;
pub mod tls;
pub mod web;
pub mod xapi;

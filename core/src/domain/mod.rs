//! Pure domain logic: plain structs in, plain structs out. No IO, no clock, no randomness but
//! what a recorded seed reproduces.

pub mod arms;
pub mod baseline;
pub mod blueprint;
pub mod calibration;
pub mod cohort_metrics;
pub mod critique_week;
pub mod error;
pub mod facilitation;
pub mod metrics;
pub mod notifications;
pub mod practice;
pub mod prompt_analytics;
pub mod prompt_pack;
pub mod reminders;
pub mod review;
pub mod roles;
pub mod roster;
pub mod schedule;
pub mod statistics;
pub mod time;
pub mod today;

pub use error::DomainError;

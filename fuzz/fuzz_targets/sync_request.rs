//! A sync request body from a device, alone (`/v1/sync`) or several memberships' in one
//! (`/v1/sync/memberships`): CBOR decoding, then every check the server makes before its storage
//! (bounds, document ids, each change's bytes, practice log fields). The same bytes as a
//! facilitator's request (`/v1/critique-weeks`, `/v1/facilitator-actions`): decoding and the
//! checks against a program and a roster. A crash is a panic, or a check that takes unbounded
//! time or memory.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::domain::critique_week::{CritiqueWeekChange, check_change};
use microcohort_core::domain::facilitation::{FacilitatorAction, check};
use microcohort_core::domain::roster::{Member, MemberRole, Roster};
use microcohort_core::domain::time::DayStart;
use microcohort_core::sync::limits::MAX_MEMBERSHIPS_PER_REQUEST;
use microcohort_core::sync::request::check_request;
use microcohort_core::sync::wire::{MembershipSyncs, SyncRequest, decode};

/// automerge panics on some malformed input; the product calls it only inside a guard that
/// turns a panic into a refusal (`core/src/docs/guard.rs`). Such a caught panic is a refused
/// input here too: the hook stays quiet, and a panic that escapes a guard still aborts the run
/// (libfuzzer-sys aborts on any panic leaving the target).
fn quiet_caught_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// A program in a zone with DST changes, and a cohort of one learner.
fn cohort() -> &'static (Blueprint, Roster) {
    static COHORT: OnceLock<(Blueprint, Roster)> = OnceLock::new();
    COHORT.get_or_init(|| {
        let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap_or_default();
        let member = Member {
            user_id: "ana".into(),
            display_name: "Ana".into(),
            role: MemberRole::Learner,
            time_zone: "Europe/Berlin".into(),
            day_start: DayStart::default(),
            joined_on: start,
            left_on: None,
            paused_on: None,
        };
        (Blueprint::default_90_days(start, chrono_tz::Europe::Berlin), Roster::new(vec![member]))
    })
}

fuzz_target!(init: quiet_caught_panics(), |bytes: &[u8]| {
    let (blueprint, roster) = cohort();
    if let Ok(change) = decode::<CritiqueWeekChange>(bytes) {
        let _ = check_change(blueprint, roster, &change);
    }
    if let Ok(action) = decode::<FacilitatorAction>(bytes) {
        let _ = check(&action, blueprint, roster);
    }
    if let Ok(request) = decode::<SyncRequest>(bytes) {
        let _ = check_request("c1", request);
    }
    if let Ok(batch) = decode::<MembershipSyncs>(bytes)
        && batch.requests.len() <= MAX_MEMBERSHIPS_PER_REQUEST
    {
        for request in batch.requests {
            let cohort = request.cohort_id.clone().unwrap_or_default();
            let _ = check_request(&cohort, request);
        }
    }
});

//! A sync request body from a device, alone (`/v1/sync`) or several memberships' in one
//! (`/v1/sync/memberships`): CBOR decoding, then every check the server makes before its storage
//! (bounds, document ids, each change's bytes, practice log fields). A crash is a panic, or a
//! check that takes unbounded time or memory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use microcohort_core::sync::request::check_request;
use microcohort_core::sync::limits::MAX_MEMBERSHIPS_PER_REQUEST;
use microcohort_core::sync::wire::{MembershipSyncs, SyncRequest, decode};

/// automerge panics on some malformed input; the product calls it only inside a guard that
/// turns a panic into a refusal (`core/src/docs/guard.rs`). Such a caught panic is a refused
/// input here too: the hook stays quiet, and a panic that escapes a guard still aborts the run
/// (libfuzzer-sys aborts on any panic leaving the target).
fn quiet_caught_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

fuzz_target!(init: quiet_caught_panics(), |bytes: &[u8]| {
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

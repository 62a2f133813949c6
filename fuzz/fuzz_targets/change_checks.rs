//! Change bytes from a device: the checks that need no document (framing, bounds counted before
//! expansion, checksum, encoding, values), then the validator and the history rules against a
//! sample week. A crash is a panic anywhere, or a change the checks admit that leaves the week
//! unable to apply, save and load it, or to merge into another device's copy.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use microcohort_core::policy::sample::SampleWeek;

fn week() -> &'static SampleWeek {
    static WEEK: OnceLock<SampleWeek> = OnceLock::new();
    WEEK.get_or_init(SampleWeek::new)
}

/// automerge panics on some malformed input; the product calls it only inside a guard that
/// turns a panic into a refusal (`core/src/docs/guard.rs`). Such a caught panic is a refused
/// input here too: the hook stays quiet about it, and a panic that escapes a guard still aborts
/// the run (libfuzzer-sys aborts on any panic leaving the target), saying what broke.
fn quiet_caught_panics() {
    std::panic::set_hook(Box::new(|info| {
        if let Some(message) = info.payload().downcast_ref::<String>()
            && message.starts_with(BROKE)
        {
            eprintln!("{message}");
        }
    }));
}

const BROKE: &str = "an admitted change broke the week";

fuzz_target!(init: quiet_caught_panics(), |bytes: &[u8]| {
    let week = week();
    if let Some(change) = week.admit(bytes)
        && let Err(problem) = week.stays_sound(change)
    {
        panic!("{BROKE}: {problem}");
    }
});

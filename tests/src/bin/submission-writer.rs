//! Shares work into the cohort's week document in a loop, printing each entry key once
//! `share_work` has returned. The document is compacted every few dozen changes, so a SIGKILL
//! lands mid-compaction often; the crash test checks every printed key survived.

use std::io::Write;
use std::sync::Arc;

use microcohort_core::{Client, SystemClock, WorkKind};

fn main() {
    microcohort_tests::writer_main("submission-writer", run);
}

fn run(path: &str) -> microcohort_core::Result<()> {
    let client = Client::open(path, Arc::new(SystemClock))?;
    let mut stdout = std::io::stdout().lock();
    for n in 0.. {
        let entry = client.share_work(WorkKind::Practice, &format!("Practice {n}"), "What I tried today", None, &[])?;
        if writeln!(stdout, "{}", entry.key).and_then(|()| stdout.flush()).is_err() {
            break;
        }
    }
    Ok(())
}

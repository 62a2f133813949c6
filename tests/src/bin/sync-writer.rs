//! A linked device that practises, shares and syncs in a loop, printing each practice id once
//! `finish_practice` has returned. The sync crash test kills it with SIGKILL mid-sync, again
//! and again, and checks that the server ends with every practice and share exactly once.

use std::io::Write;

use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::{Client, Error};
use microcohort_tests::WriterClock;

fn main() {
    microcohort_tests::writer_main("sync-writer", run);
}

fn run(path: &str) -> microcohort_core::Result<()> {
    // 35 days back, in the test's program (started 45 days ago), so the day it reaches at 40
    // practices a day stays behind the server's today for the ~1,400 practices the runs may record.
    let mut clock = WriterClock::days_ago(35);
    let client = Client::open(path, clock.clock())?;
    clock.start_from(&client)?;
    let mut stdout = std::io::stdout().lock();
    loop {
        clock.tick();
        let session = match client.today()?.in_progress {
            Some(open) => open,
            None => client.start_practice(None)?,
        };
        let log =
            client.finish_practice(session.id, &PracticeOutcome { duration_secs: Some(600), ..Default::default() })?;
        client.share_practice(log.id, "Shared while syncing", "What I tried")?;
        if writeln!(stdout, "{}", log.id).and_then(|()| stdout.flush()).is_err() {
            return Ok(());
        }
        match client.sync_now() {
            // Offline or told to slow down: a real app simply tries again later.
            Ok(_) | Err(Error::Network(_) | Error::Server { status: 429, .. }) => {}
            Err(other) => return Err(other),
        }
    }
}

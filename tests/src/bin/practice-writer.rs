//! Logs practices into a device database in a loop, printing each practice id on its own line
//! once `finish_practice` has returned. The crash test kills it with SIGKILL at random moments
//! and checks that every printed id survived.

use std::io::Write;

use microcohort_core::Client;
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_tests::WriterClock;

fn main() {
    microcohort_tests::writer_main("practice-writer", run);
}

fn run(path: &str) -> microcohort_core::Result<()> {
    let mut clock = WriterClock::new();
    let client = Client::open(path, clock.clock())?;
    clock.start_from(&client)?;
    let outcome = PracticeOutcome { duration_secs: Some(600), reflection: "steady".into(), transfer: None };
    let mut stdout = std::io::stdout().lock();
    loop {
        clock.tick();
        // A practice left running by a killed predecessor is finished first, as the app would.
        let session = match client.today()?.in_progress {
            Some(open) => open,
            None => client.start_practice(None)?,
        };
        let log = client.finish_practice(session.id, &outcome)?;
        // Printed only after the call returned: this is the promise the test checks.
        if writeln!(stdout, "{}", log.id).and_then(|()| stdout.flush()).is_err() {
            return Ok(());
        }
    }
}

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
        let today = client.today()?;
        // A practice left running by a killed predecessor is finished first, as the app would.
        let session = match (today.in_progress, today.prompt) {
            (Some(open), _) => open,
            (None, Some(_)) => client.start_practice(None)?,
            // A fast machine reaches the program's end (40 practices a day) before the test
            // kills it: it waits to be killed, as a writer with nothing left to log.
            (None, None) => loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            },
        };
        let log = client.finish_practice(session.id, &outcome)?;
        // Printed only after the call returned: this is the promise the test checks.
        if writeln!(stdout, "{}", log.id).and_then(|()| stdout.flush()).is_err() {
            return Ok(());
        }
    }
}

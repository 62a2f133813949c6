//! `microcohort-server demo`: serves the sync API on the embedded SQLite, seeds a program and a
//! cohort of 12 simulated learners plus a facilitator, drives their real core clients over HTTP
//! through the last `--days` program days (ending today), prints what the facilitator's
//! dashboard shows, invites for joining from an app (`--invite N`) and a sign-in link to the web
//! dashboard, then keeps serving.
//!
//! - [`enrolment`]: the program, the cohort, the invites and the devices joining them;
//! - [`personas`]: who the simulated people are and how each persona behaves;
//! - [`simulation`]: what each person does on a day, deterministic from `--seed`;
//! - [`summary`]: the progress lines and the closing summary.

mod enrolment;
mod personas;
mod simulation;
mod summary;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{Days, Utc};
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::domain::cohort_metrics::CohortReport;
use microcohort_core::domain::prompt_pack::parse_pack;
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::app::{AppState, router};
use crate::error::ApiError;
use crate::limits::{RateLimits, RateSettings};
use crate::listener::ConnectionLimits;
use crate::report::sqlite_sql::SqliteSql;
use crate::report::store::{ReportStore, Viewer};
use crate::storage::Storage;
use crate::storage::log_rules::LogRules;
use crate::storage::sqlite::{DATABASE_FILE, SqliteStorage};
use personas::COHORT_TIME_ZONE;
use simulation::{Program, Tally, facilitate_day, hand_over_a_critique, live_day, live_day_alone};

/// Written into the data directory so a later run knows it may replace it.
const MARKER_FILE: &str = "microcohort-demo.txt";

pub struct DemoOptions {
    pub days: u32,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub seed: u64,
    /// Learner invites to the open cohort, for apps joining the running demo.
    pub invites: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("--days {days} is outside 1..={max} (the program's length)")]
    Days { days: u32, max: u32 },
    #[error("data directory {}: {reason}", path.display())]
    DataDir { path: PathBuf, reason: String },
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: SocketAddr, reason: String },
    #[error("a device failed: {0}")]
    Device(#[from] microcohort_core::Error),
    #[error("the server failed: {0}")]
    Server(String),
    #[error("{name}, day {day}: {source}")]
    Person { name: &'static str, day: u32, source: Box<DemoError> },
}

impl DemoError {
    /// Names the simulated person and day an error happened to.
    fn of(self, name: &'static str, day: u32) -> Self {
        Self::Person { name, day, source: Box::new(self) }
    }
}

impl From<ApiError> for DemoError {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::Internal(detail) => Self::Server(detail),
            other => Self::Server(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for DemoError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Server(err.to_string())
    }
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub fn run(options: DemoOptions) -> Result<(), DemoError> {
    let zone = COHORT_TIME_ZONE.parse().unwrap_or(chrono_tz::UTC);
    let today = Utc::now().with_timezone(&zone).date_naive();
    let max = Blueprint::default_90_days(today, zone).total_days();
    if !(1..=max).contains(&options.days) {
        return Err(DemoError::Days { days: options.days, max });
    }
    // Day 1 lies `days - 1` days back, so the simulated days end today and the server's report,
    // which reads the real clock, shows exactly what was simulated.
    let start = today - Days::new(u64::from(options.days - 1));
    let blueprint = Blueprint::default_90_days(start, zone);
    // Bound before the data directory is touched: a port in use leaves an earlier demo's data alone.
    let listen = options.listen;
    let listen_failed = |e: std::io::Error| DemoError::Listen { address: listen, reason: e.to_string() };
    let listener = std::net::TcpListener::bind(listen).map_err(listen_failed)?;
    listener.set_nonblocking(true).map_err(listen_failed)?;
    prepare_data_dir(&options.data_dir)?;
    let database = options.data_dir.join(DATABASE_FILE);
    // The simulation replays past weeks in seconds: every day's practice arrives "now".
    let rules = LogRules { backfill_days: None };
    let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&database)?.with_log_rules(rules));
    let reports = Arc::new(ReportStore::new(Box::new(SqliteSql::open(&database)?), storage.clone()));

    let runtime = tokio::runtime::Runtime::new().map_err(|e| DemoError::Server(e.to_string()))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(listen_failed)?;
        let address = listener.local_addr().map_err(|e| DemoError::Server(e.to_string()))?;
        println!("listening on http://{address}");
        // 25 devices joining from one address and syncing as fast as the simulation runs: no
        // per-device limit, and room for every join plus the apps' (`--invite`) and sign-ins.
        let rates = RateSettings {
            device_burst: 100_000,
            device_per_second: 100_000,
            secret_burst: 100,
            ..RateSettings::default()
        };
        let state = AppState::new(storage.clone(), reports.clone(), RateLimits::new(rates), None, false);
        let mut server = tokio::spawn(crate::listener::serve(
            listener,
            router(state.clone()),
            ConnectionLimits::default(),
            None,
            crate::cli::shutdown_signal(),
        ));
        tokio::spawn(crate::cli::maintain_in_background(state));

        let codes = enrolment::seed(storage.as_ref(), start, COHORT_TIME_ZONE)?;
        println!(
            "program \"{}\" starts {start} ({COHORT_TIME_ZONE}); simulating days 1–{} with 12 learners and a facilitator, and a control arm of 12 practising alone",
            enrolment::PROGRAM_TITLE,
            options.days
        );
        // The core's sync client blocks on its own runtime: the devices run on a plain thread.
        let (done, finished) = tokio::sync::oneshot::channel();
        let simulation = Simulation {
            server_url: format!("http://{address}"),
            data_dir: options.data_dir.clone(),
            storage: storage.clone(),
            blueprint,
            days: options.days,
            seed: options.seed,
            codes,
        };
        std::thread::spawn(move || {
            let _ = done.send(simulation.run());
        });
        tokio::select! {
            outcome = finished => {
                let outcome = outcome.map_err(|_| DemoError::Server("the simulation thread stopped".into()))??;
                summary::print_summary(&outcome.report, &outcome.totals, outcome.seconds, outcome.peer_led);
                // The arms as the program lead's report compares them (the server's figures).
                let lead = reports.clone();
                let arms = tokio::task::spawn_blocking(move || {
                    lead.refresh_for_report()?;
                    let viewer = Viewer { program_id: enrolment::PROGRAM_ID.into(), facilitator: None };
                    let facts = lead.program_facts(&viewer)?;
                    Ok::<_, ApiError>(crate::report::program_report(&facts, None, Utc::now())?.arms)
                })
                .await
                .map_err(|e| DemoError::Server(e.to_string()))??;
                summary::print_arms(arms.as_ref());
                let spare = storage.clone();
                let invites = tokio::task::spawn_blocking(move || enrolment::spare_invites(spare.as_ref(), options.invites))
                    .await
                    .map_err(|e| DemoError::Server(e.to_string()))??;
                summary::print_invites(address, &invites);
                let reports = reports.clone();
                let code = tokio::task::spawn_blocking(move || reports.create_sign_in_link(enrolment::PROGRAM_ID))
                    .await
                    .map_err(|e| DemoError::Server(e.to_string()))??;
                summary::print_links(address, enrolment::PROGRAM_ID, &code);
            }
            _ = &mut server => {
                println!("stopped during the simulation");
                return Ok(());
            }
        }
        match server.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(DemoError::Server(err.to_string())),
            Err(err) => Err(DemoError::Server(err.to_string())),
        }
    })
}

/// Creates the data directory, or replaces one an earlier demo wrote; refuses anything else.
fn prepare_data_dir(dir: &Path) -> Result<(), DemoError> {
    let fail = |reason: String| DemoError::DataDir { path: dir.to_owned(), reason };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                if !dir.join(MARKER_FILE).is_file() {
                    return Err(fail(
                        "exists and does not hold demo data; choose another --data-dir or remove it".into(),
                    ));
                }
                println!("replacing the earlier demo data in {}", dir.display());
                std::fs::remove_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(fail(err.to_string())),
    }
    std::fs::create_dir_all(dir.join("devices")).map_err(|e| fail(e.to_string()))?;
    std::fs::write(
        dir.join(MARKER_FILE),
        "Written by `microcohort-server demo`: the next demo run replaces this directory.\n",
    )
    .map_err(|e| fail(e.to_string()))
}

/// Everything the device thread needs.
struct Simulation {
    server_url: String,
    data_dir: PathBuf,
    storage: Arc<dyn Storage>,
    blueprint: Blueprint,
    days: u32,
    seed: u64,
    codes: enrolment::Codes,
}

/// What the simulation hands back for the summary.
struct Outcome {
    report: CohortReport,
    totals: Tally,
    seconds: f64,
    /// The week a learner led the critique, and who.
    peer_led: Option<(u32, &'static str)>,
}

impl Simulation {
    fn run(self) -> Result<Outcome, DemoError> {
        let began = Instant::now();
        let start = self.blueprint.start_date;
        let devices = self.data_dir.join("devices");
        let enrolment::People { mut learners, mut facilitator, mut control } =
            enrolment::join_all(&self.server_url, &devices, &self.codes, start, self.seed)?;
        enrolment::date_memberships_from(self.storage.as_ref(), start)?;

        let pack = parse_pack(microcohort_core::DEFAULT_PROMPT_PACK_NAME, microcohort_core::DEFAULT_PROMPT_PACK)
            .map_err(microcohort_core::Error::from)?;
        // The first rotation week's critique is led by the steadiest learner (week 1 in a short run).
        let rotation = self.blueprint.last_practice_week + 1;
        let covered = self.blueprint.position_on(self.blueprint.date_of_day(self.days)).week.unwrap_or(0);
        let led_week = if covered >= rotation { rotation } else { 1 };
        let lead = learners.iter().position(|l| l.persona == personas::Persona::Steady);
        let program = Program {
            rubrics: pack.prompts.iter().map(|p| (p.id.clone(), p.rubric.len() as u32)).collect(),
            blueprint: self.blueprint,
            days: self.days,
            real_now: Utc::now(),
            peer_led: lead.filter(|_| covered >= led_week).map(|lead| (led_week, lead)),
        };
        hand_over_a_critique(&facilitator, &learners, &program)?;
        let mut order_rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let mut totals = Tally::default();
        for day in 1..=self.days {
            let mut tally = Tally::default();
            // A different order each day: who sees whose work first varies.
            let mut order: Vec<usize> = (0..learners.len()).collect();
            order.shuffle(&mut order_rng);
            for index in order {
                let learner = &mut learners[index];
                live_day(learner, &program, day, &mut tally).map_err(|e| e.of(learner.name, day))?;
            }
            facilitate_day(&mut facilitator, &learners, &program, day, &mut tally)
                .map_err(|e| e.of(facilitator.name, day))?;
            for learner in &mut control {
                live_day_alone(learner, &program, day, &mut tally).map_err(|e| e.of(learner.name, day))?;
            }
            summary::print_day(&program, day, &tally);
            totals.add(&tally);
        }

        // Everyone comes online; the facilitator syncs last and sees the whole cohort.
        let now = Utc::now();
        for member in learners.iter().chain(&control).chain(std::iter::once(&facilitator)) {
            member.clock.set(now);
            member.client.sync_with_retry(5)?;
            totals.syncs += 1;
        }
        // Relayed practice logs arrive in pages: sync until nothing new comes.
        for _ in 0..20 {
            let outcome = facilitator.client.sync_with_retry(5)?;
            totals.syncs += 1;
            if outcome.cohort_logs_received == 0 && outcome.changes_received == 0 {
                break;
            }
        }
        let report = facilitator.client.cohort_dashboard()?;
        let peer_led = program.peer_led.map(|(week, lead)| (week, learners[lead].name));
        Ok(Outcome { report, totals, seconds: began.elapsed().as_secs_f64(), peer_led })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_demo_data_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
        let err = prepare_data_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("does not hold demo data"), "{err}");
        assert!(dir.path().join("precious.txt").exists());
    }

    #[test]
    fn an_earlier_demo_directory_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        prepare_data_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join(DATABASE_FILE), "old").unwrap();
        prepare_data_dir(dir.path()).unwrap();
        assert!(!dir.path().join(DATABASE_FILE).exists());
        assert!(dir.path().join(MARKER_FILE).is_file());
    }
}

//! The command line: `serve` the sync API, or run `admin` commands on its data.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::admin::{NewProgram, create_program, facilitator_load};
use crate::app::{AppState, metrics_router, router, router_without_metrics};
use crate::limits::{RateLimits, RateSettings};
use crate::listener::ConnectionLimits;
use crate::report::postgres_sql::PostgresSql;
use crate::report::sqlite_sql::SqliteSql;
use crate::report::store::{ReportStore, Sql};
use crate::storage::Storage;
use crate::storage::enrolment::Placement;
use crate::storage::log_rules::LogRules;
use crate::storage::postgres::PostgresStorage;
use crate::storage::sqlite::{DATABASE_FILE, SqliteStorage};
use clap::{Parser, Subcommand};
use microcohort_core::domain::arms::Arm;

#[derive(Parser)]
#[command(name = "microcohort-server", version, about = "Microcohort sync server")]
struct Cli {
    /// Where the embedded SQLite database lives.
    #[arg(long, global = true, env = "MICROCOHORT_DATA_DIR", default_value = "./microcohort-data")]
    data_dir: PathBuf,
    /// PostgreSQL instead of the embedded database (postgres://user:password@host:port/database);
    /// several server processes may share one.
    #[arg(long, global = true, env = "MICROCOHORT_DATABASE_URL")]
    database_url: Option<String>,
    /// Connections each process keeps open to PostgreSQL at most.
    #[arg(long, global = true, env = "MICROCOHORT_DATABASE_POOL", default_value_t = 16)]
    database_pool: u32,
    /// Days a practice recorded offline may take to arrive and still count; older ones are kept
    /// as late arrivals that no figure counts.
    #[arg(long, global = true, env = "MICROCOHORT_BACKFILL_DAYS", default_value_t = 14)]
    backfill_days: u32,
    /// Log lines as text (for a terminal) or one JSON object each (for a log collector); both
    /// carry the request id of the request they belong to.
    #[arg(long, global = true, env = "MICROCOHORT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// The server's public address, as learning records name it: learners' xAPI accounts and
    /// every activity id live under it (needed by --xapi-endpoint and `admin xapi-export`).
    #[arg(long, global = true, env = "MICROCOHORT_XAPI_HOME_PAGE")]
    xapi_home_page: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the sync API.
    Serve {
        #[arg(long, env = "MICROCOHORT_LISTEN", default_value = "127.0.0.1:8787")]
        listen: SocketAddr,
        /// Requests a device may make at once before being rate limited.
        #[arg(long, env = "MICROCOHORT_RATE_BURST", default_value_t = 60)]
        rate_burst: u32,
        /// Requests per second a device regains.
        #[arg(long, env = "MICROCOHORT_RATE_PER_SECOND", default_value_t = 10)]
        rate_per_second: u32,
        /// Joins, sign-ins and failed authentications one client address may make per minute
        /// (and at once).
        #[arg(long, env = "MICROCOHORT_ADDRESS_ATTEMPTS_PER_MINUTE", default_value_t = 20)]
        address_attempts_per_minute: u32,
        /// Connections open at once, in all.
        #[arg(long, env = "MICROCOHORT_MAX_CONNECTIONS", default_value_t = 1024)]
        max_connections: usize,
        /// Connections open at once from one client address.
        #[arg(long, env = "MICROCOHORT_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256)]
        max_connections_per_address: usize,
        /// Seconds a client has to send a request's headers, and to start its next request on a
        /// kept-alive connection.
        #[arg(long, env = "MICROCOHORT_HEADER_TIMEOUT_SECS", default_value_t = 10)]
        header_timeout_secs: u64,
        /// Behind a reverse proxy: the header it appends the client's address to (for example
        /// X-Forwarded-For); without it, the connection's peer is the client.
        #[arg(long, env = "MICROCOHORT_CLIENT_ADDRESS_HEADER")]
        client_address_header: Option<String>,
        /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
        #[arg(long, env = "MICROCOHORT_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, env = "MICROCOHORT_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve `/metrics` on this address (plain HTTP, for a scraper on a private network)
        /// instead of beside the API.
        #[arg(long, env = "MICROCOHORT_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
        /// Send learning records (xAPI 2.0 statements) to this LRS endpoint, the address its
        /// `statements` resource is under (e.g. https://lrs.example.org/xAPI/); needs
        /// --xapi-home-page. Without it nothing is sent (`admin xapi-export` still writes them).
        #[arg(long, env = "MICROCOHORT_XAPI_ENDPOINT")]
        xapi_endpoint: Option<String>,
        /// The LRS's HTTP Basic user.
        #[arg(long, env = "MICROCOHORT_XAPI_USERNAME", requires = "xapi_endpoint")]
        xapi_username: Option<String>,
        /// Its password; prefer the environment variable (arguments are visible to other users).
        #[arg(long, env = "MICROCOHORT_XAPI_PASSWORD", hide_env_values = true, requires = "xapi_username")]
        xapi_password: Option<String>,
        /// Seconds between queuing new records and sending the queue.
        #[arg(long, env = "MICROCOHORT_XAPI_INTERVAL_SECS", default_value_t = 30,
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        xapi_interval_secs: u64,
    },
    /// Operator commands.
    #[command(subcommand)]
    Admin(Admin),
    /// Serve on the embedded database and drive a simulated cohort of 12 learners and a
    /// facilitator through the last DAYS program days with real devices, then keep serving the
    /// dashboard. Uses ./microcohort-demo-data unless --data-dir says otherwise.
    #[cfg(feature = "demo")]
    Demo {
        /// Simulated program days, ending today.
        #[arg(long, default_value_t = 63)]
        days: u32,
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: SocketAddr,
        /// What the simulated people do is decided by this seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Invites printed for joining the running demo from an app: this many learner invites
        /// to a second, open cohort (0..=12), plus one facilitator invite to the simulated cohort.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=12))]
        invite: u32,
    },
}

/// The demo's data directory when --data-dir is not given: never a real server's.
#[cfg(feature = "demo")]
const DEMO_DATA_DIR: &str = "./microcohort-demo-data";

#[derive(Subcommand)]
enum Admin {
    /// Create (or update) a program from a prompt pack.
    CreateProgram {
        #[arg(long)]
        id: String,
        #[arg(long)]
        title: String,
        /// Program day 1, YYYY-MM-DD.
        #[arg(long)]
        start: String,
        /// The cohort's IANA time zone.
        #[arg(long)]
        time_zone: String,
        /// A prompt pack file; the built-in "Everyday Leadership" pack if omitted.
        #[arg(long)]
        pack: Option<PathBuf>,
        #[arg(long)]
        critique_weekday: Option<String>,
        #[arg(long)]
        critique_time: Option<String>,
        /// Hours after each critique starts that its week's feedback stays on time (1..=336).
        #[arg(long)]
        feedback_window_hours: Option<u32>,
        /// Learners per cohort as MIN..MAX (a cohort below MIN shows a warning; above MAX, joining is
        /// refused; MAX at most 20). Default 10..12.
        #[arg(long, value_parser = parse_cohort_size)]
        cohort_size: Option<(u32, u32)>,
    },
    CreateCohort {
        #[arg(long)]
        id: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        title: String,
        /// `cohort` (peers, feedback, roles) or `control`: the same prompts, reminders and
        /// practice loop, alone. A program's arms are compared in its report.
        #[arg(long, default_value = "cohort")]
        arm: String,
    },
    /// Issue a one-time invite code (printed once). With --cohort it leads to that cohort; with
    /// --program the program places a new learner: in --arm if given, else in the arm its seeded
    /// draw gives, in that arm's cohort with most room (the placement is printed on stderr and
    /// kept for exports).
    #[command(group(clap::ArgGroup::new("into").required(true).args(["cohort", "program"])))]
    Invite {
        #[arg(long)]
        cohort: Option<String>,
        #[arg(long, conflicts_with_all = ["user", "role"])]
        program: Option<String>,
        /// With --program: the operator's choice of arm (`cohort` or `control`) instead of a draw.
        #[arg(long, requires = "program")]
        arm: Option<String>,
        /// With --program: the seed of the program's draws, before its first draw (default: a
        /// random one, recorded and printed).
        #[arg(long, requires = "program", conflicts_with = "arm")]
        seed: Option<u64>,
        #[arg(long, default_value = "learner")]
        role: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        /// An existing person (a user id from `list-members`): a new device of hers (a lost or
        /// replaced phone), or her membership of another cohort. Without it the invite makes a
        /// new person.
        #[arg(long)]
        user: Option<String>,
        /// Days the code works.
        #[arg(long, default_value_t = crate::storage::people::INVITE_DAYS)]
        valid_days: u32,
    },
    /// Issue a facilitator invite code.
    AddFacilitator {
        #[arg(long)]
        cohort: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        /// Days the code works.
        #[arg(long, default_value_t = crate::storage::people::INVITE_DAYS)]
        valid_days: u32,
    },
    /// A cohort's invites, newest first: id, role, name, created, expires, used (never the code).
    ListInvites {
        #[arg(long)]
        cohort: String,
    },
    /// End an unused invite at once (an id from `list-invites`).
    RevokeInvite {
        #[arg(long)]
        id: String,
    },
    /// Sign a device out: its token stops working at once (a device id from `list-devices`).
    RevokeDevice {
        #[arg(long)]
        device: String,
    },
    /// A person's devices, newest first: id, cohort, name, joined, and whether it is revoked.
    ListDevices {
        #[arg(long)]
        user: String,
    },
    /// Record that a member left the cohort.
    RemoveMember {
        #[arg(long)]
        cohort: String,
        #[arg(long)]
        user: String,
        /// The day they left, YYYY-MM-DD (default: today in the cohort's time zone).
        #[arg(long)]
        left_on: Option<String>,
    },
    /// Date a member's membership from an earlier day (members who took part before their device
    /// joined, e.g. enrolled during orientation or imported from another system).
    SetJoinedOn {
        #[arg(long)]
        cohort: String,
        #[arg(long)]
        user: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        date: String,
    },
    /// Import per-learner activity of an earlier program as this program's baseline (replacing
    /// any imported before): a CSV with the columns learner, start_date (YYYY-MM-DD) and
    /// active_dates (YYYY-MM-DD separated by `;`). Reports then state each cohort's uplift
    /// against it, with intervals.
    ImportBaseline {
        #[arg(long)]
        program: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    ListPrograms,
    ListCohorts,
    /// Print a one-time sign-in link to a program's web dashboard (for a program lead).
    DashboardLink {
        #[arg(long)]
        program: String,
        /// Where the server is reached from the reader's browser.
        #[arg(long, default_value = "http://127.0.0.1:8787")]
        base_url: String,
    },
    ListMembers {
        #[arg(long)]
        cohort: String,
    },
    /// Every facilitator (a person, whatever her cohorts) with the programs and cohorts she
    /// facilitates and the learners in them who have not left, across all programs.
    FacilitatorLoad,
    /// List every stored document that does not load, does not survive save and load, or holds
    /// changes the server now refuses (stored by an earlier version). Exits 1 if any.
    Check,
    /// Remove a document's offending changes (and only those, and what builds on them); devices
    /// holding them fetch the document again and replay their users' unsent work.
    Repair {
        #[arg(long)]
        doc: String,
    },
    /// Write a snapshot of every document with changes since its last one now (the server does
    /// it once a minute for documents with 32 or more): devices far behind receive it.
    Compact,
    /// Write a consistent, checked copy of the embedded database to a new file (safe while the
    /// server serves). PostgreSQL: use pg_dump.
    Backup {
        #[arg(long)]
        to: PathBuf,
    },
    /// Put a backup in place as the database of an empty --data-dir (then start the server on it).
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
    /// Write a program's learning records (xAPI 2.0 statements, as sent to the LRS) to a JSON
    /// file: an array, oldest first. Queues what the server has not queued yet first.
    XapiExport {
        #[arg(long)]
        program: String,
        #[arg(long)]
        to: PathBuf,
    },
    /// How far delivery to the LRS has come: statements pending, delivered and refused (with
    /// the LRS's reasons), and the last error.
    XapiStatus,
    /// Queue the statements the LRS refused again (once the LRS, or the server, is fixed).
    XapiRetryRefused,
}

/// `10..12` → (10, 12).
fn parse_cohort_size(text: &str) -> Result<(u32, u32), String> {
    let (min, max) = text.split_once("..").ok_or_else(|| format!("{text:?} is not MIN..MAX, like 10..12"))?;
    let number = |n: &str| n.trim().parse::<u32>().map_err(|_| format!("{n:?} is not a number"));
    Ok((number(min)?, number(max.trim_start_matches('='))?))
}

fn open(cli: &Cli) -> Result<Arc<dyn Storage>, String> {
    let rules = LogRules { backfill_days: Some(cli.backfill_days) };
    if let Some(url) = &cli.database_url {
        return Ok(Arc::new(PostgresStorage::open(url, cli.database_pool)?.with_log_rules(rules)));
    }
    std::fs::create_dir_all(&cli.data_dir).map_err(|e| format!("{}: {e}", cli.data_dir.display()))?;
    let storage = SqliteStorage::open(&cli.data_dir.join(DATABASE_FILE)).map_err(|e| e.to_string())?;
    Ok(Arc::new(storage.with_log_rules(rules)))
}

/// The report tables beside the sync tables, in the same database.
fn open_reports(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    storage: &Arc<dyn Storage>,
) -> Result<Arc<ReportStore>, String> {
    let sql: Box<dyn Sql> = match database_url {
        Some(url) => Box::new(PostgresSql::open(url).map_err(|e| e.to_string())?),
        None => Box::new(SqliteSql::open(&data_dir.join(DATABASE_FILE)).map_err(|e| e.to_string())?),
    };
    Ok(Arc::new(ReportStore::new(sql, storage.clone())))
}

/// Parses the arguments and runs the command; exits non-zero with a message on failure.
pub fn main() {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    #[allow(unused_mut)]
    let mut cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    #[allow(unused_mut)]
    let mut log_filter = "info";
    #[cfg(feature = "demo")]
    if matches!(cli.command, Command::Demo { .. }) {
        // The demo's progress lines tell the story; its server logs only warnings by default.
        log_filter = "warn";
        if matches.value_source("data_dir") == Some(clap::parser::ValueSource::DefaultValue) {
            cli.data_dir = PathBuf::from(DEMO_DATA_DIR);
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| log_filter.into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        // Every span of the line, so the request id rides along with the HTTP details.
        LogFormat::Json => logs.json().with_span_list(true).with_current_span(false).init(),
    }
    if let Err(message) = run(cli) {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<(), String> {
    #[cfg(feature = "demo")]
    if let Command::Demo { days, listen, seed, invite } = cli.command {
        if cli.database_url.is_some() {
            return Err("the demo runs on the embedded SQLite; omit --database-url".into());
        }
        let options = crate::demo::DemoOptions { days, listen, data_dir: cli.data_dir, seed, invites: invite };
        return crate::demo::run(options).map_err(|e| e.to_string());
    }
    // Backups copy the embedded database file; they never open it as a server would.
    if let Command::Admin(Admin::Backup { to } | Admin::Restore { from: to }) = &cli.command {
        if cli.database_url.is_some() {
            return Err("backups here are of the embedded SQLite; for PostgreSQL use pg_dump and pg_restore".into());
        }
        return match &cli.command {
            Command::Admin(Admin::Backup { .. }) => {
                crate::backup::backup(&cli.data_dir, to)?;
                println!("backed up {} to {}", cli.data_dir.display(), to.display());
                Ok(())
            }
            _ => {
                crate::backup::restore(to, &cli.data_dir)?;
                println!("restored {} into {}", to.display(), cli.data_dir.display());
                Ok(())
            }
        };
    }
    let storage = open(&cli)?;
    let fail = |e: crate::error::ApiError| e.detail();
    match cli.command {
        Command::Serve {
            listen,
            rate_burst,
            rate_per_second,
            address_attempts_per_minute,
            max_connections,
            max_connections_per_address,
            header_timeout_secs,
            client_address_header,
            tls_cert,
            tls_key,
            metrics_listen,
            xapi_endpoint,
            xapi_username,
            xapi_password,
            xapi_interval_secs,
        } => {
            let xapi = match xapi_endpoint {
                Some(endpoint) => Some(crate::xapi::XapiConfig {
                    home: crate::xapi::home_page(cli.xapi_home_page.as_deref())?,
                    lrs: crate::xapi::LrsConfig {
                        endpoint: crate::xapi::web_address("--xapi-endpoint", &endpoint)?,
                        username: xapi_username,
                        password: xapi_password,
                    },
                    interval: std::time::Duration::from_secs(xapi_interval_secs),
                }),
                None => None,
            };
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
                _ => None,
            };
            let reports = open_reports(&cli.data_dir, cli.database_url.as_deref(), &storage)?;
            let rates = RateSettings {
                device_burst: rate_burst,
                device_per_second: rate_per_second,
                secret_burst: address_attempts_per_minute,
                secret_per_minute: address_attempts_per_minute,
                failure_burst: address_attempts_per_minute,
                failure_per_minute: address_attempts_per_minute,
            };
            let header = client_address_header
                .map(|name| name.parse().map_err(|_| format!("client address header {name:?} is not a header name")))
                .transpose()?;
            let state = AppState::new(storage, reports, RateLimits::new(rates), header, tls.is_some());
            let connections = ConnectionLimits {
                max_connections,
                max_per_address: max_connections_per_address,
                header_timeout: std::time::Duration::from_secs(header_timeout_secs.max(1)),
                ..ConnectionLimits::default()
            };
            serve(state, Listen { api: listen, metrics: metrics_listen }, connections, tls, xapi)
        }
        #[cfg(feature = "demo")]
        Command::Demo { .. } => unreachable!("the demo returned before any storage was opened"),
        Command::Admin(admin) => match admin {
            Admin::CreateProgram {
                id,
                title,
                start,
                time_zone,
                pack,
                critique_weekday,
                critique_time,
                feedback_window_hours,
                cohort_size,
            } => {
                let program = NewProgram {
                    id: &id,
                    title: &title,
                    start_date: &start,
                    time_zone: &time_zone,
                    critique_weekday: critique_weekday.as_deref(),
                    critique_time: critique_time.as_deref(),
                    feedback_window_hours,
                    cohort_size,
                    pack_path: pack.as_deref(),
                };
                create_program(storage.as_ref(), &program).map_err(fail)?;
                println!("program {id} ready");
                Ok(())
            }
            Admin::CreateCohort { id, program, title, arm } => {
                let arm = Arm::parse(&arm).map_err(|e| e.to_string())?;
                storage.create_cohort_in_arm(&id, &program, &title, arm).map_err(fail)?;
                println!("cohort {id} ready ({} arm)", arm.as_str());
                Ok(())
            }
            Admin::Invite { cohort: Some(cohort), role, name, time_zone, user, valid_days, .. } => {
                let code = storage
                    .create_invite_valid_for(&cohort, &role, &name, &time_zone, user.as_deref(), valid_days)
                    .map_err(fail)?;
                println!("{code}");
                Ok(())
            }
            Admin::Invite { program: Some(program), arm, seed, name, time_zone, valid_days, .. } => {
                let arm = arm.as_deref().map(Arm::parse).transpose().map_err(|e| e.to_string())?;
                let placement = Placement { program_id: &program, arm, seed };
                let (code, placed) = storage.enrol(&placement, &name, &time_zone, valid_days).map_err(fail)?;
                println!("{code}");
                eprintln!(
                    "{name}: {} arm, cohort {} ({})",
                    placed.arm.as_str(),
                    placed.cohort_id,
                    placed.assignment.describe()
                );
                Ok(())
            }
            Admin::Invite { .. } => Err("invite: give --cohort or --program".into()),
            Admin::AddFacilitator { cohort, name, time_zone, valid_days } => {
                let code = storage
                    .create_invite_valid_for(&cohort, "facilitator", &name, &time_zone, None, valid_days)
                    .map_err(fail)?;
                println!("{code}");
                Ok(())
            }
            Admin::ListInvites { cohort } => {
                let day = |ms: Option<i64>| {
                    ms.and_then(chrono::DateTime::from_timestamp_millis)
                        .map_or_else(|| "-".to_owned(), |at| at.format("%Y-%m-%d %H:%M").to_string())
                };
                for invite in storage.list_invites(&cohort).map_err(fail)? {
                    let state = match (invite.used_at, invite.expires_at) {
                        (Some(_), _) => "used",
                        (None, Some(at)) if at <= crate::storage::documents::now_ms() => "expired",
                        _ => "open",
                    };
                    println!(
                        "{}\t{}\t{}\tcreated {}\texpires {}\t{state}{}",
                        invite.id,
                        invite.role,
                        invite.display_name,
                        day(Some(invite.created_at)),
                        day(invite.expires_at),
                        invite.for_user.map(|u| format!("\tfor {u}")).unwrap_or_default()
                    );
                }
                Ok(())
            }
            Admin::RevokeInvite { id } => {
                storage.revoke_invite(&id).map_err(fail)?;
                println!("invite {id} revoked");
                Ok(())
            }
            Admin::RevokeDevice { device } => {
                storage.revoke_device(&device).map_err(fail)?;
                println!("device {device} revoked");
                Ok(())
            }
            Admin::ListDevices { user } => {
                let date = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.date_naive().to_string());
                for d in storage.devices(&user).map_err(fail)? {
                    let state = match d.revoked_at {
                        Some(at) => format!("revoked {}", date(at).unwrap_or_default()),
                        None => "active".into(),
                    };
                    let joined = date(d.created_at).unwrap_or_default();
                    println!("{}\t{}\t{}\tjoined {joined}\t{state}", d.device_id, d.cohort_id, d.name);
                }
                Ok(())
            }
            Admin::RemoveMember { cohort, user, left_on } => {
                let left_on = match left_on {
                    Some(date) => Some(date.parse().map_err(|_| format!("left-on {date:?} is not YYYY-MM-DD"))?),
                    None => None,
                };
                let left_on = storage.remove_member(&cohort, &user, left_on).map_err(fail)?;
                println!("{user} left {cohort} on {left_on}");
                Ok(())
            }
            Admin::SetJoinedOn { cohort, user, date } => {
                let joined_on = date.parse().map_err(|_| format!("date {date:?} is not YYYY-MM-DD"))?;
                storage.set_joined_on(&cohort, &user, joined_on).map_err(fail)?;
                println!("{user} is a member of {cohort} from {joined_on}");
                Ok(())
            }
            Admin::ImportBaseline { program, file } => {
                let learners = read_baseline(&file)?;
                let count = storage.import_baseline(&program, &learners).map_err(fail)?;
                println!("baseline of {program}: {count} learners from {}", file.display());
                Ok(())
            }
            Admin::ListPrograms => {
                for p in storage.programs().map_err(fail)? {
                    println!("{}\t{}\t{} v{}", p.id, p.title, p.pack_id, p.pack_version);
                }
                Ok(())
            }
            Admin::DashboardLink { program, base_url } => {
                let code = open_reports(&cli.data_dir, cli.database_url.as_deref(), &storage)?
                    .create_sign_in_link(&program)
                    .map_err(fail)?;
                println!("{}/dashboard/link/{code}", base_url.trim_end_matches('/'));
                Ok(())
            }
            Admin::ListCohorts => {
                for c in storage.cohorts().map_err(fail)? {
                    println!("{}\t{}\t{}\t{} members\t{} arm", c.id, c.program_id, c.title, c.members, c.arm);
                }
                Ok(())
            }
            Admin::ListMembers { cohort } => {
                for m in storage.members(&cohort).map_err(fail)? {
                    let left = m.left_on.map(|d| format!("\tleft {d}")).unwrap_or_default();
                    println!("{}\t{}\t{}\t{} devices{left}", m.user_id, m.display_name, m.role, m.devices);
                }
                Ok(())
            }
            Admin::FacilitatorLoad => {
                for f in facilitator_load(storage.as_ref()).map_err(fail)? {
                    println!(
                        "{}\t{}\t{} programs\t{} cohorts\t{} learners",
                        f.user_id, f.name, f.programs, f.cohorts, f.learners
                    );
                }
                Ok(())
            }
            Admin::Check => {
                let problems = storage.check_documents().map_err(fail)?;
                for problem in &problems {
                    match &problem.unloadable {
                        Some(why) => println!("{}\t{why}", problem.doc_id),
                        None => println!("{}\tloads, but holds changes the server now refuses", problem.doc_id),
                    }
                    for change in &problem.offending {
                        let author = change.author.as_deref().unwrap_or("unknown user");
                        println!("  change {} by {author}: {}", change.hash, change.reason);
                    }
                }
                if problems.is_empty() {
                    println!("every stored document loads and survives save and load");
                    Ok(())
                } else {
                    Err(format!("{} documents need `admin repair --doc ID`", problems.len()))
                }
            }
            // Ran above, before any database was opened.
            Admin::Backup { .. } | Admin::Restore { .. } => Ok(()),
            Admin::Compact => {
                let written = storage.compact(1).map_err(fail)?;
                println!("snapshots of {written} documents written");
                Ok(())
            }
            Admin::XapiExport { program, to } => {
                let home = crate::xapi::home_page(cli.xapi_home_page.as_deref())?;
                let reports = open_reports(&cli.data_dir, cli.database_url.as_deref(), &storage)?;
                let written = crate::xapi::export::export(&reports, &home, &program, &to)?;
                println!("{written} statements of {program} written to {}", to.display());
                Ok(())
            }
            Admin::XapiStatus => {
                let reports = open_reports(&cli.data_dir, cli.database_url.as_deref(), &storage)?;
                print!("{}", crate::xapi::export::status(&reports).map_err(fail)?);
                Ok(())
            }
            Admin::XapiRetryRefused => {
                let reports = open_reports(&cli.data_dir, cli.database_url.as_deref(), &storage)?;
                let again = crate::xapi::outbox::Outbox::new(&reports, "").retry_refused().map_err(fail)?;
                println!("{again} refused statements queued again");
                Ok(())
            }
            Admin::Repair { doc } => {
                let removed = storage.repair_document(&doc).map_err(fail)?;
                let reports = open_reports(&cli.data_dir, cli.database_url.as_deref(), &storage)?;
                reports.forget_week(&doc).map_err(fail)?;
                crate::xapi::outbox::Outbox::new(&reports, "").forget_document(&doc).map_err(fail)?;
                for change in &removed {
                    let author = change.author.as_deref().unwrap_or("unknown user");
                    println!("removed change {} by {author}: {}", change.hash, change.reason);
                }
                println!("{doc}: {} changes removed; the document loads", removed.len());
                Ok(())
            }
        },
    }
}

/// A line on stdout for whoever started the server; a closed stdout (a supervisor or a test that
/// read only the first line) must not stop it, as `println!` would by panicking.
fn announce(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}

/// Where the server listens: the API, and `/metrics` when it has an address of its own.
struct Listen {
    api: SocketAddr,
    metrics: Option<SocketAddr>,
}

fn serve(
    state: std::sync::Arc<AppState>,
    listen: Listen,
    connections: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    xapi: Option<crate::xapi::XapiConfig>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let bind = |address: SocketAddr| async move {
            tokio::net::TcpListener::bind(address).await.map_err(|e| format!("cannot listen on {address}: {e}"))
        };
        let listener = bind(listen.api).await?;
        let metrics = match listen.metrics {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        // Tests and scripts read this line to find the port.
        let scheme = if tls.is_some() { "https" } else { "http" };
        announce(&format!("listening on {scheme}://{address}"));
        tracing::info!(%address, "serving");
        let app = match metrics {
            Some(metrics) => {
                let address = metrics.local_addr().map_err(|e| e.to_string())?;
                announce(&format!("metrics on http://{address}/metrics"));
                tracing::info!(%address, "serving metrics");
                let scrapes = metrics_router(state.clone());
                tokio::spawn(async move {
                    if let Err(err) = axum::serve(metrics, scrapes).with_graceful_shutdown(shutdown_signal()).await {
                        tracing::error!(error = %err, "the metrics listener stopped");
                    }
                });
                router_without_metrics(state.clone())
            }
            None => router(state.clone()),
        };
        tokio::spawn(maintain_in_background(state.clone()));
        tokio::spawn(refresh_reports_in_background(state.reports.clone()));
        if let Some(xapi) = xapi {
            tokio::spawn(crate::xapi::delivery::run(state.clone(), xapi));
        }
        crate::listener::serve(listener, app, connections, tls, shutdown_signal()).await.map_err(|e| e.to_string())?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Once a minute, off the request path: snapshots of documents with new changes, the stored
/// totals for `/metrics`, and forgetting rate-limit buckets that are full again.
pub(crate) async fn maintain_in_background(state: std::sync::Arc<AppState>) {
    let minute = std::time::Duration::from_secs(60);
    // The first round a minute after start (start-up already read the totals).
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + minute, minute);
    loop {
        tick.tick().await;
        let state = state.clone();
        let done = tokio::task::spawn_blocking(move || {
            state.limits.prune();
            let written = state.storage.compact(crate::storage::SNAPSHOT_AFTER_CHANGES);
            if let Ok((docs, changes)) = state.storage.counts() {
                state.metrics.documents.set(docs as i64);
                state.metrics.changes.set(changes as i64);
            }
            written
        });
        match done.await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(documents = n, "snapshots written"),
            Ok(Err(err)) => tracing::warn!(error = %err.detail(), "compaction failed"),
            Err(err) => tracing::warn!(%err, "compaction task failed"),
        }
    }
}

/// Keeps the report tables close to the sync tables, so a report request has little to catch up.
async fn refresh_reports_in_background(reports: Arc<ReportStore>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let reports = reports.clone();
        match tokio::task::spawn_blocking(move || reports.refresh_gently()).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(%err, "report refresh failed"),
            Err(err) => tracing::warn!(%err, "report refresh task failed"),
        }
    }
}

/// SIGTERM (or Ctrl-C): stop accepting, finish requests in flight, exit.
pub(crate) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Reads a baseline file: every problem names the file, the line and the field.
fn read_baseline(file: &std::path::Path) -> Result<Vec<microcohort_core::domain::baseline::BaselineLearner>, String> {
    let named = |what: String| format!("{}: {what}", file.display());
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(file).map_err(|e| named(e.to_string()))?;
    let header: Vec<String> = reader.headers().map_err(|e| named(e.to_string()))?.iter().map(str::to_owned).collect();
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| named(e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        records.push((line, record.iter().map(str::to_owned).collect()));
    }
    microcohort_core::domain::baseline::from_records(&header, &records).map_err(|e| named(e.to_string()))
}

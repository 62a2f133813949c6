//! End-to-end tests of Microcohort across process boundaries. The tests live in `tests/`; the
//! programs they drive live in `src/bin/`; this library holds what several tests share: a real
//! server process they can start, kill and restart, and a raw HTTP client for hostile requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod forge;
mod lrs;
mod postgres;
pub use lrs::{LRS_PASSWORD, LRS_USER, RalphLrs};
pub use postgres::PostgresInstance;

/// Declares each scenario `fn name(backend: Backend)` as two tests: `sqlite::name` on the
/// embedded SQLite and `postgres::name` on a private PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $scenario() {
                super::$scenario($crate::Backend::Sqlite)
            })*
        }
        mod postgres {
            $(#[test]
            fn $scenario() {
                super::$scenario($crate::Backend::Postgres)
            })*
        }
    };
}

/// Says on the terminal, past the test harness's output capture, that a test did not run, so a
/// plain `cargo test` shows it among the results.
pub fn say_skipped(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {what} ***");
}

/// Which storage a test's server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A server's data for one test: a data directory and, for PostgreSQL, a private PostgreSQL
/// server whose URL is written into the directory as `database-url`, so every server and admin
/// command started on the directory uses it.
pub struct TestData {
    dir: tempfile::TempDir,
    postgres: Option<PostgresInstance>,
}

impl TestData {
    /// `None` when PostgreSQL is wanted but not installed (and not required): skip the test.
    pub fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("test directory");
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let instance = PostgresInstance::start()?;
                std::fs::write(dir.path().join(DATABASE_URL_FILE), &instance.url).expect("write database-url");
                Some(instance)
            }
        };
        Some(Self { dir, postgres })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The PostgreSQL URL, if this data lives in PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        self.postgres.as_ref().map(|p| p.url.as_str())
    }
}

const DATABASE_URL_FILE: &str = "database-url";

/// `microcohort-server --data-dir DIR [--database-url URL]` for a data directory.
pub fn server_command(binary: &str, data_dir: &Path) -> Command {
    let mut command = Command::new(binary);
    command.arg("--data-dir").arg(data_dir);
    if let Ok(url) = std::fs::read_to_string(data_dir.join(DATABASE_URL_FILE)) {
        command.arg("--database-url").arg(url.trim());
    }
    command
}

/// A `microcohort-server` process on loopback with its own data directory.
pub struct ServerProcess {
    binary: PathBuf,
    data_dir: PathBuf,
    child: Option<Child>,
    pub address: SocketAddr,
    extra: Vec<String>,
}

impl ServerProcess {
    /// Starts `serve` on an ephemeral loopback port.
    pub fn start(binary: &str, data_dir: &Path, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, address) = spawn(binary, data_dir, "127.0.0.1:0", &extra);
        Self { binary: binary.into(), data_dir: data_dir.into(), child: Some(child), address, extra }
    }

    /// The base URL devices use: `https://localhost:PORT` when the server serves TLS (test
    /// certificates name `localhost`), else `http://ADDRESS`.
    pub fn url(&self) -> String {
        if self.extra.iter().any(|arg| arg == "--tls-cert") {
            format!("https://localhost:{}", self.address.port())
        } else {
            format!("http://{}", self.address)
        }
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no shutdown, no flushing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        let listen = self.address.to_string();
        let mut last_error = None;
        for _ in 0..50 {
            match std::panic::catch_unwind(|| {
                spawn(self.binary.to_str().unwrap_or_default(), &self.data_dir, &listen, &self.extra)
            }) {
                Ok((child, _)) => {
                    self.child = Some(child);
                    return;
                }
                Err(err) => {
                    last_error = Some(err);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        panic!("server did not restart: {last_error:?}");
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        child.wait().expect("exit status")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(binary: &str, data_dir: &Path, listen: &str, extra: &[String]) -> (Child, SocketAddr) {
    let mut child = server_command(binary, data_dir)
        .arg("serve")
        .arg("--listen")
        .arg(listen)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read the address");
    let address = line
        .trim()
        .strip_prefix("listening on http://")
        .or_else(|| line.trim().strip_prefix("listening on https://"))
        .unwrap_or_else(|| panic!("server did not start: {line:?}"))
        .parse()
        .expect("address");
    (child, address)
}

/// The `main` of the writer programs: `NAME DATABASE`, exit 2 on bad usage, 1 (with the error on
/// stderr, which the crash tests check is empty) when `run` fails.
pub fn writer_main<E: std::fmt::Display>(name: &str, run: impl FnOnce(&str) -> Result<(), E>) {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: {name} DATABASE");
        std::process::exit(2);
    };
    if let Err(err) = run(&path) {
        eprintln!("{name}: {err}");
        std::process::exit(1);
    }
}

/// The writer programs' clock: starts at the real time and moves a day on for every 40 practice
/// logs the device holds, so a writer that records thousands stays within the 48 a day may hold
/// (`MAX_LOGS_PER_DAY`). Call [`WriterClock::tick`] before each practice.
pub struct WriterClock {
    clock: microcohort_core::ManualClock,
    /// Where the writer's time starts, and the real time it started at.
    origin: chrono::DateTime<chrono::Utc>,
    started: chrono::DateTime<chrono::Utc>,
    logs: usize,
}

impl WriterClock {
    pub fn new() -> Self {
        Self::days_ago(0)
    }

    /// Starts `days` days before the real time: a device that syncs stays behind the server's
    /// today (which refuses days after tomorrow) for `40 × days` practices.
    pub fn days_ago(days: u64) -> Self {
        let started = chrono::Utc::now();
        let origin = started - chrono::Days::new(days);
        Self { clock: microcohort_core::ManualClock::new(origin), origin, started, logs: 0 }
    }

    pub fn clock(&self) -> std::sync::Arc<dyn microcohort_core::Clock> {
        std::sync::Arc::new(self.clock.clone())
    }

    /// Counts the device's logs so far (once, after opening it).
    pub fn start_from(&mut self, client: &microcohort_core::Client) -> microcohort_core::Result<()> {
        self.logs = client.practice_history()?.len();
        Ok(())
    }

    /// The time for the next practice.
    pub fn tick(&mut self) {
        let day = chrono::Days::new((self.logs / 40) as u64);
        let real = chrono::Utc::now() - self.started;
        self.clock.set(self.origin + day + real);
        self.logs += 1;
    }
}

impl Default for WriterClock {
    fn default() -> Self {
        Self::new()
    }
}

/// Creates program `p1` (UTC, the built-in pack) whose day 1 was `days_ago` days ago, and the
/// given cohorts in it. Returns the start date (YYYY-MM-DD).
pub fn program_under_way(binary: &str, data_dir: &Path, days_ago: u64, cohorts: &[&str]) -> String {
    let start = (chrono::Utc::now().date_naive() - chrono::Days::new(days_ago)).to_string();
    let program =
        ["create-program", "--id", "p1", "--title", "Everyday Leadership", "--start", &start, "--time-zone", "UTC"];
    admin(binary, data_dir, &program);
    for cohort in cohorts {
        admin(
            binary,
            data_dir,
            &["create-cohort", "--id", cohort, "--program", "p1", "--title", &format!("Cohort {cohort}")],
        );
    }
    start
}

/// Runs an `admin` command against a data directory and returns what it printed.
pub fn admin(binary: &str, data_dir: &Path, args: &[&str]) -> String {
    let output = server_command(binary, data_dir).arg("admin").args(args).output().expect("run admin");
    assert!(output.status.success(), "admin {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The user id `admin list-members` shows for the member of `cohort` named `name`.
pub fn user_id_of(binary: &str, data_dir: &Path, cohort: &str, name: &str) -> String {
    let members = admin(binary, data_dir, &["list-members", "--cohort", cohort]);
    let line = members.lines().find(|l| l.split('\t').nth(1) == Some(name));
    line.and_then(|l| l.split('\t').next()).unwrap_or_else(|| panic!("no {name} in {cohort}: {members}")).to_owned()
}

/// No quiet hours on this device: a cohort notification is handed out at once, whatever the hour
/// a test runs (in quiet hours it would wait for their end and be handed out again until then;
/// the domain's own tests cover that).
pub fn without_quiet_hours(client: &microcohort_core::Client) {
    use microcohort_core::domain::reminders::ReminderPreferences;
    let preferences = ReminderPreferences { quiet_hours: None, ..ReminderPreferences::default() };
    client.set_reminder_preferences(preferences).expect("turn quiet hours off");
}

/// A device (in-memory database, system clock, UTC) that joined the server with an invite code.
pub fn join_device(server: &ServerProcess, code: &str) -> microcohort_core::Client {
    let client = microcohort_core::Client::open_in_memory(std::sync::Arc::new(microcohort_core::SystemClock))
        .expect("open a device");
    client.join_server(&server.url(), code, "test phone", "UTC").expect("join");
    client
}

/// A device on `clock` (in-memory database, UTC) that joined cohort `c1` as `name` in `role`.
pub fn member_device(
    binary: &str,
    server: &ServerProcess,
    data_dir: &Path,
    clock: &microcohort_core::ManualClock,
    name: &str,
    role: &str,
) -> microcohort_core::Client {
    let client = microcohort_core::Client::open_in_memory(std::sync::Arc::new(clock.clone())).expect("open a device");
    let invite = admin(binary, data_dir, &["invite", "--cohort", "c1", "--role", role, "--name", name]);
    client.join_server(&server.url(), &invite, "phone", "UTC").expect("join");
    client
}

/// Redeems an invite code over bare HTTP, for tests that send what no honest client would.
pub fn raw_join(server: &ServerProcess, code: &str) -> microcohort_core::sync::wire::JoinResponse {
    use microcohort_core::sync::wire::{self, JoinRequest};
    let body = wire::encode(&JoinRequest { invite_code: code.into(), device_name: "raw".into(), expected_user: None });
    let (status, _, bytes) = raw_post(server.address, "/v1/join", None, &body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    wire::decode(&bytes).expect("a join response")
}

/// A bare HTTP/1.1 POST, for requests no honest client would send. Returns status, headers, body.
pub fn raw_post(address: SocketAddr, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String, Vec<u8>) {
    raw_post_from(None, address, path, token, body)
}

/// A TCP connection from a chosen loopback address (127.0.0.x), as another client would come.
pub fn connect_from(from: Option<std::net::IpAddr>, address: SocketAddr) -> std::io::Result<TcpStream> {
    let Some(from) = from else { return TcpStream::connect(address) };
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    socket.connect(&address.into())?;
    Ok(socket.into())
}

/// [`raw_post`] from a chosen loopback address.
pub fn raw_post_from(
    from: Option<std::net::IpAddr>,
    address: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = connect_from(from, address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/cbor\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write head");
    let _ = stream.write_all(body); // the server may refuse (413) before reading it all
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(response.len());
    let headers = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = headers.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.get(split + 4..).unwrap_or_default().to_vec();
    (status, headers, body)
}

/// A GET, for `/healthz` and `/metrics`.
pub fn raw_get(address: SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = http_get(address, path, &[]);
    (status, body)
}

/// A GET with extra request headers: status, response headers (lower-case names) and body.
pub fn http_get(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, std::collections::HashMap<String, String>, String) {
    http_request(address, "GET", path, headers)
}

/// A request without a body (a form's POST, a GET) with extra headers: status, response headers
/// (lower-case names) and body.
pub fn http_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, std::collections::HashMap<String, String>, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    let length = if method == "GET" { "" } else { "Content-Length: 0\r\n" };
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{extra}{length}Connection: close\r\n\r\n")
        .expect("write");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    parse_response(&response)
}

/// An HTTP/1.1 response read to its end: status (0 if there was none), headers (lower-case
/// names) and body.
pub fn parse_response(response: &str) -> (u16, std::collections::HashMap<String, String>, String) {
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// The dashboard session a response sets, as `name=value` for a `Cookie` header.
pub fn session_cookie(headers: &std::collections::HashMap<String, String>) -> Option<String> {
    headers.get("set-cookie").and_then(|c| c.split(';').next()).map(str::to_owned)
}

/// Signs a browser in through a one-time dashboard link (`path` on `address`) and returns the
/// session cookie. The link is opened twice first, as a mail scanner or a link preview would:
/// a GET only shows the confirmation page, and the POST from its button spends the link.
pub fn sign_in_with_link(address: SocketAddr, path: &str) -> String {
    for _ in 0..2 {
        let (status, _, page) = http_get(address, path, &[]);
        assert_eq!(status, 200, "the confirmation page: {page}");
        assert!(page.contains(&format!("<form method=\"post\" action=\"{path}\">")), "a button that signs in: {page}");
    }
    let (status, headers, _) = http_request(address, "POST", path, &[]);
    assert_eq!(status, 303, "{headers:?}");
    session_cookie(&headers).expect("a session cookie")
}

/// What program `p1`'s lead reads at `path`, signed in with a fresh one-time link from
/// `admin dashboard-link`; the status must be 200.
pub fn lead_get(binary: &str, server: &ServerProcess, data_dir: &Path, path: &str) -> String {
    let link = admin(binary, data_dir, &["dashboard-link", "--program", "p1", "--base-url", &server.url()]);
    let sign_in = link.strip_prefix(&server.url()).expect("a link on the server's address").to_owned();
    let (_, headers, _) = http_request(server.address, "POST", &sign_in, &[]);
    let cookie = session_cookie(&headers).expect("a session cookie");
    let (status, _, body) = http_get(server.address, path, &[("Cookie", &cookie)]);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// A loopback HTTP proxy that adds a cookie to every request, so that a browser run from a
/// test (headless Chromium) is signed in without a cookie store.
pub struct CookieProxy {
    pub address: SocketAddr,
}

impl CookieProxy {
    pub fn start(upstream: SocketAddr, cookie: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let address = listener.local_addr().expect("address");
        let cookie = cookie.to_owned();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let cookie = cookie.clone();
                std::thread::spawn(move || {
                    let _ = Self::forward(client, upstream, &cookie);
                });
            }
        });
        Self { address }
    }

    /// One request per connection: its head gets the cookie and `Connection: close`.
    fn forward(mut client: TcpStream, upstream: SocketAddr, cookie: &str) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if client.read(&mut byte)? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head);
        let mut lines: Vec<&str> = text.trim_end().split("\r\n").collect();
        lines.retain(|l| {
            let name = l.split(':').next().unwrap_or_default().to_ascii_lowercase();
            name != "connection" && name != "cookie"
        });
        let rewritten = format!("{}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n", lines.join("\r\n"));
        let mut server = TcpStream::connect(upstream)?;
        server.write_all(rewritten.as_bytes())?;
        let mut request_body = client.try_clone()?;
        let mut to_server = server.try_clone()?;
        std::thread::spawn(move || std::io::copy(&mut request_body, &mut to_server));
        std::io::copy(&mut server, &mut client)?;
        client.shutdown(std::net::Shutdown::Both)
    }
}

/// A TCP proxy on loopback that, while faults are on, cuts connections mid-request or
/// mid-response at random byte counts.
pub struct FaultyProxy {
    pub address: SocketAddr,
    faults: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub cuts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    open_connections: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl FaultyProxy {
    pub fn start(upstream: SocketAddr) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let address = listener.local_addr().expect("address");
        let faults = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let open_connections: Arc<std::sync::Mutex<Vec<TcpStream>>> = Arc::default();
        let (f, s, c, open) = (faults.clone(), stop.clone(), cuts.clone(), open_connections.clone());
        std::thread::spawn(move || {
            let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
            while !s.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                // xorshift: which direction to cut, and after how many bytes.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Every connection opened while faults are on is cut after a random number of
                // bytes: early in a request, early in a response, or after a few requests.
                let budget = (seed >> 8) as usize;
                let (up_limit, down_limit) = if f.load(Ordering::Relaxed) {
                    match seed % 3 {
                        0 => (Some(budget % 4_000 + 1), None),
                        1 => (None, Some(budget % 4_000 + 1)),
                        _ => (Some(budget % 40_000 + 4_000), None),
                    }
                } else {
                    (None, None)
                };
                if let Ok(copy) = client.try_clone() {
                    open.lock().unwrap_or_else(|p| p.into_inner()).push(copy);
                }
                if up_limit.is_some() || down_limit.is_some() {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                let _ = client.set_nonblocking(false);
                let pipe = |from: TcpStream, to: TcpStream, limit: Option<usize>| {
                    std::thread::spawn(move || {
                        let (mut from, mut to) = (from, to);
                        let mut sent = 0usize;
                        let mut buffer = [0u8; 4096];
                        loop {
                            let n = match from.read(&mut buffer) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let n = limit.map_or(n, |l| n.min(l.saturating_sub(sent)));
                            if to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                            sent += n;
                            if limit.is_some_and(|l| sent >= l) {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    })
                };
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else { continue };
                pipe(client, server, up_limit);
                pipe(server2, client2, down_limit);
            }
        });
        Self { address, faults, stop, cuts, open_connections }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Turns faults on or off; kept-alive connections are closed so the next request opens a new
    /// one under the new rule.
    pub fn set_faults(&self, on: bool) {
        self.faults.store(on, std::sync::atomic::Ordering::Relaxed);
        for connection in self.open_connections.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = connection.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A minimal HTTP/1.1 keep-alive client for the load generator: one connection, sequential
/// requests, `Content-Length` bodies.
pub struct KeepAlive {
    address: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    pub fn connect(address: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self { address, reader: BufReader::new(stream) })
    }

    /// POSTs and returns `(status, body)`.
    pub fn post(&mut self, path: &str, token: Option<&str>, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/cbor\r\n{auth}Content-Length: {}\r\n\r\n",
            self.address,
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line)?;
        let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, body))
    }
}

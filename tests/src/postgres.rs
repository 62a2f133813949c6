//! A private PostgreSQL server for one test: `initdb` into a temporary directory and `postgres`
//! on a free loopback port, run as the `postgres` user when the tests run as root (PostgreSQL
//! refuses to run as root). Stopped and removed when dropped.
//!
//! `MICROCOHORT_TEST_POSTGRES=required` (set by `.ci/run`) makes a missing PostgreSQL a failure;
//! otherwise the PostgreSQL variants of the tests are skipped with a message on stderr.
//! `MICROCOHORT_TEST_POSTGRES_BIN` names another directory of PostgreSQL programs.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct PostgresInstance {
    child: Child,
    dir: PathBuf,
    /// `postgres://…` for the server's `--database-url`.
    pub url: String,
}

/// The newest installed PostgreSQL's programs (Debian installs them per major version).
fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("MICROCOHORT_TEST_POSTGRES_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("postgres").exists().then_some(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn required() -> bool {
    std::env::var("MICROCOHORT_TEST_POSTGRES").is_ok_and(|v| v == "required")
}

/// `(uid, gid)` to run PostgreSQL as: the `postgres` user when we are root.
fn run_as() -> Option<(u32, u32)> {
    let id = |flag: &str, user: Option<&str>| -> Option<u32> {
        let out = Command::new("id").arg(flag).args(user).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id("-u", None).unwrap_or(1) != 0 {
        return None;
    }
    let uid = id("-u", Some("postgres"))
        .expect("running as root: PostgreSQL needs the `postgres` user (apt-get install postgresql)");
    let gid = id("-g", Some("postgres")).expect("the postgres user's group");
    Some((uid, gid))
}

fn command(program: &Path, user: Option<(u32, u32)>) -> Command {
    let mut command = Command::new(program);
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

impl PostgresInstance {
    /// A fresh, empty server for a test (no fsync: the data is thrown away); `None` (after
    /// saying so on stderr) when PostgreSQL is not installed and not required.
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// A fresh server with PostgreSQL's durable defaults, for measurements.
    pub fn start_durable() -> Option<Self> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Option<Self> {
        let Some(bin) = bin_dir() else {
            assert!(
                !required(),
                "MICROCOHORT_TEST_POSTGRES=required but no PostgreSQL under /usr/lib/postgresql/*/bin"
            );
            crate::say_skipped(
                "PostgreSQL is not installed (apt-get install postgresql): this PostgreSQL test did not run",
            );
            return None;
        };
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "microcohort-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("PostgreSQL directory");
        let user = run_as();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("give the directory to postgres");
        }
        let data = dir.join("data");
        let init = command(&bin.join("initdb"), user)
            .arg("-D")
            .arg(&data)
            .args(["-U", "microcohort", "--auth=trust", "-N", "-E", "UTF8", "--locale=C"])
            .current_dir(&dir)
            .output()
            .expect("run initdb");
        assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let log = std::fs::File::create(dir.join("postgres.log")).expect("log file");
        let mut postgres = command(&bin.join("postgres"), user);
        postgres.arg("-D").arg(&data).args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"]).arg(&dir);
        postgres.args(["-c", "max_connections=200"]);
        if !durable {
            postgres.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
            // Many tests run at once, each with its own server.
            postgres.args(["-c", "shared_buffers=16MB"]);
        }
        let child = postgres.current_dir(&dir).stdout(Stdio::null()).stderr(log).spawn().expect("start postgres");
        let instance = Self { child, url: format!("postgres://microcohort@127.0.0.1:{port}/postgres"), dir };
        instance.wait_ready(&bin, port);
        Some(instance)
    }

    fn wait_ready(&self, bin: &Path, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "microcohort"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "PostgreSQL did not start:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PostgresInstance {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown, the data is thrown away anyway.
        let _ = Command::new("kill").arg("-QUIT").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

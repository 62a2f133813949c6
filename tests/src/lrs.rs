//! A real Learning Record Store for the xAPI tests: Ralph (the open-source LRS, `pip install
//! 'ralph-malph[lrs,cli]'`) with its filesystem backend, on a free loopback port, with one
//! HTTP Basic user. It can be stopped and started again on the same data, for outages.
//! `tests/lrs/ralph_server.py` runs it (one process, appending to its statements file).
//!
//! Ralph is found as `$MICROCOHORT_TEST_RALPH_PYTHON` (a Python with ralph-malph installed) or
//! `python3`; a test is skipped without it unless `MICROCOHORT_TEST_LRS=required`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const LRS_USER: &str = "microcohort";
pub const LRS_PASSWORD: &str = "test-lrs-password";
const STORE_FILE: &str = "statements.jsonl";

pub struct RalphLrs {
    python: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

/// A Python that can import Ralph's API.
fn ralph_python() -> Option<PathBuf> {
    let python = PathBuf::from(std::env::var("MICROCOHORT_TEST_RALPH_PYTHON").unwrap_or_else(|_| "python3".into()));
    let imports = Command::new(&python).args(["-c", "import ralph.backends.lrs.fs, uvicorn"]).output();
    imports.is_ok_and(|o| o.status.success()).then_some(python)
}

impl RalphLrs {
    /// A fresh LRS; `None` (after saying so) when Ralph is not installed and not required.
    pub fn start() -> Option<Self> {
        let Some(python) = ralph_python() else {
            assert!(
                std::env::var("MICROCOHORT_TEST_LRS").as_deref() != Ok("required"),
                "MICROCOHORT_TEST_LRS=required but no Python imports Ralph (set MICROCOHORT_TEST_RALPH_PYTHON)"
            );
            crate::say_skipped(
                "Ralph LRS is not installed (pip install 'ralph-malph[lrs,cli]'): this xAPI test did not run",
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("LRS directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let mut lrs = Self { python, dir, port, child: None };
        let auth = lrs
            .command()
            .args([
                "-m",
                "ralph",
                "auth",
                "-u",
                LRS_USER,
                "-p",
                LRS_PASSWORD,
                "-s",
                "all",
                "-w",
                "-A",
                LRS_USER,
                "http://localhost",
            ])
            .output()
            .expect("run ralph auth");
        assert!(auth.status.success(), "ralph auth failed: {}", String::from_utf8_lossy(&auth.stderr));
        lrs.start_again();
        Some(lrs)
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.python);
        let dir = self.dir.path();
        command
            .current_dir(dir)
            .env("RALPH_APP_DIR", dir.join("app"))
            .env("RALPH_AUTH_FILE", dir.join("auth.json"))
            .env("RALPH_RUNSERVER_BACKEND", "fs")
            .env("RALPH_BACKENDS__LRS__FS__DEFAULT_LRS_FILE", STORE_FILE)
            .env("RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH", self.data_dir());
        command
    }

    /// The xAPI endpoint (the address `statements` is under).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/xAPI/", self.port)
    }

    /// Starts the LRS on its port and data, and waits until it answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the LRS is running");
        let log = std::fs::File::create(self.dir.path().join("ralph.log")).expect("LRS log");
        std::fs::create_dir_all(self.data_dir()).expect("LRS data directory");
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("lrs/ralph_server.py");
        let child = self
            .command()
            .arg(launcher)
            .args(["127.0.0.1", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ralph");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let address: std::net::SocketAddr = ([127, 0, 0, 1], self.port).into();
        let answers =
            || std::net::TcpStream::connect(address).is_ok() && crate::raw_get(address, "/__heartbeat__").0 == 200;
        while !answers() {
            assert!(Instant::now() < deadline, "the LRS did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops it at once (an outage): nothing answers on its port until [`Self::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ralph.log")).unwrap_or_default()
    }

    /// Every statement the LRS wrote, in the order it wrote them, as stored (one JSON per line):
    /// a statement stored twice appears twice.
    pub fn stored(&self) -> Vec<serde_json::Value> {
        read_lines(&self.data_dir().join(STORE_FILE))
    }
}

fn read_lines(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("a stored statement"))
        .collect()
}

impl Drop for RalphLrs {
    fn drop(&mut self) {
        self.stop();
    }
}

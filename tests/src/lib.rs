//! End-to-end tests of Microcohort across process boundaries. The tests live in `tests/`; the
//! programs they drive live in `src/bin/`; this library holds what several tests share: a real
//! server process they can start, kill and restart, and a raw HTTP client for hostile requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
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
    let mut child = Command::new(binary)
        .arg("--data-dir")
        .arg(data_dir)
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
        .unwrap_or_else(|| panic!("server did not start: {line:?}"))
        .parse()
        .expect("address");
    (child, address)
}

/// Runs an `admin` command against a data directory and returns what it printed.
pub fn admin(binary: &str, data_dir: &Path, args: &[&str]) -> String {
    let output =
        Command::new(binary).arg("--data-dir").arg(data_dir).arg("admin").args(args).output().expect("run admin");
    assert!(output.status.success(), "admin {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A bare HTTP/1.1 POST, for requests no honest client would send. Returns status, headers, body.
pub fn raw_post(address: SocketAddr, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).expect("connect");
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
    let mut stream = TcpStream::connect(address).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("write");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

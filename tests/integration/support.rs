//! The test harness: a simulator run as the real binary on a free loopback port, a tiny HTTP
//! client for its `/_sim` endpoints, and a builder that runs the real binary against it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_bamboo-promote");

/// Polls until `done` holds, failing with `what` after 30 s: what a test waits on here is
/// another process (the binary, or the simulator's own task), not a clock it could advance.
pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends the signal of that name (`INT`, `TERM`, `STOP`, ...) to a spawned binary.
pub fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{name}");
}

/// Reads a spawned binary's stderr up to and including the first line holding `needle`, and
/// returns what it read; the rest stays in the pipe for `Ran::finish`. Read a byte at a time
/// so that nothing past that line is taken out of the pipe.
pub fn stderr_until(child: &mut Child, needle: &str) -> String {
    let stderr = child.stderr.as_mut().expect("stderr is piped");
    let mut read = Vec::new();
    let mut byte = [0u8];
    loop {
        let n = stderr.read(&mut byte).expect("stderr reads");
        let text = String::from_utf8_lossy(&read).into_owned();
        assert!(n == 1, "the binary closed stderr before {needle:?}: {text}");
        read.push(byte[0]);
        if byte[0] == b'\n' && text.lines().last().is_some_and(|l| l.contains(needle)) {
            return text + "\n";
        }
    }
}

/// A fresh scratch folder, removed with everything in it when the value is dropped: a test
/// run must not leave its worlds and manifests behind in the temp folder.
pub struct Scratch(tempfile::TempDir);

pub fn scratch(name: &str) -> Scratch {
    let dir = tempfile::Builder::new()
        .prefix(&format!("bp-test-{name}-"))
        .tempdir()
        .expect("a scratch folder in the temp folder");
    Scratch(dir)
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A simulated Bamboo served by `bamboo-promote sim` on 127.0.0.1:0.
pub struct Sim {
    child: Child,
    pub url: String,
    pub addr: String,
    pub dir: Scratch,
}

impl Sim {
    pub fn start(world: &str) -> Sim {
        let dir = scratch("sim");
        let world_path = write(&dir, "world.yaml", world);
        let mut child = Command::new(BIN)
            .args(["sim", "--world"])
            .arg(&world_path)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the simulator starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("the simulator prints its address")
            .to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "unexpected first line: {line}"
        );
        let addr = url.trim_start_matches("http://").to_string();
        Sim {
            child,
            url,
            addr,
            dir,
        }
    }

    /// A request to the simulator; returns the status and the body.
    pub fn request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        http(&self.addr, method, path_and_query, headers, body)
    }

    /// A JSON read of the REST API, as a well-behaved client sends it.
    pub fn get_json(&self, path_and_query: &str) -> Value {
        let (status, body) = self.request(
            "GET",
            &format!("/rest/api/latest/{path_and_query}"),
            &[("Accept", "application/json")],
            "",
        );
        assert_eq!(status, 200, "GET {path_and_query}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// `POST`/`PUT`/`DELETE` on the REST API with query parameters and an empty body.
    pub fn write(&self, method: &str, path_and_query: &str) -> (u16, String) {
        self.request(
            method,
            &format!("/rest/api/latest/{path_and_query}"),
            &[
                ("Accept", "application/json"),
                ("X-Atlassian-Token", "no-check"),
            ],
            "",
        )
    }

    pub fn advance(&self, ms: u64) {
        let (status, _) = self.request("POST", &format!("/_sim/clock/advance?ms={ms}"), &[], "");
        assert_eq!(status, 200);
    }

    pub fn reset(&self) {
        assert_eq!(self.request("POST", "/_sim/reset", &[], "").0, 204);
    }

    pub fn set_faults(&self, faults: &str) {
        assert_eq!(
            self.request(
                "PUT",
                "/_sim/faults",
                &[("Content-Type", "application/json")],
                faults
            )
            .0,
            204
        );
    }

    /// Every request received since the last reset: method, path, query, status.
    pub fn requests(&self) -> Vec<Value> {
        let (_, body) = self.request("GET", "/_sim/requests", &[], "");
        serde_json::from_str::<Vec<Value>>(&body).unwrap()
    }

    pub fn clear_requests(&self) {
        assert_eq!(self.request("DELETE", "/_sim/requests", &[], "").0, 204);
    }

    /// Queue calls (`PUT`/`POST queue/...`) received.
    pub fn queue_writes(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["path"].as_str().unwrap().starts_with("queue") && r["method"] != "GET")
            .collect()
    }

    /// The paths of the queue calls received, in order (`queue/SHOP-APP-42`).
    pub fn queued(&self) -> Vec<String> {
        let path = |r: &Value| r["path"].as_str().unwrap().to_string();
        self.queue_writes().iter().map(path).collect()
    }

    /// Every request received, in order, as `METHOD path`.
    pub fn calls(&self) -> Vec<String> {
        let call = |r: &Value| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        };
        self.requests().iter().map(call).collect()
    }

    /// How often each stage of a build has started.
    pub fn runs(&self, build: &str) -> Vec<(String, u64)> {
        let (_, body) = self.request("GET", "/_sim/runs", &[], "");
        let all: Value = serde_json::from_str(&body).unwrap();
        let stages = all[build]
            .as_array()
            .unwrap_or_else(|| panic!("no build {build} in {all}"));
        stages
            .iter()
            .map(|s| {
                (
                    s["stage"].as_str().unwrap().to_string(),
                    s["runs"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// The stages of a build that have run at least once.
    pub fn ran(&self, build: &str) -> Vec<String> {
        self.runs(build)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, _)| s)
            .collect()
    }

    /// The real binary, pointed at this simulator.
    pub fn cmd(&self, args: &[&str]) -> Run {
        Run::new(args).server(&self.url)
    }

    /// Runs `apply --wait` (spawned) to its end while moving the sim clock `step_ms` at a
    /// time, so stages finish without real waiting; gives up after 60 s of real time.
    pub fn wait_advancing(&self, child: Child, step_ms: u64) -> Ran {
        let waiter = std::thread::spawn(move || Ran::finish(child));
        let started = std::time::Instant::now();
        while !waiter.is_finished() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "apply --wait did not finish"
            );
            self.advance(step_ms);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        waiter.join().unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange over a fresh connection.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A run of the real binary.
pub struct Run {
    command: Command,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Waits for a spawned run to end.
    pub fn finish(child: Child) -> Ran {
        Ran::from(child.wait_with_output().expect("the binary ends"))
    }
}

impl From<Output> for Ran {
    fn from(output: Output) -> Ran {
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into(),
            stderr: String::from_utf8_lossy(&output.stderr).into(),
        }
    }
}

impl Run {
    pub fn new(args: &[&str]) -> Run {
        // `BAMBOO_PROMOTE_CLIENT` runs another build as the client, against this build's
        // simulator: how a regression test is seen to fail on the code before its fix.
        let bin = std::env::var("BAMBOO_PROMOTE_CLIENT").unwrap_or_else(|_| BIN.to_string());
        let mut command = Command::new(bin);
        command
            .args(args)
            .env_remove("BAMBOO_URL")
            .env_remove("BAMBOO_TOKEN")
            .env_remove("BAMBOO_USERNAME")
            .env_remove("BAMBOO_PASSWORD")
            // Only the tests that are about trusted certificates set these.
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            // No one's own configuration file: a test that wants one gives its folder.
            .env("XDG_CONFIG_HOME", "/nonexistent/bamboo-promote-tests")
            .env("NO_COLOR", "1");
        command.stdin(Stdio::null());
        Run { command }
    }

    pub fn server(mut self, url: &str) -> Run {
        self.command.env("BAMBOO_URL", url);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Run {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Run {
        self.command.env_remove(key);
        self
    }

    /// Standard output is a pipe whose reader is already gone, as in `plan | head` after
    /// `head` has read its lines.
    pub fn closed_stdout(mut self) -> Run {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        self.command.stdout(writer);
        self
    }

    /// Standard error is a pipe whose reader is gone: a cancelled `apply 2>&1 | tee`.
    pub fn closed_stderr(mut self) -> Run {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        self.command.stderr(writer);
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Run {
        self.command.current_dir(dir);
        self
    }

    pub fn run(mut self) -> Ran {
        Ran::from(self.command.output().expect("the binary runs"))
    }

    pub fn spawn(mut self) -> Child {
        self.command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts")
    }

    /// Spawns with standard output piped and standard error as already set (`closed_stderr`).
    pub fn spawn_keeping_stderr(mut self) -> Child {
        self.command
            .stdout(Stdio::piped())
            .spawn()
            .expect("the binary starts")
    }
}

/// Replaces what changes from run to run (ports, times, temp folders) for snapshots.
pub fn redact(text: &str, sim: &Sim) -> String {
    let mut out = text
        .replace(&sim.url, "http://SIM")
        .replace(&sim.dir.display().to_string(), "[DIR]");
    let time = regex_lite_times(&out);
    for t in time {
        out = out.replace(&t, "[TIME]");
    }
    out
}

/// RFC 3339 timestamps in the text (`2026-11-27T10:42:14.021Z`), and times for people
/// (`2026-11-27 10:42 UTC`), found without a regex crate.
fn regex_lite_times(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 20 <= bytes.len() {
        let date = bytes[i..i + 4].iter().all(u8::is_ascii_digit) && bytes[i + 4] == b'-';
        if date && bytes[i + 10] == b' ' && bytes[i + 16..i + 20] == *b" UTC" {
            found.push(text[i..i + 20].to_string());
            i += 20;
        } else if date && bytes[i + 10] == b'T' {
            let end = text[i..]
                .find(|c: char| c == '"' || c.is_whitespace() || c == ',')
                .map_or(text.len(), |e| i + e);
            found.push(text[i..end].to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

/// The pinned Python packages the tests run, installed from PyPI into `target/python-deps` on
/// first use: a third-party Bamboo client, and the Prometheus project's parser for `/metrics`.
pub const PYTHON_PACKAGES: [&str; 2] = ["atlassian-python-api==5.0.5", "prometheus-client==0.21.1"];

/// The `PYTHONPATH` that finds `PYTHON_PACKAGES`, installing them first if need be.
pub fn python_deps() -> PathBuf {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/python-deps");
    let marker = dir.join(".installed");
    let wanted = PYTHON_PACKAGES.join(" ");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--upgrade",
                "--target",
            ])
            .arg(&dir)
            .args(PYTHON_PACKAGES)
            .status()
            .expect("python3 -m pip runs");
        assert!(status.success(), "installing {wanted} from PyPI failed");
        std::fs::write(&marker, wanted).unwrap();
    }
    dir
}

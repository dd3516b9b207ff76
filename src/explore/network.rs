//! One runner's network to the simulated Bamboo: its requests go to the simulator in memory,
//! delayed on the way, with its own front end's clock stamped on each answer's `Date`, one
//! answer held for minutes (the runner paused at that await), and the client's request timeout
//! on the virtual clock. Every request and its fate goes into the trace.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::scenario::RunnerSpec;
use crate::bamboo::transport::{Answer, Body, Outgoing, SendError, Sending, Transport};
use crate::sim::{Engine, InMemory, StageStatus};

/// What happened, in order of virtual time: requests, their answers, faults, signals.
pub struct Trace {
    started: tokio::time::Instant,
    lines: Mutex<Vec<String>>,
    departures: Mutex<Vec<Departure>>,
}

/// A write as it left a runner, before the way to the server: when the tool's last checks
/// were made (nothing waits between them and this).
#[derive(Debug, Clone)]
pub struct Departure {
    pub runner: usize,
    pub method: String,
    /// Below `/rest/api/latest/`, e.g. `queue/SHOP-APP-42`.
    pub path: String,
    /// On the sim clock.
    pub at_ms: u64,
    /// For a queue call: every build as the server held it at that moment, the ground truth
    /// a target's `after` is judged on.
    pub builds: Vec<BuildAt>,
}

/// A build's stages and labels at one moment.
#[derive(Debug, Clone)]
pub struct BuildAt {
    pub plan: String,
    pub number: u32,
    pub stages: Vec<StageStatus>,
    pub labels: Vec<String>,
}

impl BuildAt {
    /// Every build the engine holds now.
    fn all(engine: &Engine) -> Vec<BuildAt> {
        engine
            .plans
            .values()
            .flat_map(|plan| {
                plan.builds.values().map(|build| BuildAt {
                    plan: plan.key.clone(),
                    number: build.number,
                    stages: build.stages.iter().map(|s| s.status).collect(),
                    labels: build.labels.clone(),
                })
            })
            .collect()
    }
}

impl Trace {
    pub fn new() -> Trace {
        Trace {
            started: tokio::time::Instant::now(),
            lines: Mutex::default(),
            departures: Mutex::default(),
        }
    }

    pub fn departed(&self, departure: Departure) {
        self.departures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(departure);
    }

    pub fn departures(&self) -> Vec<Departure> {
        self.departures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn note(&self, runner: usize, text: impl Into<String>) {
        self.line(&format!("r{runner}"), text.into());
    }

    /// What a person did to the world meanwhile.
    pub fn note_world(&self, text: impl Into<String>) {
        self.line("world", text.into());
    }

    fn line(&self, who: &str, text: String) {
        let at = self.started.elapsed().as_secs_f64();
        let line = format!("{at:>10.3}s {who} {text}");
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub struct Link {
    pub runner: usize,
    pub sim: Arc<InMemory>,
    pub spec: RunnerSpec,
    pub timeout: Duration,
    pub trace: Arc<Trace>,
    rng: Mutex<StdRng>,
    sent: Mutex<usize>,
    /// Queue calls sent so far.
    calls: Mutex<usize>,
}

impl Link {
    pub fn new(
        runner: usize,
        sim: Arc<InMemory>,
        spec: RunnerSpec,
        timeout: Duration,
        trace: Arc<Trace>,
        seed: u64,
    ) -> Link {
        Link {
            runner,
            sim,
            spec,
            timeout,
            trace,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            sent: Mutex::new(0),
            calls: Mutex::new(0),
        }
    }

    fn delay(&self) -> Duration {
        let most = self.spec.max_delay_ms;
        let ms = self
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_range(0..=most);
        Duration::from_millis(ms)
    }

    async fn exchange(&self, request: Outgoing, limit: usize) -> Result<Answer, SendError> {
        let nth = {
            let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            *sent += 1;
            *sent - 1
        };
        let call = format!(
            "{} {}{}",
            request.method,
            request.url.path().trim_start_matches("/rest/api/latest/"),
            request
                .url
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        );
        let uri: Uri = request
            .url
            .as_str()
            .parse()
            .map_err(|e| failed(format!("bad URI: {e}")))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        let body = request.body.clone().unwrap_or_default();
        if request.body.is_some() {
            // As an HTTP library does for a body of known length.
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let method = request.method.clone();
        if method != axum::http::Method::GET {
            let path = call
                .split_once(' ')
                .map_or(String::new(), |(_, c)| c.to_string());
            let builds = if path.starts_with("queue/") {
                self.sim.engine(BuildAt::all)
            } else {
                Vec::new()
            };
            self.trace.departed(Departure {
                runner: self.runner,
                method: method.to_string(),
                path,
                at_ms: self.sim.now_ms(),
                builds,
            });
        }
        // The request on its way, then the server, within the client's timeout. Its own task:
        // bytes that left reach the server though the runner exits meanwhile.
        let (there, back) = (self.delay(), self.delay());
        if self.loses(&call) {
            tokio::time::sleep(there).await;
            self.trace.note(
                self.runner,
                format!("{call} → lost on the way, connection reset"),
            );
            return Err(failed("connection reset".into()));
        }
        let sim = self.sim.clone();
        let delivery = tokio::spawn(async move {
            tokio::time::sleep(there).await;
            let response = sim.answer(method, uri, headers, body).await;
            tokio::time::sleep(back).await;
            response
        });
        let delivered = tokio::time::timeout(self.timeout, delivery).await;
        let Ok(Ok(response)) = delivered else {
            self.trace.note(self.runner, format!("{call} → timed out"));
            return Err(failed("timed out".into()));
        };
        let status = response.status();
        let mut headers = response.headers().clone();
        if self.spec.front_end_offset_ms != 0 {
            shift_date(&mut headers, self.spec.front_end_offset_ms);
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        if let Some((at, hold_ms)) = self.spec.pause
            && at == nth
        {
            self.trace.note(
                self.runner,
                format!("{call} → {status}, held {hold_ms} ms (runner paused)"),
            );
            tokio::time::sleep(Duration::from_millis(hold_ms)).await;
        }
        let body = match bytes {
            Ok(bytes) => {
                self.trace
                    .note(self.runner, format!("{call} → {}", status.as_u16()));
                let whole = bytes.len() <= limit;
                Ok(Body {
                    bytes: if whole { bytes } else { bytes.slice(..limit) },
                    whole,
                })
            }
            Err(e) => {
                self.trace.note(
                    self.runner,
                    format!("{call} → {} then dropped", status.as_u16()),
                );
                Err(format!("connection dropped while reading the answer: {e}"))
            }
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

impl Link {
    /// Whether this call is the queue call the runner loses on the way.
    fn loses(&self, call: &str) -> bool {
        if !call.starts_with("PUT queue/") {
            return false;
        }
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        *calls += 1;
        self.spec.lost_call == Some(*calls - 1)
    }
}

impl Transport for Link {
    fn send(&self, request: Outgoing, limit: usize) -> Sending<'_> {
        Box::pin(self.exchange(request, limit))
    }
}

fn failed(detail: String) -> SendError {
    SendError {
        detail,
        nothing_sent: false,
        tls: false,
    }
}

/// Moves an answer's `Date` by `offset_ms`: the runner's front end has a clock of its own.
fn shift_date(headers: &mut HeaderMap, offset_ms: i64) {
    let Some(date) = headers.get(header::DATE).and_then(|d| d.to_str().ok()) else {
        return;
    };
    let Ok(at) = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(date) else {
        return;
    };
    let Ok(shifted) = at.checked_add(jiff::SignedDuration::from_millis(offset_ms)) else {
        return;
    };
    let text = jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&shifted);
    if let Ok(text) = text
        && let Ok(value) = HeaderValue::from_str(&text)
    {
        headers.insert(header::DATE, value);
    }
}

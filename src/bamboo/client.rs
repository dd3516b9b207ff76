//! `BambooClient`: every HTTP request bamboo-promote makes goes through here.
//!
//! Reads are retried with backoff and jitter on 5xx, 429 and connection errors; a 429's
//! `Retry-After` pauses every task of the run, not only the one that was told. Writes that
//! queue builds are sent once, and their answer is sorted into accepted, refused or unknown:
//! `apply` decides what an unknown outcome means, never this module. Every answer's `Date`
//! header is kept, so that lease times are the server's, not this machine's.
//! `parallelism` bounds the requests in flight, so a large repository cannot flood a server.
//!
//! What is read lives in `reads`, the label and comment writes in `build_writes`, the queue
//! call in `write_turn`; this file keeps what they share — slots, pauses, retries, the journal,
//! the server's time, secrets scrubbed from answers — in one piece, since each of those rules
//! holds only if every request goes through all of them (it is long for that, and for its
//! tests of the raw HTTP answers a write can get).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::{AcquireError, Semaphore, SemaphorePermit};

use super::access::{self, Need};
use super::answers::{error_message, http_date_ms, not_json, refusal_message};
use super::auth::Credentials;
use super::journal::{Ended, Journal, Write};
use super::retry::{self, RetryPolicy};
use super::server_clock::ServerTime;
use super::transport::{self, Answer, Outgoing, Reqwest, Transport};

/// Bodies larger than this are decoded off the request task (see `get`): listing pages, not
/// single builds (about 3 kB each).
const DECODE_ASIDE_BYTES: usize = 64 * 1024;

/// Characters left as they are in a path segment; everything else, `/` included, is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// `result/{key}`: the results of a build, plan or project key.
pub(super) fn results_of(key: &str) -> String {
    format!("result/{}", encode_segment(key))
}

#[derive(Debug, thiserror::Error)]
pub enum BambooError {
    #[error("{what}: Bamboo answered {status}: {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
    },
    #[error("{what}: {detail} (after {retries} retries in {elapsed:.1?})")]
    Transport {
        what: String,
        detail: String,
        retries: u32,
        elapsed: Duration,
    },
    /// TLS failed, most often on a certificate this machine does not trust, or on a server
    /// that speaks plain HTTP: retrying cannot help, so it is reported at once.
    #[error("{what}: {detail} ({})", tls_hint(.detail))]
    Tls { what: String, detail: String },
    #[error("{what}: unexpected answer from Bamboo: {detail}")]
    Decode { what: String, detail: String },
    #[error(
        "{what}: the answer is larger than {limit_mib} MiB, which no Bamboo answer is; is --server the Bamboo server?"
    )]
    TooLarge { what: String, limit_mib: usize },
    /// The server answered with something other than what was asked for: acting on it could
    /// promote a build nobody named.
    #[error(
        "{what}: Bamboo answered with {answered}; nothing is done with an answer to another question"
    )]
    Mismatch { what: String, answered: String },
    /// More than one thing answers to a name (two branches), and acting on either could
    /// promote a build nobody named.
    #[error("{what}: {candidates} both answer to it; name the branch so that only one does")]
    Ambiguous { what: String, candidates: String },
    /// A list read in pages kept changing between the pages (labels other applies put on
    /// and take off): read again later, it may settle.
    #[error("{what}: the list kept changing while it was read, page by page")]
    Changing { what: String },
    /// The audit trail could not record the write, so it was not sent.
    #[error("{what}: not sent, because the audit trail cannot record it: {detail}")]
    NotJournaled { what: String, detail: String },
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

/// What to do about a failed TLS handshake. A server that answers in plain HTTP gives rustls
/// a record it cannot read (`InvalidContentType`): the scheme is wrong, not the certificate.
fn tls_hint(detail: &str) -> &'static str {
    if detail.contains("InvalidContentType") {
        "the server answers in plain HTTP: give its address with http://, not https://"
    } else {
        "if your company's CA signs the server's certificate, point SSL_CERT_FILE at that CA's PEM file"
    }
}

/// How a queue call ended when it was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Bamboo answered and refused (a 3xx or 4xx): nothing was done.
    #[error("Bamboo refused with {status}: {message}")]
    Refused { status: u16, message: String },
    /// The call never left this machine (no connection could be made): nothing was done.
    #[error("not sent: {0}")]
    NotSent(String),
    /// No answer that says what happened (a timeout, a dropped connection, a 5xx, a 408): the
    /// server may have acted, or may still act.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// The largest answer read: a page of a hundred builds with their stages is about 300 kB, so
/// this is generous, and an endless answer (a misbehaving proxy) ends with an error instead of
/// taking the machine's memory.
pub(super) const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Settings for a client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's base URL, context path included (`https://ci.example.com/bamboo`).
    pub server: String,
    pub credentials: Credentials,
    pub parallelism: usize,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

/// What `keep_tally` is told of each request.
pub type Tally = Arc<dyn Fn(&Method, Option<u16>) + Send + Sync>;

pub struct BambooClient {
    http: Arc<dyn Transport>,
    api: String,
    credentials: Credentials,
    retry: RetryPolicy,
    slots: Semaphore,
    /// Set by a 429: no request starts before then.
    paused_until: Mutex<Option<Instant>>,
    /// Where writes are recorded before they leave (see `journal`).
    journal: OnceLock<Arc<dyn Journal>>,
    /// Told of every request's method and status, when set (`watch`'s metrics).
    tally: OnceLock<Tally>,
    /// What the `Date` headers so far say of the server's clock.
    server_time: Mutex<Option<ServerTime>>,
    /// The zero of the monotonic times in `server_time`.
    origin: Instant,
    /// The server's base URL, for messages.
    server: String,
    warned_unreachable: std::sync::atomic::AtomicBool,
    request_timeout: Duration,
}

impl BambooClient {
    pub fn new(config: ClientConfig) -> Result<BambooClient, BambooError> {
        let api = format!("{}/rest/api/latest", config.server.trim_end_matches('/'));
        url::Url::parse(&api).map_err(|e| BambooError::Setup(format!("{api}: {e}")))?;
        let http = transport::chosen(|| {
            let built = Reqwest::new(&config.server, config.request_timeout)?;
            Ok(Arc::new(built) as Arc<dyn Transport>)
        })
        .map_err(BambooError::Setup)?;
        Ok(BambooClient {
            http,
            api,
            credentials: config.credentials,
            retry: config.retry,
            slots: Semaphore::new(config.parallelism.max(1)),
            paused_until: Mutex::new(None),
            journal: OnceLock::new(),
            tally: OnceLock::new(),
            server_time: Mutex::new(None),
            origin: Instant::now(),
            server: config.server.trim_end_matches('/').to_string(),
            warned_unreachable: std::sync::atomic::AtomicBool::new(false),
            request_timeout: config.request_timeout,
        })
    }

    /// The time allowed for one request: a write lands within it, or the client gave up.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// What the server's answers so far say of its clock; `None` before any carried a `Date`.
    pub fn server_time(&self) -> Option<ServerTime> {
        *self.server_time.lock().expect("server time lock")
    }

    /// Forgets what answers said of the server's clock, so that the next ones say it afresh:
    /// `watch` at each cycle, as each `apply` process starts knowing nothing. Within a cycle a
    /// clock step or front ends that disagree count as they do in one apply; a step seen once
    /// does not stop every later cycle's writes. Nothing is in flight between cycles.
    pub fn forget_server_time(&self) {
        *self.server_time.lock().expect("server time lock") = None;
    }

    /// Closes the connections kept open to the server: `watch` between cycles, so that an idle
    /// watcher holds no sockets, nor their buffers (hyper keeps up to 400 kB of read buffer on
    /// each pooled connection: with eight, up to 3 MB held while the watcher sleeps). A cycle
    /// every 30 s pays a handshake per connection; a server or proxy with a shorter keep-alive
    /// timeout of its own would have closed them anyway.
    pub fn close_idle_connections(&self) {
        self.http.close_idle_connections();
    }

    /// Keeps what an answer's `Date` says of the server's clock; `sent` is when the request
    /// left.
    pub(super) fn note_date(&self, answer: &Answer, sent: Instant) {
        let Some(date) = answer.header("Date").and_then(|d| http_date_ms(&d)) else {
            return;
        };
        let reading = ServerTime::reading(self.origin, date, sent, Instant::now());
        let mut known = self.server_time.lock().expect("server time lock");
        *known = Some(known.map_or(reading, |k| k.narrowed(reading)));
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// A text that came from the server, without our credentials: a server or proxy that
    /// echoes the request's headers in its error message must not get them printed or logged.
    pub(super) fn scrub(&self, text: String) -> String {
        self.secret_forms()
            .into_iter()
            .fold(text, |text, form| text.replace(form.as_str(), "[redacted]"))
    }

    /// The secrets a server could echo back — the token, or the password and the basic-auth
    /// header's value — each as it is and upper- and lower-cased.
    fn secret_forms(&self) -> Vec<String> {
        use base64::Engine as _;
        match &self.credentials {
            Credentials::Anonymous => Vec::new(),
            Credentials::Token(token) => vec![token.expose().to_string()],
            Credentials::Basic { username, password } => vec![
                password.expose().to_string(),
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose())),
            ],
        }
        .into_iter()
        .filter(|s| !s.is_empty())
        .flat_map(|s| [s.to_ascii_uppercase(), s.to_ascii_lowercase(), s])
        .collect()
    }

    /// An answer's body without our credentials in it, as they are or upper- or lower-cased:
    /// a server that echoes them into build data (a label, a revision) must not get them into
    /// plans, saved plans or JSON output. A body without them is returned as it is.
    fn scrub_body(&self, body: Bytes) -> Bytes {
        let forms = self.secret_forms();
        let found = forms
            .iter()
            .any(|form| memchr::memmem::find(&body, form.as_bytes()).is_some());
        if !found {
            return body;
        }
        let mut text = String::from_utf8_lossy(&body).into_owned();
        for form in &forms {
            text = text.replace(form.as_str(), "[redacted]");
        }
        Bytes::from(text)
    }

    /// Bamboo's message for a 401 or 403, without our credentials, with what to do about it.
    pub(super) fn with_access_hint(&self, status: u16, message: String, need: Need) -> String {
        access::hinted(status, self.scrub(message), &self.credentials, need)
    }

    pub(super) fn request(&self, method: Method, path: &str, query: &[(&str, &str)]) -> Outgoing {
        let url = url::Url::parse(&format!("{}/{path}", self.api))
            .expect("the API address parsed in `new`, and paths are encoded segments");
        let mut request = Outgoing::new(method, url)
            .header("Accept", "application/json")
            .header(
                "User-Agent",
                concat!("bamboo-promote/", env!("CARGO_PKG_VERSION")),
            )
            .query(query);
        match &self.credentials {
            Credentials::Anonymous => {}
            Credentials::Token(token) => {
                request = request.header("Authorization", format!("Bearer {}", token.expose()));
            }
            Credentials::Basic { username, password } => {
                use base64::Engine as _;
                let pair = format!("{username}:{}", password.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                request = request
                    .header("Authorization", format!("Basic {encoded}"))
                    .query(&[("os_authType", "basic")]);
            }
        }
        request
    }

    pub(super) async fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<T>, BambooError> {
        self.get_in(what, path, query, Reading::Retried).await
    }

    pub(super) async fn get_in<T: DeserializeOwned + Send + 'static>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, &str)],
        reading: Reading,
    ) -> Result<Option<T>, BambooError> {
        let request = || self.request(Method::GET, path, query);
        let body = match reading {
            Reading::Retried => self.with_retries(what, request).await?,
            Reading::OnceInHeldSlot => self.once(what, request()).await?,
        };
        let Some(body) = body else {
            return Ok(None);
        };
        let body = self.scrub_body(body);
        // Kept to say what came back when it is not the JSON expected.
        let body_start = body.slice(..body.len().min(512));
        // Every read of a run is polled by one task, so a listing page decoded in place (about
        // 1 ms for 300 kB) would hold up the sending and receiving of all the others. Large
        // bodies are decoded on the blocking pool instead, beside the task, on another core.
        let decoded = if body.len() > DECODE_ASIDE_BYTES {
            let decoding = tokio::task::spawn_blocking(move || serde_json::from_slice(&body));
            // A panic while decoding is a bug; it surfaces as it would have in place.
            decoding
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        } else {
            serde_json::from_slice(&body)
        };
        decoded.map(Some).map_err(|e| BambooError::Decode {
            what: what.to_string(),
            detail: self.scrub(not_json(&body_start, &e)),
        })
    }

    /// Sends once, in a slot the caller holds: the body of a success, `None` for 404, or an
    /// error; a 429 or 5xx is an error too, for the caller to start over from its turn.
    pub(super) async fn once(
        &self,
        what: &str,
        request: Outgoing,
    ) -> Result<Option<Bytes>, BambooError> {
        let sent = Instant::now();
        match self.attempt(request).await {
            Attempt::Done(body) => Ok(body),
            Attempt::Transient(detail, retry_after) => {
                if let Some(delay) = retry_after {
                    self.pause_all(delay);
                }
                Err(BambooError::Transport {
                    what: what.into(),
                    detail: self.scrub(detail),
                    retries: 0,
                    elapsed: sent.elapsed(),
                })
            }
            other => Err(self.final_error(what, other, Need::Read)),
        }
    }

    /// The error a refused, TLS-failed or oversized answer is.
    pub(super) fn final_error(&self, what: &str, attempt: Attempt, need: Need) -> BambooError {
        match attempt {
            Attempt::Refused(status, message) => BambooError::Status {
                what: what.into(),
                status,
                message: self.with_access_hint(status, message, need),
            },
            Attempt::Tls(detail) => BambooError::Tls {
                what: what.into(),
                detail,
            },
            Attempt::TooLarge => BambooError::TooLarge {
                what: what.into(),
                limit_mib: MAX_ANSWER_BYTES >> 20,
            },
            Attempt::Done(_) | Attempt::Transient(..) => {
                unreachable!("only a final failure is an error")
            }
        }
    }

    /// Sends until a final answer: the body of a success, `None` for 404, or an error.
    async fn with_retries(
        &self,
        what: &str,
        build: impl Fn() -> Outgoing,
    ) -> Result<Option<Bytes>, BambooError> {
        self.with_retries_journaled(what, build, None, Need::Read)
            .await
    }

    /// `with_retries`, telling the journal of each attempt of a write (`write`): before it
    /// leaves (a journal that cannot keep it stops it) and once answered.
    pub(super) async fn with_retries_journaled(
        &self,
        what: &str,
        build: impl Fn() -> Outgoing,
        write: Option<&Write>,
        need: Need,
    ) -> Result<Option<Bytes>, BambooError> {
        let started = Instant::now();
        let mut retries = 0;
        loop {
            let outcome = {
                let _slot = self
                    .turn()
                    .await
                    .map_err(|e| BambooError::Setup(e.to_string()))?;
                // Stamped with the server's time as known when it leaves.
                let write = write.map(|w| Write {
                    server_ms: self.server_time().map(|t| t.now()),
                    ..w.clone()
                });
                if let Some(write) = &write
                    && let Err(detail) = self.journal_before(write)
                {
                    return Err(BambooError::NotJournaled {
                        what: write.call.clone(),
                        detail,
                    });
                }
                let outcome = self.attempt(build()).await;
                if let Some(write) = &write {
                    let (ended, detail) = match &outcome {
                        Attempt::Done(_) => (Ended::Accepted, None),
                        Attempt::Transient(detail, _) => {
                            (Ended::Unknown, Some(self.scrub(detail.clone())))
                        }
                        Attempt::Refused(status, message) => (
                            Ended::Refused,
                            Some(format!("{status}: {}", self.scrub(message.clone()))),
                        ),
                        Attempt::Tls(detail) => (Ended::Refused, Some(detail.clone())),
                        Attempt::TooLarge => (Ended::Refused, Some("answer too large".into())),
                    };
                    let write = Write {
                        server_ms: self.server_time().map(|t| t.now()),
                        ..write.clone()
                    };
                    self.journal_after(&write, ended, detail);
                }
                outcome
            };
            let wait = match outcome {
                Attempt::Done(body) => return Ok(body),
                final_failure @ (Attempt::Refused(..) | Attempt::Tls(_) | Attempt::TooLarge) => {
                    return Err(self.final_error(what, final_failure, need));
                }
                Attempt::Transient(detail, retry_after) => {
                    let detail = self.scrub(detail);
                    if retries == 0
                        && retry_after.is_none()
                        && !detail.starts_with("Bamboo answered")
                    {
                        self.warn_unreachable(&detail);
                    }
                    if retries >= self.retry.max_retries {
                        return Err(BambooError::Transport {
                            what: what.into(),
                            detail,
                            retries,
                            elapsed: started.elapsed(),
                        });
                    }
                    match retry_after {
                        Some(delay) => {
                            self.pause_all(delay);
                            Duration::ZERO
                        }
                        None => self.retry.delay(retries),
                    }
                }
            };
            retries += 1;
            tracing::debug!("{what}: retry {retries} in {wait:.1?}");
            tokio::time::sleep(wait).await;
        }
    }

    /// The method and the path below the API, with its query (which carries no secret:
    /// credentials travel in a header), for logs.
    fn describe_request(&self, request: &Outgoing) -> (String, String) {
        let url = &request.url;
        let path = url.path().strip_prefix("/").unwrap_or(url.path());
        let below_api = self
            .api
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('/'))
            .and_then(|(_, api_path)| path.strip_prefix(api_path))
            .unwrap_or(path)
            .trim_start_matches('/');
        let query = url.query().map_or(String::new(), |q| format!("?{q}"));
        (request.method.to_string(), format!("{below_api}{query}"))
    }

    /// `-v`: each answer's status and time; `-vv`: its body too, scrubbed of our credentials.
    pub(super) fn log_answer(
        &self,
        method: &str,
        path: &str,
        status: StatusCode,
        sent: Instant,
        body: &[u8],
    ) {
        tracing::debug!(
            "{method} {path} → {} in {:.0?}",
            status.as_u16(),
            sent.elapsed()
        );
        if tracing::enabled!(tracing::Level::TRACE) {
            let text: String = String::from_utf8_lossy(body).chars().take(4096).collect();
            tracing::trace!("{method} {path} body: {}", self.scrub(text));
        }
    }

    /// Says once per run that the server does not answer, so that a run against an
    /// unreachable address is not silent while it retries.
    fn warn_unreachable(&self, detail: &str) {
        if !self
            .warned_unreachable
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            errln!(
                "warning: no answer from {} yet ({detail}); trying again, up to {} times",
                self.server,
                self.retry.max_retries
            );
        }
    }

    pub(super) fn slots(&self) -> &Semaphore {
        &self.slots
    }

    /// Until when the server asked every request to wait, if it did.
    pub(super) fn paused_until(&self) -> Option<Instant> {
        *self.paused_until.lock().expect("pause lock")
    }

    /// Tells `tally` of every request from now on: its method, and the answer's status (`None`
    /// when there was none).
    pub fn keep_tally(&self, tally: Tally) {
        let _ = self.tally.set(tally);
    }

    /// Sends one request on the transport, telling the tally.
    pub(super) async fn send(
        &self,
        request: Outgoing,
        limit: usize,
    ) -> Result<Answer, transport::SendError> {
        let method = request.method.clone();
        let answer = self.http.send(request, limit).await;
        if let Some(tally) = self.tally.get() {
            tally(&method, answer.as_ref().ok().map(|a| a.status.as_u16()));
        }
        answer
    }

    /// Where this client's writes are recorded; a client without one sends none.
    pub fn keep_journal(&self, journal: Arc<dyn Journal>) {
        let _ = self.journal.set(journal);
    }

    /// Tells the journal of a write about to leave; an error (no journal, or one that cannot
    /// write) means it must not.
    pub(super) fn journal_before(&self, write: &Write) -> Result<(), String> {
        match self.journal.get() {
            Some(journal) => journal.before(write),
            None => Err("no audit trail is kept, so no write is sent".into()),
        }
    }

    pub(super) fn journal_after(&self, write: &Write, ended: Ended, detail: Option<String>) {
        if let Some(journal) = self.journal.get() {
            journal.after(write, ended, detail);
        }
    }

    fn pause_all(&self, delay: Duration) {
        let until = Instant::now() + delay;
        let mut paused = self.paused_until.lock().expect("pause lock");
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    /// A turn to send: one of the `parallelism` slots, then the end of any pause the server
    /// asked for (429, 503). The caller holds the slot until the answer is read.
    pub(super) async fn turn(&self) -> Result<SemaphorePermit<'_>, AcquireError> {
        let slot = self.slots.acquire().await?;
        let until = *self.paused_until.lock().expect("pause lock");
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                tokio::time::sleep(until - now).await;
            }
        }
        Ok(slot)
    }
}

/// How a read is sent.
#[derive(Debug, Clone, Copy)]
pub(super) enum Reading {
    /// In a slot of its own, after any pause, retried with backoff.
    Retried,
    /// Once, in a slot the caller already holds, with every pause already waited out: a
    /// write's last read, which nothing may wait behind (see `WriteTurn`).
    OnceInHeldSlot,
}

pub(super) enum Attempt {
    Done(Option<Bytes>),
    /// The answer is larger than `MAX_ANSWER_BYTES`: no Bamboo answer is that large.
    TooLarge,
    Refused(u16, String),
    Tls(String),
    Transient(String, Option<Duration>),
}

impl BambooClient {
    pub(super) async fn attempt(&self, request: Outgoing) -> Attempt {
        let sent = Instant::now();
        let (method, path) = self.describe_request(&request);
        let answer = match self.send(request, MAX_ANSWER_BYTES).await {
            Ok(answer) => answer,
            Err(e) if e.tls => return Attempt::Tls(e.detail),
            Err(e) => {
                tracing::debug!(
                    "{method} {path} → {} after {:.0?}",
                    e.detail,
                    sent.elapsed()
                );
                return Attempt::Transient(e.detail, None);
            }
        };
        self.note_date(&answer, sent);
        let status = answer.status;
        let retry_after = retry::retry_after(answer.header("Retry-After").as_deref());
        let location = answer.header("Location");
        let body = match answer.body {
            Ok(body) if body.whole => body.bytes,
            Ok(_) => return Attempt::TooLarge,
            Err(detail) => return Attempt::Transient(detail, None),
        };
        self.log_answer(&method, &path, status, sent, &body);
        if status.is_success() {
            // An empty 2xx where an object was expected (a 204 for a branch that does not
            // exist, on some servers) means there is none.
            Attempt::Done((!body.is_empty()).then_some(body))
        } else if status == StatusCode::NOT_FOUND {
            Attempt::Done(None)
        } else if retry::is_transient(status.as_u16()) {
            let retry_after = if status == StatusCode::TOO_MANY_REQUESTS {
                retry_after.or(Some(Duration::from_secs(1)))
            } else {
                None
            };
            let message = error_message(&body);
            Attempt::Transient(format!("Bamboo answered {status}: {message}"), retry_after)
        } else {
            let message = refusal_message(status, location.as_deref(), &body);
            Attempt::Refused(status.as_u16(), message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Answers every request with `answer`, counting the requests.
    async fn serve(answer: String) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                seen.fetch_add(1, Ordering::SeqCst);
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (url, count)
    }

    fn client(server: &str) -> BambooClient {
        BambooClient::new(ClientConfig {
            server: server.into(),
            credentials: Credentials::Anonymous,
            parallelism: 2,
            request_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_redirect_is_reported_with_its_target_and_not_followed() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        let (elsewhere, followed) = serve(ok.into()).await;
        let moved = format!(
            "HTTP/1.1 301 Moved Permanently\r\nLocation: {elsewhere}/rest/api/latest/queue/A-B-1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let (server, asked) = serve(moved).await;
        let client = client(&server);

        let read = client.plan("A-B").await.unwrap_err().to_string();
        let turn = client.write_turn(Instant::now()).await.unwrap();
        let write = turn.continue_build("A-B-1", "Deploy", false).await;

        assert!(read.contains("301") && read.contains(&elsewhere), "{read}");
        match write {
            Err(WriteError::Refused { status, message }) => {
                assert_eq!(status, 301);
                assert!(message.contains(&elsewhere), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(asked.load(Ordering::SeqCst), 2, "one read, one write");
        assert_eq!(
            followed.load(Ordering::SeqCst),
            0,
            "nothing sent to the new address"
        );
    }

    #[tokio::test]
    async fn write_answers_are_sorted_into_accepted_refused_not_sent_and_unknown() {
        let answer = |status: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        let write = |url: String| async move {
            let client = client(&url);
            let turn = client.write_turn(Instant::now()).await.unwrap();
            turn.continue_build("A-B-1", "Deploy", false).await
        };
        // A 2xx is accepted whatever its body: a login page, or 50 MB promised (not read).
        let (html, _) = serve(answer("200 OK", "<html>Log in</html>")).await;
        assert!(write(html).await.is_ok());
        let huge = "HTTP/1.1 200 OK\r\nContent-Length: 50000000\r\nConnection: close\r\n\r\n";
        let (huge, _) = serve(format!("{huge}{}", "x".repeat(1 << 20))).await;
        assert!(write(huge).await.is_ok());
        // A 4xx is Bamboo saying no.
        let (refused, _) = serve(answer("400 Bad Request", r#"{"message":"busy"}"#)).await;
        assert!(matches!(
            write(refused).await,
            Err(WriteError::Refused { status: 400, .. })
        ));
        // A 5xx, or a proxy's 408, says nothing of what Bamboo did: Bamboo's message is kept.
        let (failed, _) = serve(answer("500 Internal Server Error", r#"{"message":"oops"}"#)).await;
        match write(failed).await {
            Err(WriteError::Unknown(detail)) => assert!(detail.contains("oops"), "{detail}"),
            other => panic!("expected an unknown outcome, got {other:?}"),
        }
        let (proxy, _) = serve(answer("408 Request Timeout", "")).await;
        assert!(matches!(write(proxy).await, Err(WriteError::Unknown(_))));
        // Nobody listening: the call never left.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        assert!(matches!(write(url).await, Err(WriteError::NotSent(_))));
    }

    #[tokio::test]
    async fn a_token_echoed_in_an_answers_data_is_redacted_before_it_is_read() {
        let body = r#"{"key":"A-B-1","revision":"s3cr3t-tok","labels":["echo-S3CR3T-TOK"]}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (url, _) = serve(answer).await;
        let client = BambooClient::new(ClientConfig {
            server: url,
            credentials: Credentials::Token(crate::bamboo::Secret::new("s3cr3t-tok")),
            parallelism: 1,
            request_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        })
        .unwrap();
        let read: Option<serde_json::Value> = client.get("read", "x", &[]).await.unwrap();
        let text = read.unwrap().to_string();
        assert!(!text.to_ascii_lowercase().contains("s3cr3t"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}

//! The one place requests leave and answers come back. The client builds an `Outgoing`
//! request and hands it to a `Transport`: reqwest in production, the simulator's engine in
//! memory in the fault-space explorer (`src/explore/`), which runs the real client on a
//! virtual clock. Everything above this seam — slots, retries, the write turn, the journal,
//! what a status means — is the same code in both.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::HeaderMap;

/// A request as the client means it, before any HTTP library sees it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: Method,
    /// Absolute, with its query.
    pub url: url::Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Bytes>,
}

impl Outgoing {
    pub fn new(method: Method, url: url::Url) -> Outgoing {
        Outgoing {
            method,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Outgoing {
        self.headers.push((name, value.into()));
        self
    }

    pub fn query(mut self, pairs: &[(&str, &str)]) -> Outgoing {
        if !pairs.is_empty() {
            self.url.query_pairs_mut().extend_pairs(pairs);
        }
        self
    }

    pub fn json(self, body: &serde_json::Value) -> Outgoing {
        let mut with = self.header("Content-Type", "application/json");
        with.body = Some(Bytes::from(body.to_string()));
        with
    }

    /// A bodiless write: says so with `Content-Length: 0` (a proxy may refuse it with 411
    /// otherwise).
    pub fn empty(self) -> Outgoing {
        self.header("Content-Length", "0")
    }
}

/// What came back: the status, the headers and as much of the body as was asked for.
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: HeaderMap,
    /// The body's first bytes, up to the limit given; `Err` when the connection broke while
    /// it was read.
    pub body: Result<Body, String>,
}

pub struct Body {
    pub bytes: Bytes,
    /// False when the body went on past the limit: `bytes` holds its start.
    pub whole: bool,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        let value = self.headers.get(name)?;
        value.to_str().ok().map(str::to_string)
    }
}

/// Why no answer came.
#[derive(Debug, Clone)]
pub struct SendError {
    /// In words, without the URL (which could carry a query with a user name).
    pub detail: String,
    /// No connection was made, so no byte of the request reached the server.
    pub nothing_sent: bool,
    /// TLS failed: an untrusted certificate, or a protocol the server refuses, is the same on
    /// every attempt.
    pub tls: bool,
}

pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<Answer, SendError>> + Send + 'a>>;

pub trait Transport: Send + Sync {
    /// Sends `request` and reads up to `limit` bytes of the answer's body.
    fn send(&self, request: Outgoing, limit: usize) -> Sending<'_>;
}

/// The transport a new client uses: that of the command run in-process, if any (see
/// `process`); else `build`'s.
pub fn chosen(
    build: impl FnOnce() -> Result<Arc<dyn Transport>, String>,
) -> Result<Arc<dyn Transport>, String> {
    let injected = crate::process::current().and_then(|process| {
        process
            .network
            .downcast_ref::<Arc<dyn Transport>>()
            .cloned()
    });
    match injected {
        Some(transport) => Ok(transport),
        None => build(),
    }
}

/// reqwest, with the timeouts, user agent and redirect policy the client wants.
pub struct Reqwest(reqwest::Client);

impl Reqwest {
    pub fn new(server: &str, timeout: Duration) -> Result<Reqwest, String> {
        // reqwest is built without a default TLS provider; ring is the one we ship.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("bamboo-promote/", env!("CARGO_PKG_VERSION")))
            // A redirect is reported, not followed: a queue call must not be sent again to
            // another address, and a move from http to https would drop the credentials.
            .redirect(reqwest::redirect::Policy::none());
        if server.starts_with("http://") {
            // Plain HTTP needs no trusted certificates, and reading the system's store is
            // the costliest part of setting up the client.
            http = http.tls_certs_only([]);
        }
        http.build().map(Reqwest).map_err(|e| e.to_string())
    }
}

impl Transport for Reqwest {
    fn send(&self, request: Outgoing, limit: usize) -> Sending<'_> {
        Box::pin(async move {
            let mut builder = self.0.request(request.method, request.url);
            for (name, value) in request.headers {
                builder = builder.header(name, value);
            }
            if let Some(body) = request.body {
                builder = builder.body(body);
            }
            let mut response = builder.send().await.map_err(|e| SendError {
                detail: describe(&e),
                nothing_sent: e.is_connect(),
                tls: tls_failed(&e),
            })?;
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            let body = read_body(&mut response, limit).await;
            Ok(Answer {
                status,
                headers,
                body,
            })
        })
    }
}

/// Up to `limit` bytes of the body. A body said to be longer is not read at all; one whose
/// length is known and bounded is read in one piece.
async fn read_body(response: &mut reqwest::Response, limit: usize) -> Result<Body, String> {
    if let Some(length) = response.content_length()
        && length > limit as u64
    {
        return Ok(Body {
            bytes: Bytes::new(),
            whole: false,
        });
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    body.extend_from_slice(&chunk[..limit - body.len()]);
                    return Ok(Body {
                        bytes: Bytes::from(body),
                        whole: false,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => {
                return Ok(Body {
                    bytes: Bytes::from(body),
                    whole: true,
                });
            }
            Err(e) => return Err(describe(&e)),
        }
    }
}

/// Whether a request failed in TLS. rustls's error sits inside I/O errors, which hide what
/// they wrap from `source`; `get_ref` shows it.
fn tls_failed(error: &reqwest::Error) -> bool {
    let mut next = std::error::Error::source(error);
    while let Some(inner) = next {
        if inner.is::<rustls::Error>() {
            return true;
        }
        next = match inner.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
            None => inner.source(),
        };
    }
    false
}

/// A transport error in words, without the URL (which could carry a query with a user name).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "connection dropped while reading the answer"
    } else {
        "connection failed"
    };
    let mut detail = kind.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        detail = format!("{kind}: {inner}");
        source = inner.source();
    }
    detail
}

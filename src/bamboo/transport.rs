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

    /// Closes the connections kept open for the next requests (nothing to close in memory).
    fn close_idle_connections(&self) {}
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

/// reqwest, with the timeouts, user agent and redirect policy the client wants. Its
/// connection pool can be let go (`close_idle_connections`): requests in flight keep the
/// client they started on, and new ones take a fresh one.
pub struct Reqwest {
    http: std::sync::RwLock<reqwest::Client>,
    server: String,
    timeout: Duration,
}

impl Reqwest {
    pub fn new(server: &str, timeout: Duration) -> Result<Reqwest, String> {
        Ok(Reqwest {
            http: std::sync::RwLock::new(Reqwest::client(server, timeout)?),
            server: server.to_string(),
            timeout,
        })
    }

    fn client(server: &str, timeout: Duration) -> Result<reqwest::Client, String> {
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
        http.build().map_err(|e| e.to_string())
    }
}

impl Transport for Reqwest {
    fn send(&self, request: Outgoing, limit: usize) -> Sending<'_> {
        let http = self.http.read().expect("client lock").clone();
        Box::pin(async move {
            let mut builder = http.request(request.method, request.url);
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

    fn close_idle_connections(&self) {
        // The same settings built once already; should they fail now, the old pool stays.
        if let Ok(fresh) = Reqwest::client(&self.server, self.timeout) {
            *self.http.write().expect("client lock") = fresh;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every request with 200 on the connection it came on, and counts
    /// the connections made to it.
    async fn counting_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while let Ok(n @ 1..) = socket.read(&mut buffer).await {
                        request.extend_from_slice(&buffer[..n]);
                        while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            request.drain(..end + 4);
                            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                            if socket.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (url, connections)
    }

    #[tokio::test]
    async fn closing_idle_connections_makes_the_next_request_connect_afresh() {
        let (url, connections) = counting_server().await;
        let http = Reqwest::new(&url, Duration::from_secs(5)).unwrap();
        let get = || Outgoing::new(Method::GET, url::Url::parse(&url).unwrap());
        let made = || connections.load(std::sync::atomic::Ordering::SeqCst);
        for _ in 0..2 {
            let answer = http.send(get(), 1024).await.unwrap();
            assert_eq!(answer.status, 200);
        }
        assert_eq!(
            made(),
            1,
            "the second request reuses the first's connection"
        );
        http.close_idle_connections();
        http.send(get(), 1024).await.unwrap();
        assert_eq!(made(), 2, "after closing, a new connection");
    }
}

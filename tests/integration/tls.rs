//! HTTPS against a server whose certificate a company CA signed (`tests/tls/`, valid until
//! 2126; the CA's key was thrown away): not trusted by default and failing at once, trusted
//! through `SSL_CERT_FILE`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::support::{Run, wait_until};
use crate::worlds::{manifests, path_str};

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls")
}

/// An HTTPS server on 127.0.0.1 that answers every request 404 with Bamboo's error body and
/// records, per connection in the order accepted, the client's port and the request line it
/// read (`None` when the handshake failed).
struct TlsServer {
    url: String,
    port: u16,
    connections: Arc<Mutex<Vec<Connection>>>,
}

/// The client's port, and the request line read over the connection.
type Connection = (u16, Option<String>);

impl TlsServer {
    fn start() -> TlsServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs = CertificateDer::pem_file_iter(tls_dir().join("localhost.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(tls_dir().join("localhost.key")).unwrap();
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("https://localhost:{port}");
        let connections = Arc::new(Mutex::new(Vec::new()));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let peer = stream.peer_addr().unwrap().port();
                let line = answer_404(stream, config.clone());
                seen.lock().unwrap().push((peer, line));
            }
        });
        TlsServer {
            url,
            port,
            connections,
        }
    }

    /// Every connection the binary made, once the server has handled them all. The binary
    /// may exit before the server thread records its last connection, so a probe connection
    /// goes in behind them: connections are accepted and handled in order, so once the probe
    /// is recorded, everything before it is too.
    fn connections_after_exit(&self) -> Vec<Option<String>> {
        let probe = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let probe_port = probe.local_addr().unwrap().port();
        drop(probe);
        wait_until("the server handles the probe connection", || {
            self.connections
                .lock()
                .unwrap()
                .iter()
                .any(|(port, _)| *port == probe_port)
        });
        let connections = self.connections.lock().unwrap();
        connections
            .iter()
            .take_while(|(port, _)| *port != probe_port)
            .map(|(_, line)| line.clone())
            .collect()
    }
}

/// One request over TLS, answered 404 and closed; the request line, if the handshake held.
fn answer_404(stream: TcpStream, config: Arc<ServerConfig>) -> Option<String> {
    let tls = StreamOwned::new(ServerConnection::new(config).unwrap(), stream);
    let mut reader = BufReader::new(tls);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut header = String::new();
    while reader.read_line(&mut header).ok()? > 2 {
        header.clear();
    }
    let body = r#"{"message":"Plan not found","status-code":404}"#;
    let answer = format!(
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let tls = reader.get_mut();
    tls.write_all(answer.as_bytes()).ok()?;
    tls.flush().ok()?;
    Some(request_line.trim_end().to_string())
}

const ONE_TARGET: &str = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: tls }
spec:
  targets:
    - { id: app, plan: SHOP-APP, build: 7, stage: Deploy Staging }
";

#[test]
fn an_untrusted_certificate_fails_at_once_and_says_how_to_trust_it() {
    let server = TlsServer::start();
    let dir = manifests(ONE_TARGET);
    let ran = Run::new(&["plan", path_str(&dir)])
        .server(&server.url)
        .run();
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("invalid peer certificate: UnknownIssuer")
            && ran
                .stderr
                .contains("point SSL_CERT_FILE at that CA's PEM file"),
        "{}",
        ran.stderr
    );
    // One handshake, refused; a certificate does not change on retry.
    assert_eq!(server.connections_after_exit(), vec![None]);
}

#[test]
fn a_company_ca_is_trusted_through_ssl_cert_file() {
    let server = TlsServer::start();
    let dir = manifests(ONE_TARGET);
    let ca = tls_dir().join("ca.pem");
    let ran = Run::new(&["plan", path_str(&dir)])
        .server(&server.url)
        .env("SSL_CERT_FILE", ca.to_str().unwrap())
        .run();
    // The server answered 404 to everything, `info` included: TLS held, and the address is
    // said not to be Bamboo's.
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("does not answer as Bamboo"),
        "{}",
        ran.stderr
    );
    let requests: Vec<String> = server
        .connections_after_exit()
        .into_iter()
        .flatten()
        .collect();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /rest/api/latest/result/SHOP-APP-7?")),
        "{requests:?}"
    );
}

/// `https://` to a server that speaks plain HTTP: the scheme is named as the mistake, not the
/// certificate authority.
#[test]
fn https_to_a_plain_http_server_says_to_use_http() {
    let sim = crate::support::Sim::start(crate::worlds::SHOP);
    let dir = manifests(ONE_TARGET);
    let https = sim.url.replacen("http://", "https://", 1);
    let ran = Run::new(&["plan", path_str(&dir)]).server(&https).run();
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("plain HTTP: give its address with http://")
            && !ran.stderr.contains("SSL_CERT_FILE"),
        "{}",
        ran.stderr
    );
}

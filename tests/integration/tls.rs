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

use crate::support::Run;
use crate::worlds::{manifests, path_str};

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls")
}

/// An HTTPS server on 127.0.0.1 that answers every request 404 with Bamboo's error body and
/// records, per connection, the request line it read (`None` when the handshake failed).
struct TlsServer {
    url: String,
    connections: Arc<Mutex<Vec<Option<String>>>>,
}

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
        let url = format!(
            "https://localhost:{}",
            listener.local_addr().unwrap().port()
        );
        let connections = Arc::new(Mutex::new(Vec::new()));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let line = answer_404(stream, config.clone());
                seen.lock().unwrap().push(line);
            }
        });
        TlsServer { url, connections }
    }

    fn connections(&self) -> Vec<Option<String>> {
        self.connections.lock().unwrap().clone()
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
    assert_eq!(server.connections(), vec![None]);
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
    let requests: Vec<String> = server.connections().into_iter().flatten().collect();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /rest/api/latest/result/SHOP-APP-7?")),
        "{requests:?}"
    );
}

//! Resolved settings for talking to Bamboo: the server (or the embedded simulator), the
//! credentials from the environment or a file, parallelism and timeouts. Secrets never come
//! from manifests or flags' values: only from `BAMBOO_TOKEN`, `BAMBOO_USERNAME` +
//! `BAMBOO_PASSWORD`, or a file named by `--token-file` / `BAMBOO_TOKEN_FILE`.

use std::path::Path;

use crate::bamboo::{BambooClient, ClientConfig, Credentials, RetryPolicy, Secret};
use crate::cli::ServerArgs;
use crate::sim::{self, SimServer};

/// A client ready to use, and the simulator it talks to when `--server sim:…` started one.
pub struct Connection {
    pub client: BambooClient,
    /// The server's URL, as shown to people (never with credentials).
    pub server: String,
    /// The server as given on the command line: what a saved plan records and must match.
    pub given: String,
    /// Kept alive for as long as the client needs it.
    pub _simulator: Option<SimServer>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the token file {path}: {detail}")]
    TokenFile { path: String, detail: String },
    #[error("BAMBOO_USERNAME is set but BAMBOO_PASSWORD is not")]
    MissingPassword,
    #[error(
        "the token from {0} holds a space, a line break or a control character inside it; a token is one word"
    )]
    BadToken(String),
    #[error("invalid server URL `{0}`: expected http(s)://host[:port][/context] or sim:WORLD.yaml")]
    BadServer(String),
    #[error(
        "the server URL carries credentials (`user:password@`), which would be shown and saved with it; give the address alone, and the credentials in BAMBOO_TOKEN (or BAMBOO_TOKEN_FILE), or BAMBOO_USERNAME and BAMBOO_PASSWORD"
    )]
    CredentialsInUrl,
    #[error(
        "the server URL `{0}` has a query or a fragment; give Bamboo's base address, such as https://bamboo.example.com/bamboo"
    )]
    UrlWithQuery(String),
    #[error("cannot start the embedded simulator: {0}")]
    Simulator(String),
    #[error(
        "no Bamboo server: give --server URL, set BAMBOO_URL, or write `server = \"URL\"` in bamboo-promote.toml"
    )]
    NoServer,
    #[error(transparent)]
    Client(#[from] crate::bamboo::BambooError),
}

/// The server the command line names (`--server` or `BAMBOO_URL`), checked to be an
/// address (or `sim:`) before anything else is read: a usage error comes first.
pub fn given(args: &ServerArgs) -> Result<&str, ConfigError> {
    let given = args.server.as_deref().ok_or(ConfigError::NoServer)?;
    if !given.starts_with("sim:") {
        server_url(given)?;
    }
    Ok(given)
}

pub async fn connect(args: &ServerArgs) -> Result<Connection, ConfigError> {
    let given = given(args)?;
    let credentials = credentials(args.token_file.as_deref(), |name| std::env::var(name).ok())?;
    let (server, embedded) = match given.strip_prefix("sim:") {
        Some(world) => {
            let world = sim::load_world(Path::new(world)).map_err(ConfigError::Simulator)?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| ConfigError::Simulator(e.to_string()))?;
            let server = sim::spawn(world, listener).map_err(ConfigError::Simulator)?;
            (server.url(), Some(server))
        }
        None => (server_url(given)?, None),
    };
    let client = BambooClient::new(ClientConfig {
        server: server.clone(),
        credentials,
        parallelism: usize::from(args.parallelism),
        request_timeout: args.request_timeout,
        retry: RetryPolicy::default(),
    })?;
    Ok(Connection {
        client,
        server,
        given: given.to_string(),
        _simulator: embedded,
    })
}

/// Bamboo's base URL, checked: http or https with a host, no credentials (they would be shown
/// in plans and saved in plan files), no query. Without a trailing slash.
fn server_url(given: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(given).map_err(|_| ConfigError::BadServer(redacted(given)))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::CredentialsInUrl);
    }
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::BadServer(given.to_string()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::UrlWithQuery(given.to_string()));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A URL that did not parse, shown without what may be a password: everything between `//`
/// and `@` is hidden.
fn redacted(given: &str) -> String {
    match (given.find("//"), given.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            format!("{}//…@{}", &given[..start], &given[at + 1..])
        }
        _ => given.to_string(),
    }
}

/// A token as credentials; one with a space or a control character inside cannot be sent in
/// a header, and would fail every request the same way.
fn token_credentials(token: &str, from: &str) -> Result<Credentials, ConfigError> {
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::BadToken(from.to_string()));
    }
    Ok(Credentials::Token(Secret::new(token)))
}

/// Credentials from a token file, else the environment; anonymous when nothing is set.
fn credentials(
    token_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Credentials, ConfigError> {
    if let Some(path) = token_file {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::TokenFile {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        return token_credentials(text.trim(), &path.display().to_string());
    }
    // A token never holds white space; `echo $TOKEN > file` and many secret stores add a
    // newline, which no HTTP header may carry.
    if let Some(token) = env("BAMBOO_TOKEN").filter(|t| !t.trim().is_empty()) {
        return token_credentials(token.trim(), "BAMBOO_TOKEN");
    }
    if let Some(username) = env("BAMBOO_USERNAME").filter(|u| !u.trim().is_empty()) {
        let username = username.trim().to_string();
        // A password may hold spaces, but not a line break at its end.
        let password = env("BAMBOO_PASSWORD")
            .map(|p| p.trim_end_matches(['\r', '\n']).to_string())
            .ok_or(ConfigError::MissingPassword)?;
        return Ok(Credentials::Basic {
            username,
            password: Secret::new(password),
        });
    }
    Ok(Credentials::Anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_wins_over_basic_and_secrets_stay_hidden() {
        let env = |name: &str| match name {
            "BAMBOO_TOKEN" => Some("tok-123".to_string()),
            "BAMBOO_USERNAME" => Some("ci".to_string()),
            _ => None,
        };
        let creds = credentials(None, env).unwrap();
        assert_eq!(creds, Credentials::Token(Secret::new("tok-123")));
        assert!(!format!("{creds:?}").contains("tok-123"));
        let basic = |name: &str| (name == "BAMBOO_USERNAME").then(|| "ci".to_string());
        assert!(matches!(
            credentials(None, basic),
            Err(ConfigError::MissingPassword)
        ));
        assert_eq!(credentials(None, |_| None).unwrap(), Credentials::Anonymous);
        let newline = |name: &str| (name == "BAMBOO_TOKEN").then(|| "tok-123\n".to_string());
        assert_eq!(
            credentials(None, newline).unwrap(),
            Credentials::Token(Secret::new("tok-123"))
        );
        let inside = |name: &str| (name == "BAMBOO_TOKEN").then(|| "s3cr\n3t".to_string());
        let error = credentials(None, inside).unwrap_err().to_string();
        assert!(
            error.contains("BAMBOO_TOKEN") && !error.contains("s3cr"),
            "{error}"
        );
    }

    #[test]
    fn server_urls_are_checked_and_never_carry_credentials() {
        assert_eq!(
            server_url("https://ci.example.com/bamboo/").unwrap(),
            "https://ci.example.com/bamboo"
        );
        for bad in [
            "ftp://ci",
            "ci.example.com",
            "http://",
            "https://ci/bamboo?x=1",
        ] {
            assert!(server_url(bad).is_err(), "{bad}");
        }
        let error = server_url("https://bot:s3cret@ci.example.com")
            .unwrap_err()
            .to_string();
        assert!(
            !error.contains("s3cret") && error.contains("BAMBOO_PASSWORD"),
            "{error}"
        );
        let unparsable = server_url("https://bot:s3cret@[bad")
            .unwrap_err()
            .to_string();
        assert!(!unparsable.contains("s3cret"), "{unparsable}");
    }
}

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
    #[error("invalid server URL `{0}`: expected http(s)://host[:port][/context] or sim:WORLD.yaml")]
    BadServer(String),
    #[error("cannot start the embedded simulator: {0}")]
    Simulator(String),
    #[error(transparent)]
    Client(#[from] crate::bamboo::BambooError),
}

pub async fn connect(args: &ServerArgs) -> Result<Connection, ConfigError> {
    let credentials = credentials(args.token_file.as_deref(), |name| std::env::var(name).ok())?;
    let (server, embedded) = match args.server.strip_prefix("sim:") {
        Some(world) => {
            let world = sim::load_world(Path::new(world)).map_err(ConfigError::Simulator)?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| ConfigError::Simulator(e.to_string()))?;
            let server = sim::spawn(world, listener).map_err(ConfigError::Simulator)?;
            (server.url(), Some(server))
        }
        None if args.server.starts_with("http://") || args.server.starts_with("https://") => {
            (args.server.trim_end_matches('/').to_string(), None)
        }
        None => return Err(ConfigError::BadServer(args.server.clone())),
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
        given: args.server.clone(),
        _simulator: embedded,
    })
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
        return Ok(Credentials::Token(Secret::new(text.trim())));
    }
    if let Some(token) = env("BAMBOO_TOKEN").filter(|t| !t.is_empty()) {
        return Ok(Credentials::Token(Secret::new(token)));
    }
    if let Some(username) = env("BAMBOO_USERNAME").filter(|u| !u.is_empty()) {
        let password = env("BAMBOO_PASSWORD").ok_or(ConfigError::MissingPassword)?;
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
    }
}

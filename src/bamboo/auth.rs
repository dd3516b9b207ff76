//! Credentials, and a secret type that never shows itself in `Debug` or `Display`.

use std::fmt;

/// A secret string; printing it prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    /// Personal access token, sent as `Authorization: Bearer` (Bamboo 6.10+).
    Token(Secret),
    /// Deprecated basic auth; Bamboo wants `os_authType=basic` in the query with it.
    Basic {
        username: String,
        password: Secret,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let creds = Credentials::Basic {
            username: "ci".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
        assert_eq!(Secret::new("t0ken").to_string(), "***");
    }
}

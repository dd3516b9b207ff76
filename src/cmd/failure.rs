//! Why a command stopped before it could act, reported the same way by every command: reports
//! for people on stderr, and with `--format json` one JSON object on stdout too — an error
//! document for `plan` and `status`, an `error` event in apply's stream — so that CI can mark
//! the manifest's lines.

use crate::apply::{Event, events::EventLine};
use crate::exit;
use crate::manifest::ManifestError;
use crate::render::ErrorDocument;

/// How a command prints JSON, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Json {
    No,
    /// `plan` and `status`: one document.
    Document,
    /// `apply`: a line of its event stream.
    Event,
    /// GitHub Actions annotations on stdout.
    Github,
}

pub struct Failure {
    /// One line; for manifest problems, how many and what did not happen because of them.
    pub message: String,
    pub diagnostics: Vec<ManifestError>,
    /// The exit code: `exit::ERROR`, or `exit::USAGE` for a command line that lacks what it
    /// needs.
    code: u8,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            diagnostics: Vec::new(),
            code: exit::ERROR,
        }
    }

    /// A command line that asks for what the command does not do.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::USAGE,
            ..Failure::new(message)
        }
    }

    /// Why the command could not connect: a server missing or not an address is a usage
    /// error, as the README's exit codes say.
    pub fn connecting(error: crate::config::ConfigError) -> Failure {
        use crate::config::ConfigError;
        let code = match error {
            ConfigError::NoServer
            | ConfigError::BadServer(_)
            | ConfigError::CredentialsInUrl
            | ConfigError::UrlWithQuery(_) => exit::USAGE,
            _ => exit::ERROR,
        };
        Failure {
            code,
            ..Failure::new(error.to_string())
        }
    }

    /// Manifest problems; `consequence` says what did not happen because of them.
    pub fn manifests(errors: Vec<ManifestError>, consequence: &str) -> Failure {
        Failure {
            message: super::validate::summary_line(&errors, consequence),
            diagnostics: errors,
            code: exit::ERROR,
        }
    }

    /// Prints it and returns the exit code.
    pub fn report(&self, json: Json) -> u8 {
        if self.diagnostics.is_empty() {
            errln!("error: {}", self.message);
        } else {
            super::validate::print_reports(&self.diagnostics);
            errln!("{}", self.message);
        }
        let diagnostics = self
            .diagnostics
            .iter()
            .map(ManifestError::to_json)
            .collect();
        match json {
            Json::No => {}
            Json::Document => crate::output::out_line(
                serde_json::to_string(&ErrorDocument::new(&self.message, diagnostics))
                    .expect("an error document serializes"),
            ),
            Json::Github => super::validate::annotate(&self.diagnostics, &self.message),
            Json::Event => {
                let event = Event::Error {
                    target: None,
                    build: None,
                    message: self.message.clone(),
                    diagnostics,
                };
                crate::output::out_line(
                    serde_json::to_string(&EventLine::now(&event)).expect("an event serializes"),
                );
            }
        }
        self.code
    }
}

/// How `plan` and `status` print errors in `format`.
pub fn json_errors(format: crate::cli::OutputFormat) -> Json {
    match format {
        crate::cli::OutputFormat::Json => Json::Document,
        crate::cli::OutputFormat::Github => Json::Github,
        _ => Json::No,
    }
}

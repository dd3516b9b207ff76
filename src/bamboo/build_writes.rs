//! The writes to a build other than the queue call (which goes through `WriteTurn`): labels
//! on and off — a label added twice is one label, so these may be sent again — and comments,
//! sent once, since a comment sent again is a second comment. Each is told to the journal
//! before it leaves.

use std::time::Duration;

use reqwest::Method;

use super::access::Need;
use super::client::{
    Attempt, BambooClient, BambooError, MAX_ANSWER_BYTES, encode_segment, results_of,
};
use super::journal::{Ended, LabelWrite, Write};

impl BambooClient {
    /// `POST result/{build}/label`. Adding a label twice leaves one, so retrying is safe.
    pub async fn add_label(&self, build_key: &str, label: &str) -> Result<(), BambooError> {
        let body = serde_json::json!({ "name": label });
        let path = format!("{}/label", results_of(build_key));
        let what = format!("label {build_key}");
        let write = Write {
            build: build_key.to_string(),
            call: format!("POST {path} ({label})"),
            server_ms: None,
            label: Some(LabelWrite::On(label.to_string())),
        };
        self.send_idempotent(Method::POST, &what, &path, Some(body), write)
            .await
    }

    /// `POST result/{build}/comment`. Sent once: a retry could post the comment twice.
    pub async fn add_comment(&self, build_key: &str, content: &str) -> Result<(), BambooError> {
        let call = format!("POST {}/comment", results_of(build_key));
        self.journaled(build_key, call, self.send_comment(build_key, content))
            .await
    }

    async fn send_comment(&self, build_key: &str, content: &str) -> Result<(), BambooError> {
        let what = format!("comment on {build_key}");
        let path = format!("{}/comment", results_of(build_key));
        let _slot = self
            .turn()
            .await
            .map_err(|e| BambooError::Setup(e.to_string()))?;
        let request = self
            .request(Method::POST, &path, &[])
            .header("X-Atlassian-Token", "no-check")
            .json(&serde_json::json!({ "content": content }));
        match self.attempt(request).await {
            Attempt::Done(_) => Ok(()),
            Attempt::Refused(status, message) => Err(BambooError::Status {
                what,
                status,
                message: self.with_access_hint(status, message, Need::Comment),
            }),
            Attempt::Tls(detail) => Err(BambooError::Tls { what, detail }),
            Attempt::TooLarge => Err(BambooError::TooLarge {
                what,
                limit_mib: MAX_ANSWER_BYTES >> 20,
            }),
            Attempt::Transient(detail, _) => Err(BambooError::Transport {
                what,
                detail: self.scrub(detail),
                retries: 0,
                elapsed: Duration::ZERO,
            }),
        }
    }

    /// `DELETE result/{build}/label/{name}`. Idempotent, so retrying is safe.
    pub async fn remove_label(&self, build_key: &str, label: &str) -> Result<(), BambooError> {
        let path = format!("{}/label/{}", results_of(build_key), encode_segment(label));
        // The label is named: an error here may leave it on the build.
        let what = format!("unlabel {build_key} ({label})");
        let write = Write {
            build: build_key.to_string(),
            call: format!("DELETE {path}"),
            server_ms: None,
            label: Some(LabelWrite::Off(label.to_string())),
        };
        self.send_idempotent(Method::DELETE, &what, &path, None, write)
            .await
    }

    /// A write that may be sent again (a label on or off): each attempt is told to the
    /// journal before it leaves and after its answer, as its own write.
    async fn send_idempotent(
        &self,
        method: Method,
        what: &str,
        path: &str,
        body: Option<serde_json::Value>,
        write: Write,
    ) -> Result<(), BambooError> {
        let build = || {
            let request = self
                .request(method.clone(), path, &[])
                .header("X-Atlassian-Token", "no-check");
            match &body {
                Some(body) => request.json(body),
                None => request.empty(),
            }
        };
        self.with_retries_journaled(what, build, Some(&write), Need::Label)
            .await
            .map(|_| ())
    }

    /// A label or comment write, told to the journal before and after: `send` runs only if
    /// the journal kept the record of it.
    async fn journaled(
        &self,
        build_key: &str,
        call: String,
        send: impl Future<Output = Result<(), BambooError>>,
    ) -> Result<(), BambooError> {
        let write = Write {
            build: build_key.to_string(),
            call,
            server_ms: self.server_time().map(|t| t.now()),
            label: None,
        };
        if let Err(e) = self.journal_before(&write) {
            return Err(BambooError::NotJournaled {
                what: write.call.clone(),
                detail: e,
            });
        }
        let sent = send.await;
        // The outcome's record carries the server's time when the answer came.
        let write = Write {
            server_ms: self.server_time().map(|t| t.now()),
            ..write
        };
        let ended = match &sent {
            Ok(()) => Ended::Accepted,
            Err(BambooError::Status { .. } | BambooError::Tls { .. }) => Ended::Refused,
            Err(_) => Ended::Unknown,
        };
        self.journal_after(&write, ended, sent.as_ref().err().map(ToString::to_string));
        sent
    }
}

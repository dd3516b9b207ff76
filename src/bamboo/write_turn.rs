//! A write's turn: what lets a queue call leave with nothing waiting between its last check and
//! its bytes on the wire. A request slot is taken and every pause the server asked for (a 429's
//! `Retry-After`) is waited out first; then the write is told to the journal, and the build is
//! read once in that same slot. The caller checks that read with no await in between and sends
//! through the turn, which holds the slot still: no other task's pause, no full slot pool and
//! no slow output can hold the call once the check is done.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use tokio::sync::SemaphorePermit;
use tokio::time::Instant;

use super::access::Need;
use super::answers::{error_message, refusal_message};
use super::client::{BambooClient, Reading};
use super::journal::Write;
use super::types::BuildResult;
use super::{BambooError, WriteError, encode_segment};

/// How much of a write's answer is read: a 2xx is accepted whatever its body says, so the
/// body is read only to free the connection, and a huge one is not read to its end.
const WRITE_ANSWER_BYTES: usize = 64 * 1024;

/// Why a turn could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// The server asked for a pause that ends after the write could still start.
    #[error(
        "Bamboo asked for a pause of {pause:.0?} (429 Retry-After), longer than the lock lets a write wait; nothing was sent"
    )]
    PausedPastWindow { pause: Duration },
    #[error("no request slot: {0}")]
    Closed(String),
}

/// A request slot held for one queue call, with every pause behind it.
pub struct WriteTurn<'a> {
    client: &'a BambooClient,
    _slot: SemaphorePermit<'a>,
}

impl BambooClient {
    /// A turn for a write that must start by `start_by`: a slot, then every pause waited out.
    /// A pause that would end later ends the attempt, before anything is written.
    pub async fn write_turn(&self, start_by: Instant) -> Result<WriteTurn<'_>, TurnError> {
        let slot = self
            .slots()
            .acquire()
            .await
            .map_err(|e| TurnError::Closed(e.to_string()))?;
        // A pause may be set, or made longer, while we sleep out another: look again after.
        while let Some(until) = self.paused_until().filter(|until| *until > Instant::now()) {
            if until > start_by {
                return Err(TurnError::PausedPastWindow {
                    pause: until.saturating_duration_since(Instant::now()),
                });
            }
            tokio::time::sleep_until(until).await;
        }
        Ok(WriteTurn {
            client: self,
            _slot: slot,
        })
    }
}

impl<'a> WriteTurn<'a> {
    /// The client whose slot this turn holds.
    pub(super) fn client(&self) -> &'a BambooClient {
        self.client
    }

    /// Tells the journal the call is about to leave; an error means it must not.
    pub fn announce(&self, build_key: &str, call: &str) -> Result<(), String> {
        self.client.journal_before(&Write {
            build: build_key.to_string(),
            call: call.to_string(),
            server_ms: self.client.server_time().map(|t| t.now()),
            label: None,
        })
    }

    /// The build with its stages and every label, read once in this turn's slot: a 429 or a
    /// 5xx is an error, and the caller starts again from a new turn.
    pub async fn read_build(
        &self,
        plan: &str,
        number: u32,
    ) -> Result<Option<BuildResult>, BambooError> {
        self.client
            .build_in(plan, Some(number), Reading::OnceInHeldSlot)
            .await
    }

    /// `PUT queue/{build}?stage=…&executeAllStages=…`: continue a build. Sent exactly once,
    /// at once, never retried. A 2xx is accepted whatever its body; see `WriteError` for the
    /// rest.
    pub async fn continue_build(
        self,
        build_key: &str,
        stage: &str,
        execute_all_stages: bool,
    ) -> Result<(), WriteError> {
        let client = self.client;
        let path = format!("queue/{}", encode_segment(build_key));
        let query = [
            ("stage", stage),
            (
                "executeAllStages",
                if execute_all_stages { "true" } else { "false" },
            ),
        ];
        let request = client
            .request(Method::PUT, &path, &query)
            .header("X-Atlassian-Token", "no-check")
            .empty();
        let sent = Instant::now();
        let answer = match client.send(request, WRITE_ANSWER_BYTES).await {
            Ok(answer) => answer,
            // No connection was made, so no byte of the call reached the server.
            Err(e) if e.nothing_sent => return Err(WriteError::NotSent(e.detail)),
            Err(e) => return Err(WriteError::Unknown(e.detail)),
        };
        client.note_date(&answer, sent);
        let status = answer.status;
        let location = answer.header("Location");
        // Read only to free the connection: a 2xx is accepted whatever it says.
        let body = answer.body.map(|b| b.bytes).ok();
        client.log_answer(
            "PUT",
            &path,
            status,
            sent,
            body.as_deref().unwrap_or_default(),
        );
        if status.is_success() {
            return Ok(());
        }
        let body = body.unwrap_or_default();
        let refused = (status.is_client_error() && status != StatusCode::REQUEST_TIMEOUT)
            || status.is_redirection();
        if !refused {
            let message = error_message(&body);
            return Err(WriteError::Unknown(
                client.scrub(format!("Bamboo answered {status}: {message}")),
            ));
        }
        let message = refusal_message(status, location.as_deref(), &body);
        Err(WriteError::Refused {
            status: status.as_u16(),
            message: client.with_access_hint(status.as_u16(), message, Need::Queue),
        })
    }
}

//! The request log: what tests assert about which calls a command made, and how many.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    pub seq: u64,
    pub method: String,
    /// The path below `/rest/api/latest/`, as sent (still percent-encoded).
    pub path: String,
    pub query: String,
    /// The status answered; 0 when the connection was dropped or the answer withheld.
    pub status: u16,
    /// Requests being served when this one arrived, itself included.
    pub in_flight: usize,
    /// The sim clock when it arrived.
    pub at_ms: u64,
    /// Real milliseconds since the simulator started when it arrived, for tests of pacing.
    pub wall_ms: u64,
}

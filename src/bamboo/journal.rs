//! The client's record of its writes. Every write bamboo-promote sends — a queue call, a lock
//! label on or off, a record comment or label — is told to the journal before it leaves, and
//! a journal that cannot keep it stops the write: the audit trail never misses a write, by
//! construction, since there is no way to send one around this module. Outcomes of label and
//! comment writes are told here too; a queue call's outcome needs the build read again, so
//! `apply` records it.

/// A write about to leave, or one that has its answer.
#[derive(Debug, Clone)]
pub struct Write {
    /// The build it goes to, e.g. `SHOP-APP-42`.
    pub build: String,
    /// The call, e.g. `POST result/SHOP-APP-42/label (rc)`.
    pub call: String,
    /// The server's time as this process knows it (ms since the epoch), when it knows it.
    pub server_ms: Option<i64>,
    /// The label it puts on or takes off, when it is a label write.
    pub label: Option<LabelWrite>,
}

/// A label put on a build, or taken off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelWrite {
    On(String),
    Off(String),
}

/// How a label or comment write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Accepted,
    /// Bamboo answered 4xx: nothing was done.
    Refused,
    /// No answer that says what happened.
    Unknown,
}

/// Where writes are recorded: `apply`'s audit trail.
pub trait Journal: Send + Sync {
    /// Records a write about to leave. An error stops it: nothing is sent.
    fn before(&self, write: &Write) -> Result<(), String>;
    /// Records how a label or comment write ended.
    fn after(&self, write: &Write, ended: Ended, detail: Option<String>);
}

//! What belongs to a process: its network, its standard streams, its signals and its memory of
//! other applies' locks. The fault-space explorer (`explore`) runs several commands in one
//! process, each as if it were a process of its own, by setting an `InProcess` around each;
//! in production none is set, and each of these is the real thing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::apply::stop::Signal;
use crate::bamboo::transport::Transport;
use crate::boot_clock::BootInstant;
use crate::output::Captured;

/// One command run in-process.
pub struct InProcess {
    /// Its network: where its requests go instead of a socket.
    pub transport: Arc<dyn Transport>,
    /// What it printed, kept instead of written.
    pub captured: Arc<Captured>,
    /// Signals sent to it, instead of the process's own.
    pub signals: watch::Receiver<Option<Signal>>,
    /// The lock labels it has watched, and since when (see `lock_label::LockLabel::watch`).
    pub watches: Mutex<HashMap<String, BootInstant>>,
}

tokio::task_local! {
    static CURRENT: Arc<InProcess>;
}

/// The command run in-process that this task belongs to, if any.
pub fn current() -> Option<Arc<InProcess>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Runs `run` as the command `process`.
pub async fn scope<F: Future>(process: Arc<InProcess>, run: F) -> F::Output {
    CURRENT.scope(process, run).await
}

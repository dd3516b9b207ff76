//! What belongs to a process: its network, its standard streams, its signals and its memory of
//! other applies' locks. The fault-space explorer (`explore`) runs several commands in one
//! process, each as if it were a process of its own, by setting an `InProcess` around each;
//! in production none is set, and each of these is the real thing.
//!
//! It sits below every module that asks for it (output, the client, the lock labels, the stop):
//! it imports none of them, so its network is held type-erased (`bamboo::transport` knows it).

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::boot_clock::BootInstant;
use crate::exit;

/// One command run in-process.
pub struct InProcess {
    /// Its network, where its requests go instead of a socket: an
    /// `Arc<dyn bamboo::transport::Transport>` (see `bamboo::transport::chosen`).
    pub network: Arc<dyn Any + Send + Sync>,
    /// What it printed, kept instead of written.
    pub captured: Arc<Captured>,
    /// Signals sent to it, instead of the process's own.
    pub signals: watch::Receiver<Option<Signal>>,
    /// The lock labels it has watched, and since when (see `lock_label::LockLabel::watch`).
    pub watches: Mutex<HashMap<String, BootInstant>>,
    /// Its randomness (lock labels' names, backoff), seeded so that a run can be repeated.
    pub rng: Mutex<rand::rngs::StdRng>,
    /// Its exit: a second signal ends it at once with this code, as `std::process::exit`
    /// ends a process (taken by the first to exit).
    pub exit: Mutex<Option<tokio::sync::oneshot::Sender<u8>>>,
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

/// A random number in `range`: from the command run in-process's seeded generator, if any;
/// else from the thread's.
pub fn random_in<T, R>(range: R) -> T
where
    T: rand::distr::uniform::SampleUniform,
    R: rand::distr::uniform::SampleRange<T>,
{
    use rand::Rng;
    match current() {
        Some(process) => process
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_range(range),
        None => rand::rng().random_range(range),
    }
}

/// What a command run in-process printed, kept instead of written (see `output`).
#[derive(Debug, Default)]
pub struct Captured {
    pub out: Mutex<String>,
    pub err: Mutex<String>,
    /// Standard output is a closed pipe: what is printed there is lost.
    pub out_broken: bool,
    /// Standard error is a closed pipe.
    pub err_broken: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// 128 + the signal's number, as shells report a process the signal ended.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => exit::INTERRUPTED,
            Signal::Terminate => exit::TERMINATED,
        }
    }
}

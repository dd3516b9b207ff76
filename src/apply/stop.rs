//! Stopping on a signal. SIGINT (Ctrl-C) and SIGTERM (how CI systems cancel a job) both mean
//! one thing: no new write. A call already on the wire is finished or given up (its request
//! timeout bounds it) and recorded, the lock labels this process holds are taken off (all but
//! those on a build whose write has an unknown outcome), what was done is printed, and the
//! process exits 130 or 143. A second signal exits at once; labels left behind expire.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::exit;

/// How long a forced exit waits for its last lines to reach a stalled stderr.
const LAST_WORDS_DRAIN: Duration = Duration::from_millis(500);

pub use crate::process::Signal;

/// Whether a stop was asked for, shared by every task of an apply.
#[derive(Clone, Default)]
pub struct Stop {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// 0: none; 1: SIGINT; 2: SIGTERM.
    signal: AtomicU8,
    notify: Notify,
}

impl Stop {
    /// A stop that SIGINT and SIGTERM set from now on.
    /// The handlers are in place when this returns, before any write can start. A second
    /// signal exits at once, after `last_words`, which writes the calls still in flight to the
    /// audit trail and says how many calls have an unknown outcome: with any, the exit code is
    /// 7, not the signal's.
    pub fn on_signals(last_words: impl Fn() -> usize + Send + 'static) -> Stop {
        use tokio::signal::unix::{SignalKind, signal};
        if let Some(process) = crate::process::current() {
            return Stop::on_injected(process, last_words);
        }
        let stop = Stop::default();
        let set = stop.clone();
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            errln!("warning: cannot listen for SIGINT and SIGTERM");
            return stop;
        };
        tokio::spawn(async move {
            loop {
                let which = tokio::select! {
                    _ = interrupt.recv() => Signal::Interrupt,
                    _ = terminate.recv() => Signal::Terminate,
                };
                if let Some(code) = set.on_signal(which, &last_words) {
                    crate::output::flush_briefly(LAST_WORDS_DRAIN);
                    std::process::exit(i32::from(code));
                }
            }
        });
        stop
    }

    /// A stop that the signals sent to a command run in-process set (see `process`), as
    /// SIGINT and SIGTERM would; a second one ends the command through its `exit`.
    fn on_injected(
        process: std::sync::Arc<crate::process::InProcess>,
        last_words: impl Fn() -> usize + Send + 'static,
    ) -> Stop {
        let stop = Stop::default();
        let set = stop.clone();
        let mut signals = process.signals.clone();
        let exit = process.clone();
        let listen = async move {
            while signals.changed().await.is_ok() {
                let Some(which) = *signals.borrow() else {
                    continue;
                };
                if let Some(code) = set.on_signal(which, &last_words) {
                    let taken = exit.exit.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(exit) = taken {
                        let _ = exit.send(code);
                    }
                    return;
                }
            }
        };
        tokio::spawn(crate::process::scope(process, listen));
        stop
    }

    /// Records `which`, then says so. The first signal asks for a stop; a second one means
    /// exit now: `last_words` writes the calls still in flight to the audit trail and names
    /// the lock labels left, and the code to exit with is returned (7 when any call's outcome
    /// is unknown).
    fn on_signal(&self, which: Signal, last_words: &impl Fn() -> usize) -> Option<u8> {
        // The stop is recorded before anything is said: saying it cannot fail, and must not
        // come first even so.
        let first = self.signal();
        self.request(which);
        let Some(first) = first else {
            say_stopping(which);
            return None;
        };
        errln!(
            "\n{} after {}: exiting now; lock labels left on builds expire by themselves",
            which.name(),
            first.name()
        );
        Some(if last_words() > 0 {
            exit::OUTCOME_UNKNOWN
        } else {
            which.exit_code()
        })
    }

    pub fn request(&self, signal: Signal) {
        let code = match signal {
            Signal::Interrupt => 1,
            Signal::Terminate => 2,
        };
        let _ = self
            .inner
            .signal
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    pub fn signal(&self) -> Option<Signal> {
        match self.inner.signal.load(Ordering::SeqCst) {
            1 => Some(Signal::Interrupt),
            2 => Some(Signal::Terminate),
            _ => None,
        }
    }

    pub fn requested(&self) -> bool {
        self.signal().is_some()
    }

    /// Returns once a stop is asked for.
    pub async fn stopped(&self) {
        loop {
            // Registered before the check, so a request in between still wakes it.
            let notified = self.inner.notify.notified();
            if self.requested() {
                return;
            }
            notified.await;
        }
    }

    /// Sleeps for `pause` unless a stop comes first; says whether it slept the whole pause.
    pub async fn sleep(&self, pause: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(pause) => true,
            () = self.stopped() => false,
        }
    }
}

/// What a first signal means, said once it is recorded.
fn say_stopping(which: Signal) {
    errln!(
        "\n{}: no new write; finishing the call in flight, then releasing locks",
        which.name()
    );
}

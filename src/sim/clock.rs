//! The simulator's clock: real time for demos, or a clock that moves only when a test says so.
//! Real time is tokio's: in a paused runtime (the fault-space explorer) it is virtual.

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

use super::world::ClockMode;

#[derive(Debug)]
pub struct Clock {
    mode: ClockMode,
    started: Instant,
    /// Time added by `advance`, in ms; in manual mode the whole of the clock.
    offset: AtomicU64,
}

impl Clock {
    pub fn new(mode: ClockMode) -> Clock {
        Clock {
            mode,
            started: Instant::now(),
            offset: AtomicU64::new(0),
        }
    }

    /// Milliseconds since the simulator started, on this clock.
    pub fn now(&self) -> u64 {
        let offset = self.offset.load(Ordering::SeqCst);
        match self.mode {
            ClockMode::Manual => offset,
            ClockMode::Real => offset + self.started.elapsed().as_millis() as u64,
        }
    }

    pub fn advance(&self, ms: u64) {
        self.offset.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn reset(&self) {
        self.offset.store(0, Ordering::SeqCst);
    }
}

//! Time that counts while the machine sleeps. A lease's write window and the watch of another
//! apply's lock are durations that permit a write; `Instant` (CLOCK_MONOTONIC on Linux) stops
//! while the machine is suspended, so a laptop or VM that slept through a lock's whole lifetime
//! would think no time had passed. CLOCK_BOOTTIME goes on counting.

use std::time::Duration;

/// Set once by the fault-space explorer: from then on the boot clock is the runtime's clock
/// (virtual in a paused runtime), counted from this moment.
static VIRTUAL: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Makes the boot clock the runtime's clock, for the rest of the process (the explorer only).
pub fn follow_runtime_clock() {
    let _ = VIRTUAL.set(std::time::Instant::now());
}

/// A moment on the boot clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BootInstant(Duration);

impl BootInstant {
    pub fn now() -> BootInstant {
        if let Some(origin) = VIRTUAL.get() {
            // The explorer's runtime clock, which it moves.
            return BootInstant(
                tokio::time::Instant::now()
                    .into_std()
                    .saturating_duration_since(*origin),
            );
        }
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec for the call to fill; CLOCK_BOOTTIME exists on
        // every Linux since 2.6.39.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_BOOTTIME) failed");
        BootInstant(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }

    /// Time since this moment, suspended time included.
    pub fn elapsed(self) -> Duration {
        BootInstant::now().0.saturating_sub(self.0)
    }

    pub fn plus(self, d: Duration) -> BootInstant {
        BootInstant(self.0 + d)
    }

    /// How long from now until this moment; zero when it has passed.
    pub fn until(self) -> Duration {
        self.0.saturating_sub(BootInstant::now().0)
    }
}

//! The server's time, as this process can know it: from the `Date` header of Bamboo's answers,
//! carried forward on the monotonic clock. Lease times decide between processes on different
//! machines, whose own clocks may be minutes apart; the server's clock is the one they share.
//!
//! Each answer bounds the server's clock: it was stamped after the request left and before the
//! answer arrived, and `Date` drops the milliseconds. So each reading gives an interval for
//! `server time − monotonic time`, and the readings together give the narrowest one. An answer
//! that was held on the way (a slow proxy, a paused process) gives a wide interval that the
//! others narrow; it cannot drag the estimate back.

use std::time::Duration;

use tokio::time::Instant;

/// What the readings so far say about the server's clock, against this process's monotonic
/// clock (ms since `origin`).
#[derive(Debug, Clone, Copy)]
pub struct ServerTime {
    origin: Instant,
    /// The server's clock minus the monotonic clock is at least this ...
    low: i64,
    /// ... and at most this.
    high: i64,
    /// The most two readings have contradicted each other by, in ms: how far apart the clocks
    /// behind the answers (front ends, or one clock set) have been seen. It never shrinks,
    /// though the interval may narrow again on readings that agree after a step.
    spread: i64,
}

impl ServerTime {
    /// A reading: `date_ms` from the `Date` header of an answer to a request sent at `sent`
    /// and received at `received`.
    pub fn reading(origin: Instant, date_ms: i64, sent: Instant, received: Instant) -> ServerTime {
        let at = |i: Instant| i.saturating_duration_since(origin).as_millis() as i64;
        ServerTime {
            origin,
            low: date_ms - at(received),
            high: date_ms + 1000 - at(sent),
            spread: 0,
        }
    }

    /// The readings together. When they contradict each other the server's clock was set, or
    /// an answer lies about it: then the interval spans both, so that the time is less
    /// certain — lock windows shrink, others' locks look younger — never more trusted.
    pub fn narrowed(self, newer: ServerTime) -> ServerTime {
        let (low, high) = (self.low.max(newer.low), self.high.min(newer.high));
        let spread = self.spread.max(newer.spread);
        if low > high {
            ServerTime {
                low: self.low.min(newer.low),
                high: self.high.max(newer.high),
                spread: spread.max(low - high),
                ..self
            }
        } else {
            ServerTime {
                low,
                high,
                spread,
                ..self
            }
        }
    }

    /// The server's time at `at`, in ms since the epoch, never later than the true one.
    pub fn earliest(&self, at: Instant) -> i64 {
        self.low + at.saturating_duration_since(self.origin).as_millis() as i64
    }

    /// The server's time now, never later than the true one.
    pub fn now(&self) -> i64 {
        self.earliest(Instant::now())
    }

    /// The most the readings have contradicted each other by: clocks that disagree.
    pub fn disagreement(&self) -> Duration {
        Duration::from_millis(self.spread.max(0) as u64)
    }

    /// How far the true time may be ahead of `earliest`.
    pub fn uncertainty(&self) -> Duration {
        Duration::from_millis((self.high - self.low).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_narrow_a_held_answer_does_not_drag_the_time_back_and_a_lying_one_adds_doubt() {
        let origin = Instant::now();
        let at = |ms: u64| origin + Duration::from_millis(ms);
        // A quick answer: sent at 100 ms, received at 120 ms, stamped 10:00:00.
        let quick = ServerTime::reading(origin, 36_000_000, at(100), at(120));
        assert_eq!(quick.earliest(at(120)), 36_000_000);
        assert_eq!(quick.uncertainty(), Duration::from_millis(1020));
        // An answer held 5 s on the way: sent at 200 ms, received at 5 200 ms, stamped at
        // 10:00:00 when it was made.
        let held = ServerTime::reading(origin, 36_000_000, at(200), at(5_200));
        let both = quick.narrowed(held);
        assert_eq!(
            both.earliest(at(5_200)),
            36_005_080,
            "the quick reading still counts"
        );
        assert!(both.uncertainty() <= quick.uncertainty());
        // An answer an hour ahead (a clock set forward, or a lie): the readings contradict, and
        // the time becomes less certain instead of jumping: the earliest stays where it was.
        let ahead = ServerTime::reading(origin, 39_600_000, at(6_000), at(6_010));
        let widened = both.narrowed(ahead);
        assert_eq!(widened.earliest(at(6_010)), both.earliest(at(6_010)));
        assert!(widened.uncertainty() > Duration::from_secs(3500));
        // Another answer on the new clock narrows the time again, but the disagreement seen
        // is kept: a run that saw clocks an hour apart does not forget it.
        let again = widened.narrowed(ServerTime::reading(
            origin,
            39_601_000,
            at(7_000),
            at(7_010),
        ));
        assert!(again.uncertainty() < Duration::from_secs(2));
        assert!(again.disagreement() > Duration::from_secs(3500));
    }
}

//! What a lock label looks like, how to read one, and when another apply's lock has expired.
//! The planner (a newer build under a live lock blocks a downgrade), the validator (no record
//! label may look like a lock) and the lease all use it, so it lives below them all.
//!
//! A label says when it was taken, on the server's clock as its writer knew it, and how long it
//! lives: `bamboo-promote-lock-v2-<ms>-<ttl ms>-<random>`. "The server's clock" may be several:
//! each front end (a reverse proxy, a Data Center node behind a load balancer) stamps `Date`
//! with its own. So a foreign lock has expired only when one of two things holds:
//! - this process has watched the same label for its whole lifetime (on the boot clock, which
//!   counts suspended time): whatever clock stamped it, it has lived that long; or
//! - its age on the earliest server time this process has seen exceeds its lifetime plus
//!   `max_skew` (`--max-clock-skew`, 1 h unless told): the stated bound on how far two front
//!   ends' clocks may disagree.
//!
//! The `v2` keeps earlier versions safe: they read `<ms>-<ttl s>-<random>` and honour any lock
//! label they cannot parse until it is removed by hand, so none of them takes a new label for
//! expired on its own skewed clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::boot_clock::BootInstant;

pub const PREFIX: &str = "bamboo-promote-lock-";
const VERSION: &str = "v2-";

/// How far two front ends' clocks may disagree unless `--max-clock-skew` says otherwise.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(3600);

/// Whether a label would read as a lock label on a server that lowercases or trims labels:
/// no label but a lease's may look like one (a record label that did would lock the build).
pub fn looks_like_a_lock(label: &str) -> bool {
    label.trim().to_ascii_lowercase().starts_with(PREFIX)
}

/// A new label, stamped `server_ms` on the server's clock, living `ttl` (to the millisecond:
/// the label and the write window use one value).
pub fn new_label(server_ms: i64, ttl: Duration) -> String {
    format!(
        "{PREFIX}{VERSION}{server_ms}-{}-{:08x}",
        ttl.as_millis(),
        crate::process::random_in(0..=u32::MAX)
    )
}

/// The first live lock label among a build's labels, judged with the default skew bound and
/// this process's watch: some apply holds the build, and a call of its may still be on its
/// way.
pub fn live_lock(labels: &[String], server_now_ms: i64) -> Option<&str> {
    labels
        .iter()
        .find(|name| {
            LockLabel::parse(name)
                .is_some_and(|lock| !lock.is_expired(server_now_ms, DEFAULT_MAX_SKEW))
        })
        .map(String::as_str)
}

/// A lock label read off a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockLabel {
    pub name: String,
    /// When it was taken on its writer's server clock (ms since the epoch); `None` when the
    /// label is in no form this version reads.
    taken_ms: Option<i64>,
    ttl: Duration,
}

/// When this process first saw each foreign lock label (by name, lower-cased).
static WATCHED: Mutex<Option<HashMap<String, BootInstant>>> = Mutex::new(None);

/// This process's watches: those of the command run in-process, if any (see `process`).
fn with_watches<T>(use_them: impl FnOnce(&mut HashMap<String, BootInstant>) -> T) -> T {
    if let Some(process) = crate::process::current() {
        let mut watched = process.watches.lock().unwrap_or_else(|e| e.into_inner());
        return use_them(&mut watched);
    }
    let mut watched = WATCHED.lock().unwrap_or_else(|e| e.into_inner());
    use_them(watched.get_or_insert_with(HashMap::new))
}

impl LockLabel {
    /// `None` for labels that are not lock labels. Case and spaces around do not matter: a
    /// server may fold labels to lower case.
    pub fn parse(name: &str) -> Option<LockLabel> {
        let lower = name.trim().to_ascii_lowercase();
        let rest = lower.strip_prefix(PREFIX)?;
        let parts: Vec<&str> = rest.split('-').collect();
        let ms = |text: &str| text.parse::<u64>().ok().map(Duration::from_millis);
        let secs = |text: &str| text.parse::<u64>().ok().map(Duration::from_secs);
        let (taken, ttl) = match parts.as_slice() {
            // This version: `v2-<ms>-<ttl ms>-<random>`.
            ["v2", at, ttl, _] => (at.parse().ok(), ms(ttl)),
            // The version before: `<ms>-<ttl s>-<random>`.
            [at, ttl, _] => (at.parse().ok(), secs(ttl)),
            // The first: `<ms>-<random>`, ten minutes.
            [at, _] => (at.parse().ok(), Some(Duration::from_secs(600))),
            _ => (None, None),
        };
        Some(LockLabel {
            name: name.to_string(),
            taken_ms: taken.filter(|_| ttl.is_some()),
            ttl: ttl.unwrap_or(Duration::MAX),
        })
    }

    /// Whether it has expired: watched by this process for its whole lifetime, or older than
    /// its lifetime plus `max_skew` on `server_now_ms` (the earliest server time seen). A
    /// label we cannot read is someone else's format: honoured until removed by hand.
    pub fn is_expired(&self, server_now_ms: i64, max_skew: Duration) -> bool {
        let Some(taken) = self.taken_ms else {
            return false;
        };
        if self
            .watched_for()
            .is_some_and(|watched| watched >= self.ttl)
        {
            return true;
        }
        let bound =
            i64::try_from(self.ttl.saturating_add(max_skew).as_millis()).unwrap_or(i64::MAX);
        server_now_ms.saturating_sub(taken) > bound
    }

    /// Starts (or goes on) watching this label; says how long until the watch alone lets it
    /// be taken for expired.
    pub fn watch(&self) -> Duration {
        let since = with_watches(|watched| {
            *watched
                .entry(self.name.trim().to_ascii_lowercase())
                .or_insert_with(BootInstant::now)
        });
        since
            .plus(self.ttl.min(Duration::from_secs(100 * 365 * 86_400)))
            .until()
    }

    /// How long this process has watched it, if it has.
    fn watched_for(&self) -> Option<Duration> {
        with_watches(|watched| {
            watched
                .get(&self.name.trim().to_ascii_lowercase())
                .map(|since| since.elapsed())
        })
    }

    /// `label …, taken 2m 10s ago, lives 10m`, its age on the server's clock as we know it.
    pub fn describe(&self, server_now_ms: i64) -> String {
        let Some(taken) = self.taken_ms else {
            return format!("label {}, in a form this version does not read", self.name);
        };
        let age = Duration::from_millis(server_now_ms.saturating_sub(taken).max(0) as u64);
        let left = self.ttl.saturating_sub(age);
        let expiry = if left.is_zero() {
            format!(
                "its lifetime of {} is over on our server clock",
                words(self.ttl)
            )
        } else {
            format!("expires in {}", words(left))
        };
        format!("label {}, taken {} ago, {expiry}", self.name, words(age))
    }

    /// When it was stamped, on its writer's view of the server's clock.
    pub fn taken_ms(&self) -> Option<i64> {
        self.taken_ms
    }
}

/// `2m 10s`, to the nearest second.
pub fn words(d: Duration) -> String {
    let s = (d + Duration::from_millis(500)).as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_label_expires_after_its_lifetime_plus_the_skew_bound_on_the_earliest_server_time() {
        let label = LockLabel::parse(&new_label(1_000_000, Duration::from_millis(60_500))).unwrap();
        // 60.5 s to the millisecond, plus an hour of possible skew between front ends.
        let end = 1_000_000 + 60_500 + 3_600_000;
        assert!(
            !label.is_expired(1_000_000 + 60_501, HOUR),
            "a front end ahead by a minute"
        );
        assert!(!label.is_expired(end, HOUR));
        assert!(label.is_expired(end + 1, HOUR));
        assert!(
            label
                .describe(1_000_000 + 15_000)
                .ends_with(", taken 15s ago, expires in 46s")
        );
    }

    #[test]
    fn earlier_versions_labels_read_and_unknown_forms_are_honoured() {
        let v1 = LockLabel::parse("bamboo-promote-lock-5000-60-0a1b2c3d").unwrap();
        assert!(!v1.is_expired(5000 + 60_000, Duration::ZERO));
        assert!(v1.is_expired(5000 + 60_001, Duration::ZERO));
        let v0 = LockLabel::parse("bamboo-promote-lock-5000-0a1b2c3d").unwrap();
        assert!(v0.is_expired(5000 + 600_001, Duration::ZERO));
        // Folded to lower case by a server, or upper-cased by hand: the same lock.
        assert!(
            LockLabel::parse("BAMBOO-PROMOTE-LOCK-V2-5000-1000-AB")
                .is_some_and(|l| l.taken_ms == Some(5000))
        );
        let odd = LockLabel::parse("bamboo-promote-lock-garbage").unwrap();
        assert!(!odd.is_expired(i64::MAX, Duration::ZERO));
        assert!(LockLabel::parse("release-candidate").is_none());
        let endless =
            LockLabel::parse("bamboo-promote-lock-v2-5000-99999999999999999999-ab").unwrap();
        assert!(
            !endless.is_expired(i64::MAX, HOUR),
            "a lifetime that does not read never ends"
        );
    }

    /// The parser of the version before this one (`apply::lease` at 57da917), kept verbatim:
    /// it must not take a new label for expired, whatever its clock says.
    fn previous_version_is_expired(name: &str, server_now_ms: i64) -> bool {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            return false;
        };
        let parts: Vec<&str> = rest.split('-').collect();
        let (taken, ttl): (Option<i64>, Option<Duration>) = match parts.as_slice() {
            [ms, ttl, _] => (ms.parse().ok(), ttl.parse().ok().map(Duration::from_secs)),
            [ms, _] => (ms.parse().ok(), Some(Duration::from_secs(600))),
            _ => (None, None),
        };
        let taken = taken.filter(|_| ttl.is_some());
        let ttl =
            i64::try_from(ttl.unwrap_or(Duration::from_secs(600)).as_millis()).unwrap_or(i64::MAX);
        taken
            .map(|t| t.saturating_add(ttl))
            .is_some_and(|end| server_now_ms > end)
    }

    #[test]
    fn the_previous_version_never_takes_a_new_label_for_expired() {
        let label = new_label(1_000_000, Duration::from_secs(60));
        assert!(!previous_version_is_expired(&label, i64::MAX));
        // While it did read its own labels' expiry: the check above is not vacuous.
        assert!(previous_version_is_expired(
            "bamboo-promote-lock-1000000-60-ab",
            1_060_001
        ));
    }

    #[test]
    fn a_label_watched_for_its_whole_lifetime_has_expired_whatever_the_clocks_say() {
        let label = LockLabel::parse(&new_label(1_000_000, Duration::from_millis(30))).unwrap();
        // On the earliest server time, it is not even taken yet (a front end far behind).
        assert!(!label.is_expired(0, HOUR));
        assert!(label.watch() <= Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(40));
        assert!(label.is_expired(0, HOUR));
        assert_eq!(label.watch(), Duration::ZERO);
    }
}

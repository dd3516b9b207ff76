//! A lease on one build, so that two applies cannot both continue it.
//!
//! Re-reading a build just before the write narrows the race between two applies but cannot
//! close it: if another process's promotion finishes between our read and our write, our call
//! springs the trap and runs the next manual stage. So every apply first puts a lock label on
//! the build and goes on only if no other live lock label is there; otherwise it takes its
//! label off and backs off with jitter. Two processes cannot both see only their own label:
//! each adds before it reads, so the later reader sees the earlier label.
//!
//! A label says when it was taken, on the server's clock (see `bamboo::ServerTime`), and how
//! long it lives: `bamboo-promote-lock-<ms>-<ttl s>-<random>`. Others take it for abandoned
//! only once the server's clock has passed its end, so runners whose clocks disagree still
//! agree on it. The holder, for its part, writes only while its lease is young on its own
//! monotonic clock (`Lease::fresh`): a process paused after taking it (SIGSTOP, a frozen VM)
//! takes a new one and reads the build again before any write.

use std::time::{Duration, Instant};

use rand::Rng;

use super::stop::Stop;
use crate::bamboo::types::split_build_key;
use crate::bamboo::{BambooClient, BambooError, ServerTime};
use crate::observe::ObservedBuild;

pub const PREFIX: &str = "bamboo-promote-lock-";

/// How long a label lives unless `--lock-ttl` says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// The longest `--lock-ttl`: a lock left behind blocks its build that long.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// What `--lock-ttl` must exceed besides one request timeout: the server's time is known to
/// about a second (`Date` has no milliseconds), plus room for a write window of a second.
pub const TTL_MARGIN: Duration = Duration::from_secs(3);
/// Reads of a build whose labels take pages, until two in a row agree (see `read_build`).
const SETTLE_READS: u32 = 4;

/// How long a lease lives and how long to wait for another holder.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub ttl: Duration,
    /// `--lock-timeout`: how long to wait for another apply's lease on the same build.
    pub patience: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "another apply holds the lock on {build_key} ({holder}); gave up after waiting {waited:.0?}. If no apply is running, remove it with `bamboo-promote unlock {build_key} --force`"
    )]
    Busy {
        build_key: String,
        holder: String,
        waited: Duration,
    },
    #[error(transparent)]
    Bamboo(#[from] BambooError),
    #[error("build {0} no longer exists")]
    Gone(String),
    #[error(
        "the server's answers carry no Date header, so lock times cannot be read on its clock; nothing was written"
    )]
    NoServerTime,
    #[error("stopped by a signal before the lock was taken")]
    Stopped,
    #[error(
        "the lock label put on {0} did not show when the build was read back: the server, or a proxy before it, does not keep labels, so no lock can hold; nothing was written"
    )]
    NotKept(String),
    #[error(
        "the labels of {0} kept changing while they were read, page by page (other applies taking and dropping locks?), so no lock can rest on them; nothing was written"
    )]
    Unsettled(String),
    #[error(
        "the lock label on {0} was stamped with an older server time than the server's answers now show (a cached or stale answer); it was taken again"
    )]
    Backdated(String),
}

/// Whether a label would read as a lock label on a server that lowercases or trims labels:
/// no label but a lease's may look like one (a record label that did would lock the build).
pub fn looks_like_a_lock(label: &str) -> bool {
    label.trim().to_ascii_lowercase().starts_with(PREFIX)
}

/// The first live lock label among a build's labels, on the server's clock: some apply
/// holds the build, and a call of its may still be on its way.
pub fn live_lock(labels: &[String], server_now_ms: i64) -> Option<&str> {
    labels
        .iter()
        .find(|name| LockLabel::parse(name).is_some_and(|lock| !lock.is_expired(server_now_ms)))
        .map(String::as_str)
}

/// A lock label read off a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockLabel {
    pub name: String,
    /// When it was taken on the server's clock (ms since the epoch); `None` when the label is
    /// not in a form this version writes.
    taken_ms: Option<i64>,
    ttl: Duration,
}

impl LockLabel {
    /// `None` for labels that are not lock labels.
    pub fn parse(name: &str) -> Option<LockLabel> {
        let rest = name.strip_prefix(PREFIX)?;
        let parts: Vec<&str> = rest.split('-').collect();
        let (taken, ttl) = match parts.as_slice() {
            // This version: `<ms>-<ttl s>-<random>`.
            [ms, ttl, _] => (ms.parse().ok(), ttl.parse().ok().map(Duration::from_secs)),
            // Earlier versions: `<ms>-<random>`, ten minutes.
            [ms, _] => (ms.parse().ok(), Some(DEFAULT_TTL)),
            _ => (None, None),
        };
        Some(LockLabel {
            name: name.to_string(),
            taken_ms: taken.filter(|_| ttl.is_some()),
            ttl: ttl.unwrap_or(DEFAULT_TTL),
        })
    }

    /// Expired once the server's clock is past its end. A label we cannot read is someone
    /// else's format: it is honoured until removed by hand.
    pub fn is_expired(&self, server_now_ms: i64) -> bool {
        self.end_ms().is_some_and(|end| server_now_ms > end)
    }

    /// When it expires on the server's clock; a lifetime too long to add never ends.
    fn end_ms(&self) -> Option<i64> {
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        self.taken_ms.map(|taken| taken.saturating_add(ttl))
    }

    /// `label …, taken 2m 10s ago, expires in 7m 50s`, on the server's clock.
    pub fn describe(&self, server_now_ms: i64) -> String {
        let Some(taken) = self.taken_ms else {
            return format!("label {}, in a form this version does not read", self.name);
        };
        let age = Duration::from_millis(server_now_ms.saturating_sub(taken).max(0) as u64);
        let end = self.end_ms().unwrap_or(i64::MAX);
        let expiry = if server_now_ms > end {
            format!(
                "expired {} ago",
                words(Duration::from_millis((server_now_ms - end) as u64))
            )
        } else {
            format!(
                "expires in {}",
                words(Duration::from_millis(
                    end.saturating_sub(server_now_ms) as u64
                ))
            )
        };
        format!("label {}, taken {} ago, {expiry}", self.name, words(age))
    }
}

/// `2m 10s`, to the nearest second.
fn words(d: Duration) -> String {
    let s = (d + Duration::from_millis(500)).as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// A lease this process holds.
#[derive(Debug)]
pub struct Lease {
    pub build_key: String,
    pub label: String,
    /// On the monotonic clock, just before the label was sent: the label's time on the
    /// server's clock is no later than this moment.
    taken: Instant,
    /// How long after `taken` a write may still start (see `write_window`).
    window: Duration,
}

impl Lease {
    /// Takes the lease on `build_key`, waiting up to `settings.patience` for another holder to
    /// let go; `waiting` is told once when that wait begins. Also returns the build as read
    /// after our label was put on it: the re-read the write depends on, taken under the lease.
    pub async fn acquire(
        client: &BambooClient,
        build_key: &str,
        settings: Settings,
        stop: &Stop,
        waiting: impl Fn(&str),
    ) -> Result<(Lease, ObservedBuild), LeaseError> {
        Self::take(client, build_key, settings, stop, waiting, None).await
    }

    /// Whether a write may start now: the lease was verified recently enough, on this
    /// process's monotonic clock, that the write lands well before anyone may take the label
    /// for abandoned.
    pub fn fresh(&self) -> bool {
        self.taken.elapsed() < self.window
    }

    /// Until when, on the monotonic clock, reads may go on confirming a write under this lease.
    pub fn confirm_until(&self) -> Instant {
        self.taken + 2 * self.window
    }

    /// A new label for a lease that is no longer fresh, and the build read again under it; the
    /// old label comes off once the new one holds. If another apply took the old label for
    /// abandoned meanwhile, this waits for it as `acquire` would.
    pub async fn renew(
        self,
        client: &BambooClient,
        settings: Settings,
        stop: &Stop,
        waiting: impl Fn(&str),
    ) -> Result<(Lease, ObservedBuild), LeaseError> {
        let renewed = Self::take(
            client,
            &self.build_key,
            settings,
            stop,
            waiting,
            Some(&self.label),
        )
        .await;
        let old = self.release(client).await;
        let renewed = renewed?;
        old?;
        Ok(renewed)
    }

    pub async fn release(self, client: &BambooClient) -> Result<(), BambooError> {
        client.remove_label(&self.build_key, &self.label).await
    }

    /// Leaves the label on the build, for a write whose outcome is unknown: no other run acts
    /// on the build until it expires. Returns the label's name.
    pub fn keep(self) -> String {
        self.label
    }

    async fn take(
        client: &BambooClient,
        build_key: &str,
        settings: Settings,
        stop: &Stop,
        waiting: impl Fn(&str),
        ours_already: Option<&str>,
    ) -> Result<(Lease, ObservedBuild), LeaseError> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            if stop.requested() {
                return Err(LeaseError::Stopped);
            }
            let taken = Instant::now();
            let server = client.server_time().ok_or(LeaseError::NoServerTime)?;
            let label = new_label(server.earliest(taken), settings.ttl);
            client.add_label(build_key, &label).await?;
            let verified = async {
                let build = read_build(client, build_key).await?;
                // Our label must show: a server (or a proxy) that answers a label write
                // without keeping it would let two applies both see no other lock.
                if !build.labels.contains(&label) {
                    return Err(LeaseError::NotKept(build_key.to_string()));
                }
                // The read's own Date is in by now: the freshest view of the server's clock.
                let server = client.server_time().ok_or(LeaseError::NoServerTime)?;
                let ours = [Some(label.as_str()), ours_already];
                let holder = other_holder(client, build_key, &build.labels, &ours, &server).await?;
                Ok::<_, LeaseError>((build, server, holder))
            };
            let (build, server, holder) = match verified.await {
                Ok(verified) => verified,
                // Labels that keep moving are others' locks coming and going: contention,
                // waited out as a lock held would be.
                Err(LeaseError::Unsettled(_)) if started.elapsed() < settings.patience => {
                    client.remove_label(build_key, &label).await?;
                    attempt += 1;
                    if !back_off(attempt, started, settings, stop).await {
                        return Err(LeaseError::Stopped);
                    }
                    continue;
                }
                Err(e) => {
                    // Nothing was written under it: the label comes off again.
                    let _ = client.remove_label(build_key, &label).await;
                    return Err(e);
                }
            };
            // The label's time came from the answers seen before it; if the read since shows
            // the server's clock further on (one of those answers was stale), others would
            // take the label for older than it is. It comes off, and a new one is stamped.
            if label_time(&label) < server.earliest(taken) - 1000 {
                client.remove_label(build_key, &label).await?;
                if started.elapsed() >= settings.patience || attempt >= 3 {
                    return Err(LeaseError::Backdated(build_key.to_string()));
                }
                attempt += 1;
                continue;
            }
            let Some(holder) = holder else {
                let lease = Lease {
                    build_key: build_key.to_string(),
                    label,
                    taken,
                    window: write_window(settings.ttl, client.request_timeout(), &server),
                };
                return Ok((lease, build));
            };
            client.remove_label(build_key, &label).await?;
            let described = holder.describe(server.now());
            if started.elapsed() >= settings.patience {
                return Err(LeaseError::Busy {
                    build_key: build_key.to_string(),
                    holder: described,
                    waited: started.elapsed(),
                });
            }
            if attempt == 0 {
                waiting(&described);
            }
            attempt += 1;
            if !back_off(attempt, started, settings, stop).await {
                return Err(LeaseError::Stopped);
            }
        }
    }
}

/// A random pause before the next try, longer with each `attempt`, so that applies waiting on
/// one build do not keep colliding. The last pause ends with the patience, so the wait says
/// what was asked. False when a stop came first.
async fn back_off(attempt: u32, started: Instant, settings: Settings, stop: &Stop) -> bool {
    let ceiling = (100 * u64::from(attempt.min(10))).max(100);
    let pause = Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling * 2));
    let left = settings.patience.saturating_sub(started.elapsed());
    stop.sleep(pause.min(left)).await
}

/// How long after taking a lease a write may start. Others may take the label once the
/// server's clock passes its time plus the TTL; the label's time is no later than the moment
/// of taking, and the server's clock may run ahead of our estimate by `uncertainty`. A write
/// that starts within the window lands within one request timeout, so it lands before
/// `ttl − uncertainty`; the window is half of what is left, so that the other half covers
/// the reads that confirm the write, which the label must outlive.
pub fn write_window(ttl: Duration, request_timeout: Duration, server: &ServerTime) -> Duration {
    ttl.saturating_sub(request_timeout)
        .saturating_sub(server.uncertainty())
        / 2
}

/// The build with its stages and every label, as one snapshot. One answer is one. A label
/// list read in pages (more than 25 labels) is not: while another apply takes or drops its
/// lock, labels move between pages, so a live lock can be missed, and the stages, read with
/// the first page, are older than the later pages. Such a build is read again until two reads
/// in a row list the same labels; a lock live through both shows in them, and one dropped
/// before the second read began was dropped after its write, which the second read's stages
/// then show.
async fn read_build(client: &BambooClient, build_key: &str) -> Result<ObservedBuild, LeaseError> {
    let gone = || LeaseError::Gone(build_key.to_string());
    let (plan, number) = split_build_key(build_key).ok_or_else(gone)?;
    let read = || async {
        match client.build(plan, Some(number)).await {
            Ok(build) => build.ok_or_else(gone),
            // Pages that kept changing: others' locks coming and going, waited out.
            Err(BambooError::Changing { .. }) => Err(LeaseError::Unsettled(build_key.into())),
            Err(e) => Err(e.into()),
        }
    };
    let mut last = read().await?;
    let mut reads = 1;
    while last.labels_paged {
        if reads == SETTLE_READS {
            return Err(LeaseError::Unsettled(build_key.to_string()));
        }
        let again = read().await?;
        reads += 1;
        let settled = again.labels.items == last.labels.items;
        last = again;
        if settled {
            break;
        }
    }
    Ok(ObservedBuild::from_result(last))
}

/// The first live lock label that is not ours; expired ones are removed on the way.
async fn other_holder(
    client: &BambooClient,
    build_key: &str,
    labels: &[String],
    ours: &[Option<&str>],
    server: &ServerTime,
) -> Result<Option<LockLabel>, BambooError> {
    for label in labels.iter().filter_map(|l| LockLabel::parse(l)) {
        if ours.contains(&Some(label.name.as_str())) {
            continue;
        }
        if label.is_expired(server.now()) {
            client.remove_label(build_key, &label.name).await?;
        } else {
            return Ok(Some(label));
        }
    }
    Ok(None)
}

/// Removes the expired lock labels among a build's labels (those a crashed apply left);
/// returns how many.
pub async fn clear_expired(
    client: &BambooClient,
    build_key: &str,
    labels: &[String],
) -> Result<usize, BambooError> {
    let Some(server) = client.server_time() else {
        return Ok(0);
    };
    let mut removed = 0;
    for label in labels.iter().filter_map(|l| LockLabel::parse(l)) {
        if label.is_expired(server.now()) {
            client.remove_label(build_key, &label.name).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The server time a label of ours was stamped with.
fn label_time(label: &str) -> i64 {
    LockLabel::parse(label)
        .and_then(|l| l.taken_ms)
        .unwrap_or(i64::MIN)
}

/// `bamboo-promote-lock-<server ms>-<ttl s>-<random>`.
fn new_label(server_ms: i64, ttl: Duration) -> String {
    format!(
        "{PREFIX}{server_ms}-{}-{:08x}",
        ttl.as_secs(),
        rand::rng().random::<u32>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_expire_on_the_servers_clock_after_their_own_ttl() {
        let label = LockLabel::parse(&new_label(1_000_000, Duration::from_secs(60))).unwrap();
        assert!(!label.is_expired(1_000_000 + 60_000));
        assert!(label.is_expired(1_000_000 + 60_001));
        assert_eq!(
            label.describe(1_000_000 + 15_000)[label.name.len() + 6..],
            *", taken 15s ago, expires in 45s"
        );
        // An earlier version's label: ten minutes.
        let old = LockLabel::parse("bamboo-promote-lock-5000-0a1b2c3d").unwrap();
        assert!(!old.is_expired(5000 + 600_000) && old.is_expired(5000 + 600_001));
        // A label in no form we know is honoured until removed by hand.
        let odd = LockLabel::parse("bamboo-promote-lock-garbage").unwrap();
        assert!(!odd.is_expired(i64::MAX));
        assert!(LockLabel::parse("release-candidate").is_none());
        // A lifetime too long to add to the time never ends, rather than wrapping around.
        let endless =
            LockLabel::parse("bamboo-promote-lock-5000-10000000000000000-0a1b2c3d").unwrap();
        assert!(!endless.is_expired(i64::MAX));
        assert!(endless.describe(6000).contains("expires in"));
    }

    #[test]
    fn the_write_window_leaves_room_for_the_write_and_its_confirmation() {
        let origin = Instant::now();
        let server = ServerTime::reading(origin, 0, origin, origin);
        let window = write_window(Duration::from_secs(600), Duration::from_secs(30), &server);
        // 600 s − 30 s − 1 s of Date's resolution, halved.
        assert_eq!(window, Duration::from_millis(284_500));
    }
}

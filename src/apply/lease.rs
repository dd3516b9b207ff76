//! A lease on one build, so that two applies cannot both continue it.
//!
//! Re-reading a build just before the write narrows the race between two applies but cannot
//! close it: if another process's promotion finishes between our read and our write, our call
//! springs the trap and runs the next manual stage. So every apply first puts a lock label on
//! the build and goes on only if no other live lock label is there; otherwise it takes its
//! label off and backs off with jitter. Two processes cannot both see only their own label:
//! each adds before it reads, so the later reader sees the earlier label.
//!
//! A label says when it was taken and how long it lives (`lock_label`). Others take it for
//! abandoned only once they have watched it for its whole lifetime, or once it is older than
//! its lifetime plus the stated bound on clock skew; a run whose own `Date` readings disagree
//! by more than that bound takes no lock. Removing another's expired lock is reported, and
//! the build is read again to see it gone before anything else. The holder, for its part,
//! writes only while its lease is young on the boot clock (`Lease::fresh`): a process paused
//! or suspended after taking it takes a new one and reads the build again before any write.

use std::time::Duration;

use tokio::time::Instant;

use super::stop::Stop;
use crate::bamboo::types::BuildResult;
use crate::bamboo::types::split_build_key;
use crate::bamboo::{BambooClient, BambooError, ServerTime, WriteTurn};
use crate::boot_clock::BootInstant;
use crate::lock_label::{LockLabel, new_label, words};
use crate::observe::ObservedBuild;

/// The longest `--lock-ttl`: a lock left behind blocks its build that long.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// What `--lock-ttl` must exceed besides one request timeout: the server's time is known to
/// about a second (`Date` has no milliseconds), plus room for a write window of a second.
pub const TTL_MARGIN: Duration = Duration::from_secs(3);
/// Reads of a build whose labels take pages, until two in a row agree (see `read_build`).
const SETTLE_READS: u32 = 4;

/// The longest wait for another holder when `--lock-timeout` is not given.
pub const AUTO_PATIENCE_AT_MOST: Duration = Duration::from_secs(3600);
/// The wait for another holder when `--lock-timeout` is not given and the lock met is one this
/// process cannot watch out (its lifetime does not read).
const AUTO_PATIENCE_AT_LEAST: Duration = Duration::from_secs(60);

/// How long a lease lives and how long to wait for another holder.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub ttl: Duration,
    /// `--lock-timeout`: how long to wait for another apply's lease on the same build; `None`
    /// waits until the lock met can be taken for expired (watched for its whole lifetime), up
    /// to `AUTO_PATIENCE_AT_MOST`, so that a CI retry after a crashed run clears it by itself.
    pub patience: Option<Duration>,
    /// `--max-clock-skew`: how far two front ends' clocks may disagree.
    pub max_skew: Duration,
}

impl Settings {
    /// How long to wait from `started` for a holder whose watch ends in `watch_left`.
    fn patience_for(&self, waited: Duration, watch_left: Duration) -> Duration {
        self.patience.unwrap_or_else(|| {
            (waited + watch_left + Duration::from_secs(1))
                .clamp(AUTO_PATIENCE_AT_LEAST, AUTO_PATIENCE_AT_MOST)
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "another apply holds the lock on {build_key} ({holder}); gave up after waiting {waited:.0?}. If no apply is running, remove it with `bamboo-promote unlock {build_key} --force --reason …`"
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
    #[error(
        "the server's Date headers disagree by {spread} (front ends with clocks of their own?), more than --max-clock-skew {bound}: lock times cannot be trusted, so nothing was written"
    )]
    ClocksDisagree { spread: String, bound: String },
    #[error(
        "{error}; taking our lock label {label} off {build_key} again failed too: it may be on the build; once no apply runs, remove it with `bamboo-promote unlock {build_key} --force --reason …`"
    )]
    LabelLeft {
        build_key: String,
        label: String,
        error: String,
    },
}

/// Why the server's clock no longer fits a lock (see `Lease::clock_check`).
pub enum ClockProblem {
    /// Its readings disagree by more than the skew bound: nothing is written.
    Disagree(String),
    /// It moved on past the lock's stamp: the lock is stamped again.
    MovedOn(String),
}

/// A lease this process holds.
#[derive(Debug)]
pub struct Lease {
    pub build_key: String,
    pub label: String,
    /// On the boot clock, just before the label was sent: the label's time on the server's
    /// clock is no later than this moment.
    taken: BootInstant,
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

    /// Whether the server's clock, as the answers so far show it, still fits the lock: its
    /// readings agree within the skew bound, and it has not moved on past the label's stamp
    /// by more than the time since (so others reading the label now see its true age).
    pub fn clock_check(
        &self,
        client: &BambooClient,
        settings: Settings,
    ) -> Result<(), ClockProblem> {
        let Some(server) = client.server_time() else {
            return Err(ClockProblem::Disagree(
                "the server's answers carry no Date header".into(),
            ));
        };
        agreeing(&server, settings).map_err(|e| ClockProblem::Disagree(e.to_string()))?;
        let age_on_server = server.now().saturating_sub(label_time(&self.label));
        let age_here = i64::try_from(self.taken.elapsed().as_millis()).unwrap_or(i64::MAX);
        // Date has whole seconds; a second and a half of room.
        if age_on_server > age_here.saturating_add(1500) {
            return Err(ClockProblem::MovedOn(format!(
                "the server's clock moved on {} past the lock's stamp",
                words(Duration::from_millis((age_on_server - age_here) as u64))
            )));
        }
        Ok(())
    }

    /// By when the write must start, on the monotonic clock a pause is slept on.
    pub fn write_deadline(&self) -> Instant {
        Instant::now() + self.window.saturating_sub(self.taken.elapsed())
    }

    /// Until when, on the monotonic clock, reads may go on confirming a write under this lease.
    pub fn confirm_until(&self) -> Instant {
        Instant::now() + (2 * self.window).saturating_sub(self.taken.elapsed())
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
        let (build_key, old_label) = (self.build_key.clone(), self.label.clone());
        let Err(e) = self.release(client).await else {
            return renewed;
        };
        // The old label stays on: the new one comes off too (no write goes under two), and
        // the old one is named, with what to run.
        let why = match renewed {
            Ok((new, _)) => off_again(client, &build_key, &new.label, "renewing the lock")
                .await
                .err()
                .map_or(String::new(), |left| format!("{left}; ")),
            Err(r) => format!("{r}; "),
        };
        Err(LeaseError::LabelLeft {
            build_key,
            label: old_label,
            error: format!("{why}taking the old lock label off: {e}"),
        })
    }

    pub async fn release(self, client: &BambooClient) -> Result<(), BambooError> {
        client.remove_label(&self.build_key, &self.label).await
    }

    /// Whether `read` still carries this lease's label: an apply that takes a lock for
    /// expired takes its label off before it writes.
    pub fn holds(&self, read: &ObservedBuild) -> bool {
        read.labels
            .iter()
            .any(|l| crate::label::same(l, &self.label))
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
        let mut patience = settings.patience.unwrap_or(AUTO_PATIENCE_AT_LEAST);
        let mut attempt: u32 = 0;
        loop {
            if stop.requested() {
                return Err(LeaseError::Stopped);
            }
            let taken = BootInstant::now();
            let server = client.server_time().ok_or(LeaseError::NoServerTime)?;
            agreeing(&server, settings)?;
            let label = new_label(server.now(), settings.ttl);
            put_label(client, build_key, &label).await?;
            let verified = async {
                let ours = [Some(label.as_str()), ours_already];
                let (build, server, holder) =
                    read_clear_of_expired(client, build_key, &label, &ours, settings).await?;
                agreeing(&server, settings)?;
                Ok::<_, LeaseError>((build, server, holder))
            };
            let (build, server, holder) = match verified.await {
                Ok(verified) => verified,
                // Labels that keep moving are others' locks coming and going: contention,
                // waited out as a lock held would be.
                Err(LeaseError::Unsettled(why)) if started.elapsed() < patience => {
                    off_again(client, build_key, &label, why).await?;
                    attempt += 1;
                    if !back_off(attempt, started, patience, stop).await {
                        return Err(LeaseError::Stopped);
                    }
                    continue;
                }
                Err(e) => {
                    // Nothing was written under it: the label comes off again.
                    off_again(client, build_key, &label, e.to_string()).await?;
                    return Err(e);
                }
            };
            // The label's time came from the answers seen before it; if the read since shows
            // the server's clock further on (one of those answers was stale), others would
            // take the label for older than it is. It comes off, and a new one is stamped.
            if label_time(&label) < server.now() - 1000 - server_time_drift(taken) {
                off_again(client, build_key, &label, "stamped too early").await?;
                if started.elapsed() >= patience || attempt >= 3 {
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
            off_again(client, build_key, &label, "another apply holds the lock").await?;
            let watch_left = holder.watch();
            patience = settings.patience_for(started.elapsed(), watch_left);
            let described = holder.describe(server.now());
            if started.elapsed() >= patience {
                return Err(LeaseError::Busy {
                    build_key: build_key.to_string(),
                    holder: described,
                    waited: started.elapsed(),
                });
            }
            if attempt == 0 {
                let until = if settings.patience.is_none() {
                    format!(
                        "; waiting up to {} for it to expire (this run watches it for its whole lifetime)",
                        words(patience.saturating_sub(started.elapsed()))
                    )
                } else {
                    String::new()
                };
                waiting(&format!("{described}{until}"));
            }
            attempt += 1;
            if !back_off(attempt, started, patience, stop).await {
                return Err(LeaseError::Stopped);
            }
        }
    }
}

/// The time since `taken` is already in the server time read since: it is no drift, and the
/// label stamped at `taken` is not stale for it.
fn server_time_drift(taken: BootInstant) -> i64 {
    i64::try_from(taken.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// Errs when the server's `Date` readings disagree by more than the skew bound: lock times
/// read on such clocks cannot decide anything.
fn agreeing(server: &ServerTime, settings: Settings) -> Result<(), LeaseError> {
    // A reading's own width (Date drops the milliseconds, and the round trip) is not skew.
    let spread = server.uncertainty().max(server.disagreement());
    if spread > settings.max_skew + Duration::from_secs(2) {
        return Err(LeaseError::ClocksDisagree {
            spread: words(spread),
            bound: words(settings.max_skew),
        });
    }
    Ok(())
}

/// Puts our label on the build. When the server answers with an error, the label may be there
/// all the same (a 5xx after the effect): it is taken off, and if that fails too, named in the
/// error with what to run.
async fn put_label(client: &BambooClient, build_key: &str, label: &str) -> Result<(), LeaseError> {
    let Err(error) = client.add_label(build_key, label).await else {
        return Ok(());
    };
    // Refused (403 for a token that may not label): the label was not put, nothing to undo.
    if let BambooError::Status {
        status: 400..=499, ..
    } = error
    {
        return Err(error.into());
    }
    let why = format!("putting the lock label on failed ({error})");
    off_again(client, build_key, label, why).await?;
    Err(error.into())
}

/// Takes our label off again after an attempt that did not get the lock (`why`): a label that
/// will not come off is named in the error, with what to run, never left unsaid.
async fn off_again(
    client: &BambooClient,
    build_key: &str,
    label: &str,
    why: impl std::fmt::Display,
) -> Result<(), LeaseError> {
    client
        .remove_label(build_key, label)
        .await
        .map_err(|e| LeaseError::LabelLeft {
            build_key: build_key.to_string(),
            label: label.to_string(),
            error: format!("{why}; {e}"),
        })
}

/// Reads the build under our new label: our label must show, expired foreign locks are
/// removed (each one reported, in the audit trail too) and the build read again until they
/// are seen gone; returns the build, the server's time as read, and a live foreign holder.
async fn read_clear_of_expired(
    client: &BambooClient,
    build_key: &str,
    label: &str,
    ours: &[Option<&str>],
    settings: Settings,
) -> Result<(ObservedBuild, ServerTime, Option<LockLabel>), LeaseError> {
    for _ in 0..SETTLE_READS {
        let build = read_build(client, build_key).await?;
        // Our label must show: a server (or a proxy) that answers a label write without
        // keeping it would let two applies both see no other lock.
        if !build.labels.iter().any(|l| l.eq_ignore_ascii_case(label)) {
            return Err(LeaseError::NotKept(build_key.to_string()));
        }
        // The read's own Date is in by now: the freshest view of the server's clock.
        let server = client.server_time().ok_or(LeaseError::NoServerTime)?;
        let foreign: Vec<LockLabel> = build
            .labels
            .iter()
            .filter_map(|l| LockLabel::parse(l))
            .filter(|l| {
                !ours
                    .iter()
                    .flatten()
                    .any(|o| o.eq_ignore_ascii_case(&l.name))
            })
            .collect();
        let (expired, live): (Vec<_>, Vec<_>) = foreign
            .into_iter()
            .partition(|l| l.is_expired(server.now(), settings.max_skew));
        if let Some(holder) = live.into_iter().next() {
            return Ok((build, server, Some(holder)));
        }
        if expired.is_empty() {
            return Ok((build, server, None));
        }
        for lock in expired {
            errln!(
                "removing another apply's expired lock from {build_key}: {}",
                lock.describe(server.now())
            );
            client.remove_label(build_key, &lock.name).await?;
        }
    }
    Err(LeaseError::Unsettled(build_key.to_string()))
}

/// A random pause before the next try, longer with each `attempt`, so that applies waiting on
/// one build do not keep colliding. The last pause ends with the patience, so the wait says
/// what was asked. False when a stop came first.
async fn back_off(attempt: u32, started: Instant, patience: Duration, stop: &Stop) -> bool {
    let ceiling = (100 * u64::from(attempt.min(10))).max(100);
    let pause = Duration::from_millis(crate::process::random_in(ceiling / 2..=ceiling * 2));
    let left = patience.saturating_sub(started.elapsed());
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
    let (plan, number) = build_of(build_key)?;
    settled(build_key, || client.build(plan, Some(number))).await
}

/// `read_build` in a write's turn (see `bamboo::WriteTurn`): the write's last read, every
/// request of it in the turn's slot.
pub async fn read_in_turn(
    turn: &WriteTurn<'_>,
    build_key: &str,
) -> Result<ObservedBuild, LeaseError> {
    let (plan, number) = build_of(build_key)?;
    settled(build_key, || turn.read_build(plan, number)).await
}

fn build_of(build_key: &str) -> Result<(&str, u32), LeaseError> {
    split_build_key(build_key).ok_or_else(|| LeaseError::Gone(build_key.to_string()))
}

/// Reads with `read` until one snapshot: at once for a build whose labels came in its answer,
/// until two reads agree for one whose labels took pages.
async fn settled<F>(build_key: &str, read: impl Fn() -> F) -> Result<ObservedBuild, LeaseError>
where
    F: Future<Output = Result<Option<BuildResult>, BambooError>>,
{
    let read = || async {
        match read().await {
            Ok(build) => build.ok_or_else(|| LeaseError::Gone(build_key.to_string())),
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

/// Removes the expired lock labels among a build's labels (those a crashed apply left);
/// returns how many.
pub async fn clear_expired(
    client: &BambooClient,
    build_key: &str,
    labels: &[String],
    max_skew: Duration,
) -> Result<usize, BambooError> {
    let Some(server) = client.server_time() else {
        return Ok(0);
    };
    let mut removed = 0;
    for label in labels.iter().filter_map(|l| LockLabel::parse(l)) {
        if label.is_expired(server.now(), max_skew) {
            client.remove_label(build_key, &label.name).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The server time a label of ours was stamped with.
fn label_time(label: &str) -> i64 {
    LockLabel::parse(label)
        .and_then(|l| l.taken_ms())
        .unwrap_or(i64::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_window_leaves_room_for_the_write_and_its_confirmation() {
        let origin = Instant::now();
        let server = ServerTime::reading(origin, 0, origin, origin);
        let window = write_window(Duration::from_secs(600), Duration::from_secs(30), &server);
        // 600 s − 30 s − 1 s of Date's resolution, halved.
        assert_eq!(window, Duration::from_millis(284_500));
    }
}

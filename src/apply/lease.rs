//! A lease on one build, so that two applies cannot both continue it.
//!
//! Re-reading a build just before the write narrows the race between two applies but cannot
//! close it: if another process's promotion finishes between our read and our write, our call
//! springs the trap and runs the next manual stage. So every apply first puts a lock label on
//! the build and goes on only if no other lock label is there; otherwise it takes its label
//! off and backs off with jitter. Two processes cannot both see only their own label: each adds
//! before it reads, so the later reader sees the earlier label. The label stays until Bamboo
//! shows the write's effect. Labels older than the TTL are taken as abandoned and removed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;

use crate::bamboo::{BambooClient, BambooError};
use crate::observe::ObservedBuild;

pub const PREFIX: &str = "bamboo-promote-lock-";

/// How long a lock label is honoured: longer than any apply holds one (a re-read and a write).
pub const TTL: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct Lease {
    pub build_key: String,
    pub label: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "another apply holds the lease on {build_key} (label {holder}); gave up after {waited:.1?}"
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
}

/// The build with its stages and labels.
async fn read_build(client: &BambooClient, build_key: &str) -> Result<ObservedBuild, LeaseError> {
    let gone = || LeaseError::Gone(build_key.to_string());
    let (plan, number) = build_key.rsplit_once('-').ok_or_else(gone)?;
    let number = number.parse().map_err(|_| gone())?;
    let result = client.build(plan, Some(number)).await?.ok_or_else(gone)?;
    Ok(ObservedBuild::from_result(result))
}

impl Lease {
    /// Takes the lease on `build_key`, waiting up to `patience` for another holder to let go.
    /// Also returns the build as read after our label was put on it: the re-read that the
    /// write depends on, taken under the lease, at the cost of no extra request.
    pub async fn acquire(
        client: &BambooClient,
        build_key: &str,
        patience: Duration,
    ) -> Result<(Lease, ObservedBuild), LeaseError> {
        let started = std::time::Instant::now();
        let mut attempt: u32 = 0;
        loop {
            let label = new_label();
            client.add_label(build_key, &label).await?;
            let build = read_build(client, build_key).await?;
            let holders = other_holders(client, build_key, &build.labels, &label).await?;
            let Some(holder) = holders.first().cloned() else {
                let lease = Lease {
                    build_key: build_key.to_string(),
                    label,
                };
                return Ok((lease, build));
            };
            client.remove_label(build_key, &label).await?;
            if started.elapsed() >= patience {
                return Err(LeaseError::Busy {
                    build_key: build_key.to_string(),
                    holder,
                    waited: started.elapsed(),
                });
            }
            attempt += 1;
            let ceiling = (100 * u64::from(attempt.min(10))).max(100);
            let pause = rand::rng().random_range(ceiling / 2..=ceiling * 2);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    pub async fn release(self, client: &BambooClient) -> Result<(), BambooError> {
        client.remove_label(&self.build_key, &self.label).await
    }
}

/// Lock labels other than ours that are still in force; expired ones are removed on the way.
async fn other_holders(
    client: &BambooClient,
    build_key: &str,
    labels: &[String],
    ours: &str,
) -> Result<Vec<String>, BambooError> {
    let mut holders = Vec::new();
    for label in labels {
        if label == ours || !label.starts_with(PREFIX) {
            continue;
        }
        if is_expired(label, now_ms()) {
            client.remove_label(build_key, label).await?;
        } else {
            holders.push(label.clone());
        }
    }
    Ok(holders)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `bamboo-promote-lock-<ms since epoch>-<random>`: the time lets others expire it.
fn new_label() -> String {
    format!("{PREFIX}{}-{:08x}", now_ms(), rand::rng().random::<u32>())
}

fn is_expired(label: &str, now: u64) -> bool {
    let taken = label
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split('-').next())
        .and_then(|ms| ms.parse::<u64>().ok());
    // A label we cannot read is someone else's format: honour it until the TTL cannot matter.
    taken.is_some_and(|ms| now.saturating_sub(ms) > TTL.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_expire_after_the_ttl() {
        let label = new_label();
        let taken: u64 = label[PREFIX.len()..]
            .split('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(!is_expired(&label, taken + 1000));
        assert!(is_expired(&label, taken + TTL.as_millis() as u64 + 1));
        assert!(!is_expired("bamboo-promote-lock-garbage", u64::MAX));
    }
}

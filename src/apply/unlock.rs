//! Taking lock labels off a build by hand, as `terraform force-unlock` does: after an apply
//! was killed, or after a write whose outcome was unknown has been checked in Bamboo. Expired
//! labels always come off; a live one only with `force`, since an apply may be using it, or
//! with `watch`, once this process has watched it for its whole lifetime (see `lock_label`).

use std::time::Duration;

use crate::bamboo::types::split_build_key;
use crate::bamboo::{BambooClient, BambooError};

use crate::lock_label::{DEFAULT_MAX_SKEW, LockLabel, words};

#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error(transparent)]
    Bamboo(#[from] BambooError),
    #[error("{0} is not a build key such as PROJ-PLAN-42")]
    NotABuild(String),
    #[error("there is no build {0}")]
    Gone(String),
    #[error("the server's answers carry no Date header, so lock times cannot be read on its clock")]
    NoServerTime,
    #[error(
        "{build_key} has a live lock ({holders}); an apply may be using it. Wait for it with --watch, or remove it anyway with --force"
    )]
    Live { build_key: String, holders: String },
    #[error(
        "{build_key} still has a live lock after watching it for {waited} ({holders}); an apply keeps taking it, or its lifetime is longer than an hour"
    )]
    StillLive {
        build_key: String,
        holders: String,
        waited: String,
    },
}

/// What to do about a live lock label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// Leave it, and say so (an error).
    Refuse,
    /// Remove it anyway.
    Force,
    /// Read the build again until this process has watched it for its whole lifetime (then
    /// it is expired whatever the clocks say) or it is gone, for at most `WATCH_AT_MOST`.
    Watch,
}

/// The longest `unlock --watch` waits.
const WATCH_AT_MOST: Duration = Duration::from_secs(3600);
/// How often `unlock --watch` reads the build again.
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// Removes our lock labels from `build_key`; returns each removed label described on the
/// server's clock.
pub async fn unlock(
    client: &BambooClient,
    build_key: &str,
    live_ones: Live,
    waiting: impl Fn(&str),
) -> Result<Vec<String>, UnlockError> {
    let not_a_build = || UnlockError::NotABuild(build_key.to_string());
    let (plan, number) = split_build_key(build_key).ok_or_else(not_a_build)?;
    let started = tokio::time::Instant::now();
    let mut removed = Vec::new();
    let mut said = false;
    loop {
        let build = client
            .build(plan, Some(number))
            .await?
            .ok_or_else(|| UnlockError::Gone(build_key.to_string()))?;
        let now = client.server_time().ok_or(UnlockError::NoServerTime)?.now();
        let locks: Vec<LockLabel> = build
            .labels
            .items
            .iter()
            .filter_map(|l| LockLabel::parse(&l.name))
            .collect();
        let (expired, live): (Vec<_>, Vec<_>) = locks
            .into_iter()
            .partition(|l| l.is_expired(now, DEFAULT_MAX_SKEW));
        for label in &expired {
            client.remove_label(build_key, &label.name).await?;
            removed.push(label.describe(now));
        }
        let holders = live
            .iter()
            .map(|l| l.describe(now))
            .collect::<Vec<_>>()
            .join("; ");
        match live_ones {
            _ if live.is_empty() => return Ok(removed),
            Live::Refuse => {
                return Err(UnlockError::Live {
                    build_key: build_key.to_string(),
                    holders,
                });
            }
            Live::Force => {
                for label in &live {
                    client.remove_label(build_key, &label.name).await?;
                    removed.push(label.describe(now));
                }
                return Ok(removed);
            }
            Live::Watch => {}
        }
        if started.elapsed() >= WATCH_AT_MOST {
            return Err(UnlockError::StillLive {
                build_key: build_key.to_string(),
                holders,
                waited: words(started.elapsed()),
            });
        }
        let left = live.iter().map(LockLabel::watch).max().unwrap_or_default();
        if !said {
            said = true;
            waiting(&format!(
                "{build_key}: watching {holders} for up to {}, until it has lived its whole lifetime",
                words(left.min(WATCH_AT_MOST))
            ));
        }
        tokio::time::sleep(left.clamp(Duration::from_millis(100), WATCH_EVERY)).await;
    }
}

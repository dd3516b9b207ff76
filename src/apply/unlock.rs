//! Taking lock labels off a build by hand, as `terraform force-unlock` does: after an apply
//! was killed, or after a write whose outcome was unknown has been checked in Bamboo. Expired
//! labels always come off; a live one only with `force`, since an apply may be using it.

use crate::bamboo::types::split_build_key;
use crate::bamboo::{BambooClient, BambooError};

use crate::lock_label::{DEFAULT_MAX_SKEW, LockLabel};

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
        "{build_key} has a live lock ({holders}); an apply may be using it. Remove it anyway with --force"
    )]
    Live { build_key: String, holders: String },
}

/// Removes our lock labels from `build_key`; returns each removed label described on the
/// server's clock.
pub async fn unlock(
    client: &BambooClient,
    build_key: &str,
    force: bool,
) -> Result<Vec<String>, UnlockError> {
    let not_a_build = || UnlockError::NotABuild(build_key.to_string());
    let (plan, number) = split_build_key(build_key).ok_or_else(not_a_build)?;
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
    let mut removed = Vec::new();
    for label in &expired {
        client.remove_label(build_key, &label.name).await?;
        removed.push(label.describe(now));
    }
    if !live.is_empty() && !force {
        let holders: Vec<String> = live.iter().map(|l| l.describe(now)).collect();
        return Err(UnlockError::Live {
            build_key: build_key.to_string(),
            holders: holders.join("; "),
        });
    }
    for label in &live {
        client.remove_label(build_key, &label.name).await?;
        removed.push(label.describe(now));
    }
    Ok(removed)
}

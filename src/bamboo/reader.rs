//! The reads the downgrade and `after` checks make, from either side of a write's turn: `BambooClient`
//! sends each in a slot of its own and retries it; `WriteTurn` sends each once in the slot it
//! holds, after every pause, so that the check's data is as fresh as the build's last read.

use super::client::Reading;
use super::types::BuildResult;
use super::{BambooClient, BambooError, WriteTurn};

/// Reads of builds and of a plan's history.
pub trait BuildReader {
    /// `GET result/{plan}-{number}` (or `-latest`) with stages and every label.
    fn build(
        &self,
        plan: &str,
        number: Option<u32>,
    ) -> impl Future<Output = Result<Option<BuildResult>, BambooError>>;

    /// A page of `GET result/{plan}`: up to `max` builds from the `start`-th, newest first.
    fn history(
        &self,
        plan: &str,
        start: usize,
        max: usize,
    ) -> impl Future<Output = Result<(Vec<BuildResult>, usize), BambooError>>;

    /// The build with every label, read page by page when its answer listed only some.
    fn with_all_labels(
        &self,
        build: BuildResult,
    ) -> impl Future<Output = Result<BuildResult, BambooError>>;

    /// `GET result/{plan}?label={label}`: the newest build that carries the label.
    fn labelled(
        &self,
        plan: &str,
        label: &str,
    ) -> impl Future<Output = Result<Option<BuildResult>, BambooError>>;
}

impl BuildReader for BambooClient {
    async fn build(
        &self,
        plan: &str,
        number: Option<u32>,
    ) -> Result<Option<BuildResult>, BambooError> {
        self.build_in(plan, number, Reading::Retried).await
    }

    async fn history(
        &self,
        plan: &str,
        start: usize,
        max: usize,
    ) -> Result<(Vec<BuildResult>, usize), BambooError> {
        self.history_in(plan, start, max, Reading::Retried).await
    }

    async fn with_all_labels(&self, build: BuildResult) -> Result<BuildResult, BambooError> {
        self.with_all_labels_in(build, Reading::Retried).await
    }

    async fn labelled(&self, plan: &str, label: &str) -> Result<Option<BuildResult>, BambooError> {
        self.labelled_in(plan, label, Reading::Retried).await
    }
}

impl BuildReader for WriteTurn<'_> {
    async fn build(
        &self,
        plan: &str,
        number: Option<u32>,
    ) -> Result<Option<BuildResult>, BambooError> {
        self.client()
            .build_in(plan, number, Reading::OnceInHeldSlot)
            .await
    }

    async fn history(
        &self,
        plan: &str,
        start: usize,
        max: usize,
    ) -> Result<(Vec<BuildResult>, usize), BambooError> {
        self.client()
            .history_in(plan, start, max, Reading::OnceInHeldSlot)
            .await
    }

    async fn with_all_labels(&self, build: BuildResult) -> Result<BuildResult, BambooError> {
        self.client()
            .with_all_labels_in(build, Reading::OnceInHeldSlot)
            .await
    }

    async fn labelled(&self, plan: &str, label: &str) -> Result<Option<BuildResult>, BambooError> {
        self.client()
            .labelled_in(plan, label, Reading::OnceInHeldSlot)
            .await
    }
}

//! When and how long to wait before a read is tried again. Writes are never retried here:
//! `apply` re-reads the build and decides, because a retried write can run a stage twice.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter: spreads retries of many tasks apart.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_delay);
        let ms = ceiling.as_millis().max(1) as u64;
        Duration::from_millis(crate::process::random_in(ms / 2..=ms))
    }
}

/// Whether a status is worth trying again for a read.
pub fn is_transient(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` in seconds (the form Bamboo sends), capped so a bad header cannot stall a run.
pub fn retry_after(header: Option<&str>) -> Option<Duration> {
    let seconds: u64 = header?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(300)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let policy = RetryPolicy::default();
        assert!(policy.delay(0) <= Duration::from_millis(100));
        assert!(policy.delay(20) <= Duration::from_secs(10));
        assert!(policy.delay(3) >= Duration::from_millis(400));
    }

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(retry_after(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some("soon")), None);
        assert!(is_transient(503) && is_transient(429) && !is_transient(400));
    }
}

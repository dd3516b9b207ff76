//! Logs for a bug report: `-v` shows each request bamboo-promote makes (method, path, status,
//! time, retries), `-vv` their answers too, on stderr; `RUST_LOG` chooses instead when set.
//! Credentials travel in a header and are never logged; answers are scrubbed of them.
//! `-q` keeps only errors, the audit trail and the results.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

static QUIET: AtomicBool = AtomicBool::new(false);

pub fn start(verbose: u8, quiet: bool) {
    QUIET.store(quiet, Ordering::SeqCst);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(match verbose {
            0 => "off",
            1 => "bamboo_promote=debug",
            _ => "bamboo_promote=trace",
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::output::ErrWriter)
        .with_target(false)
        .try_init();
}

/// Whether progress is left out (`-q`).
pub fn quiet() -> bool {
    QUIET.load(Ordering::SeqCst)
}

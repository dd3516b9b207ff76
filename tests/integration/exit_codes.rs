//! Every exit code a CI job may branch on, pinned. Codes whose cause needs a long setup are
//! pinned where that setup lives: 1, 3, 5 and 6 in `apply.rs` and `plan.rs`; 7, 130 and 143
//! in `safety.rs`. Here: usage errors (64, never clap's 2), `--detailed-exitcode` for plan
//! and apply (2 and 0), and the wait timeout (4).

use crate::support::{Run, Sim};
use crate::worlds::{MANIFEST, SHOP, manifests, path_str};

#[test]
fn usage_errors_exit_64_never_2() {
    for args in [
        vec!["plan", "--detailed-exitcode", "--bogus"],
        vec!["plan", "--format", "yaml", "."],
        vec!["apply", "--timeout", "soon", "."],
        vec!["frobnicate"],
        vec!["unlock"],
    ] {
        let ran = Run::new(&args).server("http://127.0.0.1:9").run();
        assert_eq!(ran.code, 64, "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains("Usage:") || ran.stderr.contains("error:"));
    }
    // A missing --server is a usage error too, and says where a server comes from; so is one
    // that is not an http(s) address.
    let ran = Run::new(&["plan", "."]).run();
    assert_eq!(ran.code, 64, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("--server") && ran.stderr.contains("BAMBOO_URL"),
        "{}",
        ran.stderr
    );
    let ran = Run::new(&["plan", "."]).server("127.0.0.1:18085").run();
    assert_eq!(ran.code, 64, "{}", ran.stderr);
    // Help and version are not errors.
    assert_eq!(Run::new(&["--help"]).run().code, 0);
    assert_eq!(Run::new(&["--version"]).run().code, 0);
}

#[test]
fn detailed_exitcode_says_whether_there_is_or_was_something_to_do() {
    let sim = Sim::start(SHOP);
    // Without the blocked WEB target: the plan has promotions and nothing blocked.
    let dir = manifests(MANIFEST);
    let planned = sim
        .cmd(&["plan", "--detailed-exitcode", path_str(&dir)])
        .run();
    assert_eq!(planned.code, 2, "pending: {}", planned.stderr);
    assert_eq!(sim.cmd(&["plan", path_str(&dir)]).run().code, 0);
    let applied = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--detailed-exitcode",
            path_str(&dir),
        ])
        .run();
    assert_eq!(applied.code, 2, "promoted: {}", applied.stderr);
    sim.advance(60_000);
    let again = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--detailed-exitcode",
            path_str(&dir),
        ])
        .run();
    assert_eq!(again.code, 0, "nothing left: {}", again.stdout);
    let planned = sim
        .cmd(&["plan", "--detailed-exitcode", path_str(&dir)])
        .run();
    assert_eq!(planned.code, 0, "in sync: {}", planned.stdout);
}

#[test]
fn a_wait_that_runs_out_of_time_exits_4() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    // The sim clock never moves: the promoted stages never finish.
    let ran = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--wait",
            "--timeout",
            "1s",
            "--poll-interval",
            "100ms",
            path_str(&dir),
        ])
        .run();
    assert_eq!(ran.code, 4, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("timed out with 2 still running"),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_request_timeout_under_a_second_is_a_usage_error_and_wait_ends_at_its_timeout() {
    let ran = Run::new(&["plan", "--request-timeout", "0s", "."])
        .server("http://127.0.0.1:9")
        .run();
    assert_eq!(ran.code, 64, "{}", ran.stderr);
    // A poll interval longer than the timeout still ends at the timeout.
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let started = std::time::Instant::now();
    let ran = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--wait",
            "--timeout",
            "1s",
            "--poll-interval",
            "30s",
            path_str(&dir),
        ])
        .run();
    assert_eq!(ran.code, 4, "{}", ran.stdout);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

//! The seventh adversarial review's findings, each replayed with the fault that showed it: a
//! call that waited after its last check, a broken stderr, front ends with their own clocks,
//! overnight windows, incomplete history, records that said more than ran. Each test asserts
//! the simulator's witness (its stage runs and its request log), not only the exit code, and
//! failed on the code before its fix. `docs/safety.md` names them beside the rules.

use crate::safety::{
    ORDERED, assert_staging_ran_once, lock_labels, wait_for_request, world, writes_to,
};
use crate::support::{Ran, signal};
use crate::worlds::{manifests, path_str};

/// Finding 2: with stderr a closed pipe (a cancelled `apply --wait 2>&1 | tee`), SIGTERM still
/// stops the run: nothing after it is queued. Before, the signal task died on its first
/// `eprintln!`, and the run went on to promote the `after` target.
#[test]
fn sigterm_with_a_closed_stderr_still_stops_the_run() {
    let dir = manifests(ORDERED);
    let sim = crate::support::Sim::start(&world(1000, "", ""));
    for trial in 0..3 {
        let trial = format!("trial {trial}");
        sim.reset();
        let child = sim
            .cmd(&[
                "apply",
                "--auto-approve",
                "--wait",
                "--poll-interval",
                "10s",
                // On the code before the fix the run goes on: it must still end.
                "--timeout",
                "20s",
                path_str(&dir),
            ])
            .closed_stderr()
            .spawn_keeping_stderr();
        wait_for_request(&sim, |r| r["path"] == "queue/SHOP-APP-42");
        // The upstream finishes while apply sleeps between rounds: the downstream is ready.
        sim.advance(60_000);
        signal(&child, "TERM");
        let ran = Ran::finish(child);
        assert_eq!(ran.code, 143, "{trial}: {}", ran.stdout);
        assert!(ran.stdout.contains("stopped by SIGTERM"), "{trial}: {}", ran.stdout);
        assert_eq!(writes_to(&sim, "SHOP-API-7"), 0, "{trial}: nothing after the signal");
        assert_eq!(sim.ran("SHOP-API-7"), ["Build"], "{trial}");
        assert!(lock_labels(&sim, "SHOP-APP-42").is_empty(), "{trial}");
        assert_staging_ran_once(&sim, &trial);
    }
}

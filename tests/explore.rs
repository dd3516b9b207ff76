//! The fault-space explorer on a fixed set of seeds: each draws its own world, runners and
//! faults, and the promise must hold in every one (`src/explore/`). The long run is
//! `cargo bench --bench explore -- --runs 200000` (see `docs/safety.md`, "The explorer").

use bamboo_promote::explore::{Bounds, Explored, explore};

/// Seeds run by `cargo test`: the first ones.
const SEEDS: std::ops::Range<u64> = 0..1000;

/// Seeds that once showed a violation on main, each with what it found.
const REGRESSIONS: [(u64, &str); 5] = [
    (
        10032,
        "a stale Date let a call through a window that had closed",
    ),
    (
        31708,
        "a read held 115 s looked fresh, and a call went past a gate taken off",
    ),
    (
        11454,
        "the after check, read 299 s before the call, let prod go past new builds of staging",
    ),
    (
        11955,
        "-latest, leaving a running build out, made staging look in sync for prod's after",
    ),
    (
        177783,
        "a lock label put on by a write that timed out landed after its removal, unnamed",
    ),
];

fn failures(explored: &[Explored]) -> Vec<String> {
    explored
        .iter()
        .filter(|e| !e.violations.is_empty())
        .map(|e| format!("{:?}\n  {}", e.violations, e.reproduction()))
        .collect()
}

#[test]
fn the_promise_holds_on_a_fixed_set_of_seeds() {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let explored: Vec<Explored> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    SEEDS
                        .filter(|seed| seed % threads == t)
                        .map(|seed| explore(seed, Bounds::Within))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("an explorer thread"))
            .collect()
    });
    assert_eq!(explored.len(), SEEDS.count());
    let failing = failures(&explored);
    assert!(failing.is_empty(), "{}", failing.join("\n"));
    // The seeds exercise what they are for: calls reached the server, some answered 429 after
    // they took effect, runners were stopped by signals, and some ended with an unknown
    // outcome.
    let calls: usize = explored.iter().map(|e| e.queue_calls).sum();
    let exits: Vec<u8> = explored.iter().flat_map(|e| e.exits.clone()).collect();
    assert!(calls > 100, "only {calls} queue calls");
    let throttled = explored
        .iter()
        .flat_map(|e| &e.trace)
        .filter(|l| l.contains(" PUT queue/") && l.contains(" → 429"))
        .count();
    assert!(
        throttled > 10,
        "only {throttled} queue calls answered 429 after the fact"
    );
    for code in [0, 3, 7, 130, 143] {
        assert!(exits.contains(&code), "no runner exited {code}: {exits:?}");
    }
}

#[test]
fn seeds_that_once_broke_the_promise_keep_it() {
    for (seed, found) in REGRESSIONS {
        let explored = explore(seed, Bounds::Within);
        assert!(
            explored.violations.is_empty(),
            "seed {seed} ({found}) again: {:?}\n  {}",
            explored.violations,
            explored.reproduction()
        );
    }
}

/// A seed gives the same run again: the same requests at the same virtual times, the same
/// answers, the same exits. (Audit lines carry the wall clock's time, so they are left out.)
#[test]
fn a_seed_gives_the_same_run_again() {
    let trace = |seed| {
        let explored = explore(seed, Bounds::Within);
        let lines: Vec<String> = explored
            .trace
            .into_iter()
            .map(|l| {
                l.lines()
                    .filter(|l| !l.starts_with("audit: "))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect();
        (lines, explored.exits)
    };
    for seed in [3, 10, 11] {
        let (first, exits) = trace(seed);
        assert!(first.len() > 10, "seed {seed} did little: {first:?}");
        assert_eq!((first, exits), trace(seed), "seed {seed}");
    }
}

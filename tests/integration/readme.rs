//! The README's quick start, run as a newcomer would type it (with the built binary in place
//! of `cargo run --release --`): its commands exist, and exit as the README says.

use std::path::Path;
use std::process::Command;

use crate::support::BIN;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The `cargo run --release -- …` lines of the README's quick start.
fn quick_start_commands() -> Vec<String> {
    let text = readme();
    let start = text.find("## Quick start").expect("a quick start");
    let end = start + text[start + 3..].find("\n## ").expect("a section after it") + 3;
    text[start..end]
        .lines()
        .filter_map(|line| line.trim().strip_prefix("cargo run --release -- "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_quick_start_runs_as_written_and_exits_as_the_readme_says() {
    let commands = quick_start_commands();
    assert_eq!(
        commands.len(),
        3,
        "plan, apply, then the environments view: {commands:?}"
    );
    for (command, exits) in commands.iter().zip([3, 3, 0]) {
        let ran = Command::new(BIN)
            .args(command.split_whitespace())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .env_remove("BAMBOO_URL")
            .output()
            .unwrap();
        // "which is why it exits with 3", for plan and for apply alike; the view only shows.
        assert_eq!(
            ran.status.code(),
            Some(exits),
            "`{command}`:\n{}\n{}",
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr)
        );
    }
    assert!(readme().contains("which is why it exits with 3"));
}

#[test]
fn every_file_the_readme_links_to_exists_and_no_link_leaves_the_repository() {
    let text = readme();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (i, _) in text.match_indices("](") {
        let target = &text[i + 2..];
        let target = &target[..target.find(')').unwrap()];
        if target.starts_with("http") {
            continue;
        }
        assert!(
            !target.starts_with(".."),
            "{target} is outside the repository"
        );
        let path = target.split('#').next().unwrap();
        assert!(root.join(path).exists(), "{target} is linked but missing");
    }
    for named in [
        "examples/promotions",
        "examples/sim/world.yaml",
        "tests/manifests/invalid/38-after-unknown.yaml",
    ] {
        assert!(text.contains(named) && root.join(named).exists(), "{named}");
    }
}

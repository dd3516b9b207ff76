//! Puts the commit a binary was built from into `--version`, when it is built from a Git
//! checkout: `bamboo-promote 0.1.0 (3f2a9c1d8e7b, 2026-11-29)`, the commit's hash and date.
//! Built from a source archive, the version is the package's alone.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    let version = env!("CARGO_PKG_VERSION");
    let commit = git(&["log", "-1", "--format=%h %cs", "--abbrev=12"]);
    let full = match commit.as_deref().and_then(|c| c.split_once(' ')) {
        Some((hash, date)) => format!("{version} ({hash}, {date})"),
        None => version.to_string(),
    };
    println!("cargo:rustc-env=BAMBOO_PROMOTE_VERSION={full}");
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

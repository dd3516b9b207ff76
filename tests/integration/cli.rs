//! The command line around the commands: help with examples and the environment, completions,
//! the man page, the version.

use crate::support::{Run, Sim};
use crate::worlds::{MANIFEST, SHOP, manifests, path_str};

const SUBCOMMANDS: [&str; 11] = [
    "validate",
    "schema",
    "plan",
    "status",
    "apply",
    "unlock",
    "init",
    "completions",
    "man",
    "sim",
    "help",
];

#[test]
fn every_subcommands_help_has_examples_and_those_that_talk_to_bamboo_list_the_environment() {
    for command in &SUBCOMMANDS[..10] {
        let ran = Run::new(&[command, "--help"]).run();
        assert_eq!(ran.code, 0, "{command}");
        assert!(
            ran.stdout.contains("Examples:\n  bamboo-promote "),
            "{command}: {}",
            ran.stdout
        );
    }
    for command in ["plan", "status", "apply", "unlock", "init"] {
        let help = Run::new(&[command, "--help"]).run().stdout;
        for variable in [
            "BAMBOO_URL",
            "BAMBOO_TOKEN",
            "BAMBOO_USERNAME",
            "SSL_CERT_FILE",
        ] {
            assert!(help.contains(variable), "{command} --help names {variable}");
        }
    }
}

#[test]
fn completions_and_the_man_page_know_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let ran = Run::new(&["completions", shell]).run();
        assert_eq!(ran.code, 0, "{shell}");
        for command in ["apply", "unlock", "init"] {
            assert!(ran.stdout.contains(command), "{shell} completes {command}");
        }
    }
    let man = Run::new(&["man"]).run();
    assert_eq!(man.code, 0);
    assert!(man.stdout.starts_with(".ie"), "roff");
    for command in SUBCOMMANDS {
        assert!(man.stdout.contains(command), "the man page names {command}");
    }
    // With --out, a page per command, each with the exit codes and the environment; every
    // page the main one refers to exists.
    let dir = crate::support::scratch("man");
    let ran = Run::new(&["man", "--out", dir.to_str().unwrap()]).run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let main = std::fs::read_to_string(dir.join("bamboo-promote.1")).unwrap();
    for command in &SUBCOMMANDS[..10] {
        let page = std::fs::read_to_string(dir.join(format!("bamboo-promote-{command}.1")))
            .unwrap_or_else(|e| panic!("bamboo-promote-{command}.1: {e}"));
        assert!(page.contains(".SH \"EXIT STATUS\""), "{command}");
        assert!(
            page.contains(".SH ENVIRONMENT") && page.contains("BAMBOO_URL"),
            "{command}"
        );
        assert!(
            main.contains(&format!("bamboo\\-promote\\-{command}(1)")),
            "{command}: {main}"
        );
    }
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let ran = Run::new(&["--version"]).run();
    assert_eq!(ran.code, 0);
    // `bamboo-promote 0.1.0 (3f2a9c1d8e7b, 2026-11-29)` in a Git checkout, as the tests run.
    let version = ran.stdout.trim();
    let (_, commit) = version.split_once(" (").expect("a commit in parentheses");
    let (hash, date) = commit.trim_end_matches(')').split_once(", ").unwrap();
    assert_eq!(hash.len(), 12, "{version}");
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{version}");
    assert!(date.parse::<jiff::civil::Date>().is_ok(), "{version}");
}

#[test]
fn colour_follows_the_flag_then_no_color_then_clicolor_force() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let plan = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["plan"];
        all.extend_from_slice(args);
        all.push(path_str(&dir));
        let mut run = sim.cmd(&all).env_remove("NO_COLOR");
        for (key, value) in env {
            run = run.env(key, value);
        }
        run.run().stdout.contains("\x1b[")
    };
    // Not a terminal: plain by default, coloured when forced either way.
    assert!(!plan(&[], &[]));
    assert!(plan(&["--color", "always"], &[("NO_COLOR", "1")]));
    assert!(plan(&[], &[("CLICOLOR_FORCE", "1")]));
    assert!(!plan(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]));
    assert!(!plan(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]));
}

#[test]
fn one_target_is_a_target() {
    let sim = Sim::start(SHOP);
    let dir = manifests(&MANIFEST.replace(
        "    - id: branch-staging\n      branch: release/1.0\n      stage: Deploy Staging\n",
        "",
    ).replace("    - id: api-staging\n      plan: SHOP-API\n      build: 7\n      stage: Deploy Staging\n", ""));
    let ran = sim.cmd(&["plan", path_str(&dir)]).run();
    assert!(
        ran.stdout.starts_with("Plan for 1 target on "),
        "{}",
        ran.stdout
    );
}

#[test]
fn verbose_logs_each_request_and_never_a_credential() {
    let sim = Sim::start(&SHOP.replace(
        "settings: { clock: manual }",
        "settings: { clock: manual }\nauth:\n  tokens: [{ token: s3cr3t-t0ken, permissions: [user] }]",
    ));
    let dir = manifests(MANIFEST);
    let plan = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["plan"];
        all.extend_from_slice(args);
        all.push(path_str(&dir));
        let mut run = sim.cmd(&all).env("BAMBOO_TOKEN", "s3cr3t-t0ken");
        for (key, value) in env {
            run = run.env(key, value);
        }
        run.run()
    };
    let quiet = plan(&[], &[]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(
        quiet.stderr.is_empty(),
        "no logs by default: {}",
        quiet.stderr
    );
    let verbose = plan(&["-v"], &[]);
    assert!(
        verbose
            .stderr
            .contains("GET result/SHOP-API-7?expand=stages.stage%2Clabels")
            && verbose.stderr.contains("→ 200 in"),
        "{}",
        verbose.stderr
    );
    assert!(!verbose.stderr.contains("body:"), "bodies only at -vv");
    let very = plan(&["-vv"], &[]);
    assert!(very.stderr.contains("body: {"), "{}", very.stderr);
    let by_env = plan(&[], &[("RUST_LOG", "bamboo_promote=debug")]);
    assert!(by_env.stderr.contains("→ 200 in"), "{}", by_env.stderr);
    for ran in [&verbose, &very, &by_env] {
        assert!(!ran.stderr.contains("s3cr3t"), "{}", ran.stderr);
    }
}

#[test]
fn quiet_apply_keeps_the_audit_trail_and_the_results_only() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let ran = sim
        .cmd(&["apply", "-q", "--auto-approve", path_str(&dir)])
        .run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stderr.contains("audit: "), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains(": promoted SHOP-APP-42"),
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.contains("2 promoted"), "{}", ran.stdout);
}

#[test]
fn wait_says_how_many_have_finished() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let child = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--wait",
            "--poll-interval",
            "100ms",
            path_str(&dir),
        ])
        .spawn();
    let ran = sim.wait_advancing(child, 500);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // Off a terminal, a line each time the count changes, ending with all finished.
    let counts: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.starts_with("waiting: "))
        .collect();
    assert_eq!(
        counts.last(),
        Some(&"waiting: 2 of 2 finished"),
        "{}",
        ran.stderr
    );
    let distinct: std::collections::BTreeSet<_> = counts.iter().collect();
    assert_eq!(distinct.len(), counts.len(), "no line twice: {counts:?}");
}

#[test]
fn on_a_terminal_wait_draws_its_bars_and_prints_each_line_once() {
    // Stages of 50 ms on a real clock, so that --wait ends by itself.
    let sim = Sim::start(&SHOP.replace("settings: { clock: manual }", "settings: { clock: real }").replace(
        "- { name: Smoke }",
        "- { name: Smoke, durationMs: 50 }",
    ).replace("- { name: Deploy Staging, manual: true }\n          - { name: Smoke", "- { name: Deploy Staging, manual: true, durationMs: 50 }\n          - { name: Smoke"));
    let dir = manifests(MANIFEST);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python/answer_on_a_terminal.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg("yes")
        .args([
            crate::support::BIN,
            "apply",
            "--wait",
            "--poll-interval",
            "100ms",
            path_str(&dir),
        ])
        .env("BAMBOO_URL", &sim.url)
        .env("NO_COLOR", "1")
        .env_remove("BAMBOO_TOKEN")
        .output()
        .expect("python3 runs");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{screen}");
    // indicatif drew (and redrew) its bars, yet every line above them came once.
    assert!(screen.contains("\u{1b}["), "bars are drawn on a terminal");
    assert_eq!(screen.matches("audit: ").count(), 2, "{screen}");
    assert_eq!(
        screen.matches(": promoted SHOP-APP-42").count(),
        1,
        "{screen}"
    );
    assert_eq!(
        screen.matches("finished Deploy Staging, Smoke").count(),
        2,
        "{screen}"
    );
    assert!(screen.contains("2 promoted"), "{screen}");
}

/// `bamboo-promote.toml` in the repository (found from a folder below it, not above its root)
/// and the user's `config.toml` give defaults: the flag wins over the environment, which wins
/// over the repository's file, which wins over the user's. Paths are the file's; values are
/// checked by their flags' parsers; a secret or an unknown key is refused at its line.
#[test]
fn a_configuration_file_gives_what_is_the_same_on_every_run() {
    let sim = Sim::start(SHOP);
    let dir = crate::support::scratch("config");
    let repo = dir.join("repo");
    crate::support::write(&repo, ".git/HEAD", "ref: refs/heads/main\n");
    crate::support::write(&repo, "promotions/shop.yaml", MANIFEST);
    crate::support::write(&repo, "audit/.keep", "");
    // Above the repository's root: never read, or its bad value would fail every run.
    crate::support::write(&dir, "bamboo-promote.toml", "parallelism = 0\n");
    let config = |text: &str| crate::support::write(&repo, "bamboo-promote.toml", text);
    let user = |text: &str| crate::support::write(&dir, "xdg/bamboo-promote/config.toml", text);
    let run = |args: &[&str]| {
        Run::new(args)
            .current_dir(&repo.join("promotions"))
            .env("XDG_CONFIG_HOME", dir.join("xdg").to_str().unwrap())
    };
    config(&format!(
        "server = \"{}\"\nrequest-timeout = \"5s\"\naudit-log = \"audit/promotions.jsonl\"\n",
        sim.url
    ));
    user("server = \"http://127.0.0.1:9/user\"\nparallelism = 2\n");
    let planned = run(&["plan", "."]).run();
    assert_eq!(
        planned.code, 0,
        "the repository's server: {}",
        planned.stderr
    );
    let reads = sim.requests().len();
    assert!(reads > 0);

    let applied = run(&["apply", "--auto-approve", "."]).run();
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let audit = std::fs::read_to_string(repo.join("audit/promotions.jsonl")).unwrap();
    assert!(
        audit.contains("PUT queue/SHOP-APP-42"),
        "the audit log beside the file: {audit}"
    );

    // The environment wins over the files, and the flag over the environment.
    sim.clear_requests();
    let env = run(&["plan", "."])
        .env("BAMBOO_URL", "http://127.0.0.1:9/env")
        .run();
    assert_eq!(env.code, 1, "{}", env.stderr);
    assert!(env.stderr.contains("127.0.0.1:9/env"), "{}", env.stderr);
    assert!(sim.requests().is_empty());
    let flag = run(&["plan", "--server", &sim.url, "."])
        .env("BAMBOO_URL", "http://127.0.0.1:9/env")
        .run();
    assert_eq!(flag.code, 0, "{}", flag.stderr);

    // Without the repository's file, the user's.
    std::fs::remove_file(repo.join("bamboo-promote.toml")).unwrap();
    let users = run(&["plan", "."]).run();
    assert!(
        users.stderr.contains("127.0.0.1:9/user"),
        "{}",
        users.stderr
    );
    // Outside any repository, no folder's file is read: one planted in a shared folder would
    // choose where the token goes (a red team's round 2).
    crate::support::write(
        &dir,
        "shared/bamboo-promote.toml",
        "server = \"http://127.0.0.1:9/planted\"\n",
    );
    crate::support::write(&dir, "shared/work/shop.yaml", MANIFEST);
    let outside = Run::new(&["plan", "."])
        .current_dir(&dir.join("shared/work"))
        .env("XDG_CONFIG_HOME", dir.join("xdg").to_str().unwrap())
        .run();
    assert!(
        outside.stderr.contains("127.0.0.1:9/user"),
        "{}",
        outside.stderr
    );

    // Mistakes, at their line and column, before anything is read or contacted.
    for (text, said) in [
        (
            "sever = \"x\"\n",
            "bamboo-promote.toml:1:9: unknown key `sever` (did you mean `server`?)",
        ),
        (
            "token = \"s3cret\"\n",
            "bamboo-promote.toml:1:9: `token`: secrets are never read from a configuration file",
        ),
        (
            "\nparallelism = 0\n",
            "bamboo-promote.toml:2:15: parallelism: 0 is not in 1..=256",
        ),
        (
            "lock-ttl = \"soon\"\n",
            "bamboo-promote.toml:1:12: lock-ttl: `soon` is not a duration",
        ),
        (
            "server = [1]\n",
            "bamboo-promote.toml:1:10: server: a array is not a value here",
        ),
    ] {
        config(text);
        let ran = run(&["plan", "."]).run();
        assert_eq!(ran.code, 64, "{text}: {}", ran.stderr);
        assert!(ran.stderr.contains(said), "{text}: {}", ran.stderr);
        assert!(!ran.stderr.contains("s3cret"), "{}", ran.stderr);
    }
}

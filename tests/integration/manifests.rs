//! The manifest corpus: every file under `tests/manifests/invalid/` must fail validation with a
//! located diagnostic (snapshot of the rendered report), every file under `valid/` and the
//! examples must pass, and `validate` itself contacts nothing.

use std::path::{Path, PathBuf};

use bamboo_promote::manifest;

use crate::support::{Run, scratch, write};

fn corpus(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifests")
        .join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The reports as `validate` prints them, without colour, at a fixed width.
fn rendered(errors: &[manifest::ManifestError]) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let mut out = String::new();
    for error in errors {
        handler.render_report(&mut out, error).unwrap();
        out.push('\n');
    }
    out
}

fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap()
        .to_path_buf()
}

#[test]
fn every_invalid_manifest_has_a_located_diagnostic() {
    let files = corpus("invalid");
    assert!(files.len() >= 40, "the corpus has {} files", files.len());
    for path in files {
        let errors = manifest::load(&[relative(&path)])
            .expect_err(&format!("{} must be invalid", path.display()));
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        for error in &errors {
            let (line, column) = error.line_column();
            let whole_file = matches!(
                error.code,
                "manifest::binary" | "manifest::encoding" | "manifest::too_large"
            );
            assert!(
                whole_file || (line > 0 && column > 0),
                "{name}: {error} has no location"
            );
        }
        insta::assert_snapshot!(name, rendered(&errors));
    }
}

#[test]
fn a_huge_file_is_refused_before_parsing() {
    let dir = scratch("huge");
    let mut text = String::from(
        "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: { name: huge }\nspec:\n  targets:\n",
    );
    while text.len() <= manifest::MAX_FILE_BYTES {
        text.push_str("    - { id: padding, plan: SHOP-APP, stage: Deploy }\n");
    }
    let path = write(&dir, "huge.yaml", &text);
    let errors = manifest::load(&[path]).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, "manifest::too_large");
}

#[test]
fn all_errors_of_all_files_come_in_one_run_as_json_too() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests/invalid");
    let ran = Run::new(&["validate", "--format", "json", dir.to_str().unwrap()]).run();
    assert_eq!(ran.code, 1);
    let report = crate::contracts::plan_json(&ran.stdout);
    let diagnostics = report["diagnostics"].as_array().unwrap();
    let files: std::collections::BTreeSet<&str> = diagnostics
        .iter()
        .map(|d| d["file"].as_str().unwrap())
        .collect();
    // In a folder walk, files that do not say they are manifests are left out; named, they are
    // read (every_invalid_manifest_has_a_located_diagnostic).
    let unclaimed = [
        "01-empty.yaml",
        "02-only-comments.yaml",
        "03-not-yaml.yaml",
        "04-binary.yaml",
        "07-alias-bomb.yaml",
    ];
    let claimed: std::collections::BTreeSet<String> = corpus("invalid")
        .iter()
        .filter(|path| !unclaimed.iter().any(|name| path.ends_with(name)))
        .map(|path| path.display().to_string())
        .collect();
    assert_eq!(
        files,
        claimed.iter().map(String::as_str).collect(),
        "one or more diagnostics for every file that says it is a manifest"
    );
    let one = Run::new(&[
        "validate",
        "--format",
        "json",
        dir.join("39-after-cycle.yaml").to_str().unwrap(),
    ])
    .run();
    let report = crate::contracts::plan_json(&one.stdout);
    let cycle = &report["diagnostics"][0];
    assert_eq!(cycle["code"], "manifest::cycle");
    assert_eq!(
        (cycle["line"].as_u64(), cycle["column"].as_u64()),
        (Some(8), Some(53))
    );
    assert_eq!(cycle["message"], "`after` forms a cycle: a → c → b → a");
}

#[test]
fn valid_manifests_and_the_examples_validate_offline() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/promotions");
    for path in corpus("valid").into_iter().chain([examples]) {
        // No server is configured: validate must not need one.
        let ran = Run::new(&["validate", path.to_str().unwrap()]).run();
        assert_eq!(ran.code, 0, "{}: {}", path.display(), ran.stderr);
    }
    // The summary counts in words: one file is `1 file`, not `1 files`.
    let one = &corpus("valid")[0];
    let ran = Run::new(&["validate", one.to_str().unwrap()]).run();
    assert!(
        ran.stderr.ends_with(" in 1 file: valid\n"),
        "{}",
        ran.stderr
    );
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/promotion.v1.schema.json"),
    )
    .unwrap();
    assert_eq!(
        committed,
        manifest::schema(),
        "run `cargo run -- schema --out schemas/promotion.v1.schema.json`"
    );
}

/// A manifest file with one valid target, for folders that also hold hostile entries.
const ONE_TARGET: &str = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: one }
spec:
  targets:
    - { id: app, plan: SHOP-APP, build: 42, stage: Deploy Staging }
";

/// Puts a hostile entry into a scratch folder.
type Prepare = dyn Fn(&Path);

#[test]
fn hostile_folders_end_quickly_with_one_clear_error_each_and_no_request() {
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};

    let sim = crate::support::Sim::start(crate::worlds::SHOP);
    let plan_of = |dir: &Path| {
        let started = Instant::now();
        let ran = sim.cmd(&["plan", dir.to_str().unwrap()]).run();
        assert!(started.elapsed() < Duration::from_secs(10), "bounded time");
        ran
    };
    let cases: [(&str, &Prepare, &str); 5] = [
        // Two links back to the folder itself: walked once, each link named.
        (
            "two-links-to-dot",
            &|dir| {
                symlink(".", dir.join("loop-a")).unwrap();
                symlink(".", dir.join("loop-b")).unwrap();
            },
            "symbolic link back to",
        ),
        (
            "link-to-parent",
            &|dir| {
                std::fs::create_dir(dir.join("sub")).unwrap();
                symlink("..", dir.join("sub/up")).unwrap();
            },
            "symbolic link back to",
        ),
        (
            "fifo",
            &|dir| {
                let made = std::process::Command::new("mkfifo")
                    .arg(dir.join("x.yaml"))
                    .status()
                    .unwrap();
                assert!(made.success());
            },
            "not a regular file",
        ),
        (
            "dev-zero",
            &|dir| symlink("/dev/zero", dir.join("zero.yml")).unwrap(),
            "not a regular file",
        ),
        // A sparse 5 GB file: refused from its size, never read.
        (
            "sparse-5-gb",
            &|dir| {
                let file = std::fs::File::create(dir.join("big.yaml")).unwrap();
                file.set_len(5 << 30).unwrap();
            },
            "manifests are limited to 4194304 bytes",
        ),
    ];
    for (name, make, words) in cases {
        sim.clear_requests();
        let dir = scratch(name);
        write(&dir, "one.yaml", ONE_TARGET);
        make(&dir);
        let ran = plan_of(&dir);
        assert_eq!(ran.code, 1, "{name}: {}", ran.stderr);
        assert!(ran.stderr.contains(words), "{name}: {}", ran.stderr);
        assert!(
            !ran.stderr.contains("duplicate"),
            "{name}: each file is read once: {}",
            ran.stderr
        );
        assert!(
            ran.stderr.len() < 2000,
            "{name}: one short report: {}",
            ran.stderr
        );
        assert!(sim.requests().is_empty(), "{name}: nothing was contacted");
    }
}

#[test]
fn manifest_names_are_matched_in_any_case() {
    let dir = scratch("case");
    write(&dir, "A.YAML", ONE_TARGET);
    write(&dir, "b.Yml", &ONE_TARGET.replace("id: app", "id: other"));
    let ran = Run::new(&["validate", dir.to_str().unwrap()]).run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("2 targets in 2 files"),
        "{}",
        ran.stderr
    );
}

#[test]
fn github_annotations_mark_each_problem_at_its_line() {
    let file = "tests/manifests/invalid/38-after-unknown.yaml";
    let ran = Run::new(&["validate", "--format", "github", file])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .run();
    assert_eq!(ran.code, 1);
    assert_eq!(
        ran.stdout,
        format!(
            "::error file={file},line=13,col=15,title=manifest%3A%3Aunknown_after::`after` names unknown target `app-stagin`%0Ahelp: did you mean `app-staging`?\n"
        )
    );
    // The same from plan, for what only the server can tell.
    let sim = crate::support::Sim::start(crate::worlds::SHOP);
    let dir = scratch("github");
    write(
        &dir,
        "shop.yaml",
        &ONE_TARGET.replace("Deploy Staging", "Deploy Stagin"),
    );
    let ran = sim
        .cmd(&["plan", "--format", "github", "shop.yaml"])
        .current_dir(&dir)
        .run();
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stdout.starts_with("::error file=shop.yaml,line=6,col=")
            && ran.stdout.contains("title=bamboo%3A%3Aunknown_stage"),
        "{}",
        ran.stdout
    );
}

#[test]
fn exclude_leaves_other_yaml_out_of_a_folder_walk() {
    let dir = scratch("exclude");
    write(&dir, "promotions.yaml", ONE_TARGET);
    write(
        &dir,
        "docker-compose.yml",
        "services:\n  web:\n    image: nginx\n",
    );
    write(&dir, "ci/pipeline.yml", "stages: [build]\n");
    write(
        &dir,
        "ci/promotions.yaml",
        &ONE_TARGET.replace("id: app", "id: ci-app"),
    );
    let validate = |extra: &[&str]| {
        let mut args = vec!["validate"];
        args.extend_from_slice(extra);
        args.push(dir.to_str().unwrap());
        Run::new(&args).run()
    };
    let all = validate(&[]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert!(
        all.stderr
            .contains("2 targets in 2 files: valid (2 other YAML files skipped"),
        "{}",
        all.stderr
    );
    let kept = validate(&[
        "--exclude",
        "docker-compose.yml",
        "--exclude",
        "ci/pipeline.yml",
    ]);
    assert_eq!(kept.code, 0, "{}", kept.stderr);
    assert!(
        kept.stderr.ends_with("2 targets in 2 files: valid\n"),
        "{}",
        kept.stderr
    );
    let no_ci = validate(&["--exclude", "ci"]);
    assert_eq!(no_ci.code, 0, "{}", no_ci.stderr);
    assert!(
        no_ci.stderr.contains("1 target in 1 file"),
        "{}",
        no_ci.stderr
    );
    assert_eq!(
        validate(&["--exclude", "a[b"]).code,
        64,
        "a bad glob is a usage error"
    );
}

/// A folder walk reads the YAML files that say they are manifests — by their `apiVersion` or
/// their `kind` — and leaves the rest (CI recipes, worlds, Kubernetes files), counted, named
/// with `-v`. A file that claims either is read and its errors reported; a file named on the
/// command line is always read.
#[test]
fn a_folder_walk_reads_only_what_says_it_is_a_manifest() {
    let dir = scratch("claims");
    write(&dir, "repo/promotions/shop.yaml", ONE_TARGET);
    write(&dir, "repo/.gitlab-ci.yml", "stages: [plan]\n");
    write(&dir, "repo/ci/github.yml", "on: push\njobs: {}\n");
    write(
        &dir,
        "repo/k8s/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\n",
    );
    write(&dir, "repo/empty.yaml", "");
    let validate = |args: &[&str]| Run::new(args).current_dir(&dir).run();
    let ran = validate(&["validate", "-v", "repo"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("1 target in 1 file: valid (3 other YAML files skipped"),
        "{}",
        ran.stderr
    );
    for skipped in [
        "repo/ci/github.yml",
        "repo/k8s/deploy.yaml",
        "repo/empty.yaml",
    ] {
        assert!(
            ran.stderr.contains(&format!("skipped {skipped}:")),
            "{}",
            ran.stderr
        );
    }
    // A misspelt apiVersion keeps its kind, and a new one its prefix: both are read, and fail.
    write(
        &dir,
        "repo/promotions/typo.yaml",
        &ONE_TARGET
            .replace("bamboo-promote/v1", "bambo-promote/v1")
            .replace("id: app", "id: b"),
    );
    write(
        &dir,
        "repo/promotions/next.yaml",
        "apiVersion: bamboo-promote/v9\nkind: Pipeline\n",
    );
    // Both misspelt: its targets still say what it is (a red team's round 2).
    write(
        &dir,
        "repo/promotions/both.yaml",
        "apiVersion: bambo-promot/v1\nkind: Promoton\nmetadata: { name: x }\nspec:\n  targets:\n    - { id: c, plan: SHOP-APP, stage: Deploy Prod }\n",
    );
    let ran = validate(&["validate", "repo"]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("unknown kind `Promoton`"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("unsupported apiVersion `bambo-promote/v1`"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("repo/promotions/next.yaml"),
        "{}",
        ran.stderr
    );
    // Named, a file is read whatever it says.
    let ran = validate(&["validate", "repo/ci/github.yml"]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    // A folder with no manifest says what it left.
    let ran = validate(&["validate", "repo/ci", "repo/k8s"]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("no manifest found in repo/ci, repo/k8s (2 YAML files skipped"),
        "{}",
        ran.stderr
    );
}

/// `plan --format github` marks each target that is not on its way on its line: an error where
/// a person must act, a notice where it only waits.
#[test]
fn plan_for_github_annotates_blocked_and_waiting_targets() {
    let sim = crate::support::Sim::start(crate::worlds::SHOP);
    let dir = scratch("github-blocked");
    write(
        &dir,
        "shop.yaml",
        "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: shop }
spec:
  targets:
    - { id: staging, plan: SHOP-APP, build: 42, stage: Deploy Staging }
    - { id: prod, plan: SHOP-API, build: 7, stage: Deploy Prod, after: [staging] }
    - { id: web, plan: SHOP-WEB, build: 3, stage: Deploy Staging }
",
    );
    let ran = sim
        .cmd(&["plan", "--format", "github", "shop.yaml"])
        .current_dir(&dir)
        .run();
    assert_eq!(ran.code, 3, "{}\n{}", ran.stdout, ran.stderr);
    let annotations: Vec<&str> = ran.stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(annotations.len(), 2, "{}", ran.stdout);
    assert!(
        annotations[0].starts_with("::notice file=shop.yaml,line=7,col=")
            && annotations[0].ends_with("::prod waits on staging"),
        "{annotations:?}"
    );
    assert!(
        annotations[1].starts_with("::error file=shop.yaml,line=8,col=")
            && annotations[1].contains("::web is blocked: "),
        "{annotations:?}"
    );
}

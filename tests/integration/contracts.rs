//! The published JSON contracts: the committed schemas are the generated ones, and the JSON
//! the binary prints — plan documents, saved plans, error documents, apply's events — is valid
//! against them. Other tests call `plan_json` and `events` so that every JSON they read is
//! checked too.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{Run, Sim};
use crate::worlds::{MANIFEST, SHOP, manifests, path_str};

fn committed(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(name),
    )
    .unwrap()
}

fn validator(
    name: &'static str,
    cell: &'static OnceLock<jsonschema::Validator>,
) -> &'static jsonschema::Validator {
    cell.get_or_init(|| {
        let schema: Value = serde_json::from_str(&committed(name)).unwrap();
        jsonschema::validator_for(&schema).expect("the committed schema is a valid JSON Schema")
    })
}

fn assert_valid(name: &'static str, cell: &'static OnceLock<jsonschema::Validator>, value: &Value) {
    let errors: Vec<String> = validator(name, cell)
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not valid against schemas/{name}: {errors:#?}\n{value:#}"
    );
}

/// A plan, status or error document, parsed and checked against `schemas/plan.v2.schema.json`.
pub fn plan_json(text: &str) -> Value {
    static PLAN: OnceLock<jsonschema::Validator> = OnceLock::new();
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_valid("plan.v2.schema.json", &PLAN, &value);
    value
}

/// An environments view, parsed and checked against `schemas/environments.v1.schema.json`.
pub fn environments_json(text: &str) -> Value {
    static ENVIRONMENTS: OnceLock<jsonschema::Validator> = OnceLock::new();
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_valid("environments.v1.schema.json", &ENVIRONMENTS, &value);
    value
}

/// An audit log, each line checked against `schemas/audit.v1.schema.json`; its text.
pub fn audit_log(path: &Path) -> String {
    static AUDIT: OnceLock<jsonschema::Validator> = OnceLock::new();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for line in text.lines() {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_valid("audit.v1.schema.json", &AUDIT, &value);
    }
    text
}

/// apply's event stream, each line parsed and checked against `schemas/events.v2.schema.json`.
pub fn events(stdout: &str) -> Vec<Value> {
    static EVENTS: OnceLock<jsonschema::Validator> = OnceLock::new();
    stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_valid("events.v2.schema.json", &EVENTS, &value);
            value
        })
        .collect()
}

#[test]
fn the_committed_schemas_are_the_generated_ones() {
    for (kind, file) in [
        ("plan", "plan.v2.schema.json"),
        ("events", "events.v2.schema.json"),
        ("audit", "audit.v1.schema.json"),
        ("environments", "environments.v1.schema.json"),
    ] {
        let generated = Run::new(&["schema", "--kind", kind]).run();
        assert_eq!(generated.code, 0);
        assert_eq!(
            committed(file),
            generated.stdout,
            "run `cargo run -- schema --kind {kind} --out schemas/{file}`"
        );
    }
}

#[test]
fn plans_statuses_saved_plans_and_errors_follow_the_schema() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    for command in ["plan", "status"] {
        let ran = sim
            .cmd(&[command, "--format", "json", path_str(&dir)])
            .run();
        let doc = plan_json(&ran.stdout);
        assert_eq!(doc["formatVersion"], "2.5");
        assert_eq!(doc["kind"], command);
    }
    let saved_dir = crate::support::scratch("saved");
    let saved = saved_dir.join("plan.json");
    let ran = sim
        .cmd(&["plan", "--out", saved.to_str().unwrap(), path_str(&dir)])
        .run();
    assert_eq!(ran.code, 0);
    plan_json(&std::fs::read_to_string(&saved).unwrap());
    // An invalid manifest: the error comes as a document on stdout too, at its line.
    let bad = manifests(&MANIFEST.replace(
        "stage: Deploy Staging\n    - id: branch",
        "stage: Deploy Stagin\n    - id: branch",
    ));
    let ran = sim.cmd(&["plan", "--format", "json", path_str(&bad)]).run();
    assert_eq!(ran.code, 1);
    let error = plan_json(&ran.stdout);
    assert_eq!(error["kind"], "error");
    let diagnostic = &error["diagnostics"][0];
    assert_eq!(diagnostic["code"], "bamboo::unknown_stage");
    assert!(diagnostic["line"].as_u64().unwrap() > 0, "{error}");
    // A connection error has no diagnostics, and is a document all the same (a server URL with
    // credentials is a usage error: 64).
    let ran = Run::new(&["status", "--format", "json", path_str(&dir)])
        .server("http://bot:pw@127.0.0.1:9")
        .run();
    assert_eq!(ran.code, 64);
    assert_eq!(plan_json(&ran.stdout)["kind"], "error");
}

#[test]
fn apply_events_follow_the_schema_and_name_things_as_the_plan_does() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let ran = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--format",
            "json",
            path_str(&dir),
        ])
        .run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let stream = events(&ran.stdout);
    let planned: Vec<&Value> = stream.iter().filter(|e| e["event"] == "planned").collect();
    assert!(planned.iter().any(|e| e["status"]["status"] == "promote"));
    assert!(stream.iter().any(|e| e["event"] == "promoted"));
    let summary = stream.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["counts"]["promoted"], 2);
    assert_eq!(summary["exitCode"], 0);
    for outcome in summary["outcomes"].as_array().unwrap() {
        let kind = outcome["outcome"].as_str().unwrap();
        assert!(
            kind.chars().all(|c| c.is_ascii_alphabetic()),
            "a name, not debug text: {kind}"
        );
    }
    // An apply that cannot start says so in its stream.
    let ran = Run::new(&[
        "apply",
        "--auto-approve",
        "--format",
        "json",
        path_str(&dir),
    ])
    .server("ftp://nowhere")
    .run();
    assert_eq!(ran.code, 64);
    let failed = events(&ran.stdout);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["event"], "error");
}

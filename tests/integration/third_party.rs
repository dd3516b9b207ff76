//! A real third-party client works against the simulator: atlassian-python-api (pinned,
//! installed from PyPI by the test) reads results with stages, lists branches and queues a
//! build.

use std::process::Command;

use crate::support::{Sim, python_deps};
use crate::worlds::SHOP;

#[test]
fn atlassian_python_api_reads_lists_and_queues() {
    let world = SHOP.replace(
        "settings: { clock: manual }",
        "settings: { clock: manual }\nauth:\n  tokens: [{ token: py-token, permissions: [user] }]",
    );
    let sim = Sim::start(&world);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/third_party_client.py");
    let output = Command::new("python3")
        .env("PYTHONPATH", python_deps())
        .arg(&script)
        .arg(&sim.url)
        .arg("py-token")
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the Python client failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let methods = sim.calls();
    assert!(
        methods.contains(&"POST queue/SHOP-API".to_string()),
        "{methods:?}"
    );
    assert!(
        sim.requests().iter().all(|r| r["status"] == 200),
        "every call succeeded: {:?}",
        sim.requests()
    );
}

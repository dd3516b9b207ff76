//! The simulator as an HTTP server: the shapes of the recorded responses, authentication, the
//! XSRF rule, XML for clients that do not ask for JSON, errors, listings and labels.

use serde_json::Value;

use crate::support::Sim;

pub const WORLD: &str = "
settings: { clock: manual, maxConcurrentBuilds: 3 }
auth:
  tokens:
    - { token: reader, permissions: [read] }
    - { token: trigger, permissions: [read, trigger] }
    - { token: writer, permissions: [user] }
  users:
    - { username: bot, password: pw, permissions: [user] }
projects:
  - key: LAB
    name: lab
    plans:
      - key: PROV
        name: Provision Cluster
        stages:
          - { name: Validate }
          - { name: Provision }
          - { name: Deploy, manual: true }
          - { name: Verify, manual: true }
        branches:
          - name: feature/login
            key: PROV1
            builds:
              - { number: 2, state: { pausedBefore: Deploy } }
        builds:
          - { number: 4, state: { failedAt: Provision } }
          - { number: 6, state: { stoppedAt: Provision } }
          - { number: 7, labels: [rc], state: { pausedBefore: Deploy } }
          - { number: 8, state: complete }
          - { number: 9, state: { runningAt: Provision } }
      - key: OFF
        enabled: false
        stages: [{ name: Build }]
";

const READER: (&str, &str) = ("Authorization", "Bearer reader");
const TRIGGER: (&str, &str) = ("Authorization", "Bearer trigger");
const WRITER: (&str, &str) = ("Authorization", "Bearer writer");
const JSON: (&str, &str) = ("Accept", "application/json");
/// What Data Center wants on every write (it answers 403 without it).
const NO_CHECK: (&str, &str) = ("X-Atlassian-Token", "no-check");

fn get(sim: &Sim, path: &str) -> Value {
    let (status, body) = sim.request(
        "GET",
        &format!("/rest/api/latest/{path}"),
        &[READER, JSON],
        "",
    );
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every field name of `recorded` appears at the same place in `served` (objects recursively,
/// arrays through their first element).
fn missing_fields(recorded: &Value, served: &Value, path: &str, out: &mut Vec<String>) {
    match (recorded, served) {
        (Value::Object(r), Value::Object(s)) => {
            for (key, value) in r {
                match s.get(key) {
                    None => out.push(format!("{path}.{key}")),
                    Some(other) => missing_fields(value, other, &format!("{path}.{key}"), out),
                }
            }
        }
        (Value::Array(r), Value::Array(s)) => {
            if let (Some(r), Some(s)) = (r.first(), s.first()) {
                missing_fields(r, s, &format!("{path}[0]"), out);
            }
        }
        _ => {}
    }
}

fn assert_same_fields(fixture_name: &str, served: &Value) {
    let mut missing = Vec::new();
    missing_fields(&fixture(fixture_name), served, "", &mut missing);
    assert!(
        missing.is_empty(),
        "{fixture_name}: the simulator leaves out {missing:?}"
    );
}

#[test]
fn served_shapes_carry_every_field_of_the_recorded_responses() {
    let sim = Sim::start(WORLD);
    assert_same_fields(
        "bamboo6-result-paused-at-manual-stage.json",
        &get(&sim, "result/LAB-PROV-7?expand=stages.stage"),
    );
    // Recorded with labels and VCS revisions expanded; the simulator lists them only then.
    assert_same_fields(
        "bamboo12-result_detail.json",
        &get(
            &sim,
            "result/LAB-PROV-4?expand=stages.stage.results.result,labels,vcsRevisions",
        ),
    );
    assert_same_fields(
        "bamboo12-result_stopped.json",
        &get(&sim, "result/LAB-PROV-6?expand=stages.stage.results.result"),
    );
    assert_same_fields(
        "bamboo5-result_with_changes.json",
        &get(&sim, "result/LAB-PROV-8?expand=stages.stage,changes"),
    );
    assert_same_fields("bamboo12-plan.json", &get(&sim, "plan/LAB-PROV"));
    assert_same_fields("bamboo5-plan.json", &get(&sim, "plan/LAB-PROV"));
    assert_same_fields("bamboo12-branches.json", &get(&sim, "plan/LAB-OFF/branch"));
    assert_same_fields("bamboo12-info.json", &get(&sim, "info"));
    let (status, body) = sim.request(
        "POST",
        "/rest/api/latest/queue/LAB-PROV",
        &[TRIGGER, JSON, NO_CHECK],
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_same_fields("bamboo12-queue.json", &serde_json::from_str(&body).unwrap());
    assert_same_fields("bamboo5-queue_with_queued_builds.json", &get(&sim, "queue"));
    let (status, body) = sim.request(
        "GET",
        "/rest/api/latest/result/LAB-NOPE-1",
        &[READER, JSON],
        "",
    );
    assert_eq!(status, 404);
    assert_same_fields(
        "bamboo12-404-body.json",
        &serde_json::from_str(&body).unwrap(),
    );
}

#[test]
fn the_recorded_states_look_as_recorded() {
    let sim = Sim::start(WORLD);
    let state = |key: &str| {
        let r = get(&sim, &format!("result/{key}?expand=stages.stage"));
        (
            r["lifeCycleState"].as_str().unwrap().to_string(),
            r["state"].as_str().unwrap().to_string(),
            r["continuable"] == true,
            r["restartable"] == true,
        )
    };
    assert_eq!(
        state("LAB-PROV-7"),
        ("Finished".into(), "Successful".into(), true, false),
        "paused"
    );
    assert_eq!(
        state("LAB-PROV-4"),
        ("Finished".into(), "Failed".into(), false, true),
        "failed"
    );
    assert_eq!(
        state("LAB-PROV-6"),
        ("NotBuilt".into(), "Unknown".into(), false, true),
        "stopped"
    );
    assert_eq!(
        state("LAB-PROV-8"),
        ("Finished".into(), "Successful".into(), false, false),
        "complete"
    );
    assert_eq!(state("LAB-PROV-9").0, "InProgress", "running");
    // `-latest` is the newest build with `includeAllStates`, the newest finished one without.
    assert_eq!(
        get(&sim, "result/LAB-PROV-latest?includeAllStates=true")["lifeCycleState"],
        "InProgress",
        "latest is the newest build"
    );
    assert_eq!(
        state("LAB-PROV-latest").0,
        "Finished",
        "without includeAllStates, the newest finished build"
    );
}

#[test]
fn authentication_permissions_and_the_xsrf_rule() {
    let sim = Sim::start(WORLD);
    assert_eq!(
        sim.request("GET", "/rest/api/latest/plan/LAB-PROV", &[JSON], "")
            .0,
        401,
        "anonymous"
    );
    assert_eq!(
        sim.request(
            "GET",
            "/rest/api/latest/plan/LAB-PROV",
            &[("Authorization", "Bearer wrong"), JSON],
            ""
        )
        .0,
        401
    );
    assert_eq!(
        sim.request(
            "POST",
            "/rest/api/latest/queue/LAB-PROV",
            &[READER, JSON],
            ""
        )
        .0,
        403,
        "READ-only token"
    );
    // Basic auth counts only with os_authType=basic.
    let basic = ("Authorization", "Basic Ym90OnB3");
    assert_eq!(
        sim.request("GET", "/rest/api/latest/plan/LAB-PROV", &[basic, JSON], "")
            .0,
        401
    );
    assert_eq!(
        sim.request(
            "GET",
            "/rest/api/latest/plan/LAB-PROV?os_authType=basic",
            &[basic, JSON],
            ""
        )
        .0,
        200
    );
    // A write without X-Atlassian-Token is refused, whatever its body, as Data Center 10.2
    // does; with it, it passes.
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    for headers in [vec![TRIGGER, JSON, form], vec![TRIGGER, JSON]] {
        assert_eq!(
            sim.request("POST", "/rest/api/latest/queue/LAB-PROV", &headers, "")
                .0,
            403,
            "{headers:?}"
        );
    }
    assert_eq!(
        sim.request(
            "POST",
            "/rest/api/latest/queue/LAB-PROV",
            &[TRIGGER, JSON, form, NO_CHECK],
            ""
        )
        .0,
        200
    );
    // A TRIGGER token continues builds but cannot label or comment: that takes USER.
    let label = r#"{"name":"x"}"#;
    let json_body = ("Content-Type", "application/json");
    let bot = ("Authorization", "Basic Ym90OnB3");
    for (who, expected) in [(TRIGGER, 403), (bot, 204)] {
        let query = if who == bot { "?os_authType=basic" } else { "" };
        for path in ["label", "comment"] {
            let body = if path == "label" {
                label
            } else {
                r#"{"content":"x"}"#
            };
            assert_eq!(
                sim.request(
                    "POST",
                    &format!("/rest/api/latest/result/LAB-PROV-7/{path}{query}"),
                    &[who, JSON, json_body, NO_CHECK],
                    body
                )
                .0,
                expected,
                "{who:?} {path}"
            );
        }
    }
    // A PUT that says nothing of its length: 411, as a proxy answers.
    let mut stream = std::net::TcpStream::connect(&sim.addr).unwrap();
    std::io::Write::write_all(
        &mut stream,
        format!(
            "PUT /rest/api/latest/queue/LAB-PROV-7?stage=Deploy HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer trigger\r\nX-Atlassian-Token: no-check\r\n\r\n",
            sim.addr
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
}

#[test]
fn xml_unless_json_is_asked_for_and_bamboo_errors() {
    let sim = Sim::start(WORLD);
    let (status, body) = sim.request("GET", "/rest/api/latest/plan/LAB-PROV", &[READER], "");
    assert_eq!(status, 200);
    assert!(body.starts_with("<?xml"), "{body}");
    // Scalars are attributes, as on real servers.
    assert!(
        body.contains(r#"<plan "#) && body.contains(r#" key="LAB-PROV""#),
        "{body}"
    );
    let (_, body) = sim.request("GET", "/rest/api/latest/result/LAB-PROV-7", &[READER], "");
    assert!(
        body.contains(r#" lifeCycleState="Finished""#) && body.contains(r#" key="LAB-PROV-7""#),
        "{body}"
    );
    let (_, body) = sim.request("GET", "/rest/api/latest/plan/LAB-PROV.json", &[READER], "");
    assert!(body.starts_with('{'), ".json suffix gives JSON: {body}");
    let (status, body) = sim.request(
        "POST",
        "/rest/api/latest/queue/LAB-OFF",
        &[TRIGGER, JSON, NO_CHECK],
        "",
    );
    assert_eq!(status, 400, "disabled plan");
    assert!(body.contains("disabled"), "{body}");
    assert_eq!(
        sim.request(
            "PUT",
            "/rest/api/latest/queue/LAB-PROV-99",
            &[TRIGGER, JSON, NO_CHECK],
            ""
        )
        .0,
        404
    );
    // The concurrent-build limit (3): build 9 runs already, two more fit, the next does not.
    for _ in 0..2 {
        assert_eq!(
            sim.request(
                "POST",
                "/rest/api/latest/queue/LAB-PROV",
                &[TRIGGER, JSON, NO_CHECK],
                ""
            )
            .0,
            200
        );
    }
    let (status, body) = sim.request(
        "POST",
        "/rest/api/latest/queue/LAB-PROV",
        &[TRIGGER, JSON, NO_CHECK],
        "",
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("maximum number of concurrent builds"),
        "{body}"
    );
}

#[test]
fn history_filters_paging_branches_and_labels() {
    let sim = Sim::start(WORLD);
    let numbers = |v: &Value| -> Vec<u64> {
        v["results"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["number"].as_u64().unwrap())
            .collect()
    };
    // Listings name their builds only when asked to, as on Data Center 10.
    let listed = |path: &str| {
        let join = if path.contains('?') { '&' } else { '?' };
        numbers(&get(&sim, &format!("{path}{join}expand=results.result")))
    };
    let bare = get(&sim, "result/LAB-PROV?includeAllStates=true");
    assert!(bare["results"]["result"].is_null(), "{bare}");
    assert_eq!(bare["results"]["size"], 5);
    assert_eq!(
        listed("result/LAB-PROV"),
        [8, 7, 6, 4],
        "running builds need includeAllStates"
    );
    assert_eq!(
        listed("result/LAB-PROV?includeAllStates=true"),
        [9, 8, 7, 6, 4]
    );
    assert_eq!(listed("result/LAB-PROV?continuable=true"), [7]);
    assert_eq!(listed("result/LAB-PROV?buildstate=Failed"), [4]);
    assert_eq!(listed("result/LAB-PROV?label=rc"), [7]);
    let page = get(
        &sim,
        "result/LAB-PROV?includeAllStates=true&max-results=4&start-index=3&expand=results.result",
    );
    assert_eq!(numbers(&page), [6, 4]);
    assert_eq!(
        (
            page["results"]["size"].as_u64(),
            page["results"]["start-index"].as_u64(),
            page["results"]["max-result"].as_u64(),
        ),
        (Some(5), Some(3), Some(4)),
        "max-result echoes the page size asked for"
    );
    // Labels are listed only when asked for too.
    let build = get(&sim, "result/LAB-PROV-7");
    assert!(
        build["labels"]["label"].is_null() && build["labels"]["size"] == 1,
        "{build}"
    );
    let build = get(&sim, "result/LAB-PROV-7?expand=labels");
    assert_eq!(build["labels"]["label"][0]["name"], "rc");
    // A branch name with `/` in a path: Tomcat's 400, as on a real server by default.
    for path in [
        "result/LAB-PROV/branch/feature%2Flogin",
        "plan/LAB-PROV/branch/feature%2Flogin",
        "plan/LAB-PROV/branch/feature%2flogin",
    ] {
        let (status, body) = sim.request(
            "GET",
            &format!("/rest/api/latest/{path}"),
            &[READER, JSON],
            "",
        );
        assert_eq!(status, 400, "{path}: {body}");
    }
    // Names without one still work by name; the listing names every branch.
    assert_eq!(get(&sim, "plan/LAB-PROV/branch")["branches"]["size"], 1);
    assert_eq!(
        get(&sim, "plan/LAB-PROV/branch")["branches"]["branch"][0]["shortName"],
        "feature/login"
    );
    assert_eq!(
        sim.request(
            "GET",
            "/rest/api/latest/plan/LAB-PROV/branch/nope",
            &[READER, JSON],
            ""
        )
        .0,
        404
    );

    let label = |method: &str, path: &str, body: &str| {
        sim.request(
            method,
            &format!("/rest/api/latest/{path}"),
            &[WRITER, JSON, NO_CHECK, ("Content-Type", "application/json")],
            body,
        )
        .0
    };
    assert_eq!(
        label("POST", "result/LAB-PROV-8/label", r#"{"name":"shipped"}"#),
        204
    );
    assert_eq!(
        get(&sim, "result/LAB-PROV-8/label")["labels"]["label"][0]["name"],
        "shipped"
    );
    assert_eq!(label("DELETE", "result/LAB-PROV-8/label/shipped", ""), 204);
    assert_eq!(get(&sim, "result/LAB-PROV-8/label")["labels"]["size"], 0);
}

#[test]
fn the_request_log_and_reset() {
    let sim = Sim::start(WORLD);
    get(&sim, "info");
    sim.request(
        "POST",
        "/rest/api/latest/queue/LAB-PROV?stage=Deploy",
        &[TRIGGER, JSON, NO_CHECK],
        "",
    );
    let log = sim.requests();
    let seen: Vec<(&str, &str, &str, u64)> = log
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap(),
                r["query"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "info", "", 200),
            ("POST", "queue/LAB-PROV", "stage=Deploy", 200)
        ]
    );
    sim.reset();
    assert!(sim.requests().is_empty());
    assert_eq!(
        sim.request(
            "GET",
            "/rest/api/latest/result/LAB-PROV-10",
            &[READER, JSON],
            ""
        )
        .0,
        404,
        "reset forgets queued builds"
    );
}

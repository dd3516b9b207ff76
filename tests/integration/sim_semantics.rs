//! The simulator's stage semantics through HTTP: every row of the queue table in
//! `docs/bamboo-api.md`, the trap, and the [assumed] switches.

use crate::support::Sim;

const NMS: &str = "
settings: { clock: manual }
projects:
  - key: TST
    plans:
      - key: NMS
        stages:
          - { name: First }
          - { name: Second, manual: true }
          - { name: Third, manual: true }
";

fn with_behaviour(behaviour: &str) -> String {
    NMS.replace(
        "settings: { clock: manual }",
        &format!("settings: {{ clock: manual, behaviour: {{ {behaviour} }} }}"),
    )
}

fn queue(sim: &Sim, query: &str) -> u64 {
    let (status, body) = sim.write("POST", &format!("queue/TST-NMS{query}"));
    assert_eq!(status, 200, "POST queue/TST-NMS{query}: {body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    body["buildNumber"].as_u64().unwrap()
}

#[test]
fn every_row_of_the_queue_table() {
    let sim = Sim::start(NMS);
    let rows: [(&str, &[&str]); 8] = [
        ("", &["First"]),
        ("?stage=Second", &["First", "Second"]),
        ("?stage=Third", &["First", "Second", "Third"]),
        ("?executeAllStages=true", &["First", "Second", "Third"]),
        ("?executeAllStages=false", &["First"]),
        ("?executeAllStages", &["First"]),
        ("?stage=Second&executeAllStages=false", &["First", "Second"]),
        (
            "?stage=Second&executeAllStages=true",
            &["First", "Second", "Third"],
        ),
    ];
    for (query, expected) in rows {
        let number = queue(&sim, query);
        sim.advance(60_000);
        assert_eq!(
            sim.ran(&format!("TST-NMS-{number}")),
            expected,
            "POST queue/TST-NMS{query}"
        );
    }
}

#[test]
fn builds_move_queued_in_progress_finished_on_the_sim_clock() {
    let sim = Sim::start(&NMS.replace("{ clock: manual }", "{ clock: manual, queueDelayMs: 500 }"));
    let n = queue(&sim, "?stage=Second");
    let state = |sim: &Sim| {
        let r = sim.get_json(&format!("result/TST-NMS-{n}?expand=stages.stage"));
        (
            r["lifeCycleState"].as_str().unwrap().to_string(),
            r["continuable"].as_bool().unwrap(),
        )
    };
    assert_eq!(state(&sim), ("Queued".into(), false));
    sim.advance(600);
    assert_eq!(state(&sim), ("InProgress".into(), false));
    sim.advance(10_000);
    assert_eq!(state(&sim), ("Finished".into(), true));
    let result = sim.get_json(&format!("result/TST-NMS-{n}?expand=stages.stage"));
    let runnable: Vec<&str> = result["stages"]["stage"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["runnable"] == true)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(runnable, ["Third"], "only the next stage is runnable");
}

#[test]
fn the_trap_continuing_a_stage_that_already_ran_runs_the_next_one() {
    let sim = Sim::start(NMS);
    let n = queue(&sim, "?stage=Second");
    sim.advance(60_000);
    let (status, body) = sim.write(
        "PUT",
        &format!("queue/TST-NMS-{n}?stage=Second&executeAllStages=false"),
    );
    assert_eq!(status, 200, "{body}");
    sim.advance(60_000);
    assert_eq!(
        sim.ran(&format!("TST-NMS-{n}")),
        ["First", "Second", "Third"],
        "the reported trap: Third ran"
    );
}

#[test]
fn switch_reject_refuses_a_continue_naming_a_stage_that_ran() {
    let sim = Sim::start(&with_behaviour("continueRanStage: reject"));
    let n = queue(&sim, "?stage=Second");
    sim.advance(60_000);
    let (status, body) = sim.write(
        "PUT",
        &format!("queue/TST-NMS-{n}?stage=Second&executeAllStages=false"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"status-code\":400"), "{body}");
    sim.advance(60_000);
    assert_eq!(sim.ran(&format!("TST-NMS-{n}")), ["First", "Second"]);
}

#[test]
fn continue_obeys_stage_as_an_upper_bound_unless_switched_off() {
    let sim = Sim::start(NMS);
    let n = queue(&sim, "");
    sim.advance(60_000);
    assert_eq!(
        sim.write("PUT", &format!("queue/TST-NMS-{n}?stage=Third"))
            .0,
        200
    );
    sim.advance(60_000);
    assert_eq!(
        sim.ran(&format!("TST-NMS-{n}")),
        ["First", "Second", "Third"]
    );

    let next_only = Sim::start(&with_behaviour("continueStageBound: nextOnly"));
    let n = queue(&next_only, "");
    next_only.advance(60_000);
    assert_eq!(
        next_only
            .write("PUT", &format!("queue/TST-NMS-{n}?stage=Third"))
            .0,
        200
    );
    next_only.advance(60_000);
    assert_eq!(next_only.ran(&format!("TST-NMS-{n}")), ["First", "Second"]);
}

#[test]
fn continue_while_busy_or_complete_is_refused_or_ignored() {
    let sim = Sim::start(NMS);
    let n = queue(&sim, "?stage=Second");
    let (status, body) = sim.write("PUT", &format!("queue/TST-NMS-{n}?stage=Third"));
    assert_eq!(status, 400, "busy: {body}");
    sim.advance(60_000);
    assert_eq!(
        sim.write("PUT", &format!("queue/TST-NMS-{n}?stage=Third"))
            .0,
        200
    );
    sim.advance(60_000);
    assert_eq!(
        sim.write("PUT", &format!("queue/TST-NMS-{n}")).0,
        400,
        "complete"
    );

    let lenient = Sim::start(&with_behaviour(
        "continueBusy: ignore, continueComplete: ignore",
    ));
    let n = queue(&lenient, "?stage=Third");
    assert_eq!(
        lenient
            .write("PUT", &format!("queue/TST-NMS-{n}?stage=Third"))
            .0,
        200
    );
    lenient.advance(60_000);
    assert_eq!(lenient.write("PUT", &format!("queue/TST-NMS-{n}")).0, 200);
    lenient.advance(60_000);
    assert!(
        lenient
            .runs(&format!("TST-NMS-{n}"))
            .iter()
            .all(|(_, runs)| *runs == 1),
        "ignored calls run nothing"
    );
}

#[test]
fn failed_stages_stop_the_build_and_a_continue_reruns_them() {
    let world = NMS.replace("{ name: First }", "{ name: First, failures: 1 }");
    let sim = Sim::start(&world);
    let n = queue(&sim, "?stage=Second");
    sim.advance(60_000);
    let result = sim.get_json(&format!("result/TST-NMS-{n}?expand=stages.stage"));
    assert_eq!(
        (
            result["lifeCycleState"].as_str(),
            result["state"].as_str(),
            result["restartable"].as_bool()
        ),
        (Some("Finished"), Some("Failed"), Some(true))
    );
    assert_eq!(
        sim.ran(&format!("TST-NMS-{n}")),
        ["First"],
        "nothing after a failed stage"
    );
    assert_eq!(sim.write("PUT", &format!("queue/TST-NMS-{n}")).0, 200);
    sim.advance(60_000);
    assert_eq!(
        sim.runs(&format!("TST-NMS-{n}")),
        [
            ("First".to_string(), 2),
            ("Second".to_string(), 0),
            ("Third".to_string(), 0)
        ]
    );

    let strict = Sim::start(&world.replace(
        "{ clock: manual }",
        "{ clock: manual, behaviour: { continueFailed: reject } }",
    ));
    let n = queue(&strict, "");
    strict.advance(60_000);
    assert_eq!(strict.write("PUT", &format!("queue/TST-NMS-{n}")).0, 400);
}

#[test]
fn stopping_a_build_leaves_it_restartable() {
    let sim = Sim::start(NMS);
    let n = queue(&sim, "?stage=Third");
    sim.advance(500);
    assert_eq!(sim.write("DELETE", &format!("queue/TST-NMS-{n}")).0, 204);
    let result = sim.get_json(&format!("result/TST-NMS-{n}?expand=stages.stage"));
    assert_eq!(
        (
            result["lifeCycleState"].as_str(),
            result["state"].as_str(),
            result["restartable"].as_bool()
        ),
        (Some("NotBuilt"), Some("Unknown"), Some(true))
    );
    assert_eq!(result["stages"]["stage"][0]["restartable"], true);
}

#[test]
fn stage_names_match_exactly_unless_switched() {
    let sim = Sim::start(NMS);
    assert_eq!(sim.write("POST", "queue/TST-NMS?stage=second").0, 400);
    let lenient = Sim::start(&with_behaviour("stageNames: caseInsensitive"));
    let number = queue(&lenient, "?stage=second");
    lenient.advance(60_000);
    assert_eq!(
        lenient.ran(&format!("TST-NMS-{number}")),
        ["First", "Second"]
    );
}

#[test]
fn an_unknown_stage_is_refused_unless_switched_to_be_ignored() {
    let sim = Sim::start(NMS);
    assert_eq!(sim.write("POST", "queue/TST-NMS?stage=Fourth").0, 400);
    let lenient = Sim::start(&with_behaviour("unknownStage: ignore"));
    let number = queue(&lenient, "?stage=Fourth");
    lenient.advance(60_000);
    assert_eq!(
        lenient.ran(&format!("TST-NMS-{number}")),
        ["First"],
        "as if no stage was named"
    );
}

#[test]
fn a_disabled_plan_is_refused_unless_switched() {
    let world = NMS.replace(
        "      - key: NMS\n",
        "      - key: NMS\n        enabled: false\n",
    );
    assert_eq!(Sim::start(&world).write("POST", "queue/TST-NMS").0, 400);
    let lenient = Sim::start(&world.replace(
        "{ clock: manual }",
        "{ clock: manual, behaviour: { disabledPlan: ignore } }",
    ));
    assert_eq!(lenient.write("POST", "queue/TST-NMS").0, 200);
}

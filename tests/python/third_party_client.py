"""A real third-party client against the simulator: atlassian-python-api's Bamboo class.

Run by the integration test `third_party_client` with the simulator's URL and a token. It
reads build results with stages, lists plan branches, queues a build and reads it back, and
exits non-zero (with the reason) when anything differs from what the world file says.
"""

import sys

from atlassian import Bamboo


def check(condition, message):
    if not condition:
        print(f"FAIL: {message}", file=sys.stderr)
        sys.exit(1)


def main(url, token):
    bamboo = Bamboo(url=url, token=token)
    # Data Center answers a write without this header 403 (XSRF protection); this client's
    # execute_build does not send it, so a script using it against a real server must.
    bamboo.session.headers["X-Atlassian-Token"] = "no-check"

    result = bamboo.build_result("SHOP-APP-42", expand="stages.stage")
    check(result["lifeCycleState"] == "Finished", f"build state: {result['lifeCycleState']}")
    check(result["continuable"] is True, "a build paused at a manual stage is continuable")
    stages = [(s["name"], s["manual"], s["runnable"]) for s in result["stages"]["stage"]]
    check(
        stages[:2] == [("Build", False, False), ("Deploy Staging", True, True)],
        f"stages: {stages}",
    )

    latest = bamboo.build_latest_result("SHOP-APP", expand="stages.stage")
    check(latest["buildNumber"] == 42, f"latest build: {latest.get('buildNumber')}")

    branches = list(bamboo.plan_branches("SHOP-APP"))
    check([b["shortName"] for b in branches] == ["release/1.0"], f"branches: {branches}")
    check(branches[0]["key"] == "SHOP-APP1", f"branch key: {branches[0]['key']}")

    queued = bamboo.execute_build("SHOP-API", stage="Deploy Staging")
    check(queued["planKey"] == "SHOP-API", f"queue answer: {queued}")
    number = queued["buildNumber"]
    again = bamboo.build_result(f"SHOP-API-{number}", expand="stages.stage", include_all_states=True)
    check(again["buildNumber"] == number, f"queued build reads back: {again}")
    print(f"ok: read SHOP-APP-42 with {len(stages)} stages, {len(branches)} branch, queued SHOP-API-{number}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

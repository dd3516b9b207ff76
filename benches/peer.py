"""The sequential peer: what a team writes by hand today with atlassian-python-api.

For each target, one after another: look up the branch plan if there is one, read the latest
build with its stages, and (in `apply` mode) continue it to the target stage when that stage has
not run. Prints the wall time in seconds and the requests it made as JSON on stdout.

    python3 benches/peer.py URL TARGETS.json plan|apply
"""

import json
import sys
import time

from atlassian import Bamboo


def main(url, targets_path, mode):
    targets = json.load(open(targets_path))
    bamboo = Bamboo(url=url)
    requests = 0
    started = time.monotonic()
    for target in targets:
        key = target["plan"]
        if target.get("branch"):
            key = bamboo.get_branch_info(target["plan"], target["branch"])["key"]
            requests += 1
        build = bamboo.build_latest_result(key, expand="stages.stage", include_all_states=True)
        requests += 1
        stage = next(s for s in build["stages"]["stage"] if s["name"] == target["stage"])
        needed = build["continuable"] and stage["lifeCycleState"] != "Finished"
        if mode == "apply" and needed:
            bamboo.put(
                f"rest/api/latest/queue/{build['key']}",
                params={"stage": target["stage"], "executeAllStages": "false"},
                headers={"X-Atlassian-Token": "no-check", "Accept": "application/json"},
            )
            requests += 1
    print(json.dumps({"seconds": time.monotonic() - started, "requests": requests}))


if __name__ == "__main__":
    main(*sys.argv[1:4])

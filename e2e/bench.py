"""`make bench`: the plugin against kubectl on the same cluster, in the same run.

For a Job and a PersistentVolume it times, interleaved, `kubectl cyclops details`
(table and JSON), `kubectl describe`, and the `kubectl get` calls a script would
need for the same facts. It prints medians and ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from e2e.harness.k8s import VENV_BIN, Cluster, has_condition, phase
from e2e.harness.local import LocalCluster

NS = "bench"


def timed(cluster: Cluster, commands: list[list[str]]) -> float:
    """Wall time of running the commands one after another (a script's view)."""
    started = time.perf_counter()
    for cmd in commands:
        subprocess.run([str(VENV_BIN / "kubectl"), *cmd], env=cluster.env(), capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--state", default=".e2e", help="use the cluster of `make cluster` when it runs")
    args = parser.parse_args()
    state = Path(args.state) / "cluster.json"
    local = None
    if state.exists():
        cluster = Cluster(Path(json.loads(state.read_text())["kubeconfig"]))
    else:
        local = LocalCluster().start()
        cluster = Cluster(local.kubeconfig)
    try:
        cluster.kubectl("create", "namespace", NS, check=False)
        cluster.apply("job", name="bench", namespace=NS, completions=3, parallelism=3)
        cluster.apply("pv-hostpath", name="bench-pv", namespace=NS)
        cluster.wait_one("Job", "bench", has_condition("Complete"), namespace=NS)
        cluster.wait_one("PersistentVolume", "bench-pv", phase("Bound"))
        cluster.cyclops("details", "job", "bench", "-n", NS)  # warm the discovery cache, as in daily use
        job_uid = cluster.get("job", "bench", NS)["metadata"]["uid"]
        cases = {
            "Job": {
                "cyclops details (table)": [["cyclops", "details", "job", "bench", "-n", NS]],
                "cyclops details -o json": [["cyclops", "details", "job", "bench", "-n", NS, "-o", "json"]],
                "kubectl describe": [["describe", "job", "bench", "-n", NS]],
                "kubectl get x3 (job, pods, events)": [
                    ["get", "job", "bench", "-n", NS, "-o", "json"],
                    ["get", "pods", "-n", NS, "-l", f"batch.kubernetes.io/controller-uid={job_uid}", "-o", "json"],
                    ["get", "events", "-n", NS, "--field-selector", "involvedObject.name=bench", "-o", "json"],
                ],
            },
            "PersistentVolume": {
                "cyclops details (table)": [["cyclops", "details", "pv", "bench-pv"]],
                "cyclops details -o json": [["cyclops", "details", "pv", "bench-pv", "-o", "json"]],
                "kubectl describe": [["describe", "pv", "bench-pv"]],
                "kubectl get x3 (pv, pvc, storageclass)": [
                    ["get", "pv", "bench-pv", "-o", "json"],
                    ["get", "pvc", "bench-pv-claim", "-n", NS, "-o", "json"],
                    ["get", "storageclass", "bench-pv-class", "-o", "json"],
                ],
            },
        }
        for kind, commands in cases.items():
            samples: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, cmds in commands.items():  # interleaved, so drift hits every command alike
                    samples[name].append(timed(cluster, cmds))
            medians = {name: statistics.median(s) for name, s in samples.items()}
            describe = medians["kubectl describe"]
            print(f"\n{kind} ({args.runs} runs each, median wall time)")
            for name, m in medians.items():
                print(f"  {name:40s} {m * 1000:7.0f} ms   {m / describe:5.2f}x kubectl describe")
    finally:
        if local is not None:
            local.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

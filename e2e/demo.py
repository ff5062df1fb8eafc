"""`make demo`: a cluster, the PV and Job fixtures, `kubectl cyclops wait` on them and `details` for each.

It also provisions a claim dynamically: a claim on the default StorageClass, mounted
by a Job's pod (on the local provider, the real external-provisioner and hostpath-csi).

With --cluster kind (`make demo CLUSTER=kind`) it starts kind; without --cluster, kind when a Docker or
Podman engine answers, falling back to the local control plane (and saying why) when kind cannot start;
with --cluster local, the local control plane. It leaves the cluster running so you can try more;
`make cluster-down` stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from e2e.harness import providers
from e2e.harness.control import up, up_kind
from e2e.harness.k8s import VENV_BIN, Cluster, has_condition

NAMESPACE = "demo"


def _run(cluster: Cluster, *args: str, expect: int = 0) -> None:
    print(f"\n$ kubectl cyclops {' '.join(args)}", flush=True)
    inv = cluster.cyclops(*args)
    sys.stdout.write(inv.stdout)
    sys.stderr.write(inv.stderr)
    if inv.returncode != expect:
        raise SystemExit(f"kubectl cyclops exited {inv.returncode}, not {expect}")
    if expect:
        print(f"(exit {inv.returncode}, as a CI step would fail)", flush=True)


def start(state_dir: Path, choice: str | None) -> Path:
    state_file = state_dir / "cluster.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        print(f"using the cluster recorded in {state_file}", file=sys.stderr)
        return Path(state["kubeconfig"])
    state_dir.mkdir(parents=True, exist_ok=True)
    if choice == "kind" or (choice is None and providers.default_provider() == "kind"):
        try:
            kind = up_kind(state_dir)
        except providers.ProviderUnavailable as exc:
            if choice == "kind":
                raise SystemExit(f"error: {exc}") from None
            print(f"kind could not start ({exc}): falling back to the local control plane", file=sys.stderr)
        else:
            print("kind cluster cyclops-demo ready", file=sys.stderr)
            return kind.kubeconfig
    elif choice is None:
        print("no container engine answers: starting the local control plane (kwok nodes)", file=sys.stderr)
    local = up(state_dir)
    print(f"cluster ready in {local.ready_seconds:.1f}s", file=sys.stderr)
    return Path(local.kubeconfig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", default=".e2e")
    parser.add_argument("--cluster", choices=["local", "kind"], default=None)
    args = parser.parse_args()
    cluster = Cluster(start(Path(args.state).resolve(), args.cluster))
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    cluster.apply("pv-hostpath", name="demo-pv", namespace=NAMESPACE, size="10Gi")
    cluster.apply("job", name="pi", namespace=NAMESPACE, completions=3, parallelism=2)
    cluster.apply("job", name="flaky", namespace=NAMESPACE, backoff_limit=1, fail="true", exit_code=2)
    cluster.apply("pvc-dynamic", name="data", namespace=NAMESPACE)
    cluster.apply("job-pvc", name="writer", namespace=NAMESPACE, claim="data")
    # The CI gate: wait for the claim and the Jobs; the failing one ends its wait at once, with exit 10.
    _run(cluster, "wait", "pvc", "demo-pv-claim", "-n", NAMESPACE, "--timeout", "60s")
    _run(cluster, "wait", "job/pi", "-n", NAMESPACE, "--timeout", "2m")
    _run(cluster, "wait", "job/flaky", "-n", NAMESPACE, "--timeout", "2m", expect=10)
    _run(cluster, "wait", "job/writer", "-n", NAMESPACE, "--timeout", "60s")
    _run(cluster, "wait", "pvc/data", "-n", NAMESPACE, "--timeout", "60s")
    cluster.wait_one("Job", "flaky", has_condition("Failed"), namespace=NAMESPACE, timeout=90)

    _run(cluster, "details", "pv", "demo-pv")
    _run(cluster, "details", "job", "pi", "-n", NAMESPACE)
    _run(cluster, "details", "job/flaky", "-n", NAMESPACE, "-o", "wide")
    # Dynamic provisioning: the claim, who uses it, and the volume the provisioner made for it.
    _run(cluster, "details", "pvc", "data", "-n", NAMESPACE)
    volume = cluster.get("pvc", "data", NAMESPACE)["spec"]["volumeName"]
    _run(cluster, "details", "pv", volume)
    kubeconfig = os.path.relpath(cluster.kubeconfig)
    enter = ""
    if os.environ.get(providers.OFFLINE) == "1":
        enter = "\n  (the kind cluster is in its own network namespace: run these in `ip netns exec cyclops-kind bash`)"
    print(f"""
Try more (kubectl and the plugin are in {os.path.relpath(VENV_BIN)}):{enter}
  export PATH=$PWD/{os.path.relpath(VENV_BIN)}:$PATH KUBECONFIG=$PWD/{kubeconfig}
  kubectl cyclops details pvc -n {NAMESPACE} -o yaml
  kubectl cyclops details storageclass standard
  kubectl cyclops details jobs -n {NAMESPACE} -o json | jq '.[].status'
  kubectl cyclops details job pi -n {NAMESPACE} --watch
  kubectl cyclops kinds
Stop the cluster: make cluster-down""")
    return 0


if __name__ == "__main__":
    sys.exit(main())

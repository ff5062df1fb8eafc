"""`make cluster` / `make cluster-down`: a cluster that outlives this process.

    python -m e2e.harness.control up   --state .e2e [--cluster local|kind]
    python -m e2e.harness.control down --state .e2e

`down` also stops what `make demo` started with another provider (kind),
which is why this lives apart from local.py: providers.py builds on local.py,
and this module on both.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from .local import ClusterError, LocalCluster, build_binaries
from .providers import KindProvider, ProviderUnavailable, adopt


def up_kind(state_dir: Path) -> KindProvider:
    """A kind cluster that outlives this process, recorded in state_dir (its kubeconfig in cluster.json)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    kind = KindProvider(name="cyclops-demo", workdir=state_dir)
    kind.start()
    (state_dir / "cluster.json").write_text(json.dumps({**kind.state(), "kubeconfig": str(kind.kubeconfig)}))
    return kind


def up(state_dir: Path, nodes: int = 1) -> LocalCluster:
    """Start a cluster that outlives this process, recorded in state_dir (kubeconfig, cluster.json)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(nodes=nodes, kubeconfig=state_dir / "kubeconfig").start()
    (state_dir / "cluster.json").write_text(json.dumps(cluster.state(), indent=2))
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.harness.control", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "build"])
    parser.add_argument("--state", default=".e2e", help="directory for kubeconfig and cluster.json")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--cluster", choices=["local", "kind"], default="local")
    args = parser.parse_args(argv)
    state_dir = Path(args.state).resolve()
    state_file = state_dir / "cluster.json"
    if args.action == "build":
        print(build_binaries())
        return 0
    if args.action == "down":
        if not state_file.exists():
            print(f"no local cluster recorded in {state_file}", file=sys.stderr)
            return 0
        state = json.loads(state_file.read_text())
        if state.get("provider") == "kind":  # `make demo` on a machine with a container engine
            adopt(state).stop()
        else:
            LocalCluster.from_state(state).stop()
        shutil.rmtree(state_dir, ignore_errors=True)
        print("cluster stopped", file=sys.stderr)
        return 0
    if state_file.exists():
        print(
            f"a local cluster is already recorded in {state_file}; run `make cluster-down` first",
            file=sys.stderr,
        )
        return 1
    if args.cluster == "kind":
        try:
            kind = up_kind(state_dir)
        except ProviderUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"kind cluster {kind.name} ready; kubeconfig: {kind.kubeconfig}", file=sys.stderr)
        return 0
    try:
        cluster = up(state_dir, args.nodes)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"local cluster {cluster.name} ready in {cluster.ready_seconds:.1f}s; kubeconfig: {cluster.kubeconfig}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: the plugin against kubectl for the same facts, on one local cluster, in one run.

It starts its own local cluster (controller-manager without QPS limits, so
thousands of objects settle in seconds) and creates its fixtures: Jobs with
3, 1,000 and 10,000 pods, a bound PersistentVolume, and 3,000 PVs of which
1,500 are bound to claims. For each one-shot case it runs `kubectl cyclops ...`
as users do (and `kubectl-cyclops` directly, where kubectl's dispatch is a
large part of the time) and the kubectl commands that show the same facts,
alternating A and B, and prints medians, their ratio and each side's peak
memory (the largest resident set of any of its processes).

Two cases run for long, both sides at once on the same changes, and compare
CPU seconds (user + system) and peak memory: `wait` over 2,000 Jobs that are
let run over about a minute, against `kubectl wait --for=condition=complete`,
and `details pods --watch` over 1,000 pods changing for 60 s, against
`kubectl get pods --watch`. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import yaml

from e2e.harness.k8s import VENV_BIN, Cluster, has_condition, interruptible
from e2e.harness.local import LocalCluster

NS = "bench"
SCALE_PVS, SCALE_CLAIMS = 3000, 1500
WAIT_NS, WAIT_JOBS, WAIT_SPREAD = "bench-wait", 2000, 60.0  # Jobs let run over WAIT_SPREAD seconds
WATCH_NS, WATCH_PODS, WATCH_SECONDS, WATCH_CHANGES = "bench-watch", 1000, 60.0, 3000
WAIT_CASE = f"wait jobs over {WAIT_JOBS:,} Jobs"
WATCH_CASE = f"details pods --watch, {WATCH_PODS:,} pods, {WATCH_SECONDS:.0f} s"


TIME = shutil.which("time", path="/usr/bin:/bin")  # GNU time reports a child's peak RSS


def _argv(cmd: list[str], bin_dir: Path) -> list[str]:
    """The command with its program from bin_dir (the base plugin's launcher) where it is there, else the venv."""
    return [str(bin_dir / cmd[0] if (bin_dir / cmd[0]).exists() else VENV_BIN / cmd[0]), *cmd[1:]]


def paced(count: int, seconds: float) -> Iterator[int]:
    """0 .. count-1, spread evenly over `seconds`, which have passed when the iteration ends."""
    begun = time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, begun + i * seconds / count - time.monotonic()))  # pacing, not a wait
        yield i
    time.sleep(max(0.0, begun + seconds - time.monotonic()))


def run(env: dict[str, str], commands: list[list[str]], bin_dir: Path = VENV_BIN) -> tuple[float, int]:
    """Wall time of the commands one after another, and the peak RSS (KiB) of any of them (0: unknown).

    The peak is read by GNU time, a small process: a child forked from this one would carry
    this process's resident set into its own peak. Its overhead is the same for both sides.
    """
    started, peak = time.perf_counter(), 0
    with tempfile.NamedTemporaryFile("r") as rss:
        for cmd in commands:
            argv = _argv(cmd, bin_dir)
            if TIME:
                argv = [TIME, "-f", "%M", "-o", rss.name, *argv]
            done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=False)
            if done.returncode:
                raise SystemExit(f"bench: {' '.join(cmd)} exited {done.returncode}")
            if TIME:
                rss.seek(0)
                peak = max(peak, int(rss.read().split()[-1]))
    return time.perf_counter() - started, peak


class Usage(NamedTuple):
    cpu: float  # seconds, user + system
    rss: int  # peak resident set, KiB


class Side(NamedTuple):
    proc: subprocess.Popen[bytes]
    report: Path  # where GNU time writes the side's CPU seconds and peak memory


def started(env: dict[str, str], cmd: list[str], report: Path, bin_dir: Path = VENV_BIN) -> Side:
    """A long-running side under GNU time (see run()), its output discarded, in a process group of its own;
    kubectl's plugin dispatch execs the plugin in its own process, so time measures the plugin too."""
    if TIME is None:
        raise SystemExit("bench: the wait and watch cases need GNU time (/usr/bin/time)")
    timed = [TIME, "-f", "%U %S %M", "-o", str(report), *_argv(cmd, bin_dir)]
    proc = subprocess.Popen(timed, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    return Side(proc, report)


def interrupt(side: Side) -> None:
    """Ctrl-C, as a user ends a watch: to the group (GNU time itself ignores it while its command runs)."""
    os.killpg(side.proc.pid, signal.SIGINT)


def finished(side: Side, check: bool = True) -> Usage:
    """Wait for the side to end: the CPU time and peak memory of its command."""
    _, err = side.proc.communicate()
    fields = side.report.read_text().split()
    if check and side.proc.returncode:
        raise SystemExit(f"bench: {side.proc.args} exited {side.proc.returncode}: {err.decode()[-500:]}")
    return Usage(float(fields[-3]) + float(fields[-2]), int(fields[-1]))


def baseline(ref: str, where: Path) -> Path:
    """The plugin as it was at git `ref`, installed as a `kubectl-cyclops` launcher in a bin directory that
    goes first on PATH, so `kubectl cyclops` dispatches to it: before and after measured in one run."""
    archive = subprocess.run(["git", "archive", ref, "plugin"], capture_output=True, check=False)
    if archive.returncode:
        raise SystemExit(f"bench: --base {ref}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(where / "plugin")], check=True)
    bin_dir = where / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "kubectl-cyclops"
    launcher.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(where / 'plugin')!r})\n"
        "from kubectl_cyclops.entry import main\nsys.exit(main())\n"
    )
    launcher.chmod(0o755)
    return bin_dir


def scale_fixtures(cluster: Cluster) -> None:
    """3,000 hostPath PVs labelled set=scale, the first 1,500 pre-bound to claims in NS."""
    docs: list[dict] = [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "scale"},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "Immediate",
        }
    ]
    for i in range(SCALE_PVS):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"scale-{i:04d}", "labels": {"set": "scale"}},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "scale",
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": f"/tmp/scale/{i}"},
                },
            }
        )
    for i in range(SCALE_CLAIMS):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": f"scale-{i:04d}", "namespace": NS},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "scale",
                    "volumeName": f"scale-{i:04d}",
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        )
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": docs}, f)
        f.flush()
        cluster.kubectl("apply", "--server-side", "-f", f.name)
    bound = lambda pvs: sum((p.get("status") or {}).get("phase") == "Bound" for p in pvs) >= SCALE_CLAIMS  # noqa: E731
    cluster.wait("PersistentVolume", bound, labels="set=scale", timeout=600)


def _start_sides(
    sides: dict[str, tuple[dict[str, str], Path]], commands: dict[str, list[str]], report: Path
) -> dict[str, Side]:
    report.mkdir()
    return {side: started(env, commands[side], report / side, bin_dir) for side, (env, bin_dir) in sides.items()}


def wait_round(
    cluster: Cluster, sides: dict[str, tuple[dict[str, str], Path]], ns: str, report: Path
) -> dict[str, Usage]:
    """WAIT_JOBS suspended Jobs, each side waiting for all of them, while they are let run one after another
    over WAIT_SPREAD seconds (kwok completes each Job's pod at once)."""
    pod = {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36"}]}
    jobs = [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"w-{i:04d}", "namespace": ns},
            "spec": {"suspend": True, "template": {"spec": pod}},
        }
        for i in range(WAIT_JOBS)
    ]
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl(
        "apply", "--server-side", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": jobs})
    )
    cluster.wait("Job", lambda js: len(js) == WAIT_JOBS, namespace=ns, timeout=300)
    ours = ["kubectl", "cyclops", "wait", "jobs", "-n", ns, "--timeout", "10m"]
    theirs = ["kubectl", "wait", "--for=condition=complete", "jobs", "--all", "-n", ns, "--timeout=10m"]
    procs = _start_sides(sides, {"plugin": ours, "kubectl": theirs, "base": ours}, report)
    for i in paced(WAIT_JOBS, WAIT_SPREAD):
        cluster.batch.patch_namespaced_job(jobs[i]["metadata"]["name"], ns, {"spec": {"suspend": False}})
    usage = {side: finished(proc) for side, proc in procs.items()}
    # Gone before the next round: 2,000 pods still being deleted would crowd the kwok node's 110 pod slots, and the
    # next round's pods would not be scheduled.
    cluster.kubectl("delete", "namespace", ns, "--timeout=10m")
    return usage


def watch_round(
    cluster: Cluster, sides: dict[str, tuple[dict[str, str], Path]], pods: list[str], report: Path
) -> dict[str, Usage]:
    """Each side watching WATCH_NS's pods for WATCH_SECONDS while WATCH_CHANGES changes reach them, round robin."""
    ours = ["kubectl", "cyclops", "details", "pods", "-n", WATCH_NS, "--watch"]
    theirs = ["kubectl", "get", "pods", "-n", WATCH_NS, "--watch"]
    procs = _start_sides(sides, {"plugin": ours, "kubectl": theirs, "base": ours}, report)
    for i in paced(WATCH_CHANGES, WATCH_SECONDS):
        patch = {"metadata": {"annotations": {"bench/step": str(i)}}}
        cluster.core.patch_namespaced_pod(pods[i % len(pods)], WATCH_NS, patch)
    for side in procs.values():
        interrupt(side)
    return {side: finished(proc, check=side != "kubectl") for side, proc in procs.items()}


def long_cases(
    cluster: Cluster,
    local: LocalCluster,
    sides: dict[str, tuple[dict[str, str], Path]],
    rounds: int,
    only: str | None,
    report: Path,
) -> None:
    """The wait and watch cases: both sides at once, CPU seconds and peak memory, medians over the rounds."""
    runs: dict[str, list[dict[str, Usage]]] = {}
    if picked(only, WAIT_CASE):
        for r in range(rounds):
            settle(list(local.pids.values()))
            runs.setdefault(WAIT_CASE, []).append(wait_round(cluster, sides, f"{WAIT_NS}-{r}", report / f"wait-{r}"))
    if picked(only, WATCH_CASE):
        cluster.kubectl("create", "namespace", WATCH_NS)
        cluster.apply("job", name="churn", namespace=WATCH_NS, completions=WATCH_PODS, parallelism=WATCH_PODS)
        cluster.wait_one("Job", "churn", has_condition("Complete"), namespace=WATCH_NS, timeout=600)
        pods = [str(p.metadata.name) for p in cluster.core.list_namespaced_pod(WATCH_NS).items]
        for r in range(rounds):
            settle(list(local.pids.values()))
            runs.setdefault(WATCH_CASE, []).append(watch_round(cluster, sides, pods, report / f"watch-{r}"))
    print(
        f"\n{'case (CPU seconds, both sides at once)':42s} {'plugin':>9s} {'kubectl':>9s} {'ratio':>6s} "
        f"{'plugin RSS':>11s} {'kubectl RSS':>12s}"
        + (f" {'base':>19s} {'plugin/base':>11s}" if "base" in sides else "")
    )
    for name, usages in runs.items():
        cpu = {side: statistics.median(u[side].cpu for u in usages) for side in sides}
        rss = {side: max(u[side].rss for u in usages) for side in sides}
        line = (
            f"{name:42s} {cpu['plugin']:8.2f}s {cpu['kubectl']:8.2f}s {cpu['plugin'] / cpu['kubectl']:5.2f}x "
            f"{rss['plugin'] / 1024:9.0f}MB {rss['kubectl'] / 1024:10.0f}MB"
        )
        if "base" in sides:
            line += f" {cpu['base']:18.2f}s {cpu['plugin'] / cpu['base']:10.2f}x"
        print(line)


def picked(only: str | None, name: str) -> bool:
    """Whether --only (a regular expression) picks the case."""
    return only is None or re.search(only, name) is not None


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes have used so far; processes gone count nothing."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def settle(pids: list[int], busy: float = 0.1, window: float = 2.0, timeout: float = 180) -> float:
    """Wait until the control plane uses under `busy` of a core over `window` seconds (after 1,000 pods and
    3,000 volumes its controllers work on for a while), so both sides are measured on a quiet cluster.
    Returns the last share seen; the caller reports it if the deadline passed first."""
    deadline = time.monotonic() + timeout
    while True:
        before, started = cpu_seconds(pids), time.monotonic()
        time.sleep(window)  # the measuring window itself, not a wait for an outcome
        share = (cpu_seconds(pids) - before) / (time.monotonic() - started)
        if share < busy or time.monotonic() > deadline:
            return share


def cases(
    pv: str, claim: str, big_uid: str, pi_uid: str, huge_uid: str
) -> dict[str, tuple[list[list[str]], list[list[str]]]]:
    """name: (the plugin's command, the kubectl commands for the same facts)."""
    k = "kubectl"
    return {
        "details job pi (3 pods)": (
            [[k, "cyclops", "details", "job", "pi", "-n", NS]],
            [[k, "describe", "job", "pi", "-n", NS], [k, "get", "pods", "-n", NS, "-l", f"controller-uid={pi_uid}"]],
        ),
        "details pv NAME": (
            [[k, "cyclops", "details", "pv", pv]],
            [[k, "describe", "pv", pv], [k, "get", "pvc", claim, "-n", NS], [k, "get", "storageclass", f"{pv}-class"]],
        ),
        "details job pi (3 pods), run directly": (
            [["kubectl-cyclops", "details", "job", "pi", "-n", NS]],
            [[k, "describe", "job", "pi", "-n", NS], [k, "get", "pods", "-n", NS, "-l", f"controller-uid={pi_uid}"]],
        ),
        "details pv NAME, run directly": (
            [["kubectl-cyclops", "details", "pv", pv]],
            [[k, "describe", "pv", pv], [k, "get", "pvc", claim, "-n", NS], [k, "get", "storageclass", f"{pv}-class"]],
        ),
        "details job big (1,000 pods)": (
            [[k, "cyclops", "details", "job", "big", "-n", NS]],
            [[k, "describe", "job", "big", "-n", NS], [k, "get", "pods", "-n", NS, "-l", f"controller-uid={big_uid}"]],
        ),
        "details job huge (10,000 pods)": (
            [[k, "cyclops", "details", "job", "huge", "-n", NS]],
            [
                [k, "describe", "job", "huge", "-n", NS],
                [k, "get", "pods", "-n", NS, "-l", f"controller-uid={huge_uid}"],
            ],
        ),
        "details pv -l set=scale -o json (3,000)": (
            [[k, "cyclops", "details", "pv", "-l", "set=scale", "-o", "json"]],
            [[k, "get", "pv", "-l", "set=scale", "-o", "json"], [k, "get", "pvc", "-A", "-o", "json"]],
        ),
        "details pv -l set=scale (table, 3,000)": (
            [[k, "cyclops", "details", "pv", "-l", "set=scale"]],
            [[k, "get", "pv", "-l", "set=scale", "-o", "json"], [k, "get", "pvc", "-A", "-o", "json"]],
        ),
        "kubectl-cyclops --version": (
            [["kubectl-cyclops", "--version"]],
            [[k, "version", "--client"]],
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--only", metavar="REGEX", help="run only the cases whose name this matches")
    parser.add_argument("--base", metavar="GIT_REF", help="also run the plugin as it was at this commit")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the wait and watch cases")
    args = parser.parse_args()
    interruptible()  # the watch case ends each side with Ctrl-C
    if args.base:  # checked before a cluster is started for nothing
        commit = ["git", "rev-parse", "--verify", "--quiet", f"{args.base}^{{commit}}"]
        if subprocess.run(commit, capture_output=True, check=False).returncode:
            parser.error(f"--base {args.base}: not a commit of this repository")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))  # stop the cluster
    # As installed (pip compiles bytecode): runs here must not pay for compiling sources every time.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "plugin", *sys.path[1:]], capture_output=True)
    with (
        tempfile.TemporaryDirectory(prefix="cyclops-bench-") as scratch,
        LocalCluster(extra_args=("--disable-qps-limits",), timeout=120, csi=False) as local,
    ):
        cluster = Cluster(local.kubeconfig)
        env = {k: v for k, v in cluster.env().items() if k != "PYTHONDONTWRITEBYTECODE"}
        cluster.kubectl("create", "namespace", NS)
        cluster.apply("job", name="pi", namespace=NS, completions=3, parallelism=3)
        cluster.wait_one("Job", "pi", has_condition("Complete"), namespace=NS)
        # The one-shot cases' fixtures, only those the picked cases read.
        wanted = [name for name in cases("", "", "", "", "") if picked(args.only, name)]
        needs = " ".join(wanted)
        if "big" in needs:
            cluster.apply("job", name="big", namespace=NS, completions=1000, parallelism=1000)
        if "pv NAME" in needs:
            cluster.apply("pv-hostpath", name="bench-pv", namespace=NS)
        if "set=scale" in needs:
            scale_fixtures(cluster)
        if "big" in needs:
            cluster.wait_one("Job", "big", has_condition("Complete"), namespace=NS, timeout=600)
        if "huge" in needs:
            # After the others: 10,000 pods being made keep the API server too busy for a 4,500-object apply. A
            # hundred at a time: the kwok node has 110 pod slots, and pods the scheduler found no room for wait
            # out its back-off, while a pod made when one completes is placed at once.
            cluster.apply("job", name="huge", namespace=NS, completions=10000, parallelism=100)
            cluster.wait_one("Job", "huge", has_condition("Complete"), namespace=NS, timeout=1200)
        uid = {j: cluster.get("job", j, NS)["metadata"]["uid"] if j in needs else "" for j in ("big", "huge")}
        pi_uid = cluster.get("job", "pi", NS)["metadata"]["uid"]
        table = cases("bench-pv", "bench-pv-claim", uid["big"], pi_uid, uid["huge"])
        run(env, table["details job pi (3 pods)"][0])  # warm the discovery cache, as in daily use
        share = settle(list(local.pids.values()))
        if share >= 0.1:
            print(f"bench: the control plane still used {share:.0%} of a core after 180 s; measuring anyway")
        base_bin = baseline(args.base, Path(scratch)) if args.base else None
        base_env = {**env, "PATH": f"{base_bin}{os.pathsep}{env['PATH']}"} if base_bin else env
        print(f"\n{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, {args.runs} runs each")
        header = f"{'case':42s} {'plugin':>9s} {'kubectl':>9s} {'ratio':>6s} {'plugin RSS':>11s} {'kubectl RSS':>12s}"
        print(header + (f" {'base ' + args.base[:12]:>19s} {'plugin/base':>11s}" if base_bin else ""))
        for name, (ours, theirs) in table.items():
            if name not in wanted:
                continue
            a: list[float] = []
            b: list[float] = []
            c: list[float] = []
            mem_a = mem_b = 0
            for _ in range(args.runs):  # alternating, so drift hits every side alike
                t, m = run(env, ours)
                a.append(t)
                mem_a = max(mem_a, m)
                t, m = run(env, theirs)
                b.append(t)
                mem_b = max(mem_b, m)
                if base_bin:
                    c.append(run(base_env, ours, base_bin)[0])
            ma, mb = statistics.median(a), statistics.median(b)
            line = f"{name:42s} {ma:8.3f}s {mb:8.3f}s {ma / mb:5.2f}x {mem_a / 1024:9.0f}MB {mem_b / 1024:10.0f}MB"
            if c:
                line += f" {statistics.median(c):18.3f}s {ma / statistics.median(c):10.2f}x"
            print(line)
        if not TIME:
            print("(peak memory unknown: GNU time is not installed)")
        sides = {"plugin": (env, VENV_BIN), "kubectl": (env, VENV_BIN)}
        if base_bin:
            sides["base"] = (base_env, base_bin)
        long_cases(cluster, local, sides, args.rounds, args.only, Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Read-only, proven by the API server's own audit log; and least privilege, with only the `view` ClusterRole.

One cluster of its own, whose kube-apiserver logs every request at Metadata level (kwokctl's
--kube-audit-policy). Every command and mode runs against it; then the audit log must show only
get, list and watch from the plugin's User-Agent, as the user that ran it. The request count per
command is printed: it is the measure a reviewer reads.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.conftest import start_local
from e2e.harness.k8s import VENV_BIN, Cluster, has_condition, phase

HERE = Path(__file__).parent
REPORTS = HERE.parent / "reports"
pytestmark = pytest.mark.xdist_group("audited")  # one worker, so one audited cluster for the module
POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Metadata"}]}
NS = "rec"
READ = {"get", "list", "watch"}


@pytest.fixture(scope="module")
def audited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path]]:
    policy = tmp_path_factory.mktemp("audit") / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    why = "this test starts its own local control plane to read its kube-apiserver's audit log"
    local = start_local(request, why, extra_args=("--kube-audit-policy", str(policy)), csi=False)
    try:
        cluster = Cluster(local.kubeconfig)
        cluster.kubectl("create", "namespace", NS)
        cluster.apply("pv-hostpath", name="rec-pv", namespace=NS)
        cluster.apply("job", name="done", namespace=NS)
        cluster.kubectl("apply", "--server-side", "-f", str(HERE.parent / "tests" / "recording-fixtures.yaml"))
        cluster.wait_one("Job", "done", has_condition("Complete"), namespace=NS)
        cluster.wait_one("PersistentVolume", "rec-pv", phase("Bound"))
        yield cluster, local.cluster_dir / "logs" / "audit.log"
    finally:
        local.stop()


def _audit(log: Path) -> list[dict[str, Any]]:
    """One entry per request (the audit log has one per stage), oldest first."""
    by_id: dict[str, dict[str, Any]] = {}
    for line in log.read_text().splitlines():
        event = json.loads(line)
        by_id.setdefault(event["auditID"], event)
    return sorted(by_id.values(), key=lambda e: e["requestReceivedTimestamp"])


def _when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))


class Session:
    """Runs `kubectl cyclops` commands and remembers when each ran, to count its requests in the audit log."""

    def __init__(self, cluster: Cluster, kubeconfig: Path | None = None, cache: Path | None = None) -> None:
        self.cluster = cluster
        self.env = {**cluster.env(), **({"KUBECONFIG": str(kubeconfig)} if kubeconfig else {})}
        if cache is not None:
            self.env["KUBECTL_CYCLOPS_CACHE_DIR"] = str(cache)
        self.windows: list[tuple[str, datetime, datetime]] = []
        self.printed: list[str] = []  # every stdout and stderr, for the Secret test

    def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        started = datetime.now(UTC)
        proc = subprocess.run(
            [str(VENV_BIN / "kubectl"), "cyclops", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.windows.append((" ".join(args), started, datetime.now(UTC)))
        self.printed += [proc.stdout, proc.stderr]
        assert proc.returncode == expect, (args, proc.returncode, proc.stderr)
        return proc

    def watch(self, log: Path, *args: str) -> None:
        """`details --watch` until the audit log shows its watches, then Ctrl-C: exit 0."""
        started = datetime.now(UTC)
        proc = subprocess.Popen(
            [str(VENV_BIN / "kubectl"), "cyclops", "details", *args, "--watch"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not any(e["verb"] == "watch" and _when(e) >= started for e in _plugin(_audit(log))):
            assert time.monotonic() < deadline, "no watch request in the audit log within 60s"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)  # polling the audit log file, with the deadline above
        proc.send_signal(signal.SIGINT)
        self.printed += list(proc.communicate(timeout=30))
        self.windows.append((f"details {' '.join(args)} --watch", started, datetime.now(UTC)))
        assert proc.returncode == 0

    def counts(self, events: list[dict[str, Any]]) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {}
        for name, start, end in self.windows:
            out[name] = Counter(e["verb"] for e in events if start <= _when(e) <= end)
        return out


def _plugin(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("userAgent", "").startswith("kubectl-cyclops/")]


def _report(title: str, file: str, counts: dict[str, Counter[str]]) -> None:
    """Print the requests per command, and keep them in reports/FILE for a reviewer."""
    lines = [f"{title}: requests per command (from the audit log)"]
    lines += [f"  {sum(v.values()):4d}  {dict(sorted(v.items()))}  kubectl cyclops {n}" for n, v in counts.items()]
    print("\n" + "\n".join(lines))
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / file).write_text("\n".join(lines) + "\n")


def test_every_command_only_reads_as_the_audit_log_shows(audited: tuple[Cluster, Path]) -> None:
    cluster, log = audited
    session = Session(cluster)
    kinds = json.loads(session.run("kinds", "-o", "json").stdout)
    for kind in kinds:
        if kind["kind"] != "*":
            session.run("details", kind["kind"], "-A", "-o", "json")
    for args in (
        ["job", "done", "-n", NS],
        ["pv", "rec-pv", "-o", "wide"],
        ["pvc", "rec-pv-claim", "-n", NS, "-o", "yaml"],
        ["deployment", "web", "-n", NS],
        ["pod", "envy", "-n", NS, "-o", "json"],
        ["secret", "creds", "-n", NS],
        ["pods", "-A", "-l", "app=web"],
        ["namespace", NS],
    ):
        session.run("details", *args)
    session.watch(log, "job", "done", "-n", NS)
    session.run("wait", "job/done", "-n", NS, "--timeout", "1m")
    session.run("wait", "pvc", "-l", "app=none", "-n", NS, "--timeout", "0", expect=11)
    session.run("details", "job", "nope", "-n", NS, expect=5)
    session.run("details", "frobnicators", "x", expect=4)
    session.run("details", "pods", "-n", NS, "-l", "a in (", expect=2)

    events = _plugin(_audit(log))
    assert events, "no request with the plugin's User-Agent in the audit log"
    verbs = Counter(e["verb"] for e in events)
    assert set(verbs) <= READ, verbs
    whoami = json.loads(cluster.kubectl("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]["username"]
    assert {e["user"]["username"] for e in events} == {whoami}
    counts = session.counts(events)
    _report("as the cluster admin", "audit-requests-admin.txt", counts)
    assert sum(counts["details job done -n rec"].values()) <= 6
    assert all(sum(v.values()) == 0 for k, v in counts.items() if k.startswith("kinds"))


def _viewer_kubeconfig(cluster: Cluster, where: Path) -> Path:
    """A ServiceAccount bound to the built-in `view` ClusterRole and nothing else, as a kubeconfig."""
    cluster.kubectl("create", "serviceaccount", "viewer", "-n", NS)
    cluster.kubectl(
        "create", "clusterrolebinding", "cyclops-viewer", "--clusterrole=view", f"--serviceaccount={NS}:viewer"
    )
    token = cluster.kubectl("create", "token", "viewer", "-n", NS).stdout.strip()
    config = yaml.safe_load(cluster.kubectl("config", "view", "--minify", "--raw", "--flatten").stdout)
    config["users"] = [{"name": "viewer", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "viewer"
    path = where / "viewer.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_with_only_the_view_role_it_works_and_degrades_where_it_may_not_read(
    audited: tuple[Cluster, Path], tmp_path: Path
) -> None:
    cluster, log = audited
    session = Session(cluster, _viewer_kubeconfig(cluster, tmp_path))
    readable = ["job", "cronjob", "pod", "deployment", "statefulset", "daemonset", "replicaset", "service"]
    readable += ["configmap", "persistentvolumeclaim", "ingress", "poddisruptionbudget", "horizontalpodautoscaler"]
    for kind in readable:
        session.run("details", kind, "-n", NS, "-o", "json")
    session.run("details", "job", "done", "-n", NS)
    session.watch(log, "job", "done", "-n", NS)
    session.run("wait", "job/done", "-n", NS, "--timeout", "1m")

    claim = session.run("details", "pvc", "rec-pv-claim", "-n", NS, "-o", "json")
    doc = json.loads(claim.stdout)
    assert doc["status"] == "healthy"
    assert (doc["related"]["volume"], doc["related"]["storageClass"]) == ([], [])
    assert len(doc["warnings"]) == 2, doc["warnings"]
    assert all("forbidden" in w for w in doc["warnings"]), doc["warnings"]
    assert claim.stderr.count("Warning: ") == 2
    table = session.run("details", "pvc", "rec-pv-claim", "-n", NS)
    assert "\nVolume: <none> (volume: forbidden: " in table.stdout, table.stdout  # the empty section says why
    assert "\nStorageClass: <none> (storageClass: forbidden: " in table.stdout, table.stdout

    secret = session.run("details", "secret", "creds", "-n", NS, expect=7)
    assert secret.stderr.startswith("error: forbidden: ")
    assert secret.stderr.count("\n") == 1
    session.run("details", "pv", "rec-pv", expect=7)

    events = [e for e in _plugin(_audit(log)) if e["user"]["username"] == f"system:serviceaccount:{NS}:viewer"]
    assert events
    assert {e["verb"] for e in events} <= READ
    _report("as a ServiceAccount with only the view ClusterRole", "audit-requests-viewer.txt", session.counts(events))


SECRETS = {
    "data": "e2e-secret-in-data",
    "stringData": "e2e-secret-in-string-data",
    "lastApplied": "e2e-secret-in-last-applied",
}


def test_secret_values_never_leave_the_process(audited: tuple[Cluster, Path], tmp_path: Path) -> None:
    """Values in data, stringData and the last-applied annotation, and a pod that mounts the Secret in a
    projected volume: no output, in any format or mode, nor the plugin's cache, holds them, raw or base64."""
    cluster, log = audited
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "distinctive", "namespace": NS, "labels": {"app": "secretive"}},
        "data": {"token": base64.b64encode(SECRETS["data"].encode()).decode()},
        "stringData": {"password": SECRETS["stringData"], "applied": SECRETS["lastApplied"]},
    }
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(secret))  # client-side: the last-applied annotation
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "mounts-secret", "namespace": NS, "labels": {"app": "secretive"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "busybox:1.36", "volumeMounts": [{"name": "s", "mountPath": "/s"}]}
            ],
            "volumes": [{"name": "s", "projected": {"sources": [{"secret": {"name": "distinctive"}}]}}],
        },
    }
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    applied = cluster.get("secret", "distinctive", NS)["metadata"]["annotations"]
    assert SECRETS["lastApplied"] in applied["kubectl.kubernetes.io/last-applied-configuration"]

    cache = tmp_path / "cache"
    session = Session(cluster, cache=cache)
    for fmt in ("table", "wide", "json", "yaml"):
        session.run("details", "secret", "distinctive", "-n", NS, "-o", fmt)
        session.run("details", "pod", "mounts-secret", "-n", NS, "-o", fmt)
        session.run("details", "secrets", "-n", NS, "-l", "app=secretive", "-o", fmt)
    session.run("details", "secrets", "-A", "-o", "json")
    session.watch(log, "secret", "distinctive", "-n", NS)
    session.run("wait", "secret/distinctive", "-n", NS, "--timeout", "1m", "-o", "json")
    session.run("wait", "pods", "-l", "app=secretive", "-n", NS, "--timeout", "1m", "-o", "yaml")

    cached = [p.read_bytes().decode(errors="replace") for p in cache.rglob("*") if p.is_file()]
    assert cached, "the plugin wrote its discovery cache there"
    haystack = "\n".join(session.printed + cached)
    assert "distinctive" in haystack
    for value in SECRETS.values():
        for form in (value, base64.b64encode(value.encode()).decode()):
            assert form not in haystack, f"{form!r} was printed or cached"

"""The gate for a whole rollout against a real API server: status that sees stuck pods, and `wait -f`.

A stuck pod is made honestly on every provider: its template names a node that
no agent manages, and its status is written through the API server's status
subresource, as a kubelet writes it (the server validates it). On kind, the
same gate then meets a real kubelet's ImagePullBackOff, CreateContainerConfigError
and CrashLoopBackOff.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.harness.k8s import VENV_BIN, Cluster, has_condition
from e2e.harness.templates import Template
from e2e.test_wait import EXIT_FAILED, finish, start_wait

AGENTLESS = "no-agent-here"  # no kwok, no kubelet: only these tests write its pods' status
IMAGE = "busybox:1.36"  # in the kind node image; kwok runs nothing
FAST = 30  # seconds from a pod's state to the gate's verdict (the issue's bar)


def _app(kind: str, name: str, ns: str, pod: dict[str, Any], **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    template = {"metadata": {"labels": labels}, "spec": {"terminationGracePeriodSeconds": 0, **pod}}
    body: dict[str, Any] = {**spec, "template": template}
    if kind != "Job":
        body["selector"] = {"matchLabels": labels}
    api = "batch/v1" if kind == "Job" else "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": body}


def _agentless(image: str = IMAGE, **pod: Any) -> dict[str, Any]:
    return {"nodeName": AGENTLESS, "containers": [{"name": "main", "image": image}], **pod}


def _pods(cluster: Cluster, ns: str, app: str, count: int = 1) -> list[str]:
    pods = cluster.wait("Pod", lambda ps: len(ps) >= count, namespace=ns, labels=f"app={app}", what=f"{count} pod(s)")
    return [p["metadata"]["name"] for p in sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"])]


def _kubelet_writes(
    cluster: Cluster, ns: str, pod: str, state: dict[str, Any], restarts: int = 0, ready: bool = False
) -> None:
    """The pod's status as a kubelet would write it, through the status subresource."""
    started = "running" in state or restarts > 0  # a container that ran (and crashed) makes the pod Running
    container = {
        "name": "main",
        "image": IMAGE,
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "started": "running" in state,
        "state": state,
    }
    conditions = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": _now()}]
    status = {
        "phase": "Running" if started else "Pending",
        "startTime": _now(),
        "conditions": conditions,
        "containerStatuses": [container],
    }
    cluster.kubectl(
        "patch", "pod", pod, "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps({"status": status})
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


CRASH = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=main"}}
PULL = {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "app:nope"'}}


def _write(directory: Path, objects: list[dict[str, Any]], cluster: Cluster) -> Path:
    """Manifests as a pipeline keeps them: one file per object (YAML, and one in JSON), in a directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, obj in enumerate(objects):
        obj = cluster.labelled(obj)
        name = f"{i:02d}-{obj['kind'].lower()}"
        if i % 2:
            (directory / f"{name}.json").write_text(json.dumps(obj))
        else:
            (directory / f"{name}.yaml").write_text(yaml.safe_dump(obj))
    return directory


def _rows(stdout: str) -> dict[str, list[str]]:
    """The summary after the last blank line: OBJECT -> [STATUS, TIME, REASON] (NAMESPACE dropped)."""
    table = stdout.rsplit("\n\n", 1)[-1].strip().splitlines()
    assert table[0].split() == ["OBJECT", "NAMESPACE", "STATUS", "TIME", "REASON"], stdout
    rows = {}
    for line in table[1:]:
        obj, _ns, status, took, reason = line.split(None, 4)
        rows[obj] = [status, took, reason]
    return rows


def test_wait_f_fails_fast_on_a_job_whose_pod_cannot_pull_its_image(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    settings = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns}}
    job = _app("Job", "migrate", ns, _agentless("app:nope", restartPolicy="Never"), backoffLimit=0)
    manifests = _write(tmp_path / "deploy", [settings, job], cluster)
    cluster.kubectl("apply", "-f", str(manifests))
    proc = start_wait(cluster, "-f", str(manifests), "--timeout", "3m")
    [pod] = _pods(cluster, ns, "migrate")
    _kubelet_writes(cluster, ns, pod, PULL)
    written = time.monotonic()
    code, stdout, stderr = finish(proc)
    assert code == EXIT_FAILED, (stdout, stderr)
    assert time.monotonic() - written < FAST
    reason = f'pod {pod}: container main: ImagePullBackOff (Back-off pulling image "app:nope")'
    assert stderr == f"error: 1 of 2 failed: jobs.batch/migrate -n {ns} failed: {reason}\n"
    assert stdout.startswith("Name:             migrate\n")
    assert f"Status Reason:    {reason}\n" in stdout
    rows = _rows(stdout)
    assert rows["jobs.batch/migrate"][0] == "failed"
    assert rows["jobs.batch/migrate"][2] == reason
    assert rows["configmaps/settings"][0] == "healthy"


def test_a_deployment_whose_current_pod_crash_loops_fails_its_wait(cluster: Cluster, ns: str) -> None:
    cluster.create(_app("Deployment", "web", ns, _agentless(), replicas=1))
    proc = start_wait(cluster, "deployment/web", "-n", ns, "--timeout", "3m")
    [pod] = _pods(cluster, ns, "web")
    _kubelet_writes(cluster, ns, pod, CRASH, restarts=3)
    written = time.monotonic()
    code, stdout, stderr = finish(proc)
    assert code == EXIT_FAILED, (stdout, stderr)
    assert time.monotonic() - written < FAST
    reason = f"pod {pod}: container main: CrashLoopBackOff (back-off 40s restarting failed container=main)"
    assert stderr == f"error: 1 of 1 failed: deployments.apps/web -n {ns} failed: {reason}\n"
    assert re.search(rf"^  {pod}\s+failed\s+Running\s+0/1\s+3\s", stdout, re.M), stdout
    doc = cluster.details_json("deployment", "web", "-n", ns)  # details says what wait said
    assert (doc["status"], doc["statusReason"]) == ("failed", reason)


def test_during_a_rollout_an_old_revisions_crash_looping_pod_does_not_fail_the_wait(cluster: Cluster, ns: str) -> None:
    cluster.create(_app("Deployment", "web", ns, _agentless(), replicas=1))
    [old] = _pods(cluster, ns, "web")
    _kubelet_writes(cluster, ns, old, CRASH, restarts=3)
    assert cluster.details_json("deployment", "web", "-n", ns)["status"] == "failed"  # the current revision
    rollout = {"spec": {"template": {"metadata": {"annotations": {"cyclops.e2e/revision": "2"}}}}}
    cluster.kubectl("patch", "deployment", "web", "-n", ns, "--type=merge", "-p", json.dumps(rollout))
    proc = start_wait(cluster, "deployment/web", "-n", ns, "--timeout", "3m")
    new = next(p for p in _pods(cluster, ns, "web", 2) if p != old)
    doc = cluster.details_json("deployment", "web", "-n", ns)
    assert doc["status"] == "progressing", doc["statusReason"]  # the old pod crash-loops still
    assert proc.poll() is None, finish(proc)
    _kubelet_writes(cluster, ns, new, {"running": {"startedAt": _now()}}, ready=True)
    code, stdout, stderr = finish(proc)
    assert code == 0, (stdout, stderr)
    assert stdout == f"deployments.apps/web -n {ns} healthy: 1/1 available and updated\n"


def _healthy_rollout(ns: str, name: str) -> list[dict[str, Any]]:
    """A ConfigMap, a Deployment, a claim the cluster provisions and the Job that mounts it."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-settings"}, "data": {"a": "1"}},
        _app(
            "Deployment",
            f"{name}-web",
            ns,
            {"containers": [{"name": "main", "image": IMAGE, "command": ["sleep", "3600"]}]},
            replicas=1,
        ),
    ]
    for template, params in (("pvc-dynamic", {"name": f"{name}-data"}), ("job-pvc", {"claim": f"{name}-data"})):
        objects += Template.load(template).render(namespace=ns, **{"name": f"{name}-writer", **params})
    for obj in objects:
        obj["metadata"].pop("namespace", None)  # from -n, as a chart's manifests leave it
    return objects


def test_wait_f_over_a_directory_of_mixed_kinds_exits_0_with_the_summary_and_so_does_stdin(
    cluster: Cluster, ns: str, name: str, tmp_path: Path
) -> None:
    manifests = _write(tmp_path / "app", _healthy_rollout(ns, name), cluster)
    # The wait starts before the objects exist, as in a pipeline that applies in the background.
    proc = start_wait(cluster, "-f", str(manifests), "-n", ns, "--timeout", "3m", "--junit", str(tmp_path / "w.xml"))
    cluster.kubectl("apply", "-n", ns, "-f", str(manifests))
    code, stdout, stderr = finish(proc, timeout=240)
    assert code == 0, (stdout, stderr)
    rows = _rows(stdout)
    assert set(rows) == {
        f"configmaps/{name}-settings",
        f"deployments.apps/{name}-web",
        f"persistentvolumeclaims/{name}-data",
        f"jobs.batch/{name}-writer",
    }
    assert {r[0] for r in rows.values()} == {"healthy"}, stdout
    assert rows[f"jobs.batch/{name}-writer"][2].startswith("Complete=True")
    assert rows[f"persistentvolumeclaims/{name}-data"][2].startswith("phase Bound to pvc-")
    assert '<testsuite name="kubectl cyclops wait" tests="4" failures="0"' in (tmp_path / "w.xml").read_text()

    stream = "---\n".join(p.read_text() if p.suffix == ".yaml" else yaml.safe_dump(json.loads(p.read_text()))
                          for p in sorted(manifests.iterdir()))  # fmt: skip
    cmd = [str(VENV_BIN / "kubectl"), *cluster._context_args(), "cyclops", "wait", "-f", "-", "-n", ns]
    piped = subprocess.run(cmd, input=stream, env=cluster.env(), capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert set(_rows(piped.stdout)) == set(rows)


def test_wait_f_for_deleted_waits_until_everything_is_gone(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    objects = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"gone-{i}", "namespace": ns}} for i in range(3)
    ]
    manifests = _write(tmp_path / "gone", objects, cluster)
    cluster.kubectl("apply", "-f", str(manifests))
    proc = start_wait(cluster, "-f", str(manifests), "--for", "deleted", "--timeout", "2m")
    cluster.kubectl("delete", "configmap", "gone-0", "gone-1", "-n", ns)
    assert proc.poll() is None, finish(proc)
    cluster.kubectl("delete", "configmap", "gone-2", "-n", ns)
    code, stdout, stderr = finish(proc)
    assert code == 0, (stdout, stderr)
    assert {r[0] for r in _rows(stdout).values()} == {"absent"}


@pytest.fixture
def kubelet(provider_state: dict[str, Any]) -> None:
    if provider_state.get("provider") != "kind":
        pytest.skip("needs a real kubelet and container runtime (--cluster=kind)")


@pytest.mark.usefixtures("kubelet")
@pytest.mark.parametrize(
    ("case", "pod", "reasons"),
    [
        ("pull", {"containers": [{"name": "main", "image": "registry.invalid/cyclops/nope:1"}]},
         ("ErrImagePull", "ImagePullBackOff")),
        ("config", {"containers": [{"name": "main", "image": IMAGE, "command": ["sleep", "3600"],
                    "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope"}}}]}]},
         ("CreateContainerConfigError",)),
        ("crash", {"containers": [{"name": "main", "image": IMAGE, "command": ["sh", "-c", "exit 1"]}]},
         ("CrashLoopBackOff",)),
    ],
    ids=["ImagePullBackOff", "CreateContainerConfigError", "CrashLoopBackOff"],
)  # fmt: skip
def test_a_real_kubelets_stuck_pod_fails_the_deployment_gate(
    cluster: Cluster, ns: str, tmp_path: Path, case: str, pod: dict[str, Any], reasons: tuple[str, ...]
) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
              "stringData": {"token": "t"}}  # fmt: skip
    # minReadySeconds: a container that crashes at once is Ready for a moment, and the Deployment would be
    # available before its first back-off (as it would be for kubectl rollout status)
    app = _app("Deployment", case, ns, pod, replicas=1, minReadySeconds=60)
    manifests = _write(tmp_path / case, [secret, app], cluster)
    started = time.monotonic()
    cluster.kubectl("apply", "-f", str(manifests))
    code, stdout, stderr = finish(start_wait(cluster, "-f", str(manifests), "--timeout", "3m"))
    assert code == EXIT_FAILED, (stdout, stderr)
    assert time.monotonic() - started < 60 + FAST  # a pull, or a first crash and its back-off, then the verdict
    head = f"error: 1 of 2 failed: deployments.apps/{case} -n {ns} failed: "
    said = re.fullmatch(rf"{re.escape(head)}pod ({case}-\S+): container main: (\w+)( \(.*\))?\n", stderr)
    assert said, stderr
    assert said.group(2) in reasons
    assert _rows(stdout)[f"deployments.apps/{case}"][0] == "failed"
    real = cluster.get("pod", said.group(1), ns)["status"]["containerStatuses"][0]
    assert real["state"].get("waiting", {}).get("reason") in reasons or real["restartCount"] > 0
    assert has_condition("Progressing")(cluster.get("deployment", case, ns))  # the controller still waits

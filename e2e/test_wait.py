"""`kubectl cyclops wait` against a real API server: success, fail-fast, timeout, lists, claims, deletion, CRDs."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from typing import Any

from e2e.harness.k8s import VENV_BIN, Cluster, condition, has_condition

EXIT_FAILED, EXIT_TIMEOUT = 10, 11


def start_wait(cluster: Cluster, *args: str) -> subprocess.Popen[str]:
    """`kubectl cyclops wait ...` in the background, as a CI step runs it."""
    cmd = [str(VENV_BIN / "kubectl"), *cluster._context_args(), "cyclops", "wait", *args]
    return subprocess.Popen(cmd, env=cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout, stderr


def test_wait_returns_once_the_job_completes_and_json_is_the_final_document(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="ok", namespace=ns)
    inv = cluster.cyclops("wait", "job/ok", "-n", ns, "--timeout", "2m", "-o", "json")
    assert inv.returncode == 0, inv.stderr
    assert has_condition("Complete")(cluster.get("job", "ok", ns))
    doc = inv.json()
    assert (doc["name"], doc["status"], doc["fields"]["succeeded"]) == ("ok", "healthy", 1)
    assert [p["fields"]["phase"] for p in doc["related"]["pods"]] == ["Succeeded"]


def test_a_failing_job_ends_the_wait_within_seconds_naming_pods_and_exit_codes(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="fails", namespace=ns, backoff_limit=0, fail="true", exit_code=3)
    inv = cluster.cyclops("wait", "job/fails", "-n", ns, "--timeout", "5m")
    ended = datetime.now(UTC)
    assert inv.returncode == EXIT_FAILED, inv.stderr
    job = cluster.get("job", "fails", ns)
    failed = condition(job, "FailureTarget") or condition(job, "Failed")
    assert failed is not None
    since = datetime.fromisoformat(failed["lastTransitionTime"].replace("Z", "+00:00"))
    assert (ended - since).total_seconds() < 10, "the wait ended long after the Job failed"
    assert inv.stderr.startswith("error: 1 of 1 failed: jobs.batch/fails"), inv.stderr
    assert inv.stderr.count("\n") == 1
    pods = cluster.kubectl("get", "pods", "-n", ns, "-l", "job-name=fails", "-o", "name").stdout.split()
    assert len(pods) == 1  # backoffLimit 0: the first failure exhausts it
    for pod in pods:
        assert pod.split("/", 1)[1] in inv.stdout
    assert inv.stdout.count("terminated (Error, exit 3)") == 1, inv.stdout


def test_a_suspended_job_times_out_with_its_last_state(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="paused", namespace=ns, suspend="true")
    started = time.monotonic()
    inv = cluster.cyclops("wait", "job", "paused", "-n", ns, "--timeout", "5s")
    elapsed = time.monotonic() - started
    assert inv.returncode == EXIT_TIMEOUT, inv.stderr
    assert 5 <= elapsed < 15, elapsed
    assert inv.stderr.startswith("error: timed out after 5s waiting for healthy: 1 of 1 not healthy: jobs.batch/paused")
    assert "Status:           unknown" in inv.stdout
    assert "Suspend:          true" in inv.stdout


def test_wait_over_a_selector_waits_for_every_job(cluster: Cluster, ns: str) -> None:
    for name in ("a", "b"):
        cluster.apply("job", name=name, namespace=ns)
    cluster.apply("job", name="c", namespace=ns, suspend="true")
    cluster.kubectl("label", "job", "a", "b", "c", "app=batch", "-n", ns)
    proc = start_wait(cluster, "jobs", "-l", "app=batch", "-n", ns, "--timeout", "2m")
    for name in ("a", "b"):
        cluster.wait_one("Job", name, has_condition("Complete"), namespace=ns)
    # a and b are done, c is suspended: the wait must still be waiting.
    cluster.wait_one("Job", "c", has_condition("Suspended"), namespace=ns)
    assert proc.poll() is None, finish(proc)
    cluster.kubectl("patch", "job", "c", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    code, stdout, stderr = finish(proc)
    assert code == 0, stderr
    assert has_condition("Complete")(cluster.get("job", "c", ns))
    expected = []
    for name in ("a", "b", "c"):  # the reason as this server writes it (1.31 added CompletionsReached)
        reason = (condition(cluster.get("job", name, ns), "Complete") or {}).get("reason")
        expected.append(f"jobs.batch/{name} -n {ns} healthy: Complete=True" + (f" ({reason})" if reason else ""))
    assert stdout.splitlines() == expected


def test_wait_for_a_claim_to_be_bound(cluster: Cluster, ns: str, name: str) -> None:
    cluster.apply("pv-hostpath", name=name, namespace=ns)
    inv = cluster.cyclops("wait", "pvc", f"{name}-claim", "-n", ns, "--timeout", "60s")
    assert inv.returncode == 0, inv.stderr
    assert cluster.get("pvc", f"{name}-claim", ns)["status"]["phase"] == "Bound"
    assert inv.stdout == f"persistentvolumeclaims/{name}-claim -n {ns} healthy: phase Bound to {name}\n"


def test_wait_for_deleted_returns_once_the_job_is_gone(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="old", namespace=ns, suspend="true")
    hold = {"metadata": {"finalizers": ["cyclops.e2e/hold"]}}
    cluster.kubectl("patch", "job", "old", "-n", ns, "--type=merge", "-p", json.dumps(hold))
    cluster.kubectl("delete", "job", "old", "-n", ns, "--wait=false")
    # The finalizer holds it: it exists, terminating, when the wait starts.
    once = cluster.cyclops("wait", "job/old", "-n", ns, "--for", "deleted", "--timeout", "0")
    assert once.returncode == EXIT_TIMEOUT, once.stderr
    assert "progressing: terminating" in once.stderr
    proc = start_wait(cluster, "job/old", "-n", ns, "--for", "deleted", "--timeout", "2m")
    release: dict[str, Any] = {"metadata": {"finalizers": None}}
    cluster.kubectl("patch", "job", "old", "-n", ns, "--type=merge", "-p", json.dumps(release))
    code, stdout, stderr = finish(proc)
    assert (code, stdout, stderr) == (0, "jobs.batch/old deleted\n", "")
    assert cluster.kubectl("get", "job", "old", "-n", ns, check=False).returncode != 0


def test_wait_for_a_crd_to_be_established(cluster: Cluster, ns: str) -> None:
    group = f"{ns}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"things.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }
    cluster.create(crd)  # labelled with the run's id; deleted by the ns fixture's cleanup
    inv = cluster.cyclops("wait", "crd", f"things.{group}", "--timeout", "60s")
    assert inv.returncode == 0, inv.stderr
    assert inv.stdout == (
        f"customresourcedefinitions.apiextensions.k8s.io/things.{group} healthy: "
        "Established=True (InitialNamesAccepted)\n"
    )
    assert has_condition("Established")(cluster.get("crd", f"things.{group}"))


def test_details_watch_prints_each_state_until_ctrl_c(cluster: Cluster, ns: str) -> None:
    """`details --watch` runs on the same informer: suspended, then resumed until complete, then Ctrl-C.

    Each new status is rendered from stores synced up to the event that decided it: the server answers the
    lists at least as new as that event (resourceVersionMatch=NotOlderThan), as the debug lines show."""
    cluster.apply("job", name="watched", namespace=ns, suspend="true")
    cluster.wait_one("Job", "watched", has_condition("Suspended"), namespace=ns)
    cmd = [str(VENV_BIN / "kubectl"), *cluster._context_args(), "cyclops", "details", "job", "watched", "-n", ns]
    env = {**cluster.env(), "KUBECTL_CYCLOPS_DEBUG": "1"}
    proc = subprocess.Popen(
        [*cmd, "--watch", "-o", "json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = json.JSONDecoder().raw_decode(_read_document(proc.stdout))[0]  # the first render: before any change
    assert (first["status"], first["fields"]["suspend"]) == ("unknown", True)
    cluster.kubectl("patch", "job", "watched", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    last = first
    while last["status"] != "healthy":
        last = json.JSONDecoder().raw_decode(_read_document(proc.stdout))[0]
    proc.send_signal(signal.SIGINT)
    code, _, stderr = finish(proc)
    assert code == 0, stderr
    assert has_condition("Complete")(cluster.get("job", "watched", ns))
    assert [p["fields"]["phase"] for p in last["related"]["pods"]] == ["Succeeded"]
    synced = re.compile(r"sync: \d+ of \d+ stores behind version \d+: listed again")
    assert stderr, "no store was behind when the status changed"
    assert all(synced.fullmatch(line) for line in stderr.splitlines()), stderr


def _read_document(stream: Any, timeout: float = 60) -> str:
    """One pretty-printed JSON document from a stream (lines up to the closing brace at column 0).

    Lines are read by a helper thread, so a silent process fails the test at the deadline instead of hanging it.
    """
    lines: queue.Queue[str] = getattr(stream, "lines", None) or queue.Queue()
    if not hasattr(stream, "lines"):
        stream.lines = lines
        threading.Thread(target=lambda: [lines.put(line) for line in iter(stream.readline, "")], daemon=True).start()
    deadline = time.monotonic() + timeout
    document = []
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            raise AssertionError(f"no document within {timeout}s: {''.join(document)[-500:]}") from None
        document.append(line)
        if line.rstrip("\n") == "}":
            return "".join(document)

"""Re-record the unit tests' API answers from a fresh local cluster: `make record`.

Starts the local provider, creates the objects of tests/recording-fixtures.yaml
and the PV and Job fixture templates in namespace `rec`, waits until each has
settled, then runs every scenario below through the real plugin while
recording what the API server answered.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from click.testing import CliRunner

from e2e.harness.k8s import Cluster, has_condition, phase
from e2e.harness.local import LocalCluster
from kubectl_cyclops import cli, credentials, kube, paging, transport
from kubectl_cyclops.kubeconfig import resolve
from tests.replay import DISCOVERY, RECORDINGS, RecordingTransport

NS = "rec"
PAGED = 2  # the page size the *-paged scenarios are recorded (and replayed) with, to exercise `continue`
MANY = 6  # extra bound PVs, each with its claim and class, for list-pvs-paged
BURST = 100  # changes to one Job in a burst, for wait-job-burst
AMONG = 500  # Jobs, of which one changes in a burst, for wait-one-of-many
RAN = 100  # Jobs run to completion, the pod of one of which changes in a burst, for wait-pods-of-one
HERE = Path(__file__).parent

# name: (arguments, expected status or None for lists and errors)
SCENARIOS: dict[str, tuple[list[str], str | None]] = {
    "pv": (["details", "pv", "rec-pv"], "healthy"),
    "pvc": (["details", "pvc", "rec-pv-claim", "-n", NS], "healthy"),
    "storageclass": (["details", "storageclass", "rec-pv-class"], "healthy"),
    "pv-released": (["details", "persistentvolumes/rec-gone"], "progressing"),
    "pv-local": (["details", "pv", "rec-local"], "healthy"),
    "pvc-pending": (["details", "pvc", "rec-pending", "-n", NS], "progressing"),
    "pvc-dynamic": (["details", "pvc", "rec-dynamic", "-n", NS], "healthy"),
    "pv-dynamic": (["details", "pv", "{dynamic_pv}"], "healthy"),
    "pvc-waiting": (["details", "pvc", "rec-waiting", "-n", NS], "progressing"),
    "pvc-provisioning-failed": (["details", "pvc", "rec-toobig", "-n", NS], "failed"),
    "storageclass-standard": (["details", "storageclass", "standard"], "healthy"),
    "storageclass-failed-claim": (["details", "storageclass", "rec-toobig"], "healthy"),
    "pod-failed-claim": (["details", "pod", "stuck", "-n", NS], "failed"),
    "pvc-ephemeral": (["details", "pvc", "scratchy-scratch", "-n", NS], "healthy"),
    "job-complete": (["details", "job", "done", "-n", NS], "healthy"),
    "job-failed": (["details", "jobs.batch", "fails", "-n", NS], "failed"),
    "job-suspended": (["details", "job/paused", "-n", NS], "unknown"),
    "job-indexed": (["details", "job", "indexed", "-n", NS], "healthy"),
    "job-from-cronjob": (["details", "job", "tick-manual", "-n", NS], "healthy"),
    "cronjob": (["details", "cj", "tick", "-n", NS], "healthy"),
    "pod": (["details", "pod", "{pod}", "-n", NS], "healthy"),
    "deployment": (["details", "deploy", "web", "-n", NS], "healthy"),
    "replicaset": (["details", "rs", "{replicaset}", "-n", NS], "healthy"),
    "statefulset": (["details", "sts", "db", "-n", NS], "healthy"),
    "daemonset": (["details", "ds", "agent", "-n", NS], "healthy"),
    "service": (["details", "svc", "web", "-n", NS], "healthy"),
    "configmap": (["details", "cm", "settings", "-n", NS], "healthy"),
    "secret": (["details", "secret", "creds", "-n", NS], "healthy"),
    "role": (["details", "role", "reader", "-n", NS], "healthy"),
    "clusterrole": (["details", "clusterrole", "rec-reader"], "healthy"),
    "rolebinding": (["details", "rolebinding", "reader-nobody", "-n", NS], "healthy"),
    "clusterrolebinding": (["details", "clusterrolebinding", "rec-reader-everywhere"], "healthy"),
    "networkpolicy": (["details", "netpol", "web-ingress", "-n", NS], "healthy"),
    "ingress": (["details", "ing", "web", "-n", NS], "progressing"),
    "poddisruptionbudget": (["details", "pdb", "web", "-n", NS], "healthy"),
    "horizontalpodautoscaler": (["details", "hpa", "db", "-n", NS], "failed"),
    "customresourcedefinition": (["details", "crd", "crontabs.stable.example.com"], "healthy"),
    "generic-namespace": (["details", "namespace", NS], "healthy"),
    "pod-containers": (["details", "pod", "envy", "-n", NS], "healthy"),
    "pod-restarted": (["details", "pod", "crashy", "-n", NS], "failed"),
    "pod-terminating": (["details", "pod", "leaving", "-n", NS], "progressing"),
    "crd-generic": (["details", "crontabs", "nightly", "-n", NS], "unknown"),
    # status through relations: pods that cannot start or keep crashing (stuck_workloads)
    "job-stuck": (["details", "job", "pull-fails", "-n", NS], "failed"),
    "deployment-crashloop": (["details", "deploy", "crashloop", "-n", NS], "failed"),
    "deployment-rollout": (["details", "deploy", "rolling", "-n", NS], "progressing"),
    "replicaset-crashloop": (["details", "rs", "{crashloop_rs}", "-n", NS], "failed"),
    "statefulset-crashloop": (["details", "sts", "crashdb", "-n", NS], "failed"),
    "daemonset-stuck": (["details", "ds", "stuck-agent", "-n", NS], "failed"),
    "crd-user-map": (["details", "ct/nightly", "-n", NS, "--field-maps", "tests/crd-fieldmaps"], "healthy"),
    "list-jobs": (["details", "jobs", "-n", NS], None),
    "list-jobs-paged": (["details", "jobs", "-n", NS], None),  # recorded with PAGE_SIZE = PAGED
    "list-pods-selector": (["details", "pods", "-A", "-l", "app=web"], None),
    "list-empty": (["details", "jobs", "-n", NS, "-l", "app=none"], None),
    "list-configmaps": (["details", "configmaps", "-A"], None),  # tests/test_faults.py pages it, and expires it
    # recorded with PAGE_SIZE = PAGED: the PVs' claims and classes are read in batched lists
    "list-pvs-paged": (["details", "pv", "-l", "app.kubernetes.io/created-by=cyclops-e2e"], None),
    # recorded with PAGE_SIZE = PAGED: every page of classes shares one list of PVs and one of claims
    "list-storageclasses-paged": (["details", "storageclass"], None),
    "error-not-found": (["details", "job", "nope", "-n", NS], None),
    "error-bad-selector": (["details", "pods", "-n", NS, "-l", "a in ("], None),
    "error-forbidden": (["details", "job", "done", "-n", NS], None),
    "error-unauthorized": (["details", "job", "done", "-n", NS], None),
}


def prepare(c: Cluster) -> dict[str, str]:
    c.kubectl("create", "namespace", NS)
    c.apply("pv-hostpath", name="rec-pv", namespace=NS, size="10Gi")
    c.apply("pv-hostpath", name="rec-gone", namespace=NS)
    c.apply("pv-local", name="rec-local", node=c.first_node())
    c.apply("pvc-pending", name="rec-pending", namespace=NS)
    c.apply("pvc-dynamic", name="rec-dynamic", namespace=NS)
    c.apply("job-pvc", name="rec-user", namespace=NS, claim="rec-dynamic")
    c.apply("pvc-dynamic", name="rec-waiting", namespace=NS)
    c.apply("storageclass-csi", name="rec-toobig", namespace=NS, size="20Gi")
    stuck = {  # a pod waiting for the claim its driver refuses to provision
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stuck", "namespace": NS},
        "spec": {
            "containers": [{"name": "app", "image": "busybox:1.36"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "rec-toobig"}}],
        },
    }
    c.kubectl("create", "-f", "-", stdin=json.dumps(stuck))
    scratch = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}
    scratchy = {  # a generic ephemeral volume: its claim scratchy-scratch is owned by the pod, named by no claimName
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "scratchy", "namespace": NS},
        "spec": {
            "containers": [{"name": "app", "image": "busybox:1.36"}],
            "volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": scratch}}}],
        },
    }
    c.kubectl("create", "-f", "-", stdin=json.dumps(scratchy))
    for i in range(MANY):
        c.apply("pv-hostpath", name=f"rec-many-{i}", namespace=NS)
    c.apply("job", name="done", namespace=NS, completions=2, parallelism=2)
    c.apply("job", name="fails", namespace=NS, backoff_limit=1, fail="true", exit_code=3)
    c.apply("job", name="paused", namespace=NS, suspend="true")
    c.apply("job", name="indexed", namespace=NS, completions=3, parallelism=3, completion_mode="Indexed")
    c.apply("cronjob", name="tick", namespace=NS, schedule="0 0 1 1 *")
    c.kubectl("create", "job", "tick-manual", "--from=cronjob/tick", "-n", NS)
    c.kubectl("apply", "--server-side", "-f", str(HERE / "recording-fixtures.yaml"))
    c.kubectl("apply", "--server-side", "-f", str(HERE / "crd.yaml"))
    c.kubectl("wait", "--for=condition=Established", "crd/crontabs.stable.example.com", "--timeout=60s")
    c.kubectl("apply", "--server-side", "-f", str(HERE / "crontab.yaml"))
    c.kubectl(
        "create",
        "clusterrolebinding",
        "rec-nobody-discovery",
        "--clusterrole=system:discovery",
        "--serviceaccount=rec:nobody",
    )

    c.wait_one("PersistentVolume", "rec-gone", phase("Bound"))
    c.kubectl("delete", "pvc", "rec-gone-claim", "-n", NS)
    c.wait_one("PersistentVolume", "rec-gone", phase("Released"))
    c.wait_one("PersistentVolume", "rec-pv", phase("Bound"))
    for i in range(MANY):
        c.wait_one("PersistentVolume", f"rec-many-{i}", phase("Bound"))
    for job in ("done", "indexed", "tick-manual"):
        c.wait_one("Job", job, has_condition("Complete"), namespace=NS)
    c.wait_one("Job", "fails", has_condition("Failed"), namespace=NS, timeout=90)
    c.wait_one("Job", "paused", has_condition("Suspended"), namespace=NS)
    c.wait_event(NS, "rec-pending")
    c.wait_one("Job", "rec-user", has_condition("Complete"), namespace=NS)
    c.wait_one("PersistentVolumeClaim", "scratchy-scratch", phase("Bound"), namespace=NS, timeout=60)
    c.wait_one("Pod", "scratchy", phase("Running"), namespace=NS, timeout=60)
    for claim, reason in (("rec-waiting", "WaitForFirstConsumer"), ("rec-toobig", "ProvisioningFailed")):
        c.wait_event(NS, claim, reason)
    c.wait("Pod", lambda ps: len(ps) == 2 and all(phase("Running")(p) for p in ps), namespace=NS, labels="app=web")
    c.kubectl("rollout", "status", "deployment/web", "-n", NS, "--timeout=60s")
    c.kubectl("rollout", "status", "statefulset/db", "-n", NS, "--timeout=60s")
    c.kubectl("rollout", "status", "daemonset/agent", "-n", NS, "--timeout=60s")
    c.wait("Pod", lambda ps: bool(ps) and phase("Running")(ps[0]), namespace=NS, labels="app=envy")
    agentless_pods(c)
    broken = stuck_workloads(c)
    c.wait_one("PodDisruptionBudget", "web", lambda o: o.get("status", {}).get("currentHealthy") == 2, namespace=NS)
    c.wait_one("HorizontalPodAutoscaler", "db", has_condition("ScalingActive", "False"), namespace=NS, timeout=90)
    pods = c.kubectl("get", "pods", "-n", NS, "-l", "job-name=done", "-o", "name").stdout.split()
    rs = c.kubectl("get", "rs", "-n", NS, "-l", "app=web", "-o", "name").stdout.split()
    dynamic_pv = c.get("pvc", "rec-dynamic", NS)["spec"]["volumeName"]
    return {"pod": pods[0].split("/", 1)[1], "replicaset": rs[0].split("/", 1)[1], "dynamic_pv": dynamic_pv, **broken}


AGENTLESS = "no-agent-here"  # a node name no kwok or kubelet manages: only this script writes these pods' status


def agentless_pods(c: Cluster) -> None:
    """A pod whose container restarted after failing (its status written as a kubelet writes it, through
    the status subresource, which the API server validates), and a pod held in deletion by a finalizer."""
    image = "busybox:1.36"
    for name, extra in (("crashy", {}), ("leaving", {"finalizers": ["cyclops.e2e/hold"]})):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, **extra},
            "spec": {"nodeName": AGENTLESS, "containers": [{"name": "app", "image": image}]},
        }
        c.kubectl("create", "-f", "-", stdin=json.dumps(pod))
    started = "2026-11-22T04:00:00Z"
    restarted = {
        "name": "app",
        "image": image,
        "imageID": "",
        "ready": False,
        "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s restarting failed container"}},
        "lastState": {
            "terminated": {
                "exitCode": 137,
                "reason": "OOMKilled",
                "startedAt": started,
                "finishedAt": "2026-11-22T04:00:30Z",
            }
        },
    }
    status = {"status": {"phase": "Running", "startTime": started, "containerStatuses": [restarted]}}
    c.kubectl("patch", "pod", "crashy", "-n", NS, "--subresource=status", "--type=merge", "-p", json.dumps(status))
    c.kubectl("delete", "pod", "leaving", "-n", NS, "--wait=false")


IMAGE = "busybox:1.36"


def _workload(kind: str, name: str, pod_spec: dict[str, Any], **spec: Any) -> dict[str, Any]:
    api = "batch/v1" if kind == "Job" else "apps/v1"
    labels = {"app": name}
    selector = {} if kind == "Job" else {"selector": {"matchLabels": labels}}
    template = {"metadata": {"labels": labels}, "spec": pod_spec}
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": {**spec, **selector, "template": template},
    }


def _pod_status(c: Cluster, pod: str, container: str, state: dict[str, Any], pod_phase: str = "Pending") -> None:
    """A pod's status as a kubelet writes it, through the status subresource (the API server validates it)."""
    restarts = 3 if "CrashLoopBackOff" in json.dumps(state) else 0
    status = {
        "name": container,
        "image": IMAGE,
        "imageID": "",
        "ready": False,
        "restartCount": restarts,
        "state": state,
    }
    doc = {"status": {"phase": pod_phase, "startTime": "2026-11-22T04:00:00Z", "containerStatuses": [status]}}
    c.kubectl("patch", "pod", pod, "-n", NS, "--subresource=status", "--type=merge", "-p", json.dumps(doc))


def _pods_of(c: Cluster, app: str, count: int = 1) -> list[str]:
    pods = c.wait("Pod", lambda ps: len(ps) >= count, namespace=NS, labels=f"app={app}")
    return sorted(p["metadata"]["name"] for p in pods)


def stuck_workloads(c: Cluster) -> dict[str, str]:
    """Workloads whose pods cannot start or keep crashing, on a node no agent manages (a Node object, tainted so
    that nothing else lands there), their status written as a kubelet writes it: a Job whose pod cannot pull
    its image, a crash-looping Deployment (and its ReplicaSet), one rolling out from a crash-looping revision
    to a new one, a crash-looping StatefulSet, and a DaemonSet whose pod lacks its ConfigMap."""
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": AGENTLESS, "labels": {"cyclops-e2e/agentless": "true"}},
        "spec": {"taints": [{"key": "cyclops-e2e/agentless", "effect": "NoSchedule"}]},
    }
    c.kubectl("create", "-f", "-", stdin=json.dumps(node))
    room = {"pods": "10", "cpu": "1", "memory": "1Gi"}
    c.kubectl(
        "patch", "node", AGENTLESS, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"capacity": room, "allocatable": room}}),
    )  # fmt: skip
    bound = {"nodeName": AGENTLESS, "containers": [{"name": "main", "image": IMAGE}]}
    objects = [
        _workload(
            "Job",
            "pull-fails",
            {**bound, "restartPolicy": "Never", "containers": [{"name": "main", "image": "app:nope"}]},
        ),
        _workload("Deployment", "crashloop", bound, replicas=1),
        _workload("Deployment", "rolling", bound, replicas=1),
        _workload("StatefulSet", "crashdb", bound, replicas=1, serviceName="crashdb"),
        _workload(
            "DaemonSet",
            "stuck-agent",
            {
                "nodeSelector": {"cyclops-e2e/agentless": "true"},
                "tolerations": [{"operator": "Exists"}],
                "containers": [
                    {"name": "main", "image": IMAGE, "envFrom": [{"configMapRef": {"name": "agent-config"}}]}
                ],
            },
        ),
    ]
    c.kubectl("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    crash = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=main"}}
    [pod] = _pods_of(c, "pull-fails")
    _pod_status(
        c, pod, "main", {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "app:nope"'}}
    )
    for app in ("crashloop", "rolling", "crashdb"):
        [pod] = _pods_of(c, app)
        _pod_status(c, pod, "main", crash, "Running")
    [pod] = _pods_of(c, "stuck-agent")
    missing = {"waiting": {"reason": "CreateContainerConfigError", "message": 'configmap "agent-config" not found'}}
    _pod_status(c, pod, "main", missing)
    # A new revision of `rolling`: its new pod waits (nothing writes its status) while the old one crash-loops.
    c.kubectl("patch", "deployment", "rolling", "-n", NS, "--type=merge",
              "-p", '{"spec":{"template":{"metadata":{"annotations":{"cyclops.e2e/revision":"2"}}}}}')  # fmt: skip
    _pods_of(c, "rolling", 2)
    c.wait_one("Deployment", "rolling", lambda d: d.get("status", {}).get("updatedReplicas") == 1, namespace=NS)
    rs = c.kubectl("get", "rs", "-n", NS, "-l", "app=crashloop", "-o", "name").stdout.split()
    return {"crashloop_rs": rs[0].split("/", 1)[1]}


def run(api: kube.KubeApi, argv: list[str], cache: Path) -> Any:
    with mock.patch.object(kube, "connect", return_value=api):
        return CliRunner().invoke(cli.cli, [*argv, "--cache-dir", str(cache), "-o", "json"])


def recording_api(c: Cluster, token: str | None = None) -> tuple[kube.KubeApi, RecordingTransport]:
    """A KubeApi to the cluster whose transport keeps every answer; with `token`, as that bearer instead."""
    target = resolve(str(c.kubeconfig), None)
    if token is not None:
        target = dataclasses.replace(target, cert_data=None, key_data=None, token=token)
    headers, extra = credentials.headers_for(target, None, None)
    rec = RecordingTransport(transport.http_transport(target, headers, extra))
    return kube.KubeApi(target.server, target.namespace, rec, 10), rec


def record(c: Cluster, name: str, argv: list[str], expect: str | None, token: str | None = None) -> None:
    api, rec = recording_api(c, token)
    result = run(api, argv, RECORDINGS / ".cache" / name)
    discovery = {
        k: v for k, v in rec.answers.items() if k.startswith(("GET /api (", "GET /apis (")) and v["status"] == 200
    }
    if discovery:
        DISCOVERY.write_text(json.dumps(discovery, indent=1, sort_keys=True) + "\n")
    answers = {k: v for k, v in rec.answers.items() if k not in discovery}
    doc = {
        "argv": argv,
        "expect": expect,
        "exit_code": result.exit_code,
        "host": api.host,
        "namespace": api.namespace,
        "phases": [answers],
    }
    (RECORDINGS / f"{name}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"recorded {name}: exit {result.exit_code}, {len(answers)} answers", file=sys.stderr)


def record_informer(c: Cluster, name: str, argv: list[str], act: Callable[[], None] = lambda: None) -> None:
    """Run a `wait` through the plugin's informer, acting on the cluster once its watches are open.

    Keeps the first answer to each list and every watch's events: replaying them
    replays the wait, and `details --watch` over the same scopes.
    """
    api, rec = recording_api(c)
    result: dict[str, Any] = {}
    waiting = threading.Thread(target=lambda: result.update(r=run(api, argv, RECORDINGS / ".cache" / name)))
    waiting.start()
    deadline, opened = time.monotonic() + 30, -1
    while len(rec.streams) != opened:  # until no new watch opened for a second: the informer is synced
        assert time.monotonic() < deadline, f"{name}: the informer did not settle"
        opened = len(rec.streams)
        waiting.join(timeout=1)
    act()
    waiting.join(timeout=300)
    discovery = json.loads(DISCOVERY.read_text())
    doc = {
        "argv": argv,
        "expect": None,
        "exit_code": result["r"].exit_code,
        "host": api.host,
        "namespace": api.namespace,
        "phases": [{k: v for k, v in rec.answers.items() if k not in discovery}],
        "streams": rec.streams,
    }
    (RECORDINGS / f"{name}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    events = sum(len(v) for v in rec.streams.values())
    print(
        f"recorded {name}: exit {result['r'].exit_code}, {len(rec.streams)} watches, {events} events", file=sys.stderr
    )


def record_waits(c: Cluster) -> None:
    """A Job resumed until it completes; one that fails; one suspended past the timeout; a burst, then deletion."""
    c.apply("job", name="watched", namespace=NS, suspend="true")
    c.wait_one("Job", "watched", has_condition("Suspended"), namespace=NS)
    resume = '{"spec":{"suspend":false}}'
    record_informer(
        c,
        "wait-job-complete",
        ["wait", "job", "watched", "-n", NS, "--timeout", "2m"],
        lambda: c.kubectl("patch", "job", "watched", "-n", NS, "--type=merge", "-p", resume),
    )
    c.apply("job", name="doomed", namespace=NS, backoff_limit=1, fail="true", exit_code=7)
    record_informer(c, "wait-job-fails", ["wait", "job/doomed", "-n", NS, "--timeout", "2m"])
    record_informer(c, "wait-job-timeout", ["wait", "job/paused", "-n", NS, "--timeout", "3s"])
    c.apply("job", name="burst", namespace=NS, suspend="true")

    def burst() -> None:
        for i in range(BURST):
            c.batch.patch_namespaced_job("burst", NS, {"metadata": {"annotations": {"cyclops.e2e/step": str(i)}}})
        c.kubectl("delete", "job", "burst", "-n", NS, "--wait=false")

    record_informer(c, "wait-job-burst", ["wait", "job/burst", "-n", NS, "--for", "deleted", "--timeout", "2m"], burst)
    record_one_of_many(c)
    record_manifest_waits(c)


def record_one_of_many(c: Cluster) -> None:
    """AMONG suspended Jobs in a namespace of their own; one of them changes twenty times in a burst while
    `wait jobs` runs (until its timeout): replayed as `details jobs --watch`, only that Job is evaluated again."""
    ns = f"{NS}-many"
    c.kubectl("create", "namespace", ns)
    pod = {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}
    spec = {"suspend": True, "template": {"spec": pod}}
    jobs = [
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": f"job-{i:03}", "namespace": ns}, "spec": spec}
        for i in range(AMONG)
    ]
    c.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": jobs}))
    suspended = has_condition("Suspended")
    c.wait("Job", lambda js: len(js) == AMONG and all(map(suspended, js)), namespace=ns, timeout=180)
    # the job controller reports each suspension in an event, paced by its event broadcaster: the recording starts
    # once all are in, so that only the burst changes what a Job's details depend on
    c.wait(
        "Event",
        lambda evs: sum(e["reason"] == "Suspended" for e in evs) >= AMONG,
        namespace=ns,
        timeout=300,
        what="a Suspended event about each Job",
    )

    def burst() -> None:
        for i in range(20):
            c.batch.patch_namespaced_job("job-123", ns, {"metadata": {"annotations": {"cyclops.e2e/step": str(i)}}})

    record_informer(c, "wait-one-of-many", ["wait", "jobs", "-n", ns, "--timeout", "8s"], burst)


def record_pods_of_one(c: Cluster) -> None:
    """RAN Jobs run to completion, each with its pod, in a namespace of their own; the pod of one of them
    changes twenty times while `wait --for deleted` runs (until its timeout): replayed as `details jobs
    --watch`, only the Job that pod belongs to is assembled again (tracing.py)."""
    ns = f"{NS}-pods"
    c.kubectl("create", "namespace", ns)
    pod = {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}
    jobs = [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"ran-{i:03}", "namespace": ns},
            "spec": {"template": {"spec": pod}},
        }
        for i in range(RAN)
    ]
    c.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": jobs}))
    complete = has_condition("Complete")
    c.wait("Job", lambda js: len(js) == RAN and all(map(complete, js)), namespace=ns, timeout=300)
    c.wait(  # as in record_one_of_many: only the burst changes anything once the recording starts
        "Event",
        lambda evs: sum(e["reason"] == "Completed" for e in evs) >= RAN,
        namespace=ns,
        timeout=300,
        what="a Completed event about each Job",
    )
    [target] = [p.metadata.name for p in c.core.list_namespaced_pod(ns, label_selector="job-name=ran-042").items]

    def burst() -> None:
        for i in range(20):
            c.core.patch_namespaced_pod(target, ns, {"metadata": {"annotations": {"cyclops.e2e/step": str(i)}}})

    record_informer(c, "wait-pods-of-one", ["wait", "jobs", "-n", ns, "--for", "deleted", "--timeout", "8s"], burst)


def record_manifest_waits(c: Cluster) -> None:
    """wait -f: twenty objects of every kind at once (one list and one watch per kind and namespace), and a
    directory with the Job whose pod cannot pull its image."""
    c.apply("job", name="resumed", namespace=NS, suspend="true")
    c.wait_one("Job", "resumed", has_condition("Suspended"), namespace=NS)
    resume = '{"spec":{"suspend":false}}'
    record_informer(
        c,
        "wait-manifest",
        ["wait", "-f", "tests/manifests/healthy.yaml", "-n", NS, "--timeout", "2m"],
        lambda: c.kubectl("patch", "job", "resumed", "-n", NS, "--type=merge", "-p", resume),
    )
    record_informer(c, "wait-manifest-fails", ["wait", "-f", "tests/manifests/stuck", "--timeout", "2m"])


class LegacyDiscoveryApi(kube.KubeApi):
    """Asks as a client older than aggregated discovery does, so the server answers per group."""

    def get(self, path: str, params: dict[str, Any] | None = None, accept: str | None = None) -> Any:
        return super().get(path, params, None)


def record_legacy_discovery(c: Cluster) -> None:
    from kubectl_cyclops.discovery import read_server

    real, rec = recording_api(c)
    read_server(LegacyDiscoveryApi(real.host, real.namespace, rec, 10))
    (RECORDINGS / "_discovery_legacy.json").write_text(json.dumps(rec.answers, indent=1, sort_keys=True) + "\n")
    print(f"recorded legacy discovery: {len(rec.answers)} answers", file=sys.stderr)


def main(only: list[str]) -> int:
    """Record every scenario, or only those named (`python -m tests.record list-jobs ...`)."""
    informed = {"waits", "manifest-waits", "one-of-many", "pods-of-one"}
    unknown = set(only) - set(SCENARIOS) - informed - {"_discovery_legacy"}
    if unknown:
        print(f"unknown scenario(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    with LocalCluster() as local:
        c = Cluster(local.kubeconfig)
        names = prepare(c)
        token = c.kubectl("create", "token", "nobody", "-n", NS).stdout.strip()
        for name, (argv, expect) in SCENARIOS.items():
            if only and name not in only:
                continue
            argv = [a.format(**names) for a in argv]
            credentials = {"error-forbidden": token, "error-unauthorized": "not-a-valid-token"}.get(name)
            with mock.patch.object(paging, "PAGE_SIZE", PAGED if name.endswith("-paged") else paging.PAGE_SIZE):
                record(c, name, argv, expect, credentials)
        if not only or "waits" in only:
            record_waits(c)
        elif "manifest-waits" in only:
            record_manifest_waits(c)
        elif "one-of-many" in only:
            record_one_of_many(c)
        if "pods-of-one" in only:
            record_pods_of_one(c)
        if not only or "_discovery_legacy" in only:
            record_legacy_discovery(c)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

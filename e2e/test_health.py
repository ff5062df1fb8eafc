"""Health rules that need what only a real server has: its defaults, its controllers and their timing.

The status cases in tests/status hold kstatus's test table as object literals;
these tests check the same rules on objects the API server defaulted and the
controllers updated: a Deployment and a DaemonSet inside their minReadySeconds
window, a StatefulSet rollout held by a partition, and CustomResourceDefinitions
being established or refused.
"""

from __future__ import annotations

import json
from typing import Any

from e2e.conftest import CREATED_BY
from e2e.harness.k8s import Cluster, has_condition

MIN_READY = 8  # seconds: long enough to look inside the window, short enough for the suite


def _pod_template(app: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app, **CREATED_BY}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"]}],
        },
    }


def _create(cluster: Cluster, obj: dict[str, Any]) -> None:
    cluster.create(obj)


def _workload(cluster: Cluster, ns: str, kind: str, name: str, **spec: Any) -> None:
    """An apps/v1 workload of busybox pods labelled app=NAME."""
    _create(
        cluster,
        {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": ns, "labels": CREATED_BY},
            "spec": {**spec, "selector": {"matchLabels": {"app": name}}, "template": _pod_template(name)},
        },
    )


def _status(o: dict[str, Any]) -> dict[str, Any]:
    return o.get("status") or {}


def test_a_deployment_inside_min_ready_seconds_is_progressing_then_healthy(cluster: Cluster, ns: str) -> None:
    # No spec.replicas: the server defaults it to 1, and the rules must read it so.
    _workload(cluster, ns, "Deployment", "slow", minReadySeconds=MIN_READY)
    cluster.wait_one("Deployment", "slow", lambda d: _status(d).get("readyReplicas") == 1, namespace=ns)
    doc = cluster.details_json("deployment", "slow", "-n", ns)
    assert (doc["fields"]["replicas"], doc["fields"]["ready"], doc["fields"]["available"]) == (1, 1, 0)
    assert (doc["status"], doc["statusReason"]) == ("progressing", "available 0/1")

    cluster.wait_one(
        "Deployment", "slow", lambda d: _status(d).get("availableReplicas") == 1, namespace=ns, timeout=MIN_READY + 40
    )
    doc = cluster.details_json("deployment", "slow", "-n", ns)
    assert (doc["status"], doc["statusReason"]) == ("healthy", "1/1 available and updated")


def test_a_daemonset_inside_min_ready_seconds_is_progressing_then_healthy(cluster: Cluster, ns: str) -> None:
    _workload(cluster, ns, "DaemonSet", "agent", minReadySeconds=MIN_READY)

    def all_ready(d: dict[str, Any]) -> bool:
        s = _status(d)
        return s.get("desiredNumberScheduled", 0) > 0 and s.get("numberReady") == s["desiredNumberScheduled"]

    nodes = _status(cluster.wait_one("DaemonSet", "agent", all_ready, namespace=ns))["desiredNumberScheduled"]
    doc = cluster.details_json("daemonset", "agent", "-n", ns)
    assert (doc["fields"]["ready"], doc["fields"]["available"]) == (nodes, 0)
    assert (doc["status"], doc["statusReason"]) == ("progressing", f"available 0/{nodes}")

    cluster.wait_one(
        "DaemonSet",
        "agent",
        lambda d: _status(d).get("numberAvailable") == nodes,
        namespace=ns,
        timeout=MIN_READY + 40,
    )
    doc = cluster.details_json("daemonset", "agent", "-n", ns)
    assert (doc["status"], doc["statusReason"]) == ("healthy", f"{nodes}/{nodes} available and updated")


def test_a_statefulset_rollout_held_by_a_partition_is_healthy_once_the_pods_above_it_are_updated(
    cluster: Cluster, ns: str
) -> None:
    _workload(cluster, ns, "StatefulSet", "db", replicas=3, podManagementPolicy="Parallel")
    settled = cluster.wait_one(
        "StatefulSet",
        "db",
        lambda s: _status(s).get("readyReplicas") == 3 and _status(s).get("currentReplicas") == 3,
        namespace=ns,
    )
    doc = cluster.details_json("statefulset", "db", "-n", ns)
    assert (doc["status"], doc["statusReason"]) == ("healthy", "3/3 ready and current")

    # A new template with partition 2: only db-2 is updated; db-0 and db-1 stay on the old revision.
    patch = {
        "spec": {
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
            "template": {"metadata": {"annotations": {"e2e/rev": "2"}}},
        }
    }
    cluster.kubectl("patch", "statefulset", "db", "-n", ns, "--type=merge", "-p", json.dumps(patch))
    generation = settled["metadata"]["generation"] + 1

    def held(s: dict[str, Any]) -> bool:
        st = _status(s)
        return (
            st.get("observedGeneration") == generation
            and st.get("updatedReplicas") == 1
            and st.get("readyReplicas") == 3
        )

    rolled = cluster.wait_one("StatefulSet", "db", held, namespace=ns, timeout=90)
    # The revisions stay apart for as long as the partition holds: a rule that waits for them waits forever.
    assert rolled["status"]["currentRevision"] != rolled["status"]["updateRevision"]
    doc = cluster.details_json("statefulset", "db", "-n", ns)
    assert (doc["status"], doc["statusReason"]) == (
        "healthy",
        "partitioned rollout complete: 1 updated, ordinals below 2 kept",
    )


def _crd(group: str, plural: str, kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": CREATED_BY},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": kind},
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


def test_a_crd_is_healthy_once_established_and_failed_when_its_names_conflict(cluster: Cluster, ns: str) -> None:
    group = f"{ns}.example.com"  # unique per run: CRDs are cluster-scoped
    first, second = _crd(group, "widgets", "Widget"), _crd(group, "gizmos", "Widget")  # the same kind twice
    for crd in (first, second):
        cluster.applied.append(crd)  # deleted by the cluster fixture's cleanup
    _create(cluster, first)
    cluster.wait_one("CustomResourceDefinition", f"widgets.{group}", has_condition("Established"))
    doc = cluster.details_json("crd", f"widgets.{group}")
    assert (doc["status"], doc["statusReason"]) == ("healthy", "Established=True (InitialNamesAccepted)")
    assert (doc["fields"]["resourceKind"], doc["fields"]["servedVersions"]) == ("Widget", ["v1"])

    _create(cluster, second)
    refused = cluster.wait_one("CustomResourceDefinition", f"gizmos.{group}", has_condition("NamesAccepted", "False"))
    names = next(c for c in refused["status"]["conditions"] if c["type"] == "NamesAccepted")
    doc = cluster.details_json("crd", f"gizmos.{group}")
    assert doc["status"] == "failed"
    assert doc["statusReason"] == f"NamesAccepted=False ({names['reason']}): {names['message']}"

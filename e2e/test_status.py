"""Status and its reason against a real API server: a pod whose two containers crash-loop.

No kubelet runs here, so the pod is bound to a node no agent manages and its
status is written through the API server's status subresource, as a kubelet
writes it; the server validates it, and the plugin reads it back.
"""

from __future__ import annotations

import json
import re

from e2e.harness.k8s import Cluster
from e2e.verify import describe_fields

WAITING = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}


def test_a_pod_with_two_crash_looping_containers_is_failed_naming_a_container(cluster: Cluster, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "crashy", "namespace": ns, "labels": {"app.kubernetes.io/created-by": "cyclops-e2e"}},
        "spec": {
            "nodeName": "no-agent-here",  # nothing but this test writes the pod's status
            "containers": [{"name": "app", "image": "busybox:1.36"}, {"name": "sidecar", "image": "busybox:1.36"}],
        },
    }
    cluster.create(pod)
    statuses = [
        {"name": name, "image": "busybox:1.36", "imageID": "", "ready": False, "restartCount": 3, "state": WAITING}
        for name in ("app", "sidecar")
    ]
    status = {"status": {"phase": "Running", "containerStatuses": statuses}}
    cluster.kubectl(
        "patch", "pod", "crashy", "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(status)
    )

    doc = cluster.details_json("pod", "crashy", "-n", ns)
    reason = f"container app: CrashLoopBackOff ({WAITING['waiting']['message']})"  # the kubelet's message too
    assert (doc["status"], doc["statusReason"]) == ("failed", reason)
    assert [(c["name"], c["state"], c["reason"]) for c in doc["fields"]["containers"]] == [
        ("app", "waiting", "CrashLoopBackOff"),
        ("sidecar", "waiting", "CrashLoopBackOff"),
    ]
    assert doc["fields"]["restarts"] == 6
    described = cluster.describe("pod", "crashy", ns)
    assert describe_fields(described)["Status"] == "Running"
    assert described.count("CrashLoopBackOff") == 2  # kubectl describe: Reason under each container's State
    table = cluster.cyclops("details", "pod", "crashy", "-n", ns).stdout
    assert re.search(rf"^Status Reason:\s+{re.escape(reason)}$", table, re.M), table

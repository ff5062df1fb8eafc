"""Dynamic provisioning through the real CSI stack, and the relations that show who uses what.

On the local provider, claims are provisioned by kubernetes-csi's external-provisioner
and expanded by its external-resizer, talking to hostpath-csi over a unix socket
(e2e/harness/csi.py). Tests that take the `hostpath_csi` fixture inspect that driver
(its volume directories, its --maxvolumesize, its processes); the others use only the
cluster's default StorageClass, so on kind they run on its local-path provisioner.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from e2e.harness.csi import DRIVER, MAX_VOLUME_SIZE
from e2e.harness.k8s import Cluster, Obj, has_condition, phase
from e2e.harness.local import LocalCluster
from e2e.verify import describe_block, describe_fields, section, table_rows

PROVISIONING = ["ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"]


def _reasons(doc: dict[str, Any]) -> list[str]:
    return [e["reason"] for e in doc["events"]]


def _default_class(cluster: Cluster) -> Obj:
    classes = cluster.kubectl("get", "storageclass", "-o", "json").json()["items"]
    defaults = [
        c
        for c in classes
        if (c["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    if len(defaults) != 1:  # the local provider and kind have one; an existing cluster may not
        pytest.skip(f"the cluster has {len(defaults)} default StorageClasses, not one")
    return dict(defaults[0])


def _bound_claim(cluster: Cluster, ns: str, name: str, **params: str) -> Obj:
    """A StorageClass of hostpath-csi and a claim on it (template storageclass-csi), once the claim is Bound."""
    cluster.apply("storageclass-csi", name=name, namespace=ns, **params)
    return cluster.wait_one("PersistentVolumeClaim", name, phase("Bound"), namespace=ns)


def test_claim_on_an_immediate_class_is_provisioned_by_the_csi_stack(
    cluster: Cluster, ns: str, name: str, hostpath_csi: LocalCluster
) -> None:
    claim = _bound_claim(cluster, ns, name)
    pv_name = claim["spec"]["volumeName"]
    pv = cluster.wait_one("PersistentVolume", pv_name, phase("Bound"))
    handle = pv["spec"]["csi"]["volumeHandle"]
    assert (hostpath_csi.csi_volumes / handle).is_dir(), "the volume is a directory in the driver's state"
    cluster.wait_event(ns, name, "ProvisioningSucceeded")

    doc = cluster.details_json("pvc", name, "-n", ns)
    assert doc["status"] == "healthy"
    fields = doc["fields"]
    assert (fields["phase"], fields["volumeName"], fields["storageClass"]) == ("Bound", pv_name, name)
    assert fields["requested"] == fields["capacity"] == "64Mi"
    assert fields["provisioner"] == DRIVER  # the PV controller's annotation
    [storage_class] = doc["related"]["storageClass"]
    assert storage_class["fields"]["provisioner"] == DRIVER
    [volume] = doc["related"]["volume"]
    assert (volume["name"], volume["fields"]["phase"]) == (pv_name, "Bound")
    assert [r for r in PROVISIONING if r in _reasons(doc)] == PROVISIONING

    pv_doc = cluster.details_json("pv", pv_name)
    pv_fields = pv_doc["fields"]
    csi = pv_fields["sourceParameters"]["parameters"]
    assert (pv_fields["sourceParameters"]["source"], csi["driver"], csi["volumeHandle"]) == ("csi", DRIVER, handle)
    assert pv_fields["provisionedBy"] == DRIVER
    assert csi["volumeAttributes"] == pv["spec"]["csi"]["volumeAttributes"]
    assert csi["volumeAttributes"]["kind"] == "directory"
    assert (pv_fields["claim"], pv_fields["reclaimPolicy"]) == (f"{ns}/{name}", "Delete")
    [pv_claim] = pv_doc["related"]["claim"]
    assert pv_claim["name"] == name

    text = cluster.describe("pv", pv_name)
    described, source = describe_fields(text), describe_block(text, "Source")
    assert described["Capacity"] == pv_fields["capacity"] == "64Mi"
    assert described["Claim"] == pv_fields["claim"]
    assert described["StorageClass"] == pv_fields["storageClass"] == name
    assert described["Reclaim Policy"] == pv_fields["reclaimPolicy"]
    assert source["Type"].startswith("CSI")  # CSI (a Container Storage Interface (CSI) volume source)
    assert (source["Driver"], source["VolumeHandle"]) == (csi["driver"], csi["volumeHandle"])

    table = cluster.cyclops("details", "pv", pv_name).stdout
    rows = table_rows(table)
    assert (rows["Provisioned By"], rows["Source"]) == (DRIVER, "csi")
    assert re.search(rf"^\s+driver: {re.escape(DRIVER)}$", table, re.M)
    assert re.search(rf"^\s+volumeHandle: {re.escape(handle)}$", table, re.M)
    assert pv_fields["sourceParameters"]["parameters"]["readOnly"] is False  # describe's ReadOnly: false when unset


def test_claim_on_the_default_class_waits_for_its_first_consumer(cluster: Cluster, ns: str, name: str) -> None:
    """The default class binds late: the claim waits until a Job's pod mounts it, then the scheduler picks
    the node, the volume is provisioned there, the pod runs and the Job completes. Deleting the claim then
    deletes its volume (reclaim Delete)."""
    default = _default_class(cluster)
    assert default["volumeBindingMode"] == "WaitForFirstConsumer"
    cluster.apply("pvc-dynamic", name=name, namespace=ns)
    cluster.wait_event(ns, name, "WaitForFirstConsumer")
    waiting = cluster.details_json("pvc", name, "-n", ns)
    assert waiting["status"] == "progressing"
    assert waiting["statusReason"].startswith("WaitForFirstConsumer: waiting for first consumer")
    assert waiting["fields"]["storageClass"] == default["metadata"]["name"]
    assert waiting["fields"]["selectedNode"] is None
    assert waiting["related"]["usedBy"] == []

    cluster.apply("job-pvc", name="writer", namespace=ns, claim=name)
    cluster.wait_one("Job", "writer", has_condition("Complete"), namespace=ns, timeout=60)
    claim = cluster.wait_one("PersistentVolumeClaim", name, phase("Bound"), namespace=ns)
    [pod] = cluster.wait("Pod", lambda ps: len(ps) == 1, namespace=ns, labels="job-name=writer")

    doc = cluster.details_json("pvc", name, "-n", ns)
    assert doc["status"] == "healthy"
    assert doc["fields"]["selectedNode"] == pod["spec"]["nodeName"]
    assert [(p["name"], p["fields"]["node"]) for p in doc["related"]["usedBy"]] == [
        (pod["metadata"]["name"], pod["spec"]["nodeName"])
    ]
    used_by = describe_fields(cluster.describe("pvc", name, ns))["Used By"]
    assert used_by == pod["metadata"]["name"]
    header, *rows = section(cluster.cyclops("details", "pvc", name, "-n", ns).stdout, "Used By")
    assert header[:3] == ["NAME", "STATUS", "PHASE"]
    assert rows[0][0] == pod["metadata"]["name"]
    job = cluster.details_json("job", "writer", "-n", ns)
    assert [p["name"] for p in job["related"]["pods"]] == [pod["metadata"]["name"]]

    pv_name = claim["spec"]["volumeName"]
    cluster.kubectl("delete", "job", "writer", "-n", ns, "--cascade=foreground", "--wait=true", "--timeout=60s")
    cluster.kubectl("delete", "pvc", name, "-n", ns, "--wait=false")
    cluster.wait("PersistentVolume", lambda pvs: not pvs, name=pv_name, timeout=60, what=f"PV {pv_name} deleted")


def test_a_generic_ephemeral_volume_claim_is_used_by_its_pod(cluster: Cluster, ns: str) -> None:
    """A pod's generic ephemeral volume: its claim (<pod>-<volume>, owned by the pod) names no pod that
    mounts it by claimName, yet kubectl describe pvc shows the pod under Used By, and so does details."""
    _default_class(cluster)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "scratchy", "namespace": ns},
        "spec": {
            "containers": [{"name": "app", "image": "busybox:1.36"}],
            "volumes": [
                {
                    "name": "scratch",
                    "ephemeral": {
                        "volumeClaimTemplate": {
                            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}
                        }
                    },
                }
            ],
        },
    }
    cluster.create(pod)
    cluster.wait_one("PersistentVolumeClaim", "scratchy-scratch", phase("Bound"), namespace=ns, timeout=60)
    running = cluster.wait_one("Pod", "scratchy", phase("Running"), namespace=ns, timeout=60)

    doc = cluster.details_json("pvc", "scratchy-scratch", "-n", ns)
    assert doc["owners"] == [{"kind": "Pod", "name": "scratchy", "controller": True}]
    assert [(p["name"], p["fields"]["node"]) for p in doc["related"]["usedBy"]] == [
        ("scratchy", running["spec"]["nodeName"])
    ]
    assert describe_fields(cluster.describe("pvc", "scratchy-scratch", ns))["Used By"] == "scratchy"


def test_reclaim_delete_removes_the_volume_directory_and_the_pv(
    cluster: Cluster, ns: str, name: str, hostpath_csi: LocalCluster
) -> None:
    claim = _bound_claim(cluster, ns, name)
    pv = cluster.get("pv", claim["spec"]["volumeName"])
    directory = hostpath_csi.csi_volumes / pv["spec"]["csi"]["volumeHandle"]
    assert directory.is_dir()

    cluster.kubectl("delete", "pvc", name, "-n", ns, "--wait=false")
    cluster.wait("PersistentVolume", lambda pvs: not pvs, name=pv["metadata"]["name"], what="the PV deleted")
    assert not directory.exists(), "DeleteVolume removed the directory before the provisioner removed the PV"


def test_retain_on_a_dynamic_class_leaves_a_released_pv_that_names_its_provisioner(
    cluster: Cluster, ns: str, name: str, hostpath_csi: LocalCluster
) -> None:
    claim = _bound_claim(cluster, ns, name, reclaim_policy="Retain")
    pv_name = claim["spec"]["volumeName"]
    try:
        cluster.kubectl("delete", "pvc", name, "-n", ns, "--wait=false")
        pv = cluster.wait_one("PersistentVolume", pv_name, phase("Released"), what=f"PV {pv_name} Released")
        assert (hostpath_csi.csi_volumes / pv["spec"]["csi"]["volumeHandle"]).is_dir(), "Retain keeps the data"

        doc = cluster.details_json("pv", pv_name)
        assert (doc["status"], doc["fields"]["phase"]) == ("progressing", "Released")
        assert doc["fields"]["provisionedBy"] == DRIVER
        assert doc["fields"]["reclaimPolicy"] == "Retain"
        assert doc["fields"]["claim"] == f"{ns}/{name}"
        assert doc["related"]["claim"] == []  # the claim is gone; its reference stays
        assert describe_fields(cluster.describe("pv", pv_name))["Status"] == "Released"
    finally:
        cluster.kubectl("delete", "pv", pv_name, "--ignore-not-found", "--wait=false", check=False)


@contextmanager
def _paused(pid: int) -> Iterator[None]:
    """The process stopped (SIGSTOP) until the block ends: its work waits, observably, and then resumes."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_expansion_grows_the_volume_then_the_claim(
    cluster: Cluster, ns: str, name: str, hostpath_csi: LocalCluster
) -> None:
    claim = _bound_claim(cluster, ns, name)
    pv_name = claim["spec"]["volumeName"]
    grow = '{"spec":{"resources":{"requests":{"storage":"128Mi"}}}}'

    with _paused(hostpath_csi.pids["csi-resizer"]):  # the resizer stands still, so "while it happens" lasts
        cluster.kubectl("patch", "pvc", name, "-n", ns, "--type=merge", "-p", grow)
        during = cluster.details_json("pvc", name, "-n", ns)
        assert (during["fields"]["requested"], during["fields"]["capacity"]) == ("128Mi", "64Mi")
        rows = table_rows(cluster.cyclops("details", "pvc", name, "-n", ns).stdout)
        assert (rows["Requested"], rows["Capacity"]) == ("128Mi", "64Mi")

    grown = cluster.wait_one(
        "PersistentVolumeClaim",
        name,
        lambda c: (c.get("status") or {}).get("capacity", {}).get("storage") == "128Mi",
        namespace=ns,
        what=f"claim {name} capacity 128Mi",
    )
    after = cluster.details_json("pvc", name, "-n", ns)
    assert (after["fields"]["requested"], after["fields"]["capacity"]) == ("128Mi", "128Mi")
    # status.allocatedResources: written by the resizer where the API server has it (1.32 and later)
    assert after["fields"]["allocated"] == grown["status"].get("allocatedResources", {}).get("storage")
    assert after["status"] == "healthy"
    assert "VolumeResizeSuccessful" in _reasons(after)
    assert cluster.details_json("pv", pv_name)["fields"]["capacity"] == "128Mi"
    assert describe_fields(cluster.describe("pvc", name, ns))["Capacity"] == "128Mi"


def test_a_provisioning_failure_is_failed_with_the_drivers_message(
    cluster: Cluster, ns: str, name: str, hostpath_csi: LocalCluster
) -> None:
    cluster.apply("storageclass-csi", name=name, namespace=ns, size="20Gi")  # above --maxvolumesize
    cluster.wait_event(ns, name, "ProvisioningFailed")

    wait = cluster.cyclops("wait", "pvc", name, "-n", ns, "--timeout", "60s")
    assert wait.returncode == 10, wait.stderr  # WAIT_FAILED: the claim failed, not a timeout
    doc = cluster.details_json("pvc", name, "-n", ns)
    assert doc["fields"]["phase"] == "Pending"
    assert doc["status"] == "failed"
    assert doc["statusReason"].startswith("ProvisioningFailed: rpc error: code = OutOfRange")
    assert doc["statusReason"].endswith(f"exceeds maximum allowed {int(MAX_VOLUME_SIZE.removesuffix('Gi')) * 2**30}")
    assert "ProvisioningFailed" in _reasons(doc)
    assert doc["related"]["volume"] == []


def test_a_storageclass_lists_its_volumes_and_claims(cluster: Cluster, ns: str, name: str) -> None:
    default = _default_class(cluster)["metadata"]["name"]
    cluster.apply("pvc-dynamic", name=name, namespace=ns)  # waits for a consumer: a claim without a volume

    def of_default() -> set[str]:
        pvs = cluster.kubectl("get", "pv", "-o", "json").json()["items"]
        return {p["metadata"]["name"] for p in pvs if p["spec"].get("storageClassName") == default}

    before = of_default()
    doc = cluster.details_json("storageclass", default)
    after = of_default()  # other tests provision and delete volumes of this class meanwhile
    assert doc["fields"]["isDefault"] == "true"
    assert (ns, name) in {(c["namespace"], c["name"]) for c in doc["related"]["claims"]}
    shown = {v["name"] for v in doc["related"]["volumes"]}
    assert before & after <= shown <= before | after


def test_an_immediate_class_lists_its_bound_volume_and_claim(
    cluster: Cluster, ns: str, name: str, hostpath_csi: LocalCluster
) -> None:
    claim = _bound_claim(cluster, ns, name)
    doc = cluster.details_json("storageclass", name)
    assert doc["fields"]["parameters"] == {"cyclops.e2e/purpose": name}
    assert doc["fields"]["allowVolumeExpansion"] is True
    assert [(c["namespace"], c["name"]) for c in doc["related"]["claims"]] == [(ns, name)]
    [volume] = doc["related"]["volumes"]
    assert (volume["name"], volume["fields"]["claim"]) == (claim["spec"]["volumeName"], f"{ns}/{name}")
    _, *rows = section(cluster.cyclops("details", "storageclass", name).stdout, "Claims")
    assert [r[0] for r in rows] == [name]


@pytest.mark.parametrize("kind", ["clusterrole", "role"])
def test_a_role_lists_the_bindings_that_name_it(cluster: Cluster, ns: str, name: str, kind: str) -> None:
    cluster.apply("rbac-bindings", name=name, namespace=ns)
    args = [kind, name] + (["-n", ns] if kind == "role" else [])
    doc = cluster.details_json(*args)
    bindings = {
        rel: [(b.get("namespace"), b["name"], b["fields"]["subjects"]) for b in doc["related"][rel]]
        for rel in doc["related"]
    }
    if kind == "clusterrole":
        assert bindings == {
            "clusterRoleBindings": [(None, name, [f"{name}-auditor"])],
            "roleBindings": [(ns, f"{name}-cluster", ["default"])],
        }
    else:  # a RoleBinding naming a ClusterRole of the same name is not the Role's
        assert bindings == {"roleBindings": [(ns, f"{name}-role", [f"{name}-team"])]}

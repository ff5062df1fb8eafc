"""PersistentVolume fixtures, verified through `kubectl cyclops details` against the API and kubectl describe."""

from __future__ import annotations

from e2e.harness.k8s import Cluster, phase
from e2e.verify import describe_fields, section, table_rows


def test_hostpath_pv_binds_and_details_match_api_and_describe(cluster: Cluster, ns: str, name: str) -> None:
    cluster.apply("pv-hostpath", name=name, namespace=ns, size="2Gi")
    cluster.wait_one("PersistentVolumeClaim", f"{name}-claim", phase("Bound"), namespace=ns)
    pv = cluster.wait_one("PersistentVolume", name, phase("Bound"))

    doc = cluster.details_json("pv", name)
    fields = doc["fields"]
    assert (doc["kind"], doc["name"], doc["namespace"], doc["status"]) == ("PersistentVolume", name, None, "healthy")
    assert fields["capacity"] == pv["spec"]["capacity"]["storage"] == "2Gi"
    assert fields["capacityBytes"] == 2 * 1024**3
    assert fields["accessModes"] == pv["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert fields["phase"] == "Bound"
    since = cluster.get("pv", name)["status"].get("lastPhaseTransitionTime")  # as the API writes it, when it does
    assert fields["phaseSince"] == since
    assert fields["claim"] == f"{ns}/{name}-claim"
    assert fields["reclaimPolicy"] == "Retain"
    assert fields["storageClass"] == f"{name}-class"
    assert fields["sourceParameters"] == {"source": "hostPath", "parameters": pv["spec"]["hostPath"]}
    [claim] = doc["related"]["claim"]
    assert (claim["name"], claim["namespace"], claim["status"]) == (f"{name}-claim", ns, "healthy")
    assert claim["fields"]["phase"] == "Bound"
    assert claim["fields"]["requested"] == "2Gi"
    [storage_class] = doc["related"]["storageClass"]
    assert storage_class["fields"]["provisioner"] == "kubernetes.io/no-provisioner"

    described = describe_fields(cluster.describe("pv", name))
    assert described["Capacity"] == fields["capacity"]
    assert described["Access Modes"] == "RWO"
    assert described["Claim"] == fields["claim"]
    assert described["Reclaim Policy"] == fields["reclaimPolicy"]
    assert described["StorageClass"] == fields["storageClass"]
    assert described["Status"] == fields["phase"]

    table = cluster.cyclops("details", f"pv/{name}")
    assert table.returncode == 0, table.stderr
    rows = table_rows(table.stdout)
    assert rows["Capacity"] == "2Gi"
    assert rows["Access Modes"] == "RWO"
    assert rows["Claim"] == f"{ns}/{name}-claim"
    assert rows["Status"] == "healthy"
    assert rows["Phase"].startswith("Bound (since ") if since else rows["Phase"] == "Bound"
    header, *claims = section(table.stdout, "Claim")
    assert header[:3] == ["NAME", "NAMESPACE", "STATUS"]
    assert claims[0][:4] == [f"{name}-claim", ns, "healthy", "Bound"]


def test_local_pv_shows_node_affinity(cluster: Cluster, name: str) -> None:
    node = cluster.first_node()
    cluster.apply("pv-local", name=name, node=node)
    cluster.wait_one("PersistentVolume", name, phase("Available"))

    doc = cluster.details_json("persistentvolumes", name)
    assert doc["status"] == "healthy"
    assert doc["fields"]["sourceParameters"] == {"source": "local", "parameters": {"path": "/mnt/cyclops-e2e"}}
    assert doc["fields"]["phase"] == "Available"
    assert doc["fields"]["claim"] is None
    assert doc["related"]["claim"] == []
    [storage_class] = doc["related"]["storageClass"]
    assert storage_class["fields"]["volumeBindingMode"] == "WaitForFirstConsumer"

    table = cluster.cyclops("details", "pv", name)
    assert table_rows(table.stdout)["Node Affinity"] == f"kubernetes.io/hostname in ({node})"
    assert "kubernetes.io/hostname in [" + node + "]" in cluster.describe("pv", name)


def test_retain_pv_is_released_after_its_claim_is_deleted(cluster: Cluster, ns: str, name: str) -> None:
    cluster.apply("pv-hostpath", name=name, namespace=ns, reclaim_policy="Retain")
    cluster.wait_one("PersistentVolume", name, phase("Bound"))
    cluster.kubectl("delete", "pvc", f"{name}-claim", "-n", ns, "--wait=false")
    pv = cluster.wait_one("PersistentVolume", name, phase("Released"), what=f"PV {name} Released")

    doc = cluster.details_json("pv", name)
    assert doc["fields"]["phase"] == "Released"
    assert doc["status"] == "progressing"
    assert doc["fields"]["claim"] == f"{pv['spec']['claimRef']['namespace']}/{name}-claim"
    assert doc["related"]["claim"] == []  # the claim is gone, its reference stays
    assert describe_fields(cluster.describe("pv", name))["Status"] == "Released"


def test_claim_without_provisioner_stays_pending(cluster: Cluster, ns: str, name: str) -> None:
    cluster.apply("pvc-pending", name=name, namespace=ns)
    # The PV controller has looked at the claim once it records an event about it.
    cluster.wait_event(ns, name)
    claim = cluster.get("pvc", name, ns)
    assert claim["status"]["phase"] == "Pending"

    doc = cluster.details_json("pvc", name, "-n", ns)
    assert doc["status"] == "progressing"
    assert doc["fields"]["phase"] == "Pending"
    assert doc["fields"]["requested"] == "5Gi"
    assert doc["fields"]["requestedAccessModes"] == ["ReadWriteMany"]
    assert doc["fields"]["accessModes"] is None  # nothing granted until bound, as describe's empty Access Modes
    assert describe_fields(cluster.describe("pvc", name, ns))["Access Modes"] == ""
    assert doc["related"]["volume"] == []
    [storage_class] = doc["related"]["storageClass"]
    assert storage_class["fields"]["provisioner"] == "kubernetes.io/no-provisioner"
    assert doc["events"], "the claim's events are shown"
    assert {e["reason"] for e in doc["events"]} <= {"ProvisioningFailed", "FailedBinding", "ExternalProvisioning"}

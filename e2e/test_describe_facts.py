"""Facts kubectl describe prints, shown by the plugin with describe's meaning, on objects of a real API server."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from e2e.harness.k8s import Cluster, phase
from e2e.verify import describe_fields, table_rows

SOURCES = ("nfs", "iscsi", "csi", "fc")


def _only(name: str, *parts: str) -> Callable[[dict[str, Any]], bool]:
    """The fixture's objects a test reads (the template holds every case): `NAME-PART` for each part."""
    names = {f"{name}-{part}" for part in parts}
    return lambda obj: obj["metadata"]["name"] in names


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


@pytest.mark.parametrize("source", SOURCES)
def test_a_pvs_source_parameters_are_describes(cluster: Cluster, ns: str, name: str, source: str) -> None:
    cluster.apply("describe-facts", only=_only(name, source), name=name, namespace=ns)
    pv_name = f"{name}-{source}"
    spec = cluster.get("pv", pv_name)["spec"]  # as the API server stored it, with its defaults
    doc = cluster.details_json("pv", pv_name)
    assert doc["fields"]["sourceParameters"]["source"] == source
    params = doc["fields"]["sourceParameters"]["parameters"]
    text = cluster.describe("pv", pv_name)
    block = re.search(r"^Source:\n((?:[ \t]+.*\n?)+)", text, re.M)
    assert block, text
    # `Key:  value` lines; kubectl prints iSCSI's ISCSIInterface without its colon
    described = {_key(k): v.strip() for k, v in re.findall(r"^\s+(\w+):?\s+(.*)$", block.group(1), re.M)}
    for key, value in params.items():
        if isinstance(value, dict | list):
            continue
        assert _key(key) in described, (key, described)
        want = str(value).lower() if isinstance(value, bool) else str(value)
        assert described[_key(key)] == want, key
        assert value == spec[source].get(key, False if key == "readOnly" else None)
    assert "readOnly" in params  # every source here has a ReadOnly flag: describe shows it, set or not
    table = cluster.cyclops("details", "pv", pv_name)
    assert table.returncode == 0, table.stderr
    assert re.search(rf"^Source:\s+{source}$", table.stdout, re.M)
    assert re.search(r"^\s+readOnly: (true|false)$", table.stdout, re.M)


def test_pv_and_storageclass_annotations_and_topologies(cluster: Cluster, ns: str, name: str) -> None:
    cluster.apply("describe-facts", only=_only(name, "nfs", "topo"), name=name, namespace=ns)
    pv = cluster.details_json("pv", f"{name}-nfs")
    assert pv["fields"]["annotations"]["example.com/backup"] == "daily"
    assert "example.com/backup: daily" in describe_fields(cluster.describe("pv", f"{name}-nfs"))["Annotations"]
    sc = cluster.details_json("storageclass", f"{name}-topo")
    assert sc["fields"]["annotations"] == {"example.com/owner": "storage-team", "example.com/tier": "gold"}
    [term] = sc["fields"]["allowedTopologies"]
    assert term["matchLabelExpressions"][0]["values"] == ["zone-a", "zone-b"]
    described = cluster.describe("storageclass", f"{name}-topo")
    assert re.search(r"topology\.kubernetes\.io/zone in \[zone-a, zone-b\]", described)
    rows = table_rows(cluster.cyclops("details", "storageclass", f"{name}-topo").stdout)
    assert rows["Allowed Topologies"] == "Term 0: topology.kubernetes.io/zone in [zone-a, zone-b]"


def test_a_claims_data_source_and_requested_modes(cluster: Cluster, ns: str, name: str) -> None:
    cluster.apply("describe-facts", only=_only(name, "topo", "origin", "clone"), name=name, namespace=ns)
    doc = cluster.details_json("pvc", f"{name}-clone", "-n", ns)
    source = {k: v for k, v in doc["fields"]["dataSource"].items() if v is not None}  # the API adds apiGroup: null
    assert source == {"kind": "PersistentVolumeClaim", "name": f"{name}-origin"}
    assert doc["fields"]["requestedAccessModes"] == ["ReadWriteOnce"]
    assert doc["fields"]["accessModes"] is None  # not bound: the volume grants nothing yet (describe: empty)
    described = cluster.describe("pvc", f"{name}-clone", ns)
    assert re.search(rf"DataSource:\s*\n\s+Kind:\s+PersistentVolumeClaim\s*\n\s+Name:\s+{name}-origin", described)
    assert describe_fields(described)["Access Modes"] == ""
    table = cluster.cyclops("details", "pvc", f"{name}-clone", "-n", ns).stdout
    assert re.search(r"^Data Source:\s+(apiGroup: <none>\n\s+)?kind: PersistentVolumeClaim$", table, re.M)
    assert re.search(rf"^\s+name: {name}-origin$", table, re.M)


def test_a_cronjobs_deadline_and_job_template(cluster: Cluster, ns: str, name: str) -> None:
    cluster.apply("describe-facts", only=_only(name, "cron"), name=name, namespace=ns)
    fields = cluster.details_json("cronjob", f"{name}-cron", "-n", ns)["fields"]
    assert (fields["startingDeadlineSeconds"], fields["parallelism"], fields["completions"]) == (120, 2, 4)
    assert fields["activeDeadlineSeconds"] == 600
    described = describe_fields(cluster.describe("cronjob", f"{name}-cron", ns))
    assert described["Starting Deadline Seconds"] == "120s"
    assert (described["Parallelism"], described["Completions"]) == ("2", "4")
    assert described["Active Deadline Seconds"] == "600s"


def test_a_bound_claims_access_modes_are_the_volumes_as_describe_shows(cluster: Cluster, ns: str, name: str) -> None:
    """kubectl describe pvc's Access Modes are what the bound volume grants (status), not what was asked for."""
    cluster.apply("describe-facts", only=_only(name, "wide", "wide-claim"), name=name, namespace=ns)
    cluster.wait_one("PersistentVolumeClaim", f"{name}-wide-claim", phase("Bound"), namespace=ns)
    claim = cluster.get("pvc", f"{name}-wide-claim", ns)
    assert claim["status"]["accessModes"] == ["ReadWriteOnce", "ReadOnlyMany"]
    fields = cluster.details_json("pvc", f"{name}-wide-claim", "-n", ns)["fields"]
    assert fields["accessModes"] == ["ReadWriteOnce", "ReadOnlyMany"]
    assert fields["requestedAccessModes"] == ["ReadWriteOnce"]
    assert describe_fields(cluster.describe("pvc", f"{name}-wide-claim", ns))["Access Modes"] == "RWO,ROX"
    rows = table_rows(cluster.cyclops("details", "pvc", f"{name}-wide-claim", "-n", ns).stdout)
    assert (rows["Access Modes"], rows["Requested Access Modes"]) == ("RWO,ROX", "RWO")

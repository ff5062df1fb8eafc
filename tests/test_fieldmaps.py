"""Field maps: built-in coverage, user maps (a CRD, an override), the `kinds` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubectl_cyclops import cli
from kubectl_cyclops.fieldmaps import ENV_VAR, FieldMaps
from tests.record import SCENARIOS
from tests.replay import load

CYCLOPS_KINDS = {
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Service",
    "Pod",
    "ConfigMap",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Secret",
    "CronJob",
    "Job",
    "Role",
    "ClusterRole",
    "NetworkPolicy",
}


def test_builtin_maps_cover_cyclops_and_more() -> None:
    kinds = {m.kind for m in FieldMaps().all()}
    assert kinds >= CYCLOPS_KINDS | {"StorageClass", "ReplicaSet", "Ingress"}


def test_every_builtin_map_has_a_recorded_scenario() -> None:
    """A new map without a recording would go untested: this fails until `make record` covers it."""
    shown = set()
    for name in SCENARIOS:
        rec = load(name)
        if rec["expect"] is not None and "--field-maps" not in rec["argv"]:
            shown |= {v["body"].get("kind") for v in rec["phases"][0].values() if v["status"] == 200}
    assert {m.kind for m in FieldMaps().all() if m.kind != "*"} <= shown


def test_crd_without_a_map_gets_the_generic_one(replay) -> None:
    doc = json.loads(replay("crd-generic", "-o", "json")[0].stdout)
    assert (doc["kind"], doc["apiVersion"]) == ("CronTab", "stable.example.com/v1")
    assert list(doc["fields"]) == ["phase", "conditions", "observedGeneration"]


def test_crd_user_map_from_flag_and_from_environment(replay, monkeypatch: pytest.MonkeyPatch) -> None:
    by_flag = json.loads(replay("crd-user-map", "-o", "json")[0].stdout)
    assert by_flag["fields"] == {"schedule": "0 3 * * *", "image": "backup:2.1", "replicas": 2, "phase": None}
    assert by_flag["status"] == "healthy"
    argv = [a for a in load("crd-user-map")["argv"] if a not in ("--field-maps", "tests/crd-fieldmaps")]
    monkeypatch.setenv(ENV_VAR, "tests/crd-fieldmaps")
    by_env = json.loads(replay("crd-user-map", "-o", "json", argv=argv)[0].stdout)
    assert by_env == by_flag


def test_user_map_overrides_a_builtin_one(replay, tmp_path: Path) -> None:
    (tmp_path / "pv.yaml").write_text(
        "apiVersion: kubectl-cyclops/v1\nkind: FieldMap\nresource: {group: '', version: v1, kind: PersistentVolume}\n"
        "fields:\n  - {name: size, title: Size, path: '{.spec.capacity.storage}'}\n"
        "status:\n  rules:\n    - {status: failed, when: {path: .status.phase, equals: Bound}}\n"
    )
    doc = json.loads(replay("pv", "-o", "json", "--field-maps", str(tmp_path))[0].stdout)
    assert doc["fields"] == {"size": "10Gi"}
    assert doc["related"] == {}
    assert doc["status"] == "failed"
    result = CliRunner().invoke(cli.cli, ["kinds", "-o", "json", "--field-maps", str(tmp_path)])
    sources = {k["kind"]: k["source"] for k in json.loads(result.stdout)}
    assert sources["PersistentVolume"] == str(tmp_path / "pv.yaml")
    assert sources["Job"] == "builtin:job.yaml"


def test_kinds_table_lists_each_map_and_its_file() -> None:
    result = CliRunner().invoke(cli.cli, ["kinds"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KIND", "GROUP", "VERSION", "FIELDS", "RELATED", "SOURCE"]
    job = next(line.split() for line in lines if line.startswith("Job "))
    assert (job[1], job[-1], job[-2]) == ("batch", "builtin:job.yaml", "cronJob,pods")

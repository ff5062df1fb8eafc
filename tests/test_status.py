"""Status rules as a pure function, table-tested: tests/status/<kind>.yaml holds the cases.

Each case is an object literal and the status and reason the built-in map
must give it (the generic map's cases stand for any CRD). Every built-in map
has at least six cases: healthy, progressing and failed paths, a
multi-container or multi-condition edge, terminating, a stale observedGeneration.

A case may list the object's `events`, oldest first, for rules that read its
last event, and its `related` sets (`{pods: [{object: …, events: […]}]}`), each
object evaluated by its own kind's map first, for rules that read them. A
case with `kstatus: STATUS` says what sigs.k8s.io/cli-utils' kstatus gives the
same object (most are kstatus's own test table). Where ours differs, the case
names the `difference`, and the table in docs/status.md must have a row for it.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_cyclops.evaluate import Judged, evaluate
from kubectl_cyclops.fieldmaps import FieldMap, FieldMaps

CASES = Path(__file__).parent / "status"
STATUS_DOC = Path(__file__).parent.parent / "docs" / "status.md"
KSTATUS = {"Current": "healthy", "InProgress": "progressing", "Failed": "failed", "Terminating": "progressing"}
MAPS = FieldMaps()
NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _files() -> dict[str, dict[str, Any]]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(CASES.glob("*.yaml"))}


FILES = _files()


def test_every_builtin_map_has_at_least_six_cases() -> None:
    kinds = {(doc["group"], doc["kind"]): len(doc["cases"]) for doc in FILES.values()}
    for fmap in MAPS.all():
        key = ("stable.example.com", "CronTab") if fmap.kind == "*" else (fmap.group, fmap.kind)
        assert kinds.get(key, 0) >= 6, key


@pytest.mark.parametrize(
    ("file", "index"),
    [(name, i) for name, doc in FILES.items() for i in range(len(doc["cases"]))],
    ids=[f"{name}: {case['name']}" for name, doc in FILES.items() for case in doc["cases"]],
)
def test_status_case(file: str, index: int) -> None:
    doc = FILES[file]
    case = doc["cases"][index]
    fmap = MAPS.get(doc["group"], doc["kind"])
    obj = {"apiVersion": "v1", "kind": doc["kind"], **case["object"]}
    result = evaluate(fmap, obj, NOW, events=case.get("events", ()), related=_related(fmap, case))
    assert (result.status, result.reason) == (case["status"], case["reason"])


def _related(fmap: FieldMap, case: dict[str, Any]) -> dict[str, list[Judged]]:
    """A case's related sets, each object judged by its own kind's map, as the collector does."""
    out: dict[str, list[Judged]] = {}
    relations = {r.name: r for r in fmap.related}
    for name, items in (case.get("related") or {}).items():
        relation = relations[name]
        own = MAPS.get(relation.group, relation.kind)
        for item in items:
            judged = evaluate(own, item["object"], NOW, events=item.get("events", ()))
            out.setdefault(name, []).append(Judged(relation.kind, item["object"], judged.status, judged.reason))
    return out


def _documented_differences() -> set[str]:
    section = STATUS_DOC.read_text()
    return {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ") and "---" not in line}


def test_every_difference_from_kstatus_is_declared_and_documented() -> None:
    documented = _documented_differences() - {"Case"}
    used = set()
    for name, doc in FILES.items():
        for case in doc["cases"]:
            if "kstatus" not in case:
                continue
            where = f"{name}: {case['name']}"
            same = KSTATUS[case["kstatus"]] == case["status"]
            if "difference" in case:
                assert not same, f"{where} is marked as a difference but agrees with kstatus"
                assert case["difference"] in documented, f"{where}: no row in docs/status.md for {case['difference']!r}"
                used.add(case["difference"])
            else:
                assert same, f"{where}: kstatus says {case['kstatus']}, we say {case['status']}, undeclared"
    assert documented == used, f"rows of docs/status.md without a case: {sorted(documented - used)}"


def test_an_event_condition_takes_any_operator_and_the_reason_shows_the_event_it_read() -> None:
    """A user map's rule over the last event among some reasons, with `in` (an unhashable operand)."""
    fmap = _user_map(
        "status: {rules: [{status: failed, when: [{lastEvent: .reason, ofReasons: [Pulled, Failed, BackOff],"
        " in: [Failed, BackOff]}], reason: {lastEvent: true}}], otherwise: {status: healthy}}"
    )
    events = [{"reason": "Failed", "message": "image  not\nfound"}, {"reason": "Scheduled", "message": "ok"}]
    failed = evaluate(fmap, {"metadata": {"name": "p"}}, NOW, events=events)
    assert (failed.status, failed.reason) == ("failed", "Failed: image not found")
    assert evaluate(fmap, {"metadata": {"name": "p"}}, NOW, events=[*events, {"reason": "Pulled"}]).status == "healthy"
    assert evaluate(fmap, {"metadata": {"name": "p"}}, NOW).status == "healthy"


def _user_map(body: str) -> Any:
    """A map from a user directory (FieldMaps reads and checks it at once)."""
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "thing.yaml").write_text(
            "apiVersion: kubectl-cyclops/v1\nkind: FieldMap\n"
            f"resource: {{group: example.com, version: v1, kind: Thing}}\n{body}\n"
        )
        return FieldMaps([d]).get("example.com", "Thing")

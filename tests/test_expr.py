"""Paths compiled to direct steps give exactly what jsonpath-ng gives.

Every expression of every built-in map, evaluated on every object recorded
from the cluster, both ways; then random paths of keys, indexes, wildcards
and equality filters over random JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kubectl_cyclops.expr import Expr, plain_steps
from kubectl_cyclops.fieldmaps import FieldMaps
from tests.replay import DISCOVERY, RECORDINGS


def _objects() -> list[Any]:
    """Every object in every recorded answer (list items too)."""
    found = []
    for path in sorted(RECORDINGS.glob("*.json")):
        if path == DISCOVERY:
            continue
        doc = json.loads(path.read_text())
        for answers in doc.get("phases") or [doc]:
            for answer in answers.values():
                body = answer.get("body") if isinstance(answer, dict) else None
                if isinstance(body, dict):
                    found += body.get("items") or [body]
        found += [e["object"] for events in (doc.get("streams") or {}).values() for e in events]
    return found


def _sources() -> list[str]:
    maps = FieldMaps(["tests/crd-fieldmaps"])
    out: set[str] = set()

    def of_fields(fields: Any) -> Iterator[str]:
        for f in fields:
            yield from (p.source for p in f.paths)

    for m in maps.all():
        out |= set(of_fields(m.fields))
        for r in m.related:
            out |= set(of_fields(r.fields))
            out |= {e.source for e in (r.selector, r.ref_name, r.ref_namespace) if e is not None}
        for rule in m.rules:
            out |= {c.path.source for c in rule.when}
            out |= {c.operand.source for c in rule.when if isinstance(c.operand, Expr)}
    return sorted(out)


OBJECTS = _objects()
SOURCES = _sources()


def test_the_corpus_is_real_and_every_map_path_compiles_to_steps() -> None:
    assert len(OBJECTS) > 100
    assert [s for s in SOURCES if plain_steps(s) is None] == []
    assert any(not Expr.compile(s).single for s in SOURCES)  # wildcards and filters are among them
    for other in ("..name", ".a[0:2]", ".a[?(@.n==1)]", '.a[?(@.k!="v")]', ".a[?(@.k)]"):
        assert plain_steps(other) is None, other  # these stay with jsonpath-ng


def test_building_every_builtin_map_does_not_import_jsonpath_ng() -> None:
    code = "import sys; from kubectl_cyclops.fieldmaps import FieldMaps; FieldMaps().all(); print(sorted(sys.modules))"
    modules = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'kubectl_cyclops.fieldmaps'" in modules
    assert "jsonpath_ng" not in modules


@pytest.mark.parametrize("source", SOURCES)
def test_map_paths_agree_with_jsonpath_ng_on_every_recorded_object(source: str) -> None:
    fast, slow = Expr.compile(source), Expr.compile(source, fast=False)
    assert fast.steps is not None
    assert slow.steps is None
    for obj in OBJECTS:
        assert fast.values(obj) == slow.values(obj), (source, obj.get("metadata", {}).get("name"))
        assert fast.value(obj) == slow.value(obj)


NAMES = ["a", "b", "spec", "x_y"]
KEYS = st.sampled_from([*NAMES, "app.kubernetes.io/name", "k-1", "0"])
STRINGS = st.sampled_from(["", "a", "Ready", "1", "True", "true"]) | st.text(max_size=3)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2) | STRINGS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


LITERALS = st.sampled_from(['"a"', '"Ready"', "'1'", '""', "true", "false", '"true"']) | st.text(
    st.characters(codec="ascii", exclude_characters='"\\{}', exclude_categories=("Cc",)), max_size=3
).map(lambda t: f'"{t}"')
FILTERS = st.builds(
    lambda key, literal, space: f"[?(@.{key}{space}=={space}{literal})]",
    st.sampled_from(NAMES),
    LITERALS,
    st.sampled_from(["", " "]),
)


@st.composite
def map_path(draw: st.DrawFn) -> str:
    steps = draw(st.lists(st.one_of(KEYS, st.integers(0, 3), st.just("[*]"), FILTERS), min_size=1, max_size=4))
    text = ""
    for step in steps:
        if isinstance(step, int):
            text += f"[{step}]"
        elif step.startswith("["):
            text += step
        else:
            text += "." + step.replace(".", "\\.")
    return draw(st.sampled_from([text, "{" + text + "}"]))


@settings(max_examples=600, deadline=None)
@given(obj=st.dictionaries(KEYS, JSON_VALUES, max_size=4), source=map_path())
@example(obj={"a": [{"b": 1}, {"b": True}, {"b": 1.0}, {"b": "true"}, {"c": True}]}, source=".a[?(@.b==true)]")
@example(obj={"a": [{"b": 0}, {"b": False}, {"b": None}, {"b": ""}]}, source="{.a[?(@.b == false)]}")
@example(obj={"a": {"x": {"b": "1"}, "y": {"b": 1}, "z": "1"}}, source='.a[?(@.b=="1")].b')
@example(obj={"a": {"x": 1, "y": [2], "z": None}, "b": "s"}, source=".a[*]")
@example(obj={"a": [[1, 2], {"k": 3}, "s", None]}, source=".a[*][0]")
def test_random_paths_agree_with_jsonpath_ng(obj: dict, source: str) -> None:
    fast, slow = Expr.compile(source), Expr.compile(source, fast=False)
    assert fast.steps is not None
    assert fast.values(obj) == slow.values(obj)
    assert fast.value(obj) == slow.value(obj)

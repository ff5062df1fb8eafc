"""Compiled plain paths give exactly what jsonpath-ng gives.

Every expression of every built-in map, evaluated on every object recorded
from the cluster, both ways; then random plain paths over random JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
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


def test_the_corpus_is_real_and_most_paths_are_plain() -> None:
    assert len(OBJECTS) > 100
    plain = [s for s in SOURCES if plain_steps(s) is not None]
    assert len(plain) > len(SOURCES) / 2
    assert any(plain_steps(s) is None for s in SOURCES)  # filters and wildcards stay with jsonpath-ng


@pytest.mark.parametrize("source", [s for s in SOURCES if plain_steps(s) is not None])
def test_plain_paths_agree_with_jsonpath_ng_on_every_recorded_object(source: str) -> None:
    fast, slow = Expr.compile(source), Expr.compile(source, fast=False)
    assert fast.steps is not None
    assert slow.steps is None
    for obj in OBJECTS:
        assert fast.values(obj) == slow.values(obj), (source, obj.get("metadata", {}).get("name"))
        assert fast.value(obj) == slow.value(obj)


KEYS = st.sampled_from(["a", "b", "spec", "x_y", "app.kubernetes.io/name", "k-1", "0"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


@st.composite
def plain_path(draw: st.DrawFn) -> str:
    steps = draw(st.lists(st.one_of(KEYS, st.integers(0, 3)), min_size=1, max_size=4))
    text = ""
    for step in steps:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += "." + step.replace(".", "\\.")
    return draw(st.sampled_from([text, "{" + text + "}"]))


@settings(max_examples=400, deadline=None)
@given(obj=st.dictionaries(KEYS, JSON_VALUES, max_size=4), source=plain_path())
def test_random_plain_paths_agree_with_jsonpath_ng(obj: dict, source: str) -> None:
    fast, slow = Expr.compile(source), Expr.compile(source, fast=False)
    assert fast.steps is not None
    assert fast.values(obj) == slow.values(obj)
    assert fast.value(obj) == slow.value(obj)

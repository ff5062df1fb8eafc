"""Formatters and kubectl-style JSONPath, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubectl_cyclops.durations import human_duration
from kubectl_cyclops.errors import escape
from kubectl_cyclops.expr import Expr, ExpressionError, translate
from kubectl_cyclops.formats import FORMATTERS, parse_quantity
from kubectl_cyclops.selectors import to_query as label_selector

NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 60, "5h1m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (49 * 3600, "2d1h"),
        (8 * 86400, "8d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
        (-1, "<invalid>"),
    ],
)
def test_human_duration_is_kubectls(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("quantity", "number"),
    [
        ("10Gi", 10 * 2**30),
        ("1Ki", 1024),
        ("500M", 500 * 10**6),
        ("1.5Gi", int(1.5 * 2**30)),
        ("1e3", 1000),
        ("250m", 0.25),
        ("12", 12),
        ("bogus", None),
        (None, None),
    ],
)
def test_parse_quantity(quantity: str | None, number: float | None) -> None:
    parsed = parse_quantity(quantity)
    assert (None if parsed is None else float(parsed)) == number


@pytest.mark.parametrize(
    ("fmt", "value", "table", "json"),
    [
        (
            "accessModes",
            ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"],
            "RWO,ROX,RWX,RWOP",
            ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"],
        ),
        ("bytes", "2Gi", str(2 * 2**30), 2 * 2**30),
        ("quantity", "2Gi", "2Gi", "2Gi"),
        ("duration", ["2026-11-21T11:58:00Z", "2026-11-21T11:59:30Z"], "90s", 90),
        ("duration", ["2026-11-21T11:00:00Z", None], "60m", 3600),
        ("duration", ["2026-11-21T11:00:00Z", None, "2026-11-21T11:30:00Z"], "30m", 1800),
        ("age", "2026-11-21T11:55:00Z", "5m", "2026-11-21T11:55:00Z"),
        ("timestamp", "2026-11-21T11:55:00Z", "2026-11-21T11:55:00Z (5m ago)", "2026-11-21T11:55:00Z"),
        ("text", None, "<none>", None),
        ("text", "", "<none>", ""),
        ("text", True, "true", True),
        ("join", ["a", "b"], "a, b", ["a", "b"]),
        ("ready", [True, False], "1/2", "1/2"),
        ("sum", [1, 2], "3", 3),
        ("count", {"a": 1, "b": 2}, "2", 2),
        ("keys", {"b": 1, "a": 2}, "a, b", ["a", "b"]),
        ("sizes", {"password": 20}, "password: 20 bytes", {"password": 20}),
        ("namespacedName", ["ns", "claim"], "ns/claim", "ns/claim"),
        ("namespacedName", [None, None], "<none>", None),
        (
            "ports",
            [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
            "80->8080/TCP",
            [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
        ),
    ],
)
def test_formatters(fmt: str, value: object, table: str, json: object) -> None:
    f = FORMATTERS[fmt]
    assert str(f.table(value, NOW)) == table
    assert f.json(value, NOW) == json


@pytest.mark.parametrize(
    ("selector", "text"),
    [
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["x", "y"]}]}, "tier in (x,y)"),
        ({"matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["x"]}]}, "t notin (x)"),
        ({"matchExpressions": [{"key": "t", "operator": "Exists"}, {"key": "u", "operator": "DoesNotExist"}]}, "t,!u"),
        ({"app": "web"}, "app=web"),
        ({}, ""),
    ],
)
def test_label_selector(selector: dict, text: str) -> None:
    assert label_selector(selector) == text


@pytest.mark.parametrize(
    ("source", "translated"),
    [
        ("{.spec.capacity.storage}", "$.spec.capacity.storage"),
        (".spec.capacity.storage", "$.spec.capacity.storage"),
        ("spec.capacity.storage", "$.spec.capacity.storage"),
        ('.status.conditions[?(@.type=="Complete")].status', '$.status.conditions[?(@.type=="Complete")].status'),
        (r".metadata.labels.app\.kubernetes\.io/name", "$.metadata.labels.'app.kubernetes.io/name'"),
        ("{.items[*].metadata.name}", "$.items[*].metadata.name"),
        ("..name", "$..name"),
    ],
)
def test_kubectl_jsonpath_is_translated(source: str, translated: str) -> None:
    assert translate(source) == translated


def test_expressions_evaluate_like_kubectl() -> None:
    obj = {
        "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
        "status": {"conditions": [{"type": "Complete", "status": "True"}, {"type": "Failed", "status": "False"}]},
        "spec": {"accessModes": ["ReadWriteOnce"]},
    }
    assert Expr.compile(r"{.metadata.labels.app\.kubernetes\.io/name}").value(obj) == "web"
    assert Expr.compile('.status.conditions[?(@.type=="Complete")].status').value(obj) == "True"
    assert Expr.compile(".status.conditions[*].type").value(obj) == ["Complete", "Failed"]
    assert Expr.compile(".spec.missing").value(obj) is None


@pytest.mark.parametrize("bad", ["{.a}{.b}", ".a[?(@.x==", "", "{range .items[*]}{.x}{end}"])
def test_bad_expressions_are_rejected(bad: str) -> None:
    with pytest.raises(ExpressionError):
        Expr.compile(bad)


def test_control_characters_are_escaped() -> None:
    assert escape("ok\x1b[31mred\x07\n") == "ok\\x1b[31mred\\x07\\n"
    assert escape("a\u2028b\u202eevil") == "a\\u2028b\\u202eevil"  # a line break to splitlines; a bidi override

"""Label selectors: kubectl's `-l` syntax for queries, and matching labels in memory.

A selector is read from an object: a LabelSelector (matchLabels and
matchExpressions, a Job's `.spec.selector`) or a plain map (a Service's
`.spec.selector`). Used to build list queries and to join a batched list
with many parents; display code formats selectors through this module too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_OPERATORS = {"In": "in", "NotIn": "notin"}


def is_label_selector(value: Any) -> bool:
    return isinstance(value, dict) and ("matchLabels" in value or "matchExpressions" in value)


def to_query(value: Any) -> str:
    """A LabelSelector or a plain map as kubectl's -l syntax ("" for none or an empty one)."""
    if not isinstance(value, dict):
        return ""
    if not is_label_selector(value):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    terms = [f"{k}={v}" for k, v in sorted((value.get("matchLabels") or {}).items())]
    for e in value.get("matchExpressions") or []:
        op, key, vals = e.get("operator"), e.get("key"), ",".join(e.get("values") or [])
        if op in _OPERATORS:
            terms.append(f"{key} {_OPERATORS[op]} ({vals})")
        elif op == "Exists":
            terms.append(str(key))
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
        else:
            terms.append(f"{key} {op} ({vals})")
    return ",".join(terms)


def matches(value: Any, labels: Mapping[str, str] | None) -> bool:
    """Whether labels satisfy a selector, as the API server decides it (an empty selector: no match)."""
    if not to_query(value):
        return False
    labels = labels or {}
    if not is_label_selector(value):
        return all(labels.get(k) == str(v) for k, v in value.items())
    if any(labels.get(k) != str(v) for k, v in (value.get("matchLabels") or {}).items()):
        return False
    for e in value.get("matchExpressions") or []:
        op, key, vals = e.get("operator"), e.get("key"), [str(v) for v in e.get("values") or []]
        present = key in labels
        if op == "In" and not (present and labels[key] in vals):
            return False
        if op == "NotIn" and present and labels[key] in vals:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def required_keys(value: Any) -> set[str]:
    """Label keys every object a selector matches must carry."""
    if not isinstance(value, dict):
        return set()
    if not is_label_selector(value):
        return set(value)
    keys = set(value.get("matchLabels") or {})
    keys |= {e.get("key") for e in value.get("matchExpressions") or [] if e.get("operator") in ("In", "Exists")}
    return {k for k in keys if isinstance(k, str)}


def common_keys(values: list[Any]) -> str:
    """A query for the label keys that all selectors require (an existence test), or "" for none."""
    keys = [required_keys(v) for v in values]
    shared = set.intersection(*keys) if keys else set()
    return ",".join(sorted(shared))

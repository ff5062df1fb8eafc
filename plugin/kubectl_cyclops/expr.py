"""kubectl-style JSONPath expressions, compiled once.

Accepts what users write for `kubectl get -o jsonpath`: `{.spec.capacity.storage}`,
`.status.conditions[?(@.type=="Complete")].status`, plain `spec.x`, and keys
with escaped dots such as `.metadata.labels.app\\.kubernetes\\.io/name`.

Plain paths (keys and non-negative indexes only: `.a.b`, `.a[0].b`, escaped
dots) compile to a tuple of direct lookups; filters, wildcards, slices and
recursion are compiled by jsonpath-ng. Both give the same matches
(tests/test_expr.py checks it on every recorded object).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$|^\*$|^$")
_INDEX = re.compile(r"\[(\d+)\]")


class ExpressionError(ValueError):
    pass


@cache
def _parser() -> Any:
    from jsonpath_ng.ext.parser import ExtendedJsonPathParser

    return ExtendedJsonPathParser()


def _split(path: str) -> list[str]:
    """Split on dots outside brackets, quotes and escapes."""
    parts, current, depth, quote, i = [], "", 0, "", 0
    while i < len(path):
        ch = path[i]
        if ch == "\\" and i + 1 < len(path):
            current += path[i : i + 2]
            i += 2
            continue
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "." and depth == 0:
            parts.append(current)
            current = ""
            i += 1
            continue
        current += ch
        i += 1
    if depth or quote:
        raise ExpressionError("unbalanced brackets or quotes")
    parts.append(current)
    return parts


def _normalize(source: str) -> list[str]:
    """The dot-separated segments of a kubectl expression, without braces or a leading $."""
    text = source.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if "{" in text or "}" in text:
        raise ExpressionError("one {expression} per field; templates with text or range are not supported")
    if not text:
        raise ExpressionError("empty expression")
    if text.startswith("$"):
        text = text[1:]
    if text and not text.startswith((".", "[")):
        text = "." + text
    segments = _split(text)
    return segments[1:] if segments[0] == "" else segments


def plain_steps(source: str) -> tuple[str | int, ...] | None:
    """Direct lookups for a plain path (keys, escaped dots, [N]); None when jsonpath-ng is needed."""
    steps: list[str | int] = []
    for seg in _normalize(source):
        bracket = _bracket_start(seg)
        key, rest = seg[:bracket], seg[bracket:]
        if key:
            if key == "*" or "\\" in key.replace("\\.", "") or any(c in key for c in "'\"@$?()*"):
                return None
            steps.append(key.replace("\\.", "."))
        elif not rest:
            return None  # `..`: recursion
        while rest:
            m = _INDEX.match(rest)
            if not m:
                return None
            steps.append(int(m.group(1)))
            rest = rest[m.end() :]
    return tuple(steps)


def translate(source: str) -> str:
    """kubectl JSONPath syntax to jsonpath-ng's extended syntax."""
    segments = _normalize(source)
    out = []
    for seg in segments:
        bracket = _bracket_start(seg)
        key, rest = seg[:bracket], seg[bracket:]
        key = key.replace("\\.", ".")
        if not _PLAIN_KEY.match(key):
            key = "'" + key.replace("'", "\\'") + "'"
        out.append(key + rest)
    joined = ".".join(out)
    return "$" + ("" if joined.startswith("[") else ".") + joined if joined else "$"


def _bracket_start(segment: str) -> int:
    i = 0
    while i < len(segment):
        if segment[i] == "\\":
            i += 2
            continue
        if segment[i] == "[":
            return i
        i += 1
    return len(segment)


@dataclass(frozen=True)
class Expr:
    """A compiled expression. `values` lists every match; `value` is None, one value, or a list."""

    source: str
    _compiled: Any = field(compare=False, repr=False)
    steps: tuple[str | int, ...] | None = field(default=None, compare=False, repr=False)
    default: Any = None

    @classmethod
    def compile(cls, source: str, fast: bool = True) -> Expr:
        if not isinstance(source, str):
            raise ExpressionError(f"expected a JSONPath string, got {type(source).__name__}")
        translated = translate(source)
        steps = plain_steps(source) if fast else None
        if steps is not None:
            return cls(source, None, steps)
        try:
            compiled = _parser().parse(translated)
        except Exception as exc:  # jsonpath-ng raises bare Exception subclasses from ply
            raise ExpressionError(f"cannot parse {source!r}: {exc}") from None
        return cls(source, compiled)

    def with_default(self, default: Any) -> Expr:
        """This expression, reading `default` where it matches nothing (an API default the server omits)."""
        return replace(self, default=default)

    def values(self, obj: Any) -> list[Any]:
        found = self._find(obj)
        if self.default is None or any(v is not None for v in found):
            return found
        return [self.default]

    def _find(self, obj: Any) -> list[Any]:
        if self.steps is None:
            return [m.value for m in self._compiled.find(obj)]
        for step in self.steps:
            if isinstance(step, str):
                if not isinstance(obj, dict) or step not in obj:
                    return []
            elif not isinstance(obj, list) or step >= len(obj):
                return []
            obj = obj[step]
        return [obj]

    def value(self, obj: Any) -> Any:
        if self.steps is not None:
            found = self.values(obj)
            return found[0] if found else None
        found = [v for v in self.values(obj) if v is not None]
        if not found:
            return None
        return found[0] if len(found) == 1 else found

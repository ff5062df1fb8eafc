"""kubectl-style JSONPath expressions, compiled once.

Accepts what users write for `kubectl get -o jsonpath`: `{.spec.capacity.storage}`,
`.status.conditions[?(@.type=="Complete")].status`, plain `spec.x`, and keys
with escaped dots such as `.metadata.labels.app\\.kubernetes\\.io/name`.

Paths of keys, non-negative indexes, wildcards and one-key equality filters
(`.a.b`, `.a[0].b`, escaped dots, `.a[*].b`, `.a[?(@.type=="Ready")].b` with a
string, `true` or `false`) compile to a tuple of direct steps: every built-in
map's expressions are of these forms, so jsonpath-ng is not even imported for
them. Anything else (other filters, slices, recursion, unions) is compiled by
jsonpath-ng, whose RFC 9535 semantics the steps follow: a wildcard or filter
over a mapping takes its values, a filter compares a string only with a string
and a boolean only with itself. tests/test_expr.py checks that both give the
same matches on every recorded object and on random JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, cast

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$|^\*$|^$")
_INDEX = re.compile(r"\[(\d+)\]")
_WILDCARD = re.compile(r"\[\*\]")
_WHERE = re.compile(r"""\[\?\(\s*@\.([A-Za-z_][A-Za-z0-9_]*)\s*==\s*(?:"([^"\\]*)"|'([^'\\]*)'|(true|false))\s*\)\]""")


class _Each:
    """`[*]`: the elements of a list, the values of a mapping; nothing of a scalar."""

    __slots__ = ()

    def select(self, value: Any) -> list[Any]:
        if isinstance(value, list):
            return value
        return list(value.values()) if isinstance(value, dict) else []

    def __repr__(self) -> str:
        return "[*]"


class _Where:
    """`[?(@.key==literal)]`: the elements (or mapping values) that are mappings whose `key` equals `literal`."""

    __slots__ = ("key", "literal")

    def __init__(self, key: str, literal: str | bool) -> None:
        self.key, self.literal = key, literal

    def select(self, value: Any) -> list[Any]:
        candidates = value if isinstance(value, list) else value.values() if isinstance(value, dict) else ()
        key, literal = self.key, self.literal
        if isinstance(literal, bool):  # a boolean equals only itself (never 1 or 0)
            return [c for c in candidates if isinstance(c, dict) and key in c and c[key] is literal]
        return [c for c in candidates if isinstance(c, dict) and isinstance(c.get(key), str) and c[key] == literal]

    def __repr__(self) -> str:
        return f"[?(@.{self.key}=={self.literal!r})]"


Step = str | int | _Each | _Where
EACH = _Each()


class ExpressionError(ValueError):
    pass


@cache
def _parser() -> Any:
    from jsonpath_ng.ext.parser import ExtendedJsonPathParser

    return ExtendedJsonPathParser()


def _split(path: str) -> list[str]:
    """Split on dots outside brackets, quotes and escapes."""
    if not any(c in path for c in "[]'\"\\"):
        return path.split(".")  # most paths: keys only
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


def plain_steps(source: str) -> tuple[Step, ...] | None:
    """Direct steps for keys, escaped dots, [N], [*] and [?(@.k==literal)]; None when jsonpath-ng is needed."""
    steps: list[Step] = []
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
            if m := _INDEX.match(rest):
                steps.append(int(m.group(1)))
            elif m := _WILDCARD.match(rest):
                steps.append(EACH)
            elif m := _WHERE.match(rest):
                key, double, single, boolean = m.groups()
                literal = (boolean == "true") if boolean else double if double is not None else single
                steps.append(_Where(key, literal))
            else:
                return None
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


def _through(steps: tuple[Step, ...]) -> Callable[[Any], list[Any]] | None:
    """Keys, one wildcard or filter, keys (`.status.conditions[?(@.type=="Ready")].status`, the form of most
    paths with several values) as one function that walks them directly; None for other forms."""
    many = [i for i, s in enumerate(steps) if not isinstance(s, str)]
    if len(many) != 1 or isinstance(steps[many[0]], int):
        return None
    before, select, after = steps[: many[0]], cast(_Each | _Where, steps[many[0]]).select, steps[many[0] + 1 :]

    def find(obj: Any) -> list[Any]:
        for key in before:
            if not isinstance(obj, dict) or key not in obj:
                return []
            obj = obj[key]
        found = []
        for value in select(obj):
            for key in after:
                if not isinstance(value, dict) or key not in value:
                    break
                value = value[key]
            else:
                found.append(value)
        return found

    return find


@dataclass(frozen=True)
class Expr:
    """A compiled expression. `values` lists every match; `value` is None, one value, or a list."""

    source: str
    _compiled: Any = field(compare=False, repr=False)
    steps: tuple[Step, ...] | None = field(default=None, compare=False, repr=False)
    default: Any = None
    single: bool = field(default=False, compare=False, repr=False)  # keys and indexes only: at most one match
    keys: tuple[str, ...] | None = field(default=None, compare=False, repr=False)  # keys only: a direct walk
    _through: Callable[[Any], list[Any]] | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_through", None if self.steps is None else _through(self.steps))

    @classmethod
    def compile(cls, source: str, fast: bool = True) -> Expr:
        if not isinstance(source, str):
            raise ExpressionError(f"expected a JSONPath string, got {type(source).__name__}")
        steps = plain_steps(source) if fast else None
        if steps is not None:
            keys = steps if all(isinstance(s, str) for s in steps) else None
            return cls(source, None, steps, single=all(isinstance(s, str | int) for s in steps), keys=keys)  # type: ignore[arg-type]
        try:
            compiled = _parser().parse(translate(source))
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
        if not self.single:
            return self._find_all(obj) if self._through is None else self._through(obj)
        for step in self.steps:
            if isinstance(step, str):
                if not isinstance(obj, dict) or step not in obj:
                    return []
            elif not isinstance(obj, list) or step >= len(obj):  # type: ignore[operator]
                return []
            obj = obj[step]
        return [obj]

    def _find_all(self, obj: Any) -> list[Any]:
        found = [obj]
        for step in self.steps or ():
            if isinstance(step, str):
                found = [v[step] for v in found if isinstance(v, dict) and step in v]
            elif isinstance(step, int):
                found = [v[step] for v in found if isinstance(v, list) and step < len(v)]
            else:
                found = [match for v in found for match in step.select(v)]
        return found

    def value(self, obj: Any) -> Any:
        if self.keys is not None:  # most paths: `.spec.x.y`, walked without building a list of matches
            for key in self.keys:
                if not isinstance(obj, dict):
                    return self.default
                obj = obj.get(key)
                if obj is None:
                    return self.default
            return obj
        if self.single:
            found = self.values(obj)
            return found[0] if found else None
        found = [v for v in self.values(obj) if v is not None]
        if not found:
            return None
        return found[0] if len(found) == 1 else found

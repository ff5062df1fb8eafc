"""Field maps: per-kind YAML declarations of what `details` shows.

A map is parsed into frozen records and each of its JSONPath expressions is
compiled once, when the map is first used (`kinds --check` builds them all).
Anything malformed is rejected with the file, the field and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from .errors import FieldMapError
from .expr import Expr, ExpressionError
from .formats import FORMATTERS, Formatter

ENV_VAR = "KUBECTL_CYCLOPS_FIELD_MAPS"
STATUSES = ("healthy", "progressing", "failed", "unknown")
OPERATORS = (
    "equals",
    "notEquals",
    "in",
    "exists",
    "greaterThan",
    "lessThan",
    "equalsPath",
    "lessThanPath",
)
GENERIC = ("*", "*")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Field:
    name: str
    title: str
    paths: tuple[Expr, ...]
    formatter: Formatter
    format: str = "text"
    args: tuple[Any, ...] = ()
    wide: bool = False
    json_only: bool = False
    omit_empty: bool = False
    default: Any = None

    def extract(self, obj: dict[str, Any]) -> Any:
        """The raw value; `default` stands in for a missing one (the API omits zero counts)."""
        if len(self.paths) == 1:
            value = self.paths[0].value(obj)
            return self.default if value is None else value
        return [p.value(obj) for p in self.paths]

    def table(self, value: Any, now: Any) -> str:
        if self.formatter.takes_args:
            return str(self.formatter.table(value, now, self.args))
        return str(self.formatter.table(value, now))

    def json(self, value: Any, now: Any) -> Any:
        if self.formatter.takes_args:
            return self.formatter.json(value, now, self.args)
        return self.formatter.json(value, now)


@dataclass(frozen=True)
class Relation:
    name: str
    title: str
    group: str
    kind: str
    selector: Expr | None = None
    ref_name: Expr | None = None
    ref_namespace: Expr | None = None
    owned: bool = False
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True)
class Condition:
    path: Expr
    operator: str
    operand: Any

    def holds(self, obj: dict[str, Any]) -> bool:
        value = self.path.value(obj)
        op, want = self.operator, self.operand
        if op == "exists":
            return (value is not None) == bool(want)
        if op in ("equalsPath", "lessThanPath"):
            want = want.value(obj)
        if op in ("equals", "equalsPath"):
            return _same(value, want)
        if op == "notEquals":
            return not _same(value, want)
        if op == "in":
            return any(_same(value, w) for w in want)
        try:
            if op == "greaterThan":
                return float(value or 0) > float(want)
            return float(value or 0) < float(want or 0)  # lessThan, lessThanPath
        except (TypeError, ValueError):
            return False


def _same(a: Any, b: Any) -> bool:
    # An omitted integer field is zero in the API (status.readyReplicas of a scaled-down Deployment).
    if (isinstance(a, int | float) and b is None) or (a is None and isinstance(b, int | float)):
        return (a or 0) == (b or 0)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return (None if a is None else str(a)) == (None if b is None else str(b))


@dataclass(frozen=True)
class Rule:
    status: str
    when: tuple[Condition, ...]


@dataclass(frozen=True)
class FieldMap:
    group: str
    version: str
    kind: str
    source: str
    fields: tuple[Field, ...]
    related: tuple[Relation, ...]
    rules: tuple[Rule, ...]
    default_status: str = "unknown"

    def status(self, obj: dict[str, Any]) -> str:
        for rule in self.rules:
            if all(c.holds(obj) for c in rule.when):
                return rule.status
        return self.default_status


def title_of(name: str) -> str:
    """backoffLimit -> Backoff Limit; PVC stays PVC."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").split()
    return " ".join(w[:1].upper() + w[1:] for w in words)


class _Parser:
    """Builds frozen records from one file's YAML, naming the field on any error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, reason: str) -> FieldMapError:
        return FieldMapError(self.source, where, reason)

    def mapping(self, value: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        unknown = set(value) - allowed
        if unknown:
            raise self.fail(
                where,
                f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; allowed: {', '.join(sorted(allowed))}",
            )
        missing = required - set(value)
        if missing:
            raise self.fail(where, f"missing required key(s) {', '.join(sorted(missing))}")
        return value

    def expr(self, source: Any, where: str) -> Expr:
        try:
            return Expr.compile(source)
        except ExpressionError as exc:
            raise self.fail(where, f"bad JSONPath: {exc}") from None

    def field(self, raw: Any, where: str) -> Field:
        keys = {
            "name",
            "title",
            "path",
            "paths",
            "format",
            "args",
            "wide",
            "jsonOnly",
            "omitEmpty",
            "default",
        }
        doc = self.mapping(raw, where, keys, {"name"})
        name = doc["name"]
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name):
            raise self.fail(where, f"field name {name!r} must be an identifier such as backoffLimit")
        where = f"{where} ({name})"
        if ("path" in doc) == ("paths" in doc):
            raise self.fail(where, "give exactly one of path or paths")
        sources = [doc["path"]] if "path" in doc else doc["paths"]
        if not isinstance(sources, list) or not sources:
            raise self.fail(where, "paths must be a non-empty list")
        fmt = doc.get("format", "text")
        if fmt not in FORMATTERS:
            raise self.fail(where, f"unknown format {fmt!r}; known: {', '.join(sorted(FORMATTERS))}")
        args = doc.get("args", [])
        if not isinstance(args, list):
            raise self.fail(where, "args must be a list")
        return Field(
            name=name,
            title=doc.get("title") or title_of(name),
            paths=tuple(self.expr(s, where) for s in sources),
            formatter=FORMATTERS[fmt],
            format=fmt,
            args=tuple(args),
            wide=bool(doc.get("wide", False)),
            json_only=bool(doc.get("jsonOnly", False)),
            omit_empty=bool(doc.get("omitEmpty", False)),
            default=doc.get("default"),
        )

    def fields(self, raw: Any, where: str) -> tuple[Field, ...]:
        if not isinstance(raw, list):
            raise self.fail(where, "expected a list of fields")
        out = tuple(self.field(f, f"{where}[{i}]") for i, f in enumerate(raw))
        names = [f.name for f in out]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise self.fail(where, f"duplicate field name(s) {', '.join(dupes)}")
        return out

    def relation(self, raw: Any, where: str) -> Relation:
        keys = {"name", "title", "kind", "group", "selector", "ref", "owned", "fields"}
        doc = self.mapping(raw, where, keys, {"name", "kind", "fields"})
        where = f"{where} ({doc['name']})"
        ways = [k for k in ("selector", "ref", "owned") if doc.get(k)]
        if len(ways) != 1:
            raise self.fail(where, "give exactly one of selector, ref or owned")
        ref = self.mapping(doc.get("ref") or {"name": "."}, f"{where}.ref", {"name", "namespace"}, {"name"})
        return Relation(
            name=doc["name"],
            title=doc.get("title") or title_of(doc["name"]),
            group=doc.get("group", ""),
            kind=doc["kind"],
            selector=self.expr(doc["selector"], f"{where}.selector") if "selector" in doc else None,
            ref_name=self.expr(ref["name"], f"{where}.ref.name") if "ref" in doc else None,
            ref_namespace=self.expr(ref["namespace"], f"{where}.ref.namespace") if "namespace" in ref else None,
            owned=bool(doc.get("owned")),
            fields=self.fields(doc["fields"], f"{where}.fields"),
        )

    def condition(self, raw: Any, where: str) -> Condition:
        doc = self.mapping(raw, where, {"path", *OPERATORS}, {"path"})
        ops = [k for k in doc if k in OPERATORS]
        if len(ops) != 1:
            raise self.fail(where, f"give exactly one operator of {', '.join(OPERATORS)}")
        op, operand = ops[0], doc[ops[0]]
        if op.endswith("Path"):
            operand = self.expr(operand, f"{where}.{op}")
        elif op == "in" and not isinstance(operand, list):
            raise self.fail(where, "in takes a list")
        return Condition(self.expr(doc["path"], f"{where}.path"), op, operand)

    def rules(self, raw: Any, where: str) -> tuple[tuple[Rule, ...], str]:
        doc = self.mapping(raw, where, {"rules", "default"})
        default = doc.get("default", "unknown")
        out = []
        for i, r in enumerate(doc.get("rules") or []):
            rw = f"{where}.rules[{i}]"
            rd = self.mapping(r, rw, {"status", "when"}, {"status", "when"})
            when = rd["when"] if isinstance(rd["when"], list) else [rd["when"]]
            out.append(
                Rule(
                    rd["status"],
                    tuple(self.condition(c, f"{rw}.when[{j}]") for j, c in enumerate(when)),
                )
            )
        for status in [default, *(r.status for r in out)]:
            if status not in STATUSES:
                raise self.fail(where, f"status {status!r} is not one of {', '.join(STATUSES)}")
        return tuple(out), default

    def build(self, doc: dict[str, Any]) -> FieldMap:
        rules, default = self.rules(doc.get("status") or {}, "status")
        return FieldMap(
            group=doc["group"],
            version=doc["version"],
            kind=doc["kind"],
            source=self.source,
            fields=self.fields(doc.get("fields") or [], "fields"),
            related=tuple(self.relation(r, f"related[{i}]") for i, r in enumerate(doc.get("related") or [])),
            rules=rules,
            default_status=default,
        )


def read(path: Path | Traversable, source: str) -> dict[str, Any]:
    """A map file's YAML with its header checked; expressions are compiled later, by build()."""
    parser = _Parser(source)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, yaml.YAMLError) as exc:
        raise parser.fail("", f"cannot read YAML: {' '.join(str(exc).split())}") from None
    doc = parser.mapping(
        doc,
        "top level",
        {"group", "version", "kind", "fields", "related", "status"},
        {"group", "version", "kind"},
    )
    for key in ("group", "version", "kind"):
        if not isinstance(doc[key], str):
            raise parser.fail(key, 'must be a string (use "" for the core group)')
    return doc


class FieldMaps:
    """The built-in maps, overridden and extended by user maps from directories."""

    def __init__(self, user_dirs: list[str] | None = None) -> None:
        self._docs: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        self._built: dict[tuple[str, str], FieldMap] = {}
        builtin = resources.files(__package__) / "fieldmaps"
        for entry in sorted(builtin.iterdir(), key=lambda e: e.name):
            if entry.name.endswith((".yaml", ".yml")):
                self._add(entry, f"builtin:{entry.name}")  # a Traversable: also works from a zipapp
        for directory in user_dirs or []:
            path = Path(directory)
            if not path.is_dir():
                raise FieldMapError(str(path), "", "field map directory does not exist")
            for file in sorted([*path.glob("*.yaml"), *path.glob("*.yml")]):
                doc = self._add(file, str(file))
                self.get(doc["group"], doc["kind"])  # user maps are checked in full at once; built-ins by tests

    def _add(self, path: Path | Traversable, source: str) -> dict[str, Any]:
        doc = read(path, source)
        self._docs[(doc["group"], doc["kind"])] = (doc, source)
        self._built.pop((doc["group"], doc["kind"]), None)
        return doc

    def get(self, group: str, kind: str) -> FieldMap:
        key = (group, kind) if (group, kind) in self._docs else GENERIC
        if key not in self._built:
            doc, source = self._docs[key]
            self._built[key] = _Parser(source).build(doc)
        return self._built[key]

    def all(self) -> list[FieldMap]:
        """Every map, built (and so validated), ordered by kind."""
        return sorted((self.get(g, k) for g, k in self._docs), key=lambda m: (m.kind, m.group))

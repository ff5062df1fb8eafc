"""Field maps: per-kind YAML declarations of what `details` shows, parsed into frozen records.

This module reads and validates maps; evaluate.py evaluates them. Each
JSONPath expression is compiled once, when its map is first used (user maps
when they are loaded, so a bad one is reported at once). Anything malformed is
rejected with the file, the field and the reason. A built-in map lives in
`fieldmaps/<kind in lower case>.yaml`, so showing one kind reads one file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from . import durations
from .errors import FieldMapError
from .expr import Expr, ExpressionError
from .formats import FORMATTERS

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
    "notEqualsPath",
    "lessThanPath",
    "greaterThanPath",
    "olderThan",
)
QUANTIFIERS = ("any", "all")
GENERIC = ("*", "*")
COMMON = "_common.yaml"
BUILTIN = Path(__file__).parent / "fieldmaps"  # installed as files; importlib.resources would add 4 ms to every start
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class Field(NamedTuple):
    name: str
    title: str
    paths: tuple[Expr, ...]
    format: str = "text"
    args: tuple[Any, ...] = ()
    wide: bool = False
    json_only: bool = False
    table_only: bool = False
    omit_empty: bool = False


class Relation(NamedTuple):
    name: str
    title: str
    group: str
    kind: str
    selector: Expr | None = None
    ref_name: Expr | None = None
    ref_namespace: Expr | None = None
    owned: bool = False
    referenced_by: Expr | None = None  # objects of `kind` whose field names this object (reverse references)
    referenced_kind: Expr | None = None  # ... and whose field names this object's kind, where a ref can name several
    fields: tuple[Field, ...] = ()
    events: bool = False  # the related objects' status rules read their events too (one more list per relation)


class Condition(NamedTuple):
    """`path <operator> operand [- minus]`; over a path with several values, `any` (default) or `all` must hold.

    An `olderThan` operand is in seconds. With `on_event`, the path is read from
    the object's last event (`event: last` in a map), not from the object; with
    `among`, from the last of its events with one of those reasons.
    """

    path: Expr
    operator: str
    operand: Any
    quantifier: str = "any"
    minus: Expr | float | None = None
    on_event: bool = False
    among: tuple[str, ...] = ()


class Template(NamedTuple):
    """A reason: text with {EXPR} placeholders, the one-line form of a status condition of a type, or the
    object's last event."""

    parts: tuple[str | Expr, ...] = ()
    condition: str | None = None
    message: bool = False  # the condition's message too
    event: bool = False  # the last event's reason and message


class Rule(NamedTuple):
    status: str
    when: tuple[Condition, ...]
    reason: Template | None = None
    for_each: Expr | None = None  # the conditions hold for one element of this list; paths are relative to it


class FieldMap(NamedTuple):
    group: str
    version: str
    kind: str
    source: str
    fields: tuple[Field, ...]
    related: tuple[Relation, ...]
    rules: tuple[Rule, ...]
    default_status: str = "unknown"
    default_reason: Template | None = None


def title_of(name: str) -> str:
    """backoffLimit -> Backoff Limit; PVC stays PVC."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").split()
    return " ".join(w[:1].upper() + w[1:] for w in words)


class _Parser:
    """Builds frozen records from one file's YAML, naming the field on any error."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.defaults: dict[str, Any] = {}  # status.defaults: EXPR -> the value the API means when it is absent

    def fail(self, where: str, reason: str) -> FieldMapError:
        return FieldMapError(self.source, where, reason)

    def mapping(
        self, value: Any, where: str, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
    ) -> dict[str, Any]:
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

    def rule_expr(self, source: Any, where: str) -> Expr:
        """An expression of a status rule or reason, reading the map's `defaults` where one is declared."""
        expr = self.expr(source, where)
        return expr.with_default(self.defaults[source]) if source in self.defaults else expr

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
            "tableOnly",
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
        paths = tuple(self.expr(s, where) for s in sources)
        if len(paths) == 1 and doc.get("default") is not None:  # the value when the path matches nothing
            paths = (paths[0].with_default(doc["default"]),)
        return Field(
            name=name,
            title=doc.get("title") or title_of(name),
            paths=paths,
            format=fmt,
            args=tuple(args),
            wide=bool(doc.get("wide", False)),
            json_only=bool(doc.get("jsonOnly", False)),
            table_only=bool(doc.get("tableOnly", False)),
            omit_empty=bool(doc.get("omitEmpty", False)),
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
        keys = {"name", "title", "kind", "group", "selector", "ref", "owned", "referencedBy", "events", "fields"}
        doc = self.mapping(raw, where, keys, {"name", "kind", "fields"})
        where = f"{where} ({doc['name']})"
        ways = [k for k in ("selector", "ref", "owned", "referencedBy") if doc.get(k)]
        if len(ways) != 1:
            raise self.fail(where, "give exactly one of selector, ref, owned or referencedBy")
        ref = self.mapping(doc.get("ref") or {"name": "."}, f"{where}.ref", {"name", "namespace"}, {"name"})
        back = self.mapping(
            doc.get("referencedBy") or {"name": "."}, f"{where}.referencedBy", {"name", "kind"}, {"name"}
        )
        return Relation(
            name=doc["name"],
            title=doc.get("title") or title_of(doc["name"]),
            group=doc.get("group", ""),
            kind=doc["kind"],
            selector=self.expr(doc["selector"], f"{where}.selector") if "selector" in doc else None,
            ref_name=self.expr(ref["name"], f"{where}.ref.name") if "ref" in doc else None,
            ref_namespace=self.expr(ref["namespace"], f"{where}.ref.namespace") if "namespace" in ref else None,
            owned=bool(doc.get("owned")),
            referenced_by=self.expr(back["name"], f"{where}.referencedBy.name") if "referencedBy" in doc else None,
            referenced_kind=self.expr(back["kind"], f"{where}.referencedBy.kind") if "kind" in back else None,
            fields=self.fields(doc["fields"], f"{where}.fields"),
            events=bool(doc.get("events", False)),
        )

    def related(self, raw: Any) -> tuple[Relation, ...]:
        """The relations; several of one name are one relation read in several ways, so one kind."""
        if not isinstance(raw, list):
            raise self.fail("related", "must be a list")
        out = tuple(self.relation(r, f"related[{i}]") for i, r in enumerate(raw))
        first: dict[str, Relation] = {}
        for i, relation in enumerate(out):
            other = first.setdefault(relation.name, relation)
            if (other.group, other.kind) != (relation.group, relation.kind):
                raise self.fail(
                    f"related[{i}]", f"{relation.name!r} is also a relation to {other.kind}: one name, one kind"
                )
        return out

    def condition(self, raw: Any, where: str) -> Condition:
        doc = self.mapping(raw, where, {"path", "match", "minus", "event", "among", *OPERATORS}, {"path"})
        if doc.get("event", "last") != "last":
            raise self.fail(where, f"event: last is the one event a condition can read, not {doc['event']!r}")
        among = doc.get("among", [])
        if among and "event" not in doc:
            raise self.fail(where, "among (event reasons) goes with event: last")
        if not isinstance(among, list) or not all(isinstance(r, str) for r in among):
            raise self.fail(where, "among is a list of event reasons")
        ops = [k for k in doc if k in OPERATORS]
        if len(ops) != 1:
            raise self.fail(where, f"give exactly one operator of {', '.join(OPERATORS)}")
        op, operand = ops[0], doc[ops[0]]
        if op.endswith("Path"):
            operand = self.rule_expr(operand, f"{where}.{op}")
        elif op == "in" and not isinstance(operand, list):
            raise self.fail(where, "in takes a list")
        elif op == "olderThan":
            operand = durations.parse(str(operand))
            if operand is None:
                raise self.fail(where, f"olderThan takes a duration such as 15s or 5m, not {doc[op]!r}")
        minus: Expr | float | None = None
        if "minus" in doc:
            if op not in ("equalsPath", "lessThanPath", "greaterThanPath", "greaterThan", "lessThan"):
                raise self.fail(where, "minus applies to a numeric comparison")
            raw_minus = doc["minus"]
            is_number = isinstance(raw_minus, int | float) and not isinstance(raw_minus, bool)
            minus = float(raw_minus) if is_number else self.rule_expr(raw_minus, f"{where}.minus")
        quantifier = doc.get("match", "any")
        if quantifier not in QUANTIFIERS:
            raise self.fail(where, f"match must be any or all, not {quantifier!r}")
        on_event = "event" in doc
        # The map's defaults describe the object, not its events.
        path = self.expr(doc["path"], f"{where}.path") if on_event else self.rule_expr(doc["path"], f"{where}.path")
        return Condition(path, op, operand, quantifier, minus, on_event, tuple(among))

    def template(self, raw: Any, where: str) -> Template | None:
        if raw is None:
            return None
        shapes = "a string with {JSONPath} placeholders, {condition: TYPE, message: BOOL} or {event: last}"
        if isinstance(raw, dict) and "event" in raw:
            doc = self.mapping(raw, where, {"event"}, {"event"})
            if doc["event"] != "last":
                raise self.fail(where, f"a reason is {shapes}")
            return Template(event=True)
        if isinstance(raw, dict):
            doc = self.mapping(raw, where, {"condition", "message"}, {"condition"})
            return Template(condition=str(doc["condition"]), message=bool(doc.get("message", False)))
        if not isinstance(raw, str):
            raise self.fail(where, f"a reason is {shapes}")
        parts: list[str | Expr] = []
        at = 0
        for m in _PLACEHOLDER.finditer(raw):
            parts += [raw[at : m.start()], self.rule_expr(m.group(1), where)]
            at = m.end()
        parts.append(raw[at:])
        return Template(tuple(p for p in parts if p != ""))

    def rules(self, raw: Any, where: str) -> tuple[tuple[Rule, ...], str, Template | None]:
        doc = self.mapping(raw, where, {"rules", "default", "defaultReason", "defaults"})
        default = doc.get("default", "unknown")
        defaults = doc.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise self.fail(f"{where}.defaults", "expected a mapping of expression to value")
        for source, value in defaults.items():
            self.expr(source, f"{where}.defaults")
            if value is None or isinstance(value, dict | list):
                raise self.fail(f"{where}.defaults", f"the default of {source} must be a number, string or boolean")
        self.defaults = defaults
        out = []
        for i, r in enumerate(doc.get("rules") or []):
            rw = f"{where}.rules[{i}]"
            rd = self.mapping(r, rw, {"status", "when", "reason", "forEach"}, {"status", "when"})
            when = rd["when"] if isinstance(rd["when"], list) else [rd["when"]]
            out.append(
                Rule(
                    rd["status"],
                    tuple(self.condition(c, f"{rw}.when[{j}]") for j, c in enumerate(when)),
                    self.template(rd.get("reason"), f"{rw}.reason"),
                    self.rule_expr(rd["forEach"], f"{rw}.forEach") if "forEach" in rd else None,
                )
            )
        for status in [default, *(r.status for r in out)]:
            if status not in STATUSES:
                raise self.fail(where, f"status {status!r} is not one of {', '.join(STATUSES)}")
        return tuple(out), default, self.template(doc.get("defaultReason"), f"{where}.defaultReason")

    def build(self, doc: dict[str, Any], common: tuple[Rule, ...]) -> FieldMap:
        rules, default, default_reason = self.rules(doc.get("status") or {}, "status")
        return FieldMap(
            group=doc["group"],
            version=doc["version"],
            kind=doc["kind"],
            source=self.source,
            fields=self.fields(doc.get("fields") or [], "fields"),
            related=self.related(doc.get("related") or []),
            rules=common + rules,
            default_status=default,
            default_reason=default_reason,
        )


def _load(path: Path, source: str) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, yaml.YAMLError) as exc:
        raise FieldMapError(source, "", f"cannot read YAML: {' '.join(str(exc).split())}") from None


def read(path: Path, source: str) -> dict[str, Any]:
    """A map file's YAML with its header checked; expressions are compiled later, by build()."""
    parser = _Parser(source)
    doc = parser.mapping(
        _load(path, source),
        "top level",
        {"group", "version", "kind", "fields", "related", "status"},
        {"group", "version", "kind"},
    )
    for key in ("group", "version", "kind"):
        if not isinstance(doc[key], str):
            raise parser.fail(key, 'must be a string (use "" for the core group)')
    return doc


class FieldMaps:
    """The built-in maps, overridden and extended by user maps from directories.

    Every map's rules start with the common rules of `_common.yaml`
    (deletion, observedGeneration, Stalled, Reconciling), as kstatus does.
    """

    def __init__(self, user_dirs: list[str] | None = None) -> None:
        self._builtin = BUILTIN
        self._docs: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        self._built: dict[tuple[str, str], FieldMap] = {}
        self._common: tuple[Rule, ...] | None = None
        self._add(self._builtin / "_generic.yaml", "builtin:_generic.yaml")
        for directory in user_dirs or []:
            path = Path(directory)
            if not path.is_dir():
                raise FieldMapError(str(path), "", "field map directory does not exist")
            for file in sorted([*path.glob("*.yaml"), *path.glob("*.yml")]):
                doc = self._add(file, str(file))
                self.get(doc["group"], doc["kind"])  # user maps are checked in full at once

    def _add(self, path: Path, source: str) -> dict[str, Any]:
        doc = read(path, source)
        self._docs[(doc["group"], doc["kind"])] = (doc, source)
        self._built.pop((doc["group"], doc["kind"]), None)
        return doc

    def common(self) -> tuple[Rule, ...]:
        if self._common is None:
            source = f"builtin:{COMMON}"
            parser = _Parser(source)
            doc = parser.mapping(_load(self._builtin / COMMON, source), "top level", {"status"}, {"status"})
            self._common = parser.rules(doc["status"], "status")[0]
        return self._common

    def _add_builtin(self, entry: Path) -> None:
        """A built-in map file, unless a user map of its kind took its place."""
        source = f"builtin:{entry.name}"
        doc = read(entry, source)
        self._docs.setdefault((doc["group"], doc["kind"]), (doc, source))

    def _builtin_doc(self, group: str, kind: str) -> None:
        """Read fieldmaps/<kind>.yaml if it is this kind's built-in map and no user map took its place."""
        if (group, kind) in self._docs:
            return
        entry = self._builtin / f"{kind.lower()}.yaml"
        if entry.is_file():
            self._add_builtin(entry)

    def get(self, group: str, kind: str) -> FieldMap:
        self._builtin_doc(group, kind)
        key = (group, kind) if (group, kind) in self._docs else GENERIC
        if key not in self._built:
            doc, source = self._docs[key]
            self._built[key] = _Parser(source).build(doc, self.common())
        return self._built[key]

    def all(self) -> list[FieldMap]:
        """Every map, built (and so validated), ordered by kind."""
        for entry in self._builtin.iterdir():
            if entry.name.endswith(".yaml") and not entry.name.startswith("_"):
                self._add_builtin(entry)
        return sorted((self.get(g, k) for g, k in self._docs), key=lambda m: (m.kind, m.group))

"""Field maps: per-kind YAML declarations of what `details` shows, parsed into frozen records.

A map is a `kubectl-cyclops/v1` `FieldMap` document; its format is the JSON Schema in
`schema/fieldmap-v1.json`. A user map is validated with that schema when it is loaded, so a
bad one is rejected at once with the file, the field path and the reason (exit 9). The
checks a schema cannot express (JSONPath syntax, durations, unique names, includes that
name nothing) are made while the records are built. Built-in maps are validated by the
tests, not on every call. This module reads maps; evaluate.py evaluates them. A built-in
map lives in `fieldmaps/<kind in lower case>.yaml`, so showing one kind reads one file;
`_library.yaml` holds the rules every map starts with and the field sets and relation
templates maps include.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from . import durations
from .errors import FieldMapError
from .expr import Expr, ExpressionError

API_VERSION = "kubectl-cyclops/v1"
ENV_VAR = "KUBECTL_CYCLOPS_FIELD_MAPS"
OPERATORS = ("equals", "notEquals", "greaterThan", "lessThan", "in", "exists", "olderThan")
DEFAULT_SHOW = frozenset({"table", "json"})
GENERIC = ("*", "*")
LIBRARY = "_library.yaml"
BUILTIN = Path(__file__).parent / "fieldmaps"  # installed as files; importlib.resources would cost every start
SCHEMA = Path(__file__).parent / "schema" / "fieldmap-v1.json"
MIGRATION = 'unversioned maps: see "Migrating from unversioned maps" in the field map reference'
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_OPTIONAL = re.compile(r"\[\[(.*?)\]\]")


class Field(NamedTuple):
    name: str
    title: str
    paths: tuple[Expr, ...]
    format: str = "text"
    args: tuple[Any, ...] = ()
    show: frozenset[str] = DEFAULT_SHOW  # the views that show it: table, wide, json
    omit_empty: bool = False


class Relation(NamedTuple):
    """One way to read a relation; a relation read several ways (`via`) is several of these of one name."""

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
    events_when: tuple[Condition, ...] = ()  # ... only when one of them meets these conditions


class Condition(NamedTuple):
    """`path <operator> operand [- minus]`; over a path with several values, `any` (default) or `all` must hold.

    The operand is a literal, an Expr (`{path: EXPR}` in a map), a ParentValue or
    a RelatedValues. An `olderThan` operand is in seconds. With `on_event`
    (`lastEvent:` in a map), the path is read from the object's last event; with
    `among` (`ofReasons:`), from the last of its events with one of those reasons.
    With `judged` (`related: status|reason`, in a `forEachRelated` rule), the value
    is the related object's own status or reason, as its map evaluated it.
    """

    path: Expr
    operator: str
    operand: Any
    quantifier: str = "any"
    minus: Expr | float | None = None
    on_event: bool = False
    among: tuple[str, ...] = ()
    judged: str | None = None


class ParentValue(NamedTuple):
    """An operand `{parent: EXPR}`: read from the object whose rule it is, in a `forEachRelated` rule."""

    path: Expr


class RelatedValues(NamedTuple):
    """An operand `{related: NAME, path: EXPR, where: [...]}`: the values of EXPR over the objects of one of
    the map's relations (those that meet `where`), for `in`."""

    relation: str
    path: Expr
    where: tuple[Condition, ...] = ()


Part = str | Expr | tuple[str | Expr, ...]  # text, a placeholder, or an optional section of both


class Template(NamedTuple):
    """A reason: text with {EXPR} placeholders, the one-line form of a status condition of a type, or the
    object's last event."""

    parts: tuple[Part, ...] = ()
    condition: str | None = None
    message: bool = False  # the condition's message too
    event: bool = False  # the last event's reason and message
    related: bool = False  # `kind name: its reason`, of the related object a forEachRelated rule matched


class Rule(NamedTuple):
    status: str
    when: tuple[Condition, ...]
    reason: Template | None = None
    for_each: Expr | None = None  # the conditions hold for one element of this list; paths are relative to it
    for_each_related: str | None = None  # ... for one object of this relation, as its map evaluated it


class FieldMap(NamedTuple):
    group: str
    version: str
    kind: str
    source: str
    fields: tuple[Field, ...]
    related: tuple[Relation, ...]
    rules: tuple[Rule, ...]
    otherwise: str = "unknown"
    otherwise_reason: Template | None = None


def title_of(name: str) -> str:
    """backoffLimit -> Backoff Limit; PVC stays PVC."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").split()
    return " ".join(w[:1].upper() + w[1:] for w in words)


def shows(field: Field, view: str) -> bool:
    """Whether a view (table, wide, json) shows the field: what `table` shows, `wide` shows too."""
    return view in field.show or (view == "wide" and "table" in field.show)


_validator: Any = None


def validate(doc: Any, source: str) -> None:
    """Check a map document against the v1 schema: one line naming the file, the field path and the reason."""
    global _validator
    import fastjsonschema  # only when a user map is loaded: built-in maps are checked by the tests
    import orjson

    if _validator is None:
        _validator = fastjsonschema.compile(orjson.loads(SCHEMA.read_bytes()))
    try:
        _validator(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        steps = [f"[{p}]" if isinstance(p, int) or str(p).isdigit() else f".{p}" for p in exc.path[1:]]
        raise FieldMapError(source, "".join(steps).lstrip(".") or "top level", _said(exc)) from None


def _said(exc: Any) -> str:
    """A schema error in the words of the format: what is wrong, not which schema rule failed."""
    definition = exc.definition if isinstance(exc.definition, dict) else {}
    message = str(exc.message)
    if message.startswith(exc.name):
        message = message[len(exc.name) :].strip()
    if exc.rule in ("oneOf", "anyOf", "not", "minProperties", "maxProperties") and "description" in definition:
        return str(definition["description"])
    if exc.rule == "additionalProperties":
        unknown = sorted(str(k) for k in set(exc.value) - set(definition.get("properties", {})))  # YAML keys: any type
        return f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(definition.get('properties', {})))}"
    if exc.rule == "required":
        missing = [k for k in definition.get("required", []) if k not in exc.value]
        return f"missing required key(s) {', '.join(missing)}"
    if exc.rule == "const":
        const = definition["const"]
        return f"must be {str(const).lower() if isinstance(const, bool) else const}"
    return message


class _Library(NamedTuple):
    field_sets: dict[str, Any]
    relations: dict[str, Any]
    rule_sets: dict[str, Any]


class _Parser:
    """Builds frozen records from one map's YAML (schema-valid), naming the field on any error."""

    def __init__(self, source: str, library: _Library, field_sets: dict[str, Any] | None = None) -> None:
        self.source = source
        self.library = library
        self.field_sets = {**library.field_sets, **(field_sets or {})}
        self.defaults: dict[str, Any] = {}  # status.apiDefaults: EXPR -> the value the API means when it is absent
        self.relations: tuple[Relation, ...] = ()  # the map's, for rules that name one

    def fail(self, where: str, reason: str) -> FieldMapError:
        return FieldMapError(self.source, where, reason)

    def expr(self, source: Any, where: str) -> Expr:
        try:
            return Expr.compile(source)
        except ExpressionError as exc:
            raise self.fail(where, f"bad JSONPath: {exc}") from None

    def rule_expr(self, source: Any, where: str) -> Expr:
        """An expression of a status rule or reason, reading the map's `apiDefaults` where one is declared."""
        expr = self.expr(source, where)
        return expr.with_default(self.defaults[source]) if source in self.defaults else expr

    def field(self, doc: dict[str, Any], where: str) -> Field:
        name = doc["name"]
        where = f"{where} ({name})"
        sources = [doc["path"]] if "path" in doc else doc["paths"]
        paths = tuple(self.expr(s, where) for s in sources)
        if len(paths) == 1 and "ifAbsent" in doc:  # the value when the path matches nothing
            paths = (paths[0].with_default(doc["ifAbsent"]),)
        show = doc.get("show", ("table", "json"))
        return Field(
            name=name,
            title=doc.get("title") or title_of(name),
            paths=paths,
            format=doc.get("format", "text"),
            args=tuple(doc.get("args", ())),
            show=frozenset([show] if isinstance(show, str) else show),
            omit_empty=doc.get("omitEmpty", False),
        )

    def fields(self, raw: list[Any], where: str, seen: tuple[str, ...] = ()) -> tuple[Field, ...]:
        out: list[Field] = []
        for i, doc in enumerate(raw):
            at = f"{where}[{i}]"
            if "include" in doc:
                name = doc["include"]
                if name not in self.field_sets:
                    known = ", ".join(sorted(self.field_sets)) or "none"
                    raise self.fail(at, f"include {name!r} names no field set (known: {known})")
                if name in seen:
                    raise self.fail(at, f"field set {name!r} includes itself")
                out += self.fields(self.field_sets[name], f"{at} ({name})", (*seen, name))
            else:
                out.append(self.field(doc, at))
        names = [f.name for f in out]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise self.fail(where, f"duplicate field name(s) {', '.join(dupes)}")
        return tuple(out)

    def relation(self, doc: dict[str, Any], where: str) -> list[Relation]:
        if "include" in doc:
            template = self.library.relations.get(doc["include"])
            if template is None:
                known = ", ".join(sorted(self.library.relations))
                raise self.fail(where, f"include {doc['include']!r} names no relation template (known: {known})")
            doc = {**template, **{k: v for k, v in doc.items() if k != "include"}}
        name = doc["name"]
        where = f"{where} ({name})"
        common = {
            "name": name,
            "title": doc.get("title") or title_of(name),
            "group": doc.get("group", ""),
            "kind": doc["kind"],
            "fields": self.fields(doc["fields"], f"{where}.fields"),
            "events": bool(doc.get("events", False)),
            "events_when": self.events_when(doc.get("events"), f"{where}.events.when"),
        }
        out = []
        for i, way in enumerate(doc["via"]):
            at = f"{where}.via[{i}]"
            if "selector" in way:
                out.append(Relation(**common, selector=self.expr(way["selector"], f"{at}.selector")))
            elif "ref" in way:
                ref = way["ref"]
                namespace = self.expr(ref["namespace"], f"{at}.ref.namespace") if "namespace" in ref else None
                out.append(
                    Relation(**common, ref_name=self.expr(ref["name"], f"{at}.ref.name"), ref_namespace=namespace)
                )
            elif "owned" in way:
                out.append(Relation(**common, owned=True))
            else:
                back = way["referencedBy"]
                kind = self.expr(back["kind"], f"{at}.referencedBy.kind") if "kind" in back else None
                name_expr = self.expr(back["name"], f"{at}.referencedBy.name")
                out.append(Relation(**common, referenced_by=name_expr, referenced_kind=kind))
        return out

    def events_when(self, events: Any, where: str) -> tuple[Condition, ...]:
        """`events: {when: …}`: the related objects' events are read only when one of them meets the conditions."""
        if not isinstance(events, dict):
            return ()
        when = events["when"] if isinstance(events["when"], list) else [events["when"]]
        return tuple(self.condition(c, f"{where}[{j}]") for j, c in enumerate(when))

    def related(self, raw: list[Any]) -> tuple[Relation, ...]:
        out: list[Relation] = []
        names: set[str] = set()
        for i, doc in enumerate(raw):
            ways = self.relation(doc, f"related[{i}]")
            if ways[0].name in names:
                raise self.fail(f"related[{i}]", f"a second relation named {ways[0].name!r}: list its ways in one via")
            names.add(ways[0].name)
            out += ways
        return tuple(out)

    def operand(self, value: Any, where: str, related: bool = False) -> Any:
        """A literal, `{path: EXPR}`, `{parent: EXPR}` (in a forEachRelated rule) or `{related: NAME, ...}`."""
        if not isinstance(value, dict):
            return value
        if "parent" in value:
            if not related:
                raise self.fail(where, "{parent: EXPR} reads the object a forEachRelated rule is about: only there")
            return ParentValue(self.rule_expr(value["parent"], f"{where}.parent"))
        if "related" in value:
            name = self.relation_name(value["related"], f"{where}.related")
            conditions = value.get("where") or []
            conditions = conditions if isinstance(conditions, list) else [conditions]
            return RelatedValues(
                name,
                self.expr(value["path"], f"{where}.path"),
                tuple(self.condition(c, f"{where}.where[{j}]", related=True) for j, c in enumerate(conditions)),
            )
        return self.rule_expr(value["path"], where)

    def relation_name(self, name: str, where: str) -> str:
        known = sorted({r.name for r in self.relations})
        if name not in known:
            raise self.fail(where, f"{name!r} names no relation of this map (known: {', '.join(known) or 'none'})")
        return name

    def condition(self, doc: dict[str, Any], where: str, related: bool = False) -> Condition:
        [op] = [k for k in OPERATORS if k in doc]
        operand = doc[op]
        if op == "olderThan":
            operand = durations.parse(str(operand))
            if operand is None:
                raise self.fail(f"{where}.olderThan", f"not a duration such as 15s or 5m: {doc[op]!r}")
        else:
            operand = self.operand(operand, f"{where}.{op}", related)
        minus = doc.get("minus")
        if minus is not None:
            minus = self.operand(minus, f"{where}.minus", related) if isinstance(minus, dict) else float(minus)
        on_event = "lastEvent" in doc
        judged = doc.get("related")
        if judged is not None and not related:
            raise self.fail(f"{where}.related", "reads a related object's status: only in a forEachRelated rule")
        if on_event and related:
            raise self.fail(f"{where}.lastEvent", "reads the object's own events: not in a forEachRelated rule")
        # The map's apiDefaults describe the object, not its events.
        if judged is not None:
            path = self.expr(".status", f"{where}.related")  # unread: the value is the related object's verdict
        elif on_event:
            path = self.expr(doc["lastEvent"], f"{where}.lastEvent")
        elif "condition" in doc:  # the schema allows a type name only: it cannot break out of the quotes
            path = self.rule_expr(f'.status.conditions[?(@.type=="{doc["condition"]}")].status', f"{where}.condition")
        else:
            path = self.rule_expr(doc["path"], where)
        among = tuple(doc.get("ofReasons", ()))
        return Condition(path, op, operand, doc.get("match", "any"), minus, on_event, among, judged)

    def rule_set(self, doc: dict[str, Any], where: str) -> list[dict[str, Any]]:
        sets = self.library.rule_sets
        if doc["include"] not in sets:
            raise self.fail(
                f"{where}.include", f"{doc['include']!r} names no rule set (known: {', '.join(sorted(sets))})"
            )
        extra = doc.get("when", [])
        extra = extra if isinstance(extra, list) else [extra]
        return [
            {**rule, "when": [*(rule["when"] if isinstance(rule["when"], list) else [rule["when"]]), *extra]}
            for rule in sets[doc["include"]]
        ]

    def template(self, raw: Any, where: str, related: bool = False) -> Template | None:
        if raw is None:
            return None
        if isinstance(raw, dict) and "lastEvent" in raw:
            return Template(event=True)
        if isinstance(raw, dict) and "related" in raw:
            if not related:
                raise self.fail(where, "{related: true} is the reason of a forEachRelated rule's object: only there")
            return Template(related=True)
        if isinstance(raw, dict):
            return Template(condition=str(raw["condition"]), message=raw.get("message", False))
        parts: list[Part] = []
        at = 0
        for m in _OPTIONAL.finditer(raw):  # `[[ (…{EXPR}…)]]`: dropped when one of its placeholders reads nothing
            parts += [*self.placeholders(raw[at : m.start()], where), self.placeholders(m.group(1), where)]
            at = m.end()
        parts += self.placeholders(raw[at:], where)
        return Template(tuple(parts))

    def placeholders(self, raw: str, where: str) -> tuple[str | Expr, ...]:
        parts: list[str | Expr] = []
        at = 0
        for m in _PLACEHOLDER.finditer(raw):
            parts += [raw[at : m.start()], self.rule_expr(m.group(1), where)]
            at = m.end()
        parts.append(raw[at:])
        return tuple(p for p in parts if p != "")

    def rules(self, raw: list[Any], where: str) -> tuple[Rule, ...]:
        out: list[Rule] = []
        for i, rd in enumerate(raw):
            if "include" in rd:  # a rule set, each of its rules with the include's conditions added
                out += self.rules(self.rule_set(rd, f"{where}[{i}]"), f"{where}[{i}] ({rd['include']})")
                continue
            rw = f"{where}[{i}]"
            when = rd["when"] if isinstance(rd["when"], list) else [rd["when"]]
            related = "forEachRelated" in rd
            out.append(
                Rule(
                    rd["status"],
                    tuple(self.condition(c, f"{rw}.when[{j}]", related) for j, c in enumerate(when)),
                    self.template(rd.get("reason"), f"{rw}.reason", related),
                    self.rule_expr(rd["forEach"], f"{rw}.forEach") if "forEach" in rd else None,
                    self.relation_name(rd["forEachRelated"], f"{rw}.forEachRelated") if related else None,
                )
            )
        return tuple(out)

    def build(self, doc: dict[str, Any], common: tuple[Rule, ...]) -> FieldMap:
        status = doc.get("status") or {}
        self.defaults = status.get("apiDefaults") or {}
        for source in self.defaults:
            self.expr(source, "status.apiDefaults")
        otherwise = status.get("otherwise") or {}
        resource = doc["resource"]
        for name, raw in (doc.get("fieldSets") or {}).items():
            self.fields(raw, f"fieldSets.{name}", (name,))  # every set is checked, used or not
        self.relations = self.related(doc.get("related") or [])  # before the rules, which may name them
        return FieldMap(
            group=resource["group"],
            version=resource["version"],
            kind=resource["kind"],
            source=self.source,
            fields=self.fields(doc.get("fields") or [], "fields"),
            related=self.relations,
            rules=common + self.rules(status.get("rules") or [], "status.rules"),
            otherwise=otherwise.get("status", "unknown"),
            otherwise_reason=self.template(otherwise.get("reason"), "status.otherwise.reason"),
        )


def _load(path: Path, source: str) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, yaml.YAMLError) as exc:
        raise FieldMapError(source, "", f"cannot read YAML: {' '.join(str(exc).split())}") from None


def read(path: Path, source: str, kind: str = "FieldMap", check: bool = True) -> dict[str, Any]:
    """A map file's YAML with its version and kind checked, and (with `check`) validated by the schema.
    Expressions are compiled later, by build()."""
    doc = _load(path, source)
    if not isinstance(doc, dict):
        raise FieldMapError(source, "top level", f"expected a mapping, got {type(doc).__name__}")
    if doc.get("apiVersion") != API_VERSION:
        got = f"apiVersion {doc['apiVersion']!r}" if "apiVersion" in doc else "no apiVersion"
        hint = MIGRATION if "apiVersion" not in doc and "kind" in doc else f"expected {API_VERSION}"
        raise FieldMapError(source, "apiVersion", f"{got}: {hint}")
    if doc.get("kind") != kind:
        raise FieldMapError(source, "kind", f"expected {kind}, not {doc.get('kind')!r}")
    if check:
        validate(doc, source)
    return doc


class FieldMaps:
    """The built-in maps, overridden and extended by user maps from directories.

    Every map's rules start with the common rules of `_library.yaml`
    (deletion, observedGeneration, Stalled, Reconciling), as kstatus does.
    """

    def __init__(self, user_dirs: list[str] | None = None) -> None:
        self._builtin = BUILTIN
        self._docs: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        self._built: dict[tuple[str, str], FieldMap] = {}
        self._library: _Library | None = None
        self._common: tuple[Rule, ...] | None = None
        self._add(self._builtin / "_generic.yaml", "builtin:_generic.yaml", check=False)
        for directory in user_dirs or []:
            path = Path(directory)
            if not path.is_dir():
                raise FieldMapError(str(path), "", "field map directory does not exist")
            for file in sorted([*path.glob("*.yaml"), *path.glob("*.yml")]):
                resource = self._add(file, str(file), check=True)
                self.get(resource["group"], resource["kind"])  # user maps are checked in full at once

    def _add(self, path: Path, source: str, check: bool) -> dict[str, Any]:
        doc = read(path, source, check=check)
        resource = doc["resource"]
        self._docs[(resource["group"], resource["kind"])] = (doc, source)
        self._built.pop((resource["group"], resource["kind"]), None)
        return resource  # type: ignore[no-any-return]

    def library(self) -> _Library:
        if self._library is None:
            source = f"builtin:{LIBRARY}"
            doc = read(self._builtin / LIBRARY, source, kind="FieldMapLibrary", check=False)
            self._library = _Library(doc["fieldSets"], doc["relationTemplates"], doc["ruleSets"])
            self._common = _Parser(source, self._library).rules(doc["commonRules"], "commonRules")
        return self._library

    def common(self) -> tuple[Rule, ...]:
        self.library()
        assert self._common is not None
        return self._common

    def _add_builtin(self, entry: Path) -> None:
        """A built-in map file, unless a user map of its kind took its place."""
        doc = read(entry, f"builtin:{entry.name}", check=False)
        resource = doc["resource"]
        self._docs.setdefault((resource["group"], resource["kind"]), (doc, f"builtin:{entry.name}"))

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
            self._built[key] = _Parser(source, self.library(), doc.get("fieldSets")).build(doc, self.common())
        return self._built[key]

    def mention(self, word: str) -> bool:
        """Whether any map, built-in or the user's, has `word` in it (a path that reads a field of that name)."""
        if any(word in entry.read_text() for entry in self._builtin.glob("*.yaml")):
            return True
        return any(word in repr(doc) for doc, _ in self._docs.values())

    def all(self) -> list[FieldMap]:
        """Every map, built (and so validated), ordered by kind."""
        for entry in self._builtin.iterdir():
            if entry.name.endswith(".yaml") and not entry.name.startswith("_"):
                self._add_builtin(entry)
        return sorted((self.get(g, k) for g, k in self._docs), key=lambda m: (m.kind, m.group))

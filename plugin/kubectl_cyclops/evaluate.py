"""Evaluate a field map against one object: its status, the reason, and its field values.

`evaluate(field_map, obj, now)` is a pure function, as kstatus's Compute is:
no I/O, the same answer for the same object and time. It returns values only:
the status, its reason, and each field's value as its paths read it. Which
fields show in a view, and how a value reads in a table or in JSON, is
rendering's business (render.py); no output view reaches this module.

Rule semantics (docs/field-maps.md: Status rules): rules are tried in order, the common
rules of `_library.yaml` first; a rule holds when all its conditions hold. A
condition over a path with several values holds when `any` value satisfies it
(the default) or, with `match: all`, when every value does; a path with no
value is one missing value. With `forEach`, the conditions are tried against
each element of a list and the reason is read from the element that matched.
A condition with `lastEvent: EXPR` reads the object's last event instead (the
events are an input, oldest first, as the collector sorts them): a claim whose
last word is ProvisioningFailed has failed.

With `forEachRelated: NAME`, the conditions are tried against each object of
one of the map's relations, which is evaluated first by its own map (an
input too, `related`): `related: status` reads that verdict, paths read the
related object, `{parent: EXPR}` the object the rule is about. A Job whose pod
cannot pull its image has failed, with the pod and the pod's reason as its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, NamedTuple

from .durations import parse_time
from .expr import Expr
from .fieldmaps import Condition, Field, FieldMap, ParentValue, RelatedValues, Rule, Template
from .text import condition_line, plain

_UNREAD = object()


class Values(Mapping[str, Any]):
    """Each field's value, as its paths read it: one path's value, or a list with one per path.

    A value is read when it is first asked for (`of(field)`, or by name), so a view that shows a
    few fields of a thousand pods reads only those.
    """

    __slots__ = ("_fields", "_obj", "_read")

    def __init__(self, fields: tuple[Field, ...], obj: dict[str, Any]) -> None:
        self._fields = fields
        self._obj = obj
        self._read: dict[str, Any] = {}

    def of(self, field: Field) -> Any:
        """The value of one of the fields (read once: a miss is the common case, so no exception for it)."""
        value = self._read.get(field.name, _UNREAD)
        if value is _UNREAD:  # a field's `ifAbsent` is its path's, compiled in: the API omits zero counts
            paths = field.paths
            value = paths[0].value(self._obj) if len(paths) == 1 else [p.value(self._obj) for p in paths]
            self._read[field.name] = value
        return value

    def __getitem__(self, name: str) -> Any:
        for field in self._fields:
            if field.name == name:
                return self.of(field)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (f.name for f in self._fields)

    def __len__(self) -> int:
        return len(self._fields)


class Evaluation(NamedTuple):
    """What a map says of one object: its status, why, and the value of each field.

    `recheck`: the first time at which an `olderThan` condition that did not hold will hold, so the
    same object may be judged otherwise from then on (None: time changes nothing).
    """

    status: str
    reason: str | None
    values: Values
    recheck: datetime | None = None


class Judged(NamedTuple):
    """A related object, with what its own map says of it."""

    kind: str
    obj: dict[str, Any]
    status: str
    reason: str | None

    def line(self) -> str:
        """`pod web-1: container main: ImagePullBackOff`: the object, then its own reason."""
        name = (self.obj.get("metadata") or {}).get("name")
        return f"{self.kind.lower()} {name}: {self.reason or self.status}"


Related = Mapping[str, Sequence[Judged]]


class _Scope(NamedTuple):
    """What a condition may read besides its own object: the rule's object, its related sets, and (in a
    forEachRelated rule) the verdict on the related object being tried."""

    now: datetime
    parent: Any = None
    related: Related = MappingProxyType({})
    judged: Judged | None = None
    pending: list[datetime] | None = None  # when each olderThan tried and not met will be met


def _same(a: Any, b: Any) -> bool:
    """Equal values. Absent equals nothing, not even absent: a map declares the API's defaults instead."""
    if a is None or b is None:
        return False
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return str(a) == str(b)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, dict | list):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


Check = Callable[[Any, _Scope], bool]  # a condition, compiled: does it hold for this object?
Getter = Callable[[Any, _Scope], Any]  # an operand, compiled: its value for this object


def _getter(operand: Any) -> Getter:
    """An operand as a function: a literal, or what an expression reads from the object, the rule's object or
    one of its relations."""
    if isinstance(operand, Expr):
        read = operand.value
        return lambda obj, scope: read(obj)
    if isinstance(operand, ParentValue):
        parent = operand.path.value
        return lambda obj, scope: parent(scope.parent)
    if isinstance(operand, RelatedValues):
        relation, values, where = operand.relation, operand.path.values, [check(c) for c in operand.where]
        return lambda obj, scope: [
            v
            for j in scope.related.get(relation, ())
            if all(w(j.obj, scope) for w in where)
            for v in values(j.obj)
            if v is not None
        ]
    return lambda obj, scope: operand


def _want(condition: Condition) -> Getter:
    """The operand's value, minus `minus` where given."""
    want = _getter(condition.operand)
    if condition.minus is None:
        return want
    minus = _getter(condition.minus)

    def difference(obj: Any, scope: _Scope) -> Any:
        left, right = _number(want(obj, scope)), _number(minus(obj, scope))
        return None if left is None or right is None else left - right

    return difference


def _older(value: Any, want: Any, scope: _Scope) -> bool:
    since = parse_time(value)
    if since is None:
        return False
    if (scope.now - since).total_seconds() > want:
        return True
    if scope.pending is not None:
        scope.pending.append(since + timedelta(seconds=want))
    return False


def _compare(greater: bool) -> Callable[[Any, Any, _Scope], bool]:
    def compare(value: Any, want: Any, scope: _Scope) -> bool:
        left, right = _number(value), _number(want)
        if left is None or right is None:
            return False
        return left > right if greater else left < right

    return compare


# One value against the operand; an absent value satisfies no comparison.
_TESTS: dict[str, Callable[[Any, Any, _Scope], bool]] = {
    "exists": lambda value, want, scope: (value is not None) == bool(want),
    "equals": lambda value, want, scope: _same(value, want),
    "notEquals": lambda value, want, scope: not _same(value, want),
    "in": lambda value, want, scope: any(_same(value, w) for w in want),
    "olderThan": _older,
    "greaterThan": _compare(True),
    "lessThan": _compare(False),
}


def _compile(condition: Condition) -> Check:
    """A condition as one function, its operator, operand and path looked up once rather than per object."""
    test, want, every = _TESTS[condition.operator], _want(condition), condition.quantifier == "all"
    if condition.judged is not None:
        attribute = condition.judged

        def judged(obj: Any, scope: _Scope) -> bool:
            value = None if scope.judged is None else getattr(scope.judged, attribute)
            return test(value, want(obj, scope), scope)

        return judged
    if condition.path.single:  # one value at most: `any` and `all` of it are the same test
        read = condition.path.value

        def holds_one(obj: Any, scope: _Scope) -> bool:
            return test(read(obj), want(obj, scope), scope)

        return holds_one
    values = condition.path.values

    def holds(obj: Any, scope: _Scope) -> bool:
        wanted = want(obj, scope)
        found = [v for v in values(obj) if v is not None]
        if not found:
            return test(None, wanted, scope)
        if every:
            return all(test(v, wanted, scope) for v in found)
        return any(test(v, wanted, scope) for v in found)

    return holds


_CHECKS: dict[int, tuple[Condition, Check]] = {}  # by id(condition), the condition kept so its id stays its own


def check(condition: Condition) -> Check:
    """The condition, compiled once."""
    found = _CHECKS.get(id(condition))
    if found is None:
        found = _CHECKS[id(condition)] = (condition, _compile(condition))
    return found[1]


def holds(condition: Condition, obj: Any, now: datetime, scope: _Scope | None = None) -> bool:
    return check(condition)(obj, scope or _Scope(now))


def event_line(event: Any) -> str | None:
    """An event as a reason: `ProvisioningFailed: the message`."""
    if not isinstance(event, dict):
        return None
    message = " ".join(str(event.get("message") or "").split())
    return f"{event.get('reason') or 'event'}: {message}" if message else str(event.get("reason") or "event")


def reason_of(template: Template | None, obj: Any, last_event: Any = None, judged: Judged | None = None) -> str | None:
    """The one-line reason a template gives for an object (or a list element, or a related object)."""
    if template is None:
        return None
    if template.event:
        return event_line(last_event)
    if template.related:
        return None if judged is None else judged.line()
    if template.condition is not None:
        found = [
            c
            for c in ((obj.get("status") or {}).get("conditions") or [] if isinstance(obj, dict) else [])
            if isinstance(c, dict) and c.get("type") == template.condition
        ]
        if not found:
            return f"{template.condition} condition missing"
        return condition_line(found[0], message=template.message)
    return "".join(_part(p, obj) for p in template.parts)


def _part(part: Any, obj: Any) -> str:
    """A template part: text, a placeholder's value (on one line), or an optional section (`[[…]]`), which is
    dropped when one of its placeholders reads nothing."""
    if isinstance(part, str):
        return part
    if isinstance(part, Expr):
        return " ".join(plain(part.value(obj)).split())
    values = [p.value(obj) for p in part if isinstance(p, Expr)]
    if any(v is None or v in ("", [], {}) for v in values):
        return ""
    return "".join(_part(p, obj) for p in part)


def _default_reason(rule: Rule, obj: Any) -> str:
    """Without a reason in the map: the first condition's path and the value seen."""
    c = rule.when[0]
    return f"{c.path.source}={plain(c.path.value(obj))}"


def last_event(events: Sequence[dict[str, Any]], among: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The last of the events (oldest first), or the last with one of the reasons in `among`."""
    return next((e for e in reversed(events) if not among or e.get("reason") in among), None)


class _Compiled(NamedTuple):
    """A rule with its conditions compiled, and which of them read an event (None: the object)."""

    rule: Rule
    checks: tuple[Check, ...]
    events: tuple[tuple[str, ...] | None, ...]  # per condition: the reasons among which its event is the last
    plain: bool  # neither forEach, forEachRelated nor an event: the conditions read the object itself


class _Rules(NamedTuple):
    """A map's rules compiled, and whether any of them reads the object's events or its related objects."""

    compiled: tuple[_Compiled, ...]
    events: bool
    related: bool


_RULES: dict[int, tuple[FieldMap, _Rules]] = {}  # by id(map), the map kept so its id stays its own


def _rules(field_map: FieldMap) -> _Rules:
    found = _RULES.get(id(field_map))
    if found is None:
        compiled = tuple(
            _Compiled(
                rule,
                tuple(check(c) for c in rule.when),
                tuple(c.among if c.on_event else None for c in rule.when),
                rule.for_each is None and rule.for_each_related is None and not any(c.on_event for c in rule.when),
            )
            for rule in field_map.rules
        )
        templates = [r.reason for r in field_map.rules] + [field_map.otherwise_reason]
        conditions = [c for r in field_map.rules for c in r.when]
        events = any(c.on_event for c in conditions) or any(t is not None and t.event for t in templates)
        related = any(r.for_each_related is not None for r in field_map.rules) or any(
            isinstance(c.operand, RelatedValues) or isinstance(c.minus, RelatedValues) for c in conditions
        )
        found = _RULES[id(field_map)] = (field_map, _Rules(compiled, events, related))
    return found[1]


def reads_events(field_map: FieldMap) -> bool:
    """Whether a rule of the map reads the object's events (a condition on its last event, or a reason)."""
    return _rules(field_map).events


def status_of(
    field_map: FieldMap,
    obj: dict[str, Any],
    now: datetime,
    events: Sequence[dict[str, Any]] = (),
    related: Related | None = None,
    pending: list[datetime] | None = None,
) -> tuple[str, str | None]:
    """The first rule that holds gives the status and its reason; otherwise the map's `otherwise`.

    A reason `{lastEvent: true}` shows the event the rule's first event condition read. `pending` gathers
    when each `olderThan` that was tried and not met will be met.
    """
    scope = _Scope(now, obj, related or {}, pending=pending)
    for rule, checks, on_events, plain_rule in _rules(field_map).compiled:
        if plain_rule:
            if all(c(obj, scope) for c in checks):
                return rule.status, reason_of(rule.reason, obj, last_event(events)) or _default_reason(rule, obj)
            continue
        if rule.for_each_related is not None:
            for judged in scope.related.get(rule.for_each_related, ()):
                tried = scope._replace(judged=judged)
                if all(c(judged.obj, tried) for c in checks):
                    return rule.status, reason_of(rule.reason, judged.obj, judged=judged) or judged.line()
            continue
        # what each condition reads: its event, or None for the object (or the forEach element) itself
        read = [None if among is None else (last_event(events, among),) for among in on_events]
        targets = [obj] if rule.for_each is None else rule.for_each.values(obj)
        for target in targets:
            if all(c(target if e is None else e[0], scope) for c, e in zip(checks, read, strict=True)):
                event = next((e[0] for e in read if e is not None), last_event(events))
                return rule.status, reason_of(rule.reason, target, event) or _default_reason(rule, target)
    return field_map.otherwise, reason_of(field_map.otherwise_reason, obj, last_event(events))


def evaluate(
    field_map: FieldMap,
    obj: dict[str, Any],
    now: datetime,
    fields: tuple[Field, ...] | None = None,
    events: Sequence[dict[str, Any]] = (),
    related: Related | None = None,
) -> Evaluation:
    """Status, reason and field values of `obj` by its map (or by `fields`, a relation's, for related objects).

    `related` holds the map's related sets, each object already evaluated by its own map, for the rules that
    read them (`forEachRelated`).
    """
    pending: list[datetime] = []
    status, reason = status_of(field_map, obj, now, events, related, pending)
    shown = field_map.fields if fields is None else fields
    return Evaluation(status, reason, Values(shown, obj), min(pending, default=None))


class Memo:
    """Evaluations kept from one collection to the next, for `--watch` and `wait`: an object is evaluated again
    only when something its rules read changed (the object; its events, if a rule reads them; the verdicts on
    its related objects, if a rule reads them) or when a time an `olderThan` compares with has come.
    `evaluations` counts those that were computed."""

    def __init__(self) -> None:
        # by (map, fields, object): the map (kept, so that no other map takes its id), what was read, the verdict
        self._kept: dict[tuple[int, int, str], tuple[FieldMap, tuple[Any, ...], Evaluation]] = {}
        self._used: set[tuple[int, int, str]] = set()
        self.evaluations = 0

    def evaluate(
        self,
        field_map: FieldMap,
        obj: dict[str, Any],
        now: datetime,
        fields: tuple[Field, ...],
        events: Sequence[dict[str, Any]],
        related: Related | None,
    ) -> Evaluation:
        meta = obj.get("metadata") or {}
        which = (id(field_map), id(fields), str(meta.get("uid") or meta.get("name")))
        reads = _rules(field_map)
        inputs = (
            meta.get("resourceVersion"),
            tuple((e.get("metadata") or {}).get("resourceVersion") for e in events) if reads.events else (),
            tuple(
                (name, tuple(((j.obj.get("metadata") or {}).get("resourceVersion"), j.status, j.reason) for j in js))
                for name, js in (related or {}).items()
            )
            if reads.related
            else (),
        )
        self._used.add(which)
        kept = self._kept.get(which)
        if kept is not None and kept[1] == inputs and (kept[2].recheck is None or now < kept[2].recheck):
            return kept[2]
        self.evaluations += 1
        evaluation = evaluate(field_map, obj, now, fields, events, related)
        self._kept[which] = (field_map, inputs, evaluation)
        return evaluation

    def collected(self) -> None:
        """One collection is over: forget the objects it did not evaluate (deleted, or no longer selected)."""
        for which in self._kept.keys() - self._used:
            del self._kept[which]
        self._used = set()

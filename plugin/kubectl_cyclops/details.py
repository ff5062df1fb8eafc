"""Collect details: the object(s), their related objects and events, each evaluated by its map.

The independent requests of one call run concurrently: the object and its
events first (the event query needs only kind and name), then every related
set at once. A list is read page by page; each page's related objects are
read in batches (relations.py) and the page is evaluated and handed on before
the next is read, so memory follows the page size, not the list's length.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import compress, count
from operator import is_not
from typing import Any, NamedTuple, cast

from . import errors
from .discovery import Discovery, Resource
from .evaluate import Evaluation, Judged, Memo, evaluate, holds, reads_events
from .fieldmaps import Field, FieldMaps, Relation
from .kube import Api
from .paging import WARNINGS, list_all, list_pages, resource_version
from .relations import Found, ListScope, Plans, Related, claims, joined, marks
from .tasks import Pool, Task
from .tracing import ANY, FIRST, Changes, Trace, involved, shown, store_key

JSON = dict[str, Any]
WORKERS = 8


class Evaluated(NamedTuple):
    """An object with what its field map says of it (status, reason, field values)."""

    resource: Resource
    obj: JSON
    fields: tuple[Field, ...]  # the fields evaluated: the map's, or a relation's for related objects
    evaluation: Evaluation

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        namespace = self.obj["metadata"].get("namespace")
        return None if namespace is None else str(namespace)

    @property
    def resource_version(self) -> str:
        return resource_version(self.obj)


@dataclass
class Details:
    subject: Evaluated
    related: list[tuple[Relation, list[Evaluated]]] = field(default_factory=list)
    events: list[JSON] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unread: dict[str, str] = field(default_factory=dict)  # a related set's name (or "events"): why it is empty

    def versions(self) -> tuple[str, ...]:
        """Resource versions of everything shown: equal tuples mean nothing changed (worked out once: a
        watch asks again at every rendering, of details kept from before)."""
        found: tuple[str, ...] | None = self.__dict__.get("_versions")
        if found is None:
            rvs = [self.subject.resource_version]
            rvs += [i.resource_version for _, items in self.related for i in items]
            rvs += [resource_version(e) for e in self.events]
            found = self.__dict__["_versions"] = tuple(rvs)
        return found

    def shown(self) -> tuple[tuple[str, ...], str, str | None]:
        """What a rendering shows, in short: the versions, the status and its reason."""
        return self.versions(), self.subject.evaluation.status, self.subject.evaluation.reason


def events_query(resource: Resource, namespace: str | None, name: str | None) -> tuple[str, JSON]:
    """The core/v1 events list for objects of a kind (and name) in a namespace, or everywhere."""
    selector = f"involvedObject.kind={resource.kind}"
    if name:
        selector += f",involvedObject.name={name}"
    path = f"/api/v1/namespaces/{namespace}/events" if resource.namespaced and namespace else "/api/v1/events"
    return path, {"fieldSelector": selector}


def event_time(e: JSON) -> str:
    """When an event last happened: core/v1 events fill lastTimestamp, newer reporters only eventTime."""
    return str(e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or "")


def event_order(e: JSON) -> tuple[str, int]:
    """Oldest first: by when it last happened, then (for events of the same second) by the order the server
    stored them, so that the last event is the last word on the object."""
    version = resource_version(e)
    return event_time(e), int(version) if version.isdigit() else 0


Events = tuple[dict[str, list[JSON]], str | None]  # events by the name they are about, or a warning why none


class Kept:
    """What `--watch` and `wait` keep from one collection to the next: each object's evaluation (`memo`), and
    each object's whole details, used again while the object is the same, no object its details read changed
    or may now belong to it (tracing.Trace), and no time one of its rules compares with has come. A change to
    one object among many then costs the assembly of the parents it concerns alone.

    `judging`: the collections are for a verdict (`wait`), and read the parents' events only where the parents'
    rules read them; the details shown in the end get theirs then (Collector.with_events)."""

    def __init__(self, judging: bool = False) -> None:
        self.judging = judging
        self.memo = Memo()
        self._details: dict[str, tuple[JSON, Details, datetime | None]] = {}  # by uid: object, details, recheck
        self._used: set[str] = set()
        self._lists: dict[tuple[str, int], _Listing] = {}  # by the parents' list path and page: as last collected
        self._soonest: datetime | None = None  # the first recheck time of any details kept
        self._now: datetime | None = None  # the time of the collection in progress
        self._traces: dict[str, Trace] = {}  # by the parents' list path
        self._plans: dict[str, Plans] = {}  # by the parents' list path: the lists chosen for selector relations
        self._events: dict[ListScope, _EventIndex] = {}  # by events list

    def events(self, api: Changes, scope: ListScope) -> dict[str, list[JSON]]:
        """An events list's events by the name of the object they are about, oldest first, kept up to date
        with the events that changed since the last collection (an informer's reader tells which)."""
        kept = self._events.get(scope)
        if kept is not None:
            now, changed = api.changed(scope, kept.mark)
            if changed is not None:
                kept.update(changed)
                kept.mark = now
                return kept.index
        mark = api.marks().get(scope, FIRST)  # a store listed now: right after its list
        listing = list_all(cast(Api, api), scope.path, scope.params)
        kept = self._events[scope] = _EventIndex(mark, listing.get("items") or [])
        return kept.index

    def plans(self, path: str) -> Plans:
        """The lists chosen for the selector relations of the parents listed at `path` (relations.Related)."""
        return self._plans.setdefault(path, Plans())

    def trace(self, path: str) -> Trace:
        """The dependency index of the parents listed at `path`."""
        return self._traces.setdefault(path, Trace())

    def known(
        self, which: tuple[str, int], objects: list[JSON], now: datetime, concerned: set[str] | None
    ) -> tuple[list[Details | None], list[int]]:
        """Each parent's details as kept, None where they are to be assembled again (see `get`), and the places
        of those. When the store answers the same list as last time but for a few objects (the very same objects
        elsewhere), and no recheck time has come, only those few and the parents `concerned` are looked at: a
        change costs what it concerns, not a pass over every parent."""
        self._now = now
        last = self._lists.pop(which, None)  # put back only when the parents are the same, in the same places
        if concerned is None:
            return [None] * len(objects), list(range(len(objects)))
        if last is not None and len(last.objects) == len(objects) and (self._soonest is None or now < self._soonest):
            redo = set(compress(count(), map(is_not, objects, last.objects)))
            redo.update(last.places[uid] for uid in concerned if uid in last.places)
            if all(last.places.get(objects[i]["metadata"].get("uid") or "") == i for i in redo):  # the same parents
                out: list[Details | None] = list(last.details)
                for i in redo:
                    out[i] = self.get(objects[i], now, concerned)
                self._used.update(last.places)
                self._lists[which] = last
                return out, sorted(i for i in redo if out[i] is None)
        out = [self.get(o, now, concerned) for o in objects]
        return out, [i for i, d in enumerate(out) if d is None]

    def listed(self, which: tuple[str, int], objects: list[JSON], details: list[Details]) -> None:
        """A list of parents was collected: kept, for `known` to compare the next answer with (each parent's place
        worked out again unless `known` found the same parents in the same places)."""
        last = self._lists.get(which)
        places = last.places if last is not None else {o["metadata"].get("uid") or "": i for i, o in enumerate(objects)}
        self._lists[which] = _Listing(objects, details, places)

    def get(self, obj: JSON, now: datetime, concerned: set[str] | None) -> Details | None:
        """The object's details as kept, if they still hold: the object is the same (the very one a store
        answered last time, or one of the same version), no change concerns it (`concerned`, from Trace.begin;
        None: every object) and no recheck time has come."""
        if concerned is None:
            return None
        uid = obj["metadata"].get("uid") or ""
        kept = self._details.get(uid)
        if kept is None or uid in concerned:
            return None
        same, details, recheck = kept
        if same is not obj and same["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
            return None
        if recheck is not None and recheck <= now:
            return None
        self._used.add(uid)
        return details

    def keep(self, obj: JSON, details: Details) -> None:
        uid = obj["metadata"].get("uid") or ""
        recheck = _recheck(details)
        self._details[uid] = (obj, details, recheck)
        self._used.add(uid)
        if recheck is not None and (self._soonest is None or recheck < self._soonest):
            self._soonest = recheck

    def collected(self) -> None:
        """One collection is over: forget the objects it did not show (deleted, or no longer selected)."""
        self.memo.collected()
        gone = self._details.keys() - self._used
        for uid in gone:
            del self._details[uid]
        for trace in self._traces.values():
            for uid in trace.parents() - self._used:
                trace.forget(uid)
        if gone:
            for plans in self._plans.values():
                for which in [w for w in plans.queries if w[1] in gone]:
                    del plans.queries[which]
        if self._soonest is not None and self._now is not None and self._soonest <= self._now:
            self._soonest = min((r for _, _, r in self._details.values() if r is not None), default=None)
        self._used = set()


class _Listing(NamedTuple):
    """A list of parents as last collected: the objects the store answered, their details, each uid's place."""

    objects: list[JSON]
    details: list[Details]
    places: dict[str, int]


class _EventIndex:
    """The events of one list by the name of the object they are about, each name's oldest first."""

    def __init__(self, mark: tuple[int, int], events: list[JSON]) -> None:
        self.mark = mark
        self.index = _involving(sorted(events, key=event_order))
        self._about = {store_key(e): _about(e) for e in events}  # by event: the name it is filed under

    def update(self, changed: dict[tuple[str, str], JSON | None]) -> None:
        for key, event in changed.items():
            old = self._about.pop(key, None)
            if old is not None:
                self.index[old] = [e for e in self.index[old] if store_key(e) != key]
                if not self.index[old]:
                    del self.index[old]
            if event is not None:
                name = self._about[key] = _about(event)
                bisect.insort(self.index.setdefault(name, []), event, key=event_order)


def _about(event: JSON) -> str:
    return (event.get("involvedObject") or {}).get("name") or ""


def _recheck(details: Details) -> datetime | None:
    """The first time an `olderThan` of the object or of a related object waits for."""
    items = [details.subject, *(i for _, found in details.related for i in found)]
    return min((i.evaluation.recheck for i in items if i.evaluation.recheck is not None), default=None)


class Collector:
    def __init__(
        self, api: Api, discovery: Discovery, maps: FieldMaps, now: datetime, kept: Kept | None = None
    ) -> None:
        self.api, self.discovery, self.maps, self.now, self.kept = api, discovery, maps, now, kept
        self.memo = None if kept is None else kept.memo

    def evaluated(
        self,
        resource: Resource,
        obj: JSON,
        fields: tuple[Field, ...] | None = None,
        events: list[JSON] | None = None,
        related: dict[str, list[Judged]] | None = None,
    ) -> Evaluated:
        fmap = self.maps.get(resource.group, resource.kind)
        chosen = fmap.fields if fields is None else fields
        judge = evaluate if self.memo is None else self.memo.evaluate  # --watch, wait: only what changed
        return Evaluated(resource, obj, chosen, judge(fmap, obj, self.now, chosen, events or (), related))

    def _related(self, pool: Pool, path: str) -> Related:
        """The reader of every page's related lists (with the lists planned, kept across collections)."""
        plans = None if self.kept is None else self.kept.plans(path)
        return Related(self.api, self.discovery, pool, batch=True, plans=plans)

    def _trace(self, resource: Resource, namespace: str | None) -> tuple[Trace | None, set[str] | None]:
        """Under `--watch` and `wait`: the parents' dependency index, and the parents the changes since the last
        collection concern (None: all of them)."""
        if self.kept is None:
            return None, None
        trace = self.kept.trace(resource.path(namespace))
        return trace, trace.begin(self.api, self._marks(resource))

    def _marks(self, resource: Resource) -> Callable[[str, JSON], list[Hashable]]:
        """An object's marks as its reader (a relation of the kind's map, or events) claims them."""
        fmap = self.maps.get(resource.group, resource.kind)
        relations = [(i, rel, self.discovery.find(rel.group, rel.kind)) for i, rel in enumerate(fmap.related)]

        def of(reader: str, obj: JSON) -> list[Hashable]:
            if reader == "events":  # an event: the parent it is about
                return [("events", involved(obj)[1])]
            if reader.startswith("events:"):  # an event of a related object: that object, as shown
                return [(reader.removeprefix("events:"), *involved(obj))]
            found: list[Hashable] = []
            for i, rel, res in relations:
                if rel.name == reader and res is not None:
                    found.append((i, ANY))
                    found.extend((i, m) for m in marks(rel, res, resource.kind, obj))
            return found

        return of

    def _claims(self, resource: Resource, obj: JSON) -> list[Hashable]:
        """What the parent claims (relations.claims, by the relation's index; its name for its events)."""
        fmap = self.maps.get(resource.group, resource.kind)
        found: list[Hashable] = [("events", obj["metadata"].get("name"))]
        for i, rel in enumerate(fmap.related):
            res = self.discovery.find(rel.group, rel.kind)
            if res is not None:
                claimed = claims(rel, res, obj)
                found += [(i, ANY)] if claimed is None else [(i, c) for c in claimed]
        return found

    def one(self, resource: Resource, namespace: str | None, name: str) -> Details:
        with Pool(WORKERS) as pool:
            obj_f = pool.submit(self.api.get, resource.path(namespace, name))
            events_f = pool.submit(self._events, resource, namespace, name)
            obj = obj_f.result()
            obj.setdefault("apiVersion", resource.api_version)
            obj.setdefault("kind", resource.kind)
            [details] = self._assemble(Related(self.api, self.discovery, pool, batch=False), resource, [obj], events_f)
        return details

    def pages(self, resource: Resource, namespace: str | None, selector: str | None) -> Iterator[list[Details]]:
        """Every object of a kind, a page at a time, each with its related objects and events."""
        params = {"labelSelector": selector}
        trace, concerned = self._trace(resource, namespace)
        with Pool(WORKERS) as pool:
            related = self._related(pool, resource.path(namespace))
            events_f: Task[Events] | None = None
            for number, page in enumerate(list_pages(self.api, resource.path(namespace), params)):
                objects = page.get("items") or []
                if not objects:
                    continue
                if events_f is None:
                    events_f = pool.submit(self._events, resource, namespace, None, related)
                which = (resource.path(namespace), number)
                assembled = self._assemble(related, resource, objects, events_f, concerned, trace, which)
                if page.get(WARNINGS):  # the page's own warnings (an expired continue token) are each object's
                    assembled = [replace(d, warnings=d.warnings + page[WARNINGS]) for d in assembled]
                yield assembled
        if trace is not None:
            trace.end(related.readers)

    def named(self, resource: Resource, namespace: str | None, names: set[str]) -> dict[str, Details]:
        """Some objects of one kind in one namespace, read with one list of the kind (not a GET each, so that
        under an informer each kind and namespace is one scope), with their related objects and events."""
        trace, concerned = self._trace(resource, namespace)
        listing = list_all(self.api, resource.path(namespace), {})
        objects = [o for o in listing.get("items") or [] if o["metadata"]["name"] in names]
        if not objects:
            return {}
        with Pool(WORKERS) as pool:
            related = self._related(pool, resource.path(namespace))
            events_f = pool.submit(self._events, resource, namespace, None, related)
            which = (resource.path(namespace), 0)
            found = self._assemble(related, resource, objects, events_f, concerned, trace, which)
        if trace is not None:
            trace.end(related.readers)
        return {d.subject.name: d for d in found}

    def _events(
        self,
        resource: Resource,
        namespace: str | None,
        name: str | None,
        related: Related | None = None,
        newer: dict[str, str] | None = None,
    ) -> Events:
        if (
            self.kept is not None
            and self.kept.judging
            and not reads_events(self.maps.get(resource.group, resource.kind))
        ):
            return {}, None  # no rule of the kind reads them: not listed, not watched
        path, params = events_query(resource, namespace, name)
        scope = ListScope.of(path, params)
        if related is not None:
            related.readers.setdefault(scope, set()).add("events")
        try:
            if self.kept is not None and isinstance(self.api, Changes):  # --watch, wait: kept up to date
                return self.kept.events(self.api, scope), None
            listing = list_all(self.api, path, {**params, **(newer or {})})
        except (errors.ForbiddenError, errors.UnauthorizedError) as exc:
            return {}, f"events: {exc.message}"
        return _involving(sorted(listing.get("items") or [], key=event_order)), None

    def with_events(
        self, items: list[Details], name: str | None = None, not_older_than: int | None = None
    ) -> list[Details]:
        """The details with their objects' events, read now: for details assembled by judging collections
        (Kept.judging), to be shown. One list per kind and namespace, as the collections would have read them
        (by `name`, for one object's), at least as new as `not_older_than` (the newest version the informer
        applied); a list that fails is a warning on the details, as in a collection. A kind whose rules read
        its events has them already: those its verdict read."""
        newer = {} if not_older_than is None else {"resourceVersion": str(not_older_than)}
        if newer:
            newer["resourceVersionMatch"] = "NotOlderThan"
        groups: dict[tuple[Resource, str | None], list[Details]] = {}
        for d in items:
            groups.setdefault((d.subject.resource, d.subject.namespace), []).append(d)
        found: dict[int, Details] = {}
        for (resource, namespace), group in groups.items():
            if reads_events(self.maps.get(resource.group, resource.kind)):
                found.update((id(d), d) for d in group)
                continue
            try:
                index, warning = self._events(resource, namespace, name, newer=newer)
            except errors.CyclopsError as exc:
                index, warning = {}, f"events: {exc.message}"
            for d in group:
                unread = {**d.unread, "events": warning} if warning else d.unread
                warnings = [*d.warnings, warning] if warning else d.warnings
                found[id(d)] = replace(d, events=_events_of(index, d.subject.obj), warnings=warnings, unread=unread)
        return [found[id(d)] for d in items]

    def _related_events(self, related: Related, found: list[Found]) -> tuple[dict[str, list[JSON]], str | None]:
        """The events of a relation's objects (of every parent), for a relation whose map says `events: true`:
        one list per namespace they are in, or one in all namespaces for a cluster-scoped kind."""
        resource = next((f.resource for f in found if f.resource is not None), None)
        objects = [o for f in found for o in f.objects]
        if resource is None or not objects:
            return {}, None
        when = found[0].relation.events_when  # `events: {when: …}`: only if one of them needs its events
        if when and not any(all(holds(c, o, self.now) for c in when) for o in objects):
            return {}, None
        spaces = sorted({o["metadata"].get("namespace") or "" for o in objects}) if resource.namespaced else [""]
        reader = f"events:{found[0].relation.name}"
        futures = [related.listing(*events_query(resource, ns or None, None), reader) for ns in spaces]
        try:
            evs = [e for f in futures for e in f.result().get("items") or []]
        except (errors.ForbiddenError, errors.UnauthorizedError) as exc:
            return {}, f"events: {exc.message}"
        return _involving(sorted(evs, key=event_order)), None

    def _assemble(
        self,
        related: Related,
        resource: Resource,
        objects: list[JSON],
        events_f: Task[Events],
        concerned: set[str] | None = None,
        trace: Trace | None = None,
        which: tuple[str, int] = ("", 0),
    ) -> list[Details]:
        """Each object's details; under `--watch` and `wait`, those kept from the last collection where they
        still hold (the parents no change `concerned`), and the others' reads noted in the `trace`. `which`:
        the list the objects are (its path) and the page."""
        if self.kept is None:
            return self._build(related, resource, objects, events_f)
        out, todo = self.kept.known(which, objects, self.now, concerned)
        if todo:
            fresh = [objects[i] for i in todo]
            read: list[list[Hashable]] = []
            built = self._build(related, resource, fresh, events_f, objects, read)
            for i, obj, details, shown_too in zip(todo, fresh, built, read, strict=True):
                out[i] = details
                self.kept.keep(obj, details)
                if trace is not None:
                    trace.record(obj["metadata"].get("uid") or "", self._claims(resource, obj) + shown_too)
        assembled = cast(list[Details], out)  # every one kept or built
        self.kept.listed(which, objects, assembled)
        return assembled

    def _build(
        self,
        related: Related,
        resource: Resource,
        objects: list[JSON],
        events_f: Task[Events],
        among: list[JSON] | None = None,
        read: list[list[Hashable]] | None = None,
    ) -> list[Details]:
        """Each object's details, joined and evaluated; `read` gets, for each, the objects and events shown."""
        fmap = self.maps.get(resource.group, resource.kind)
        pending = [related.start(rel, resource.kind, objects, among) for rel in fmap.related]
        relations = joined(fmap.related, [join() for join in pending])
        no_events: tuple[dict[str, list[JSON]], str | None] = ({}, None)
        related_events = [self._related_events(related, found) if rel.events else no_events for rel, found in relations]
        involving, warning = events_f.result()
        out = []
        for i, obj in enumerate(objects):
            events = _events_of(involving, obj)
            related_shown: list[tuple[Relation, list[Evaluated]]] = []
            judged: dict[str, list[Judged]] = {}  # each related set's verdicts, for the rules that read them
            warnings: list[str] = []
            unread: dict[str, str] = {}
            seen: list[Hashable] = [] if read is None else [shown("events", e) for e in events]
            for (_, founds), (index, events_warning) in zip(relations, related_events, strict=True):
                found = founds[i]
                if found.warning:
                    warnings.append(found.warning)
                    unread[found.relation.name] = found.warning
                if events_warning and events_warning not in warnings:
                    warnings.append(events_warning)
                items = []
                kind = found.resource
                for o in found.objects:
                    if kind is None:
                        break
                    about = _events_of(index, o)
                    items.append(self.evaluated(kind, o, found.relation.fields, about))
                    if read is not None:
                        seen.append(shown(found.relation.name, o))
                        seen += [shown(f"events:{found.relation.name}", e) for e in about]
                related_shown.append((found.relation, items))
                judged.setdefault(found.relation.name, []).extend(
                    Judged(e.resource.kind, e.obj, e.evaluation.status, e.evaluation.reason) for e in items
                )
            if warning:
                warnings.append(warning)
                unread["events"] = warning
            subject = self.evaluated(resource, obj, events=events, related=judged)
            out.append(Details(subject, related_shown, events, warnings, unread))
            if read is not None:
                read.append(seen)
        return out


def _involving(events: list[JSON]) -> dict[str, list[JSON]]:
    """Events by the name of the object they are about."""
    index: dict[str, list[JSON]] = {}
    for e in events:
        index.setdefault((e.get("involvedObject") or {}).get("name") or "", []).append(e)
    return index


def _events_of(index: dict[str, list[JSON]], obj: JSON) -> list[JSON]:
    """The events about this object: its name, and its namespace and uid where the event records them."""
    meta = obj["metadata"]
    namespace, uid = meta.get("namespace"), meta.get("uid")

    def about(involved: JSON) -> bool:
        same_namespace = not namespace or involved.get("namespace") in (None, "", namespace)
        return same_namespace and involved.get("uid") in (None, "", uid)

    return [e for e in index.get(meta.get("name") or "", []) if about(e.get("involvedObject") or {})]

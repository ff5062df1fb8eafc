"""Collect one object's details: the object, its related objects and its events.

The independent requests of one call run concurrently: the object and its
events first (the event query needs only kind and name), then every related
set at once. Evaluating fields is left to the renderers; this module only
gathers objects and pairs them with the field records that describe them.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from . import errors, relations
from .discovery import Discovery, Resource
from .fieldmaps import Field, FieldMap, FieldMaps, Relation
from .kube import Api, list_all, resource_version

JSON = dict[str, Any]
WORKERS = 8


@dataclass(frozen=True)
class Item:
    """One object with the fields that describe it and its computed status."""

    resource: Resource
    obj: JSON
    fields: tuple[Field, ...]
    status: str

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]

    @property
    def namespace(self) -> str | None:
        return self.obj["metadata"].get("namespace")

    @property
    def resource_version(self) -> str:
        return resource_version(self.obj)


@dataclass
class Details:
    item: Item
    related: list[tuple[Relation, list[Item]]] = field(default_factory=list)
    events: list[JSON] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    watches: list[tuple[relations.Scope, str]] = field(default_factory=list)  # for --watch, from what is shown

    def versions(self) -> tuple[str, ...]:
        """Resource versions of everything shown: equal tuples mean nothing changed."""
        rvs = [self.item.resource_version]
        rvs += [i.resource_version for _, items in self.related for i in items]
        rvs += [resource_version(e) for e in self.events]
        return tuple(rvs)


def events_query(resource: Resource, namespace: str | None, name: str | None) -> tuple[str, JSON]:
    """The core/v1 events list for objects of a kind (and name) in a namespace, or everywhere."""
    selector = f"involvedObject.kind={resource.kind}"
    if name:
        selector += f",involvedObject.name={name}"
    path = f"/api/v1/namespaces/{namespace}/events" if resource.namespaced and namespace else "/api/v1/events"
    return path, {"fieldSelector": selector}


def event_time(e: JSON) -> str:
    """When an event last happened: core/v1 events fill lastTimestamp, newer reporters only eventTime."""
    return e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or ""


class Collector:
    def __init__(self, api: Api, discovery: Discovery, maps: FieldMaps) -> None:
        self.api, self.discovery, self.maps = api, discovery, maps

    def item(self, resource: Resource, obj: JSON, fields: tuple[Field, ...] | None = None) -> Item:
        fmap = self.maps.get(resource.group, resource.kind)
        return Item(resource, obj, fmap.fields if fields is None else fields, fmap.status(obj))

    def one(self, resource: Resource, namespace: str | None, name: str) -> Details:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            obj_f = pool.submit(self.api.get, resource.path(namespace, name))
            events_f = pool.submit(self._events, resource, namespace, name)
            obj = obj_f.result()
            obj.setdefault("apiVersion", resource.api_version)
            obj.setdefault("kind", resource.kind)
            [details] = self._assemble(pool, resource, [obj], {name: events_f})
        details.watches.insert(0, (relations.by_name(resource, namespace, name), details.item.resource_version))
        return details

    def many(self, resource: Resource, namespace: str | None, selector: str | None) -> list[Details]:
        params = {"labelSelector": selector}
        listing = list_all(self.api, resource.path(namespace), params)
        objects = listing.get("items") or []
        if not objects:
            return []
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            events_f = pool.submit(self._events, resource, namespace, None)
            found = self._assemble(pool, resource, objects, {None: events_f})
        own = (relations.scope(resource.path(namespace), params), resource_version(listing))
        found[0].watches.insert(0, own)
        return found

    def _events(self, resource: Resource, namespace: str | None, name: str | None) -> tuple[list, str | None, list]:
        """The events, a warning if they may not be read, and their watch scope."""
        path, params = events_query(resource, namespace, name)
        try:
            listing = list_all(self.api, path, params)
        except (errors.ForbiddenError, errors.UnauthorizedError) as exc:
            return [], f"events: {exc.message}", []
        watch = [(relations.scope(path, params), resource_version(listing))]
        return listing.get("items") or [], None, watch

    def _assemble(
        self,
        pool: ThreadPoolExecutor,
        resource: Resource,
        objects: list[JSON],
        events: dict[str | None, Future],
    ) -> list[Details]:
        fmap: FieldMap = self.maps.get(resource.group, resource.kind)
        pending = [
            [pool.submit(relations.fetch, self.api, self.discovery, rel, obj) for rel in fmap.related]
            for obj in objects
        ]
        out = []
        for obj, futures in zip(objects, pending, strict=True):
            details = Details(self.item(resource, obj))
            for fut in futures:
                found = fut.result()
                details.watches += found.watches
                if found.warning:
                    details.warnings.append(found.warning)
                if found.resource is not None:
                    items = [self.item(found.resource, o, found.relation.fields) for o in found.objects]
                    details.related.append((found.relation, items))
                else:
                    details.related.append((found.relation, []))
            ev_f = events.get(obj["metadata"]["name"]) or events[None]
            evs, warning, watch = ev_f.result()
            details.watches += watch
            uid = obj["metadata"].get("uid")
            details.events = sorted(
                (
                    e
                    for e in evs
                    if (e.get("involvedObject") or {}).get("name") == details.item.name
                    and (e.get("involvedObject") or {}).get("uid") in (None, "", uid)
                ),
                key=event_time,
            )
            if warning:
                details.warnings.append(warning)
            out.append(details)
        return out

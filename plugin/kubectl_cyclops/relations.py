"""Related objects: fetch what a field map's `related` entries point at.

Three ways to relate, all declared in maps: `selector` (a label selector read
from the object: a Job's pods), `ref` (names read from the object: a PV's
claim and StorageClass), and `owned` (objects whose ownerReferences name the
object: a CronJob's Jobs). A relation the user may not read, or a kind the
server lacks, becomes a warning, not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import errors
from .discovery import Discovery, Resource
from .fieldmaps import Relation
from .formats import label_selector
from .kube import Api, list_all, resource_version

JSON = dict[str, Any]


Scope = tuple[str, tuple[tuple[str, str], ...]]  # a list path and its sorted query: what --watch watches


def scope(path: str, params: dict[str, Any]) -> Scope:
    return path, tuple(sorted((k, str(v)) for k, v in params.items() if v not in (None, "")))


def by_name(resource: Resource, namespace: str | None, name: str) -> Scope:
    return scope(resource.path(namespace), {"fieldSelector": f"metadata.name={name}"})


@dataclass
class Found:
    relation: Relation
    resource: Resource | None
    objects: list[JSON] = field(default_factory=list)
    warning: str | None = None
    watches: list[tuple[Scope, str]] = field(default_factory=list)  # each with the resourceVersion shown


def _names(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    seen: list[str] = []
    for v in values:
        if isinstance(v, str) and v and v not in seen:
            seen.append(v)
    return seen


def list_scope(relation: Relation, resource: Resource, parent: JSON) -> tuple[str, dict[str, Any]] | None:
    """Where selected or owned objects live, as a list path and query."""
    namespace = (parent.get("metadata") or {}).get("namespace")
    if relation.selector is not None:
        selector = label_selector(relation.selector.value(parent))
        if not selector:
            return None  # an empty selector would select everything: show nothing instead
        return resource.path(namespace), {"labelSelector": selector}
    if relation.owned:
        return resource.path(namespace), {}
    return None


def fetch(api: Api, discovery: Discovery, relation: Relation, parent: JSON) -> Found:
    resource = discovery.find(relation.group, relation.kind)
    if resource is None:
        return Found(relation, None, warning=f"{relation.kind} is not served by this cluster")
    try:
        return _objects(api, Found(relation, resource), resource, parent)
    except (errors.ForbiddenError, errors.UnauthorizedError) as exc:
        return Found(relation, resource, warning=f"{relation.name}: {exc.message}")


def _objects(api: Api, found: Found, resource: Resource, parent: JSON) -> Found:
    relation = found.relation
    meta = parent.get("metadata") or {}
    if relation.ref_name is not None:
        namespace = meta.get("namespace")
        if relation.ref_namespace is not None:
            namespace = relation.ref_namespace.value(parent) or namespace
        for name in _names(relation.ref_name.value(parent)):
            try:
                obj = api.get(resource.path(namespace, name))
            except errors.NotFoundError:
                continue  # a dangling reference: the field on the object still shows the name
            found.objects.append(obj)
            found.watches.append((by_name(resource, namespace, name), resource_version(obj)))
        return found
    where = list_scope(relation, resource, parent)
    if where is None:
        return found
    listing = list_all(api, *where)
    found.watches.append((scope(*where), resource_version(listing)))
    items = listing.get("items") or []
    if relation.owned:
        uid = meta.get("uid")
        items = [o for o in items if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])]
    found.objects = sorted(items, key=lambda o: o["metadata"]["name"])
    return found

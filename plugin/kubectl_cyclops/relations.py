"""Related objects: read what a field map's `related` entries point at, for one parent or many.

Four ways to relate, all declared in maps: `selector` (a label selector read
from the object: a Job's pods), `ref` (names read from the object: a PV's
claim and StorageClass), `owned` (objects whose ownerReferences name the
object: a CronJob's Jobs), and `referencedBy` (objects with a field that
names the object: the pods that mount a claim, the bindings of a role). A
relation the user may not read, or a kind the server lacks, becomes a
warning, not a failure.

Reverse references are found by listing: in the object's namespace, or in
every namespace when the object is cluster-scoped (a StorageClass's claims,
the RoleBindings of a ClusterRole).

For one parent, named objects are read with a GET each. For a list (`batch`),
a related kind is read with one paginated LIST per namespace (or one for a
cluster-scoped kind), shared by every page of parents and joined in memory,
so the number of requests does not grow with the number of parents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from . import errors, selectors
from .discovery import Discovery, Resource
from .fieldmaps import Relation
from .kube import Api
from .paging import list_all
from .tasks import Pool

JSON = dict[str, Any]
# In a list answered from an informer's store: its objects by the value of each label the store indexes
# (label -> value -> objects by store key), as the store was when it answered (LabelIndexes).
BY_LABEL = "cyclops.byLabel"


@runtime_checkable
class LabelIndexes(Protocol):
    """An Api whose lists come from stores that can index their objects by a label (informer.CachedApi)."""

    def index_labels(self, scope: ListScope, label: str) -> None: ...


class ListScope(NamedTuple):
    """A list path and its query: what is listed once (and, under an informer, watched)."""

    path: str
    query: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, path: str, params: dict[str, Any] | None = None) -> ListScope:
        return cls(path, tuple(sorted((k, str(v)) for k, v in (params or {}).items() if v not in (None, ""))))

    @property
    def params(self) -> dict[str, str]:
        return dict(self.query)


@dataclass
class Found:
    """A relation's objects for one parent."""

    relation: Relation
    resource: Resource | None
    objects: list[JSON] = field(default_factory=list)
    warning: str | None = None


def _names(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    seen: list[str] = []
    for v in values:
        if isinstance(v, str) and v and v not in seen:
            seen.append(v)
    return seen


def _meta(obj: JSON) -> JSON:
    return obj.get("metadata") or {}


def _by_name(objects: list[JSON]) -> list[JSON]:
    return sorted(objects, key=lambda o: _meta(o).get("name", ""))


def _by_label(objects: list[JSON], wanted: set[tuple[str, str]]) -> dict[tuple[str, str], list[JSON]]:
    """The objects that carry one of the `wanted` labels (key, value), by that label."""
    index: dict[tuple[str, str], list[JSON]] = {}
    keys = {k for k, _ in wanted}
    for o in objects:
        labels = (o.get("metadata") or {}).get("labels")
        if not labels:
            continue
        for key in keys:
            value = labels.get(key)
            if value is not None and (key, value) in wanted:
                index.setdefault((key, value), []).append(o)
    return index


def joined(relations: tuple[Relation, ...], per_relation: list[list[Found]]) -> list[tuple[Relation, list[Found]]]:
    """Relations of one name are one relation read in several ways (a claim's pods: those that mount it by
    name, and the one that owns it as a generic ephemeral volume): per parent, their objects are joined,
    once each, under the first of them."""
    groups: dict[str, list[int]] = {}
    for i, relation in enumerate(relations):
        groups.setdefault(relation.name, []).append(i)
    out = []
    for indexes in groups.values():
        first = relations[indexes[0]]
        if len(indexes) == 1:
            out.append((first, per_relation[indexes[0]]))
            continue
        merged = []
        for founds in zip(*(per_relation[i] for i in indexes), strict=True):
            objects = {_meta(o).get("uid") or id(o): o for f in founds for o in f.objects}
            warnings = [f.warning for f in founds if f.warning]
            resource = next((f.resource for f in founds if f.resource is not None), None)
            merged.append(Found(first, resource, _by_name(list(objects.values())), "; ".join(warnings) or None))
        out.append((first, merged))
    return out


def _wanted(relation: Relation, resource: Resource, parent: JSON) -> list[tuple[str | None, str]]:
    """A `ref` relation's (namespace, name) for one parent."""
    namespace = _meta(parent).get("namespace")
    if relation.ref_namespace is not None:
        namespace = relation.ref_namespace.value(parent) or namespace
    namespace = namespace if resource.namespaced else None
    assert relation.ref_name is not None
    return [(namespace, n) for n in _names(relation.ref_name.value(parent))]


def claims(relation: Relation, resource: Resource, parent: JSON) -> list[Any] | None:
    """Marks (see `marks`) that every object of the relation found for this parent carries, so that a change
    to an object can be traced to the parents it may belong to; None when a change to any object of the
    relation's lists may concern the parent (a selector with no label it requires a value of)."""
    meta = _meta(parent)
    if relation.ref_name is not None:
        return _wanted(relation, resource, parent)
    if relation.selector is not None:
        selector = relation.selector.value(parent)
        equal = selector if not selectors.is_label_selector(selector) else selector.get("matchLabels")
        if not isinstance(equal, dict) or not equal:
            return None if selectors.to_query(selector) else []
        key = min(equal)
        return [(key, str(equal[key]))]
    if relation.referenced_by is not None:
        return [meta.get("name", "")]
    return [meta.get("uid")]


def marks(relation: Relation, resource: Resource, kind: str, obj: JSON) -> list[Any]:
    """What an object of the relation's kind carries that a parent may claim (see `claims`)."""
    meta = _meta(obj)
    if relation.ref_name is not None:
        return [(meta.get("namespace") if resource.namespaced else None, meta.get("name", ""))]
    if relation.selector is not None:
        return list((meta.get("labels") or {}).items())
    if relation.referenced_by is not None:
        if relation.referenced_kind is not None and kind not in relation.referenced_kind.values(obj):
            return []
        return _names(relation.referenced_by.values(obj))
    return [r.get("uid") for r in meta.get("ownerReferences") or []]


@dataclass
class Plans:
    """What `--watch` and `wait` keep, for one list of parents, of the lists chosen for selector relations
    (chosen as for every parent even when some are joined): each parent's selector as a query and the label
    keys it requires (by relation and parent uid, with the parent's version), and each relation's lists by
    namespace, kept while they hold everything each parent that changed selects."""

    queries: dict[tuple[str, str], tuple[str, tuple[str, set[str] | None]]] = field(default_factory=dict)
    scopes: dict[str, dict[str | None, ListScope]] = field(default_factory=dict)


class Related:
    """Reads every relation of a map for a batch of parents of one kind."""

    def __init__(
        self,
        api: Api,
        discovery: Discovery,
        pool: Pool,
        batch: bool,
        plans: Plans | None = None,
    ) -> None:
        self.api, self.discovery, self.pool, self.batch = api, discovery, pool, batch
        self._lists: dict[ListScope, Any] = {}  # futures of lists already asked for, shared across pages
        self.readers: dict[ListScope, set[str]] = {}  # which relations (or "events:NAME") read each list
        self.plans = Plans() if plans is None else plans

    def _list(self, scope: ListScope, reader: str) -> Any:
        self.readers.setdefault(scope, set()).add(reader)
        if scope not in self._lists:
            self._lists[scope] = self.pool.submit(list_all, self.api, scope.path, scope.params)
        return self._lists[scope]

    def listing(self, path: str, params: dict[str, Any], reader: str) -> Any:
        """A future of the whole list, asked for once however many pages of parents need it."""
        return self._list(ListScope.of(path, params), reader)

    def _get(self, resource: Resource, namespace: str | None, name: str) -> Any:
        return self.pool.submit(self._get_or_none, resource.path(namespace, name))

    def _get_or_none(self, path: str) -> JSON | None:
        try:
            return self.api.get(path)
        except errors.NotFoundError:
            return None  # a dangling reference: the field on the object still shows the name

    def start(
        self, relation: Relation, kind: str, parents: list[JSON], among: list[JSON] | None = None
    ) -> Callable[[], list[Found]]:
        """Ask for a relation's objects for every parent (of `kind`); the returned call waits and joins them.

        `among`: the parents are some of these, and the lists are chosen as for all of them (the same lists,
        and so the same stores, whichever of them are joined)."""
        resource = self.discovery.find(relation.group, relation.kind)
        if resource is None:
            warning = f"{relation.kind} is not served by this cluster"
            return lambda: [Found(relation, None, warning=warning) for _ in parents]
        if relation.ref_name is not None:
            join = self._refs(relation, resource, parents)
        elif relation.selector is not None:
            join = self._selected(relation, resource, parents, among or parents)
        elif relation.referenced_by is not None:
            join = self._referencing(relation, resource, kind, parents)
        else:
            join = self._owned(relation, resource, parents)

        def finish() -> list[Found]:
            try:
                return join()
            except (errors.ForbiddenError, errors.UnauthorizedError) as exc:
                return [Found(relation, resource, warning=f"{relation.name}: {exc.message}") for _ in parents]

        return finish

    def _refs(self, relation: Relation, resource: Resource, parents: list[JSON]) -> Callable[[], list[Found]]:
        wanted = [_wanted(relation, resource, parent) for parent in parents]
        per_namespace: dict[str | None, set[str]] = defaultdict(set)
        for refs in wanted:
            for namespace, name in refs:
                per_namespace[namespace].add(name)
        gets: dict[tuple[str | None, str], Any] = {}
        lists: dict[str | None, Any] = {}
        for namespace, names in per_namespace.items():
            if not self.batch:
                for name in names:
                    gets[(namespace, name)] = self._get(resource, namespace, name)
            else:
                lists[namespace] = self._list(ListScope.of(resource.path(namespace)), relation.name)

        def join() -> list[Found]:
            index: dict[tuple[str | None, str], JSON] = {}
            for key, fut in gets.items():
                obj = fut.result()
                if obj is not None:
                    index[key] = obj
            for namespace, fut in lists.items():
                for obj in fut.result().get("items") or []:
                    index[(namespace, _meta(obj).get("name", ""))] = obj
            return [Found(relation, resource, [index[key] for key in refs if key in index]) for refs in wanted]

        return join

    def _query(self, relation: Relation, parent: JSON) -> tuple[str, set[str] | None]:
        """The parent's selector as a query, and the label keys it requires (None for no selector)."""
        meta = _meta(parent)
        which, version = (relation.name, str(meta.get("uid") or "")), meta.get("resourceVersion")
        kept = self.plans.queries.get(which)
        if kept is not None and kept[0] == version:
            return kept[1]
        assert relation.selector is not None
        selector = relation.selector.value(parent)
        found = selectors.to_query(selector), selectors.required_keys(selector) if selector else None
        if which[1] and version:
            self.plans.queries[which] = version, found
        return found

    def _plan(self, relation: Relation, resource: Resource, among: list[JSON]) -> dict[str | None, ListScope]:
        """The lists of a selector relation for these parents, by namespace: one parent's selector where all
        of them have the same, else the label keys they all require (matched in memory)."""
        per_namespace: dict[str | None, dict[str, None]] = defaultdict(dict)  # queries, in order, once each
        required: list[set[str]] = []
        for parent in among:
            query, keys = self._query(relation, parent)
            if query:
                per_namespace[_meta(parent).get("namespace")][query] = None
            if keys is not None:
                required.append(keys)
        scopes: dict[str | None, ListScope] = {}
        for namespace, queries in per_namespace.items():
            shared = set.intersection(*required) if len(queries) > 1 and required else set()
            query = next(iter(queries)) if len(queries) == 1 else ",".join(sorted(shared))
            scopes[namespace] = ListScope.of(resource.path(namespace), {"labelSelector": query})
        return scopes

    def _covered(self, scopes: dict[str | None, ListScope], relation: Relation, parent: JSON) -> bool:
        """Whether the lists chosen before still hold everything the parent's selector selects (a parent that
        changed, or a new one): then the lists, and so the stores, stay as they are."""
        query, keys = self._query(relation, parent)
        if not query:
            return True
        scope = scopes.get(_meta(parent).get("namespace"))
        if scope is None:
            return False
        listed = scope.params.get("labelSelector", "")
        return listed == query or (keys is not None and set(listed.split(",")) <= keys)

    def _selected(
        self, relation: Relation, resource: Resource, parents: list[JSON], among: list[JSON]
    ) -> Callable[[], list[Found]]:
        assert relation.selector is not None
        scopes = self.plans.scopes.get(relation.name)
        if among is parents or scopes is None or not all(self._covered(scopes, relation, p) for p in parents):
            scopes = self.plans.scopes[relation.name] = self._plan(relation, resource, among)
        for scope in scopes.values():
            self._list(scope, relation.name)

        def join() -> list[Found]:
            chosen = [relation.selector.value(p) if relation.selector else None for p in parents]
            claimed = [claims(relation, resource, p) for p in parents]
            wanted = {c[0] for c in claimed if c}
            indexes: dict[str | None, dict[tuple[str, str], list[JSON]]] = {}  # by namespace: by a claimed label
            out = []
            for parent, selector, claim in zip(parents, chosen, claimed, strict=True):
                namespace = _meta(parent).get("namespace")
                found = Found(relation, resource)
                if namespace in scopes and selectors.to_query(selector):
                    listing = self._list(scopes[namespace], relation.name).result()
                    items = listing.get("items") or []
                    if claim:  # only the objects with the label value the selector requires
                        label, value = claim[0]
                        indexed = (listing.get(BY_LABEL) or {}).get(label)
                        if indexed is not None:  # the store's index, as it answered
                            items = list((indexed.get(value) or {}).values())
                        else:
                            if namespace not in indexes:
                                indexes[namespace] = _by_label(items, wanted)
                                if isinstance(self.api, LabelIndexes):  # the next answers come indexed
                                    for key in {k for k, _ in wanted}:
                                        self.api.index_labels(scopes[namespace], key)
                            items = indexes[namespace].get(claim[0], [])
                    found.objects = _by_name([o for o in items if selectors.matches(selector, _meta(o).get("labels"))])
                out.append(found)
            return out

        return join

    def _owned(self, relation: Relation, resource: Resource, parents: list[JSON]) -> Callable[[], list[Found]]:
        scopes = {ns: ListScope.of(resource.path(ns)) for ns in {_meta(p).get("namespace") for p in parents}}
        for scope in scopes.values():
            self._list(scope, relation.name)

        def join() -> list[Found]:
            out = []
            for parent in parents:
                listing = self._list(scopes[_meta(parent).get("namespace")], relation.name).result()
                uid = _meta(parent).get("uid")
                owned = [
                    o
                    for o in listing.get("items") or []
                    if any(r.get("uid") == uid for r in _meta(o).get("ownerReferences") or [])
                ]
                out.append(Found(relation, resource, _by_name(owned)))
            return out

        return join

    def _referencing(
        self, relation: Relation, resource: Resource, kind: str, parents: list[JSON]
    ) -> Callable[[], list[Found]]:
        """Objects whose `referencedBy.name` names the parent (and `referencedBy.kind` its kind, if given)."""
        assert relation.referenced_by is not None
        by, of_kind = relation.referenced_by, relation.referenced_kind
        # A namespaced kind is listed in the parent's namespace, or in all namespaces for a cluster-scoped parent.
        spaces = {_meta(p).get("namespace") if resource.namespaced else None for p in parents}
        scopes = {ns: ListScope.of(resource.path(ns)) for ns in spaces}
        for scope in scopes.values():
            self._list(scope, relation.name)

        def join() -> list[Found]:
            index: dict[tuple[str | None, str], list[JSON]] = {}  # (namespace, name referenced) -> referrers
            for namespace, scope in scopes.items():
                for obj in self._list(scope, relation.name).result().get("items") or []:
                    if of_kind is not None and kind not in of_kind.values(obj):
                        continue
                    for name in _names(by.values(obj)):
                        index.setdefault((namespace, name), []).append(obj)
            out = []
            for parent in parents:
                namespace = _meta(parent).get("namespace") if resource.namespaced else None
                out.append(
                    Found(relation, resource, _by_name(index.get((namespace, _meta(parent).get("name", "")), [])))
                )
            return out

        return join

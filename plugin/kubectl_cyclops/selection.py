"""What a command was asked about: a kind and a NAME, or a namespace and a selector, resolved once.

`details` and `wait` share it: the flags are checked, the connection made,
the kind resolved through discovery and its field map validated before any
object is read. `collect(api)` then reads through the given Api, the
cluster's or an informer's cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from . import durations, errors, kube
from .details import Collector, Details, Kept
from .discovery import Discovery, Resource
from .fieldmaps import FieldMaps
from .manifests import Manifest


def parse_timeout(value: str | None) -> float | None:
    """kubectl's --request-timeout: '0' means none; '5', '5s', '1m30s', '250ms' are accepted."""
    if value is None or value.strip() in ("", "0"):
        return None
    seconds = durations.parse(value)
    if seconds is None:
        raise errors.UsageError(
            f'invalid --request-timeout "{value}": use a number of seconds or a duration like 5s, 1m'
        )
    return seconds or None


def now() -> datetime:
    """The time ages are measured from (tests replaying recordings pin it)."""
    return datetime.now(UTC)


def split_target(kind: str, name: str | None) -> tuple[str, str | None]:
    """KIND NAME, KIND/NAME, or KIND alone."""
    if "/" in kind:
        if name:
            raise errors.UsageError(f'give either KIND/NAME or KIND NAME, not both ("{kind}" and "{name}")')
        kind, _, name = kind.partition("/")
        if not kind or not name:
            raise errors.UsageError(f'"{kind}/{name}" is not KIND/NAME')
    return kind, name


@dataclass
class Selection:
    api: kube.KubeApi
    discovery: Discovery
    maps: FieldMaps
    resource: Resource
    namespace: str | None
    name: str | None
    selector: str | None
    kept: Kept | None = None  # evaluations and details kept between collections (--watch, wait)

    def pages(self, api: kube.Api | None = None) -> Iterator[list[Details]]:
        """The object, or every selected object a page at a time, with its related objects and events.

        Each page is complete (read and evaluated) when it is handed on, and one object is one page.
        """
        collector = Collector(api or self.api, self.discovery, self.maps, now(), self.kept)
        if self.name:
            try:
                yield [collector.one(self.resource, self.namespace, self.name)]
            except errors.NotFoundError:
                missing = f'{self.resource.qualified} "{self.name}" not found{self.in_namespace}'
                raise errors.NotFoundError(missing) from None
            return
        yield from collector.pages(self.resource, self.namespace, self.selector)

    def collect(self, api: kube.Api | None = None) -> Iterator[Details]:
        """The objects of pages(), one by one."""
        for page in self.pages(api):
            yield from page
        if self.kept is not None:
            self.kept.collected()

    @property
    def in_namespace(self) -> str:
        """` in namespace "ci"`, or nothing for every namespace and cluster-scoped kinds."""
        return f' in namespace "{self.namespace}"' if self.namespace else ""

    def where(self) -> str:
        """What was selected, in words: `jobs.batch -l app=web in namespace "ci"`."""
        return self.resource.qualified + (f" -l {self.selector}" if self.selector else "") + self.in_namespace


class Target(NamedTuple):
    """One object a manifest names, resolved: its kind as the server serves it, namespace and name."""

    resource: Resource
    namespace: str | None
    name: str
    source: str  # the manifest file (and document) that named it

    @property
    def label(self) -> str:
        """`jobs.batch/migrate`, kubectl's spelling of the object."""
        return f"{self.resource.qualified}/{self.name}"


@dataclass
class Fleet:
    """The objects of `wait -f`, resolved once; `collect(api)` reads each kind and namespace with one list."""

    api: kube.KubeApi
    discovery: Discovery
    maps: FieldMaps
    targets: list[Target]
    kept: Kept | None = None

    def collect(self, api: kube.Api | None = None) -> list[tuple[Target, Details | None]]:
        """Each target, in order, with its details, or None where it does not exist (yet, or any more)."""
        collector = Collector(api or self.api, self.discovery, self.maps, now(), self.kept)
        groups: dict[tuple[Resource, str | None], set[str]] = {}
        for t in self.targets:
            groups.setdefault((t.resource, t.namespace), set()).add(t.name)
        found = {key: collector.named(*key, names) for key, names in groups.items()}
        if self.kept is not None:
            self.kept.collected()
        return [(t, found[(t.resource, t.namespace)].get(t.name)) for t in self.targets]


def with_events(chosen: Selection | Fleet, items: list[Details], not_older_than: int | None) -> list[Details]:
    """Details a judging collection assembled (Kept.judging), with their events, read now, at least as new as
    `not_older_than` (Collector.with_events)."""
    name = chosen.name if isinstance(chosen, Selection) else None
    return Collector(chosen.api, chosen.discovery, chosen.maps, now()).with_events(items, name, not_older_than)


def select_manifests(
    manifests: list[Manifest],
    *,
    namespace: str | None,
    kubeconfig: str | None,
    context: str | None,
    request_timeout: str,
    cache_dir: str | None,
    field_maps: tuple[str, ...],
) -> Fleet:
    """The objects of the manifests, each kind resolved through discovery: a kind the server does not serve is
    an UnknownKindError naming the document. The namespace is the document's, else -n, else the context's."""
    timeout = parse_timeout(request_timeout)
    maps = FieldMaps(list(field_maps))
    api = kube.connect(kubeconfig, context, timeout)
    discovery = Discovery(api, cache_dir)
    targets: dict[tuple[Resource, str | None, str], Target] = {}
    for m in manifests:
        resource = discovery.find(m.group, m.kind)
        if resource is None:
            raise errors.UnknownKindError(
                f'{m.source}: the server doesn\'t have a resource type "{m.kind}" in "{m.api_version}" '
                "(see: kubectl api-resources)"
            )
        maps.get(resource.group, resource.kind)  # reject a malformed map before any further request
        ns = (m.namespace or namespace or api.namespace) if resource.namespaced else None
        targets.setdefault((resource, ns, m.name), Target(resource, ns, m.name, m.source))
    return Fleet(api, discovery, maps, list(targets.values()))


def select(
    *,
    kind: str,
    name: str | None,
    namespace: str | None,
    all_namespaces: bool,
    selector: str | None,
    kubeconfig: str | None,
    context: str | None,
    request_timeout: str,
    cache_dir: str | None,
    field_maps: tuple[str, ...],
) -> Selection:
    """The flags of `details` and `wait` checked, the connection made, the kind resolved, its map validated."""
    kind, name = split_target(kind, name)
    if name and all_namespaces:
        raise errors.UsageError("a resource cannot be retrieved by name across all namespaces")
    if name and selector:
        raise errors.UsageError("name cannot be provided when a selector is specified")
    timeout = parse_timeout(request_timeout)
    maps = FieldMaps(list(field_maps))
    api = kube.connect(kubeconfig, context, timeout)
    discovery = Discovery(api, cache_dir)
    resource = discovery.resolve(kind)
    maps.get(resource.group, resource.kind)  # reject a malformed map before any further request
    ns = None if all_namespaces or not resource.namespaced else (namespace or api.namespace)
    return Selection(api, discovery, maps, resource, ns, name, selector)

"""API discovery: which resource types the server serves, and KIND argument resolution.

Uses aggregated discovery (two requests) where the server offers it, the
per-group documents otherwise, and caches the result on disk per server,
like kubectl's discovery cache. A miss against a warm cache refreshes once,
so a CRD created a moment ago resolves.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from . import errors
from .kube import Api
from .tasks import Pool

AGGREGATED = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)
CACHE_TTL = 6 * 3600  # kubectl's discovery cache lifetime


class Resource(NamedTuple):
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """kubectl's spelling: jobs.batch, pods."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base

    def names(self) -> set[str]:
        return {self.plural, self.singular, self.kind.lower(), *self.short_names}


def _from_aggregated(doc: dict[str, Any]) -> list[Resource]:
    found = []
    for group in doc.get("items") or []:
        gname = (group.get("metadata") or {}).get("name", "")
        for version in group.get("versions") or []:
            for r in version.get("resources") or []:
                kind = (r.get("responseKind") or {}).get("kind")
                if not kind:
                    continue
                found.append(
                    Resource(
                        group=gname,
                        version=version["version"],
                        kind=kind,
                        plural=r["resource"],
                        singular=r.get("singularResource") or kind.lower(),
                        namespaced=r.get("scope") == "Namespaced",
                        short_names=tuple(r.get("shortNames") or ()),
                        verbs=tuple(r.get("verbs") or ()),
                    )
                )
    return found


def _from_resource_list(group: str, version: str, doc: dict[str, Any]) -> list[Resource]:
    return [
        Resource(
            group=group,
            version=version,
            kind=r["kind"],
            plural=r["name"],
            singular=r.get("singularName") or r["kind"].lower(),
            namespaced=bool(r.get("namespaced")),
            short_names=tuple(r.get("shortNames") or ()),
            verbs=tuple(r.get("verbs") or ()),
        )
        for r in doc.get("resources") or []
        if "/" not in r["name"]
    ]


def read_server(api: Api) -> list[Resource]:
    """Every resource type the server serves, preferred versions first."""
    with Pool(2) as pool:
        core_f = pool.submit(api.get, "/api", None, AGGREGATED)
        apis_f = pool.submit(api.get, "/apis", None, AGGREGATED)
        core, apis = core_f.result(), apis_f.result()
    if core.get("kind") == "APIGroupDiscoveryList" and apis.get("kind") == "APIGroupDiscoveryList":
        return _from_aggregated(core) + _from_aggregated(apis)
    # Servers older than Kubernetes 1.26 (or proxies that strip the Accept header).
    versions = [("", v) for v in core.get("versions") or []]
    for group in apis.get("groups") or []:
        versions += [(group["name"], v["version"]) for v in group.get("versions") or []]
    with Pool(8) as pool:
        tasks = [pool.submit(api.get, f"/apis/{g}/{v}" if g else f"/api/{v}") for g, v in versions]
        return [r for (g, v), t in zip(versions, tasks, strict=True) for r in _from_resource_list(g, v, t.result())]


class Discovery:
    """The server's resource types, read from the disk cache when it is fresh."""

    def __init__(self, api: Api, cache_dir: str | None) -> None:
        self.api = api
        root = Path(cache_dir) if cache_dir else _default_cache_root()
        self.cache_file = root / "discovery" / f"{cache_key(api.host)}.json"
        self._resources: list[Resource] | None = None
        self._fresh = False

    def resources(self, refresh: bool = False) -> list[Resource]:
        if self._resources is None and not refresh:
            self._resources = self._read_cache()
        if self._resources is None or refresh:
            self._resources = read_server(self.api)
            self._fresh = True
            self._write_cache(self._resources)
        return self._resources

    def resolve(self, arg: str) -> Resource:
        """KIND as kubectl accepts it: pv, pods, Job, jobs.batch, deployments.v1.apps."""
        found = match(self.resources(), arg)
        if found is None and not self._fresh:
            found = match(self.resources(refresh=True), arg)
        if found is None:
            raise errors.UnknownKindError(
                f'the server doesn\'t have a resource type "{arg}" (see: kubectl api-resources)'
            )
        return found

    def find(self, group: str, kind: str) -> Resource | None:
        """The preferred version of group/kind, for related objects named in field maps."""
        for refresh in (False, True):
            if refresh and self._fresh:
                break
            for r in self.resources(refresh=refresh):
                if r.group == group and r.kind == kind:
                    return r
        return None

    def _read_cache(self) -> list[Resource] | None:
        try:
            if time.time() - self.cache_file.stat().st_mtime > CACHE_TTL:
                return None
            data = json.loads(self.cache_file.read_text())
            return [Resource(**{**r, "short_names": tuple(r["short_names"]), "verbs": tuple(r["verbs"])}) for r in data]
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def _write_cache(self, resources: list[Resource]) -> None:
        import tempfile  # only on a cache miss

        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_file.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump([r._asdict() for r in resources], f)
            os.replace(tmp, self.cache_file)
        except OSError:
            pass  # a read-only home still works, only slower


def _default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "kubectl-cyclops"


def match(resources: list[Resource], arg: str) -> Resource | None:
    """kubectl's resolution: resource[.version[.group]] or resource[.group]; first in discovery order."""
    text = arg.strip().lower()
    if not text:
        return None
    name, _, rest = text.partition(".")
    candidates: list[tuple[str | None, str | None]] = [(None, None)] if not rest else []
    version: str | None
    group: str | None
    if rest:
        version, _, group = rest.partition(".")
        if group:
            candidates.append((version, group))
        candidates.append((None, rest))
    for version, group in candidates:
        for r in resources:
            if name in r.names() and (group is None or r.group == group) and (version is None or r.version == version):
                return r
    return None


def cache_key(host: str) -> str:
    """A file-system-safe name for a server, like kubectl's discovery cache directories."""
    parts = urlsplit(host)
    return re.sub(r"[^A-Za-z0-9.]+", "_", (parts.netloc or host) + parts.path).strip("_")

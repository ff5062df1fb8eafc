"""An informer, as client-go's tools/cache has one, in a few small pieces: for `wait` and `--watch`.

1. A `Reflector` lists one scope (a collection path and its selectors) into a
   local store, then watches it from the list's resourceVersion with bookmarks
   and applies every event to the store. A watch the server ends, or a dropped
   connection, resumes from the last version seen (with a bounded backoff,
   RETRIES failures in a row end it); 410 Gone relists.
2. `CachedApi` answers the collector (details.py) from the stores: a list from
   its scope's store, an object from a store of that one name. A scope asked
   for the first time (a claim that appears, the first pod of a Job) is listed
   and watched then; after that no change costs a request.
3. `Informer.changes()` is the work queue: reflectors put the scopes that
   changed on it, and it coalesces bursts so the caller re-evaluates at most
   once per INTERVAL, whatever the event rate. It also returns every RESYNC
   seconds, so rules that read the clock (`olderThan`) are re-evaluated.
   Watches of newly listed scopes start there too, so one evaluation reads
   the lists as they were answered.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from . import errors
from .kube import JSON, Api
from .paging import list_all, resource_version
from .relations import ListScope

WATCH_SECONDS = 300
RETRIES = 5  # consecutive failed reconnects before a dropped watch ends the command
INTERVAL = 0.25  # at most one re-evaluation per interval
RESYNC = 5.0  # re-evaluate at least this often, for rules that compare a time with now
SHORT_WATCH = 1.0  # a watch the server ends this soon with no event is a failure (client-go's "very short watch")
_PAGING = ("limit", "continue")


def _key(obj: JSON) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Reflector:
    """One scope's store: listed once, then kept up to date by a watch."""

    def __init__(self, api: Api, scope: ListScope, backoff: float = 0.5) -> None:
        self.api, self.scope, self.backoff = api, scope, backoff
        self.items: dict[tuple[str, str], JSON] = {}
        self.version = ""
        self.lock = threading.Lock()
        self.ready = threading.Event()  # set once the first list answered, or failed (`failure`)
        self.failure: BaseException | None = None

    def list(self) -> None:
        listing = list_all(self.api, self.scope.path, self.scope.params)
        items = {_key(o): o for o in listing.get("items") or []}
        with self.lock:
            self.items, self.version = items, resource_version(listing)

    def answer(self) -> JSON:
        """What a LIST of the scope would answer now: every item, ordered as the server orders them."""
        with self.lock:
            items = [self.items[k] for k in sorted(self.items)]
            return {"metadata": {"resourceVersion": self.version}, "items": items}

    def apply(self, event: JSON) -> bool:
        """One watch event into the store; True when an object changed (not for bookmarks)."""
        obj = event.get("object") or {}
        with self.lock:
            self.version = resource_version(obj) or self.version
            if event.get("type") == "BOOKMARK":
                return False
            if event.get("type") == "DELETED":
                self.items.pop(_key(obj), None)
            else:
                self.items[_key(obj)] = obj
        return True

    def events(self, stop: threading.Event) -> Iterator[str]:
        """Watch from the store's version; yield "CHANGED" after each change, "RELISTED" after a relist."""
        failures = 0
        while not stop.is_set():
            started, seen = time.monotonic(), 0
            try:
                params = {
                    **self.scope.params,
                    "resourceVersion": self.version,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": WATCH_SECONDS,
                }
                for event in self.api.watch(self.scope.path, params):
                    failures, seen = 0, seen + 1
                    if self.apply(event):
                        yield "CHANGED"
                    if stop.is_set():
                        return
                if seen == 0 and time.monotonic() - started < SHORT_WATCH:
                    raise errors.UnreachableError(f"the watch of {self.scope.path} ended at once, with no event")
            except errors.GoneError:
                self.list()  # the version is too old: what happened meanwhile is only in a fresh list
                yield "RELISTED"
            except errors.UnreachableError:
                failures += 1
                if failures >= RETRIES:
                    raise
                stop.wait(min(self.backoff * 2 ** (failures - 1), 10))  # returns early when the command ends


class Informer:
    """Reflectors by scope, their work queue, and the CachedApi that reads them."""

    def __init__(self, api: Api, backoff: float = 0.5) -> None:
        self.api, self.backoff = api, backoff
        self.stop = threading.Event()
        self.queue: queue.Queue[Any] = queue.Queue()
        self.reflectors: dict[ListScope, Reflector] = {}
        self.lock = threading.Lock()
        self.cached = CachedApi(self)
        self._error: BaseException | None = None
        self._last = 0.0
        self._unwatched: list[Reflector] = []  # listed, watched from the next changes() on

    def __enter__(self) -> Informer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()

    def reflector(self, scope: ListScope) -> Reflector:
        """The scope's reflector; listed (a request) and watched the first time it is asked for.

        Scopes first asked for at the same time are listed concurrently. A list the
        server refuses (403, 401, 404) is remembered and raised again, not asked again.
        """
        with self.lock:
            found = self.reflectors.get(scope)
            fresh = found is None
            if found is None:
                found = self.reflectors[scope] = Reflector(self.api, scope, self.backoff)
        if fresh:
            try:
                found.list()
            except BaseException as exc:
                found.failure = exc
                if not isinstance(exc, errors.ForbiddenError | errors.UnauthorizedError | errors.NotFoundError):
                    with self.lock:
                        del self.reflectors[scope]  # asked again next time
            finally:
                found.ready.set()
            if found.failure is None:
                with self.lock:
                    self._unwatched.append(found)
        found.ready.wait()
        if found.failure is not None:
            raise found.failure
        return found

    def _run(self, reflector: Reflector) -> None:
        try:
            for change in reflector.events(self.stop):
                self.queue.put(change)
        except BaseException as exc:  # surfaced in the caller's thread, which owns error reporting
            self.queue.put(exc)

    def changes(self, timeout: float | None = None) -> bool:
        """Block until something changed (True), RESYNC or `timeout` passed (False); coalesce a burst.

        A change is returned no sooner than INTERVAL after the previous return, and every
        change queued by then is taken with it. An error from a watch is raised after the
        changes queued before it were returned.
        """
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        with self.lock:
            start, self._unwatched = self._unwatched, []
        for reflector in start:  # from its list's version: nothing between the list and the watch is missed
            threading.Thread(target=self._run, args=(reflector,), daemon=True, name=f"watch {reflector.scope}").start()
        wait = RESYNC if timeout is None else min(timeout, RESYNC)
        try:
            item = self.queue.get(timeout=max(wait, 0))
        except queue.Empty:
            return False
        changed = False
        window_ends = max(time.monotonic(), self._last + INTERVAL)
        while True:
            if isinstance(item, BaseException):
                if not changed:
                    raise item
                self._error = item
                break
            changed = True
            try:
                item = self.queue.get(timeout=max(window_ends - time.monotonic(), 0))
            except queue.Empty:
                break
        self._last = time.monotonic()
        return True


def _split(path: str) -> tuple[str, str | None]:
    """A request path as (collection path, object name or None).

    After /api/v1 or /apis/GROUP/VERSION: RESOURCE and namespaces/NS/RESOURCE are
    collections; RESOURCE/NAME and namespaces/NS/RESOURCE/NAME are objects (a
    namespace itself is namespaces/NAME).
    """
    parts = path.strip("/").split("/")
    rest = parts[2 if parts[0] == "api" else 3 :]
    if len(rest) in (2, 4):
        return "/" + "/".join(parts[:-1]), parts[-1]
    return path, None


class CachedApi:
    """The Api the collector reads through while an informer runs: answers come from the stores."""

    def __init__(self, informer: Informer) -> None:
        self.informer = informer
        self.host, self.namespace = informer.api.host, informer.api.namespace

    def get(self, path: str, params: dict[str, Any] | None = None, accept: str | None = None) -> JSON:
        collection, name = _split(path)
        if name is None:
            query = {k: v for k, v in (params or {}).items() if k not in _PAGING}
            return self.informer.reflector(ListScope.of(path, query)).answer()
        found = self.informer.reflector(ListScope.of(collection, {"fieldSelector": f"metadata.name={name}"})).answer()
        if not found["items"]:
            raise errors.NotFoundError(f'"{name}" not found')
        return dict(found["items"][0])

    def watch(self, path: str, params: dict[str, Any]) -> Iterator[JSON]:
        raise NotImplementedError("the informer's reflectors watch; its readers only list and get")

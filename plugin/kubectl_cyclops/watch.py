"""--watch: re-render whenever the object, its related objects or its events change.

One thread per watched collection streams events into a queue, starting from
the resourceVersion of what was shown (so nothing between reading and watching
is missed), resuming from the last version seen when the server ends a stream,
and relisting after 410 Gone. The main thread re-collects
and re-renders when anything shown has a new resourceVersion.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from . import errors
from .kube import Api, resource_version
from .relations import ListScope, Watch

WATCH_SECONDS = 300
RETRIES = 5  # consecutive failed reconnects before a dropped watch ends the command


def _resource_version(api: Api, path: str, params: dict[str, Any]) -> str:
    return resource_version(api.get(path, {**params, "limit": 1}))


def stream(api: Api, scope: ListScope, version: str, stop: threading.Event, backoff: float = 0.5) -> Iterator[str]:
    """Yield the type of every change in one collection after `version`.

    A stream the server ends is resumed from the last version seen; a dropped
    connection is resumed the same way after a growing pause (ending after
    RETRIES failures in a row); an expired version (410 Gone) is relisted.
    """
    path, params = scope.path, scope.params
    version = version or _resource_version(api, path, params)
    failures = 0
    while not stop.is_set():
        try:
            for event in api.watch(
                path,
                {
                    **params,
                    "resourceVersion": version,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": WATCH_SECONDS,
                },
            ):
                version = resource_version(event.get("object") or {}) or version
                failures = 0
                if event.get("type") != "BOOKMARK":
                    yield event["type"]
                if stop.is_set():
                    return
        except errors.GoneError:
            version = _resource_version(api, path, params)
            yield "RELISTED"  # changes may have been missed while the version was too old
        except errors.UnreachableError:
            failures += 1
            if failures >= RETRIES:
                raise
            stop.wait(min(backoff * 2 ** (failures - 1), 10))  # returns early when the command ends


class Watcher:
    """Runs a stream per scope; `changes()` blocks until something changed and drains bursts."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.stop = threading.Event()
        self.queue: queue.Queue[Any] = queue.Queue()
        self.scopes: set[ListScope] = set()

    def ensure(self, watches: list[Watch]) -> None:
        for scope, version in watches:
            if scope not in self.scopes:
                self.scopes.add(scope)
                threading.Thread(target=self._run, args=(scope, version), daemon=True, name=f"watch {scope}").start()

    def _run(self, scope: ListScope, version: str) -> None:
        try:
            for change in stream(self.api, scope, version, self.stop):
                self.queue.put(change)
        except BaseException as exc:  # surfaced in the main thread, which owns error reporting
            self.queue.put(exc)

    def changes(self) -> None:
        item = self.queue.get()
        while True:
            if isinstance(item, BaseException):
                raise item
            try:
                item = self.queue.get(timeout=0.2)  # let a burst of related events settle into one render
            except queue.Empty:
                return


def run(
    api: Api,
    collect: Callable[[], Any],
    watches_of: Callable[[Any], list[Watch]],
    versions_of: Callable[[Any], Any],
    render: Callable[[Any], None],
) -> None:
    """Render, then re-render on every change until interrupted (KeyboardInterrupt propagates)."""
    watcher = Watcher(api)
    state = collect()
    render(state)
    shown = versions_of(state)
    try:
        while True:
            watcher.ensure(watches_of(state))
            watcher.changes()
            try:
                state = collect()
            except errors.NotFoundError:
                continue  # deleted: keep watching, it may come back; the last render stays
            if versions_of(state) != shown:
                shown = versions_of(state)
                render(state)
    finally:
        watcher.stop.set()

"""An informer, as client-go's tools/cache has one, in a few small pieces: for `wait` and `--watch`.

1. A `Reflector` lists one scope (a collection path and its selectors) into a
   local store, then watches it from the list's resourceVersion with bookmarks
   and applies every event to the store. A watch the server ends, or a dropped
   connection, resumes from the last version seen (with a bounded backoff,
   RETRIES failures in a row end it); 410 Gone relists.
2. `CachedApi` answers the collector (details.py) from the stores: a list from
   its scope's store, an object from a store of that one name. A scope asked
   for the first time (a claim that appears, the first pod of a Job) is listed
   and watched then; after that no change costs a request. A store whose
   objects a reader joins to their parents by a label (a Job's pods, by the
   Job's uid) also keeps them indexed by that label, as client-go's Indexers
   do, and answers with the index as it was: a lookup per parent rather than
   a pass over every object at every collection.
3. `Informer.changes()` is the work queue: reflectors put the scopes that
   changed on it, and it coalesces bursts so the caller re-evaluates at most
   once per interval (INTERVAL; JUDGING_INTERVAL for `wait`), whatever the
   event rate. It also returns every RESYNC
   seconds, so rules that read the clock (`olderThan`) are re-evaluated.
   Watches of newly listed scopes start there too, so one evaluation reads
   the lists as they were answered.
4. `Informer.sync()` makes the stores consistent before a verdict is printed.
   Each scope has its own watch, and the server orders events only within
   one: a Job's Complete can arrive before its pod's Succeeded. So before
   `wait` or `--watch` prints a new status, every store that has not seen
   the newest event applied anywhere is listed again, at least as new as
   that event (resourceVersionMatch=NotOlderThan, served from the API
   server's watch cache), and its watch restarts from there. Stores already
   past it cost nothing.
5. While an informer runs, the cycle collector's full collections run from
   `changes()`, at most once per FULL_COLLECTION seconds, not whenever
   CPython's own rule starts one. The stores hold thousands of decoded objects,
   acyclic and freed by reference counting when an event replaces them; by
   CPython's rule (objects that survived the young collections reach a
   quarter of the heap), a steady stream of events starts a full collection
   every few seconds, and each walks every stored object. Young collections,
   which free the cycles a collection makes, run after YOUNG_COLLECTION new
   objects rather than CPython's 700: decoding one pod makes dozens of dicts
   and lists, nearly all of which live on in a store, and a young collection
   that finds nothing to free is a cost that scales with their number.

Time goes through `clock` (real time here; tests put a simulated clock in its
place, so replayed streams are stepped through rather than raced).
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import errors, paging
from .events import Deferred
from .fieldmaps import FieldMaps
from .kube import JSON, Api
from .paging import list_pages, resource_version
from .relations import BY_LABEL, ListScope
from .tasks import Pool
from .tracing import store_key

WATCH_SECONDS = 300
RETRIES = 5  # consecutive failed reconnects before a dropped watch ends the command
INTERVAL = 0.25  # at most one re-evaluation per interval (`--watch`: what a person sees change)
# `wait`'s: a verdict, not a display, so bursts are coalesced over a second (kstatus's pollers look every
# two). A change after a quiet second is still taken at once; while objects keep changing, each is judged
# once per second, in its newest state, rather than once per state it went through.
JUDGING_INTERVAL = 1.0
RESYNC = 5.0  # re-evaluate at least this often, for rules that compare a time with now
SHORT_WATCH = 1.0  # a watch the server ends this soon with no event is a failure (client-go's "very short watch")
_PAGING = ("limit", "continue")
# A relist's page: what it holds beside the store, until the objects the store has at the same version are
# dropped (a page of 500 pods decoded is about 15 MB).
RELIST_PAGE = 100
FORGET = 1024  # changes remembered beyond one per stored object (a reader further behind rereads everything)
FULL_COLLECTION = 60.0  # seconds between two full collections of the cycle collector while an informer runs
_NEVER = 2**31 - 1  # a full-collection threshold CPython's own rule never reaches
YOUNG_COLLECTION = 50_000  # new objects between two young collections while an informer runs (CPython: 700)


class Clock:
    """Real time, for the informer's timestamps, waits and watch threads."""

    def now(self) -> float:
        return time.monotonic()

    def get(self, items: queue.Queue[Any], timeout: float) -> Any:
        """The queue's next item, waiting at most `timeout` seconds (queue.Empty after that)."""
        return items.get(timeout=max(timeout, 0))

    def gather(self, items: queue.Queue[Any], until: float) -> list[Any]:
        """Every item queued by `until` (a time of this clock): taken at once then, rather than one by one as
        each comes, which would wake the caller for every event of a busy watch."""
        time.sleep(max(until - self.now(), 0))
        taken = []
        with contextlib.suppress(queue.Empty):
            while True:
                taken.append(items.get_nowait())
        return taken

    def sleep(self, stop: threading.Event, seconds: float) -> None:
        """Pause a watch thread; returns early when the command ends."""
        stop.wait(seconds)

    def spawn(self, target: Callable[[], None], name: str) -> None:
        threading.Thread(target=target, daemon=True, name=name).start()


clock = Clock()


def without_managed_fields(obj: JSON) -> JSON:
    """An object without metadata.managedFields, often a third of its size, which no map reads: for stores
    that hold thousands of objects for the length of a command (the transform of client-go's informers)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


Key = tuple[str, str]  # an object's key in a store: namespace ("" for none), name


def _label(obj: JSON | None, label: str) -> str | None:
    labels = None if obj is None else (obj.get("metadata") or {}).get("labels")
    value = labels.get(label) if isinstance(labels, dict) else None
    return value if isinstance(value, str) else None


class _LabelIndex:
    """A store's objects by the value of one label (client-go's Indexers), for readers that join objects to
    their parents by a label (a Job's pods by the Job's uid): a lookup instead of a pass over every object of
    the store at every answer.

    A reader keeps the index it was answered with (`snapshot`) while events go on changing the store: a part
    of the index handed out is copied before it changes, the first time after each answer (copy on write)."""

    def __init__(self, label: str, items: dict[Key, JSON]) -> None:
        self.label = label
        self.values: dict[str, dict[Key, JSON]] = {}
        self.answers = 0  # snapshots handed out
        self._own = 0  # `values` is this index's own since that many snapshots were handed out
        self._owned: dict[str, int] = {}  # the same for each value's objects
        for key, obj in items.items():
            self.put(key, None, obj)

    def _objects(self, value: str) -> dict[Key, JSON]:
        """The value's objects by key, to be changed: copied first if a snapshot shares them."""
        if self._own != self.answers:
            self.values, self._own = dict(self.values), self.answers
        found = self.values.get(value)
        if found is None or self._owned.get(value) != self.answers:
            found = self.values[value] = {} if found is None else dict(found)
            self._owned[value] = self.answers
        return found

    def put(self, key: Key, old: JSON | None, new: JSON | None) -> None:
        """An object changed from `old` to `new` (None: absent)."""
        before, after = _label(old, self.label), _label(new, self.label)
        if before is not None and before != after:
            objects = self._objects(before)
            objects.pop(key, None)
            if not objects:
                del self.values[before], self._owned[before]
        if after is not None and new is not None:
            self._objects(after)[key] = new

    def snapshot(self) -> dict[str, dict[Key, JSON]]:
        """The index as it is now, for a reader (which does not change it); changes from now on copy."""
        self.answers += 1
        return self.values


def _number(version: str) -> int | None:
    """A resourceVersion as the number etcd gives it; None for one that is not (the API calls them opaque)."""
    return int(version) if version.isdigit() else None


class Reflector:
    """One scope's store: listed once, then kept up to date by a watch."""

    def __init__(
        self,
        api: Api,
        scope: ListScope,
        backoff: float = 0.5,
        clock: Clock | None = None,
        transform: Callable[[JSON], JSON] | None = None,
    ) -> None:
        self.api, self.scope, self.backoff = api, scope, backoff
        self.clock = clock or globals()["clock"]
        self.transform = transform or (lambda obj: obj)  # what is kept of each object (client-go's SetTransform)
        self.items: dict[Key, JSON] = {}
        self._indexes: dict[str, _LabelIndex] = {}  # by label: the readers that asked for them (index_labels)
        # The keys in the server's order, and the objects in that order: what a LIST answers, kept in place as
        # events come, so that an answer is a copy of a list rather than a pass over the store.
        self._keys: list[Key] = []
        self._answer: list[JSON] = []
        self._pending: dict[Key, Deferred] = {}  # by key: the newest event of an object, not decoded yet
        self.version = ""
        self.generation = 0  # one per list: a watch from before the latest list stops and starts again after it
        self.newest: int | None = None  # the newest version of a watch event applied (not of a list)
        # The keys changed since the list, by the sequence number of their latest change, oldest first; with
        # `floor`, the newest sequence forgotten: `changed()` tells a reader what changed since its mark.
        self.touched: dict[tuple[str, str], int] = {}
        self.sequence = self.floor = 0
        self.lock = threading.Lock()
        self.ready = threading.Event()  # set once the first list answered, or failed (`failure`)
        self.failure: BaseException | None = None

    def list(self, not_older_than: int | None = None) -> None:
        """List the scope into the store, a page at a time; an object the store holds at the same version is
        kept rather than the one decoded again, so a relist holds one page (of RELIST_PAGE) more than the
        store, not two stores."""
        params = dict(self.scope.params)
        if not_older_than is not None:
            params.update(resourceVersion=str(not_older_than), resourceVersionMatch="NotOlderThan")
        with self.lock:
            before = self.items
        items: dict[tuple[str, str], JSON] = {}
        version = ""
        size = min(paging.PAGE_SIZE, RELIST_PAGE) if before else None
        for page in list_pages(self.api, self.scope.path, params, size):
            for obj in page.get("items") or []:
                key = store_key(obj)
                old = before.get(key)  # at the same version: the object kept (its readers see it unchanged)
                items[key] = (
                    old if old is not None and resource_version(old) == resource_version(obj) else self.transform(obj)
                )
            version = resource_version(page)
            del page  # the next page is read without this one held (the objects not kept are freed)
        keys = sorted(items)
        with self.lock:
            labels = list(self._indexes)
        indexes = {label: _LabelIndex(label, items) for label in labels}
        with self.lock:
            self.items, self.version = items, version
            self._keys, self._answer = keys, [items[k] for k in keys]
            self._pending = {}  # events the list has superseded
            # one asked for meanwhile was built from the old items: built again
            self._indexes = {label: indexes.get(label) or _LabelIndex(label, items) for label in self._indexes}
            self.generation += 1
            self.touched, self.sequence, self.floor = {}, 0, 0

    def mark(self) -> tuple[int, int]:
        """Where the store is now, for `changed()`: its list and the last change applied since."""
        with self.lock:
            return self.generation, self.sequence

    def changed(self, mark: tuple[int, int]) -> tuple[tuple[int, int], dict[tuple[str, str], JSON | None] | None]:
        """The objects changed since `mark` by key, as they are now (None: deleted), and the mark of now; None
        for the objects when the store was listed again since, or the changes were forgotten."""
        with self.lock:
            self._settle()
            now = self.generation, self.sequence
            if mark[0] != self.generation or mark[1] < self.floor:
                return now, None
            found: dict[tuple[str, str], JSON | None] = {}
            for key, sequence in reversed(self.touched.items()):
                if sequence <= mark[1]:
                    break
                found[key] = self.items.get(key)
            return now, found

    def behind(self, version: int) -> bool:
        """True unless the store has seen `version` (a store whose version is not a number is behind)."""
        mine = _number(self.version)
        return mine is None or mine < version

    def answer(self) -> JSON:
        """What a LIST of the scope would answer now: every item, ordered as the server orders them."""
        with self.lock:
            self._settle()
            found: JSON = {"metadata": {"resourceVersion": self.version}, "items": list(self._answer)}
            if self._indexes:
                found[BY_LABEL] = {label: index.snapshot() for label, index in self._indexes.items()}
            return found

    def index_labels(self, label: str) -> None:
        """Index the store's objects by `label` from now on: answers carry the index (relations.BY_LABEL)."""
        with self.lock:
            self._settle()
            if label not in self._indexes:
                self._indexes[label] = _LabelIndex(label, self.items)

    def apply(self, event: JSON | Deferred, generation: int) -> bool | None:
        """One watch event into the store; True when an object changed, False for a bookmark, and None
        (nothing applied) when the store was listed again since the watch began. An event whose object is
        not decoded yet (events.Deferred) is kept as it came, until a reader needs the store (`_settle`)."""
        obj: JSON = {}
        if isinstance(event, Deferred):
            later: Deferred | None = event
            kind, key, version = event.type, event.key, event.version
        else:
            later, kind, obj = None, str(event.get("type")), event.get("object") or {}
            key, version = store_key(obj), resource_version(obj)
        with self.lock:
            if generation != self.generation:
                return None
            self.version = version or self.version
            if kind == "BOOKMARK":
                return False
            if later is not None and kind != "DELETED":
                self._pending[key] = later
            else:
                self._pending.pop(key, None)
                self._put(key, None if kind == "DELETED" else self.transform(obj))
            self._touch(key)
            number = _number(self.version)
            if number is not None:
                self.newest = max(self.newest or 0, number)
        return True

    def _put(self, key: Key, new: JSON | None) -> None:
        """The object of `key` is now `new` (None: deleted), the lock held: in the store, its order and its
        label indexes."""
        place = bisect.bisect_left(self._keys, key)
        there = place < len(self._keys) and self._keys[place] == key
        old = self.items.get(key)
        if new is None:
            if there:
                del self.items[key], self._keys[place], self._answer[place]
        else:
            self.items[key] = new
            if there:
                self._answer[place] = new
            else:
                self._keys.insert(place, key)
                self._answer.insert(place, new)
        for index in self._indexes.values():
            index.put(key, old, new)

    def _settle(self) -> None:
        """Decode the newest event of each object changed since the last read (the lock held): the store is
        then as a reader needs it. Events a newer one replaced meanwhile were never decoded."""
        if self._pending:
            pending, self._pending = self._pending, {}
            for key, event in pending.items():
                self._put(key, self.transform(event.object()))

    def _touch(self, key: tuple[str, str]) -> None:
        """Note a change (the lock held): the key moves to the newest end; the oldest are forgotten once there
        are FORGET more than objects."""
        self.sequence += 1
        self.touched.pop(key, None)
        self.touched[key] = self.sequence
        if len(self.touched) > len(self.items) + FORGET:
            for old in list(self.touched)[: len(self.touched) - len(self.items)]:
                self.floor = self.touched.pop(old)

    def events(self, stop: threading.Event) -> Iterator[str]:
        """Watch from the store's version; yield "CHANGED" after each change, "RELISTED" after a relist."""
        failures = 0
        while not stop.is_set():
            started, seen = self.clock.now(), 0
            try:
                with self.lock:
                    generation = self.generation
                    params = {
                        **self.scope.params,
                        "resourceVersion": self.version,
                        "allowWatchBookmarks": "true",
                        "timeoutSeconds": WATCH_SECONDS,
                    }
                for event in self.api.watch(self.scope.path, params):
                    failures, seen = 0, seen + 1
                    applied = self.apply(event, generation)
                    if applied is None:
                        break  # listed again meanwhile: watch from that list's version
                    if applied:
                        yield "CHANGED"
                    if stop.is_set():
                        return
                else:
                    if seen == 0 and self.clock.now() - started < SHORT_WATCH:
                        raise errors.UnreachableError(f"the watch of {self.scope.path} ended at once, with no event")
            except errors.GoneError:
                self.list()  # the version is too old: what happened meanwhile is only in a fresh list
                yield "RELISTED"
            except errors.UnreachableError:
                failures += 1
                if failures >= RETRIES:
                    raise
                self.clock.sleep(stop, min(self.backoff * 2 ** (failures - 1), 10))


class Informer:
    """Reflectors by scope, their work queue, and the CachedApi that reads them."""

    def __init__(
        self,
        api: Api,
        backoff: float = 0.5,
        transform: Callable[[JSON], JSON] | None = None,
        interval: float = INTERVAL,
    ) -> None:
        self.api, self.backoff, self.clock, self.transform = api, backoff, clock, transform
        self.interval = interval
        self.stop = threading.Event()
        self.queue: queue.Queue[Any] = queue.Queue()
        self.reflectors: dict[ListScope, Reflector] = {}
        self.lock = threading.Lock()
        self.cached = CachedApi(self)
        self._error: BaseException | None = None
        self._last = -interval
        self._unwatched: list[Reflector] = []  # listed, watched from the next changes() on
        self._thresholds = gc.get_threshold()
        self._swept = 0.0  # when the last full collection ran

    def __enter__(self) -> Informer:
        young, middle, _ = self._thresholds = gc.get_threshold()
        gc.set_threshold(max(young, YOUNG_COLLECTION), middle, _NEVER)  # full ones: from changes() (5. above)
        self._swept = self.clock.now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        gc.set_threshold(*self._thresholds)

    def _sweep(self) -> None:
        """A full collection of the cycle collector, if FULL_COLLECTION seconds passed since the last."""
        if self.clock.now() - self._swept >= FULL_COLLECTION:
            gc.collect()
            self._swept = self.clock.now()

    def reflector(self, scope: ListScope) -> Reflector:
        """The scope's reflector; listed (a request) and watched the first time it is asked for.

        Scopes first asked for at the same time are listed concurrently. A list the
        server refuses (403, 401, 404) is remembered and raised again, not asked again.
        """
        with self.lock:
            found = self.reflectors.get(scope)
            fresh = found is None
            if found is None:
                found = self.reflectors[scope] = Reflector(self.api, scope, self.backoff, self.clock, self.transform)
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

        A change is returned no sooner than `interval` after the previous return, and every
        change queued by then is taken with it. An error from a watch is raised after the
        changes queued before it were returned.
        """
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        self._sweep()
        with self.lock:
            start, self._unwatched = self._unwatched, []
        for reflector in start:  # from its list's version: nothing between the list and the watch is missed
            self.clock.spawn(lambda r=reflector: self._run(r), f"watch {reflector.scope}")  # type: ignore[misc]
        wait = RESYNC if timeout is None else min(timeout, RESYNC)
        try:
            item = self.clock.get(self.queue, wait)
        except queue.Empty:
            return False
        if isinstance(item, BaseException):
            raise item
        for item in self.clock.gather(self.queue, max(self.clock.now(), self._last + self.interval)):
            if isinstance(item, BaseException):
                self._error = item
                break
        self._last = self.clock.now()
        return True

    def _ready(self) -> list[Reflector]:
        with self.lock:
            return [r for r in self.reflectors.values() if r.ready.is_set() and r.failure is None]

    def newest(self, reflectors: list[Reflector] | None = None) -> int | None:
        """The newest version of a watch event applied to any store (of `reflectors`; None: no event yet)."""
        found = self._ready() if reflectors is None else reflectors
        return max((r.newest for r in found if r.newest is not None), default=None)

    def sync(self) -> bool:
        """List again every store that has not seen the newest event applied to any store, at least as new
        as that event; True when one was (its watch then restarts from the new list)."""
        reflectors = self._ready()
        newest = self.newest(reflectors)
        if newest is None:
            return False  # no event yet: every store is a list, each as new as when it was asked for
        behind = [r for r in reflectors if r.behind(newest)]
        if not behind:
            return False
        errors.debug(f"sync: {len(behind)} of {len(reflectors)} stores behind version {newest}: listed again")
        with Pool(8) as pool:
            for done in [pool.submit(r.list, newest) for r in behind]:
                done.result()
        return True


def informing(api: Api, maps: FieldMaps, interval: float = INTERVAL) -> Informer:
    """The informer of `--watch` and `wait`: its stores drop managedFields unless a map mentions them."""
    return Informer(api, transform=None if maps.mention("managedFields") else without_managed_fields, interval=interval)


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

    def index_labels(self, scope: ListScope, label: str) -> None:
        """Answer the scope's lists with its objects indexed by `label` from now on (relations.LabelIndexes)."""
        self.informer.reflector(scope).index_labels(label)

    def marks(self) -> dict[ListScope, tuple[int, int]]:
        """Where each store is now (Reflector.mark)."""
        with self.informer.lock:
            reflectors = [r for r in self.informer.reflectors.values() if r.ready.is_set() and r.failure is None]
        return {r.scope: r.mark() for r in reflectors}

    def changed(
        self, scope: ListScope, mark: tuple[int, int]
    ) -> tuple[tuple[int, int], dict[tuple[str, str], JSON | None] | None]:
        """What changed in a store since `mark` (Reflector.changed): nothing in one whose list was refused
        (it is not asked again), and None (unknown) for one not there."""
        with self.informer.lock:
            reflector = self.informer.reflectors.get(scope)
        if reflector is None or not reflector.ready.is_set():
            return (0, 0), None
        if reflector.failure is not None:
            return mark, {}
        return reflector.changed(mark)

    def watch(self, path: str, params: dict[str, Any]) -> Iterator[JSON]:
        raise NotImplementedError("the informer's reflectors watch; its readers only list and get")

"""The informer's reflector resumes a dropped or ended watch from the last version, relists after 410 Gone,
and gives up after RETRIES failed reconnects; its errors reach the caller after the changes before them.

The events are the recorded stream of a Job's scope in tests/recordings/wait-job-complete.json;
only the interruptions between them are staged.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from kubectl_cyclops import errors, events, informer, paging
from kubectl_cyclops.relations import ListScope
from tests.replay import Simulation, load

RECORDING = load("wait-job-complete")
JOBS = next(k for k in RECORDING["streams"] if "/jobs?" in k)
EVENTS = RECORDING["streams"][JOBS]
LISTING = next(a["body"] for k, a in RECORDING["phases"][0].items() if "/jobs?" in k)
SCOPE = ListScope(JOBS.split(" ", 1)[1].split("?")[0], (("fieldSelector", "metadata.name=watched"),))


class StagedApi:
    """Serves the recorded events in pieces, with an interruption between pieces; lists are the recorded list."""

    host, namespace = "https://recorded", "rec"

    def __init__(self, pieces: list[tuple[list[dict], Exception | None]]) -> None:
        self.pieces = pieces
        self.versions: list[str] = []
        self.lists = 0

    def watch(self, path: str, params: dict) -> Iterator[dict]:
        self.versions.append(params["resourceVersion"])
        events, interruption = self.pieces.pop(0)
        yield from events
        if interruption:
            raise interruption

    def get(self, path: str, params: dict | None = None, accept: str | None = None) -> dict:
        self.lists += 1
        return copy.deepcopy(LISTING)  # as decoded afresh: a store may trim what it keeps


def rv(event: dict) -> str:
    return event["object"]["metadata"]["resourceVersion"]


class Paused(informer.Clock):
    """A clock that keeps the pauses asked for instead of taking them."""

    def __init__(self) -> None:
        self.paused: list[float] = []

    def now(self) -> float:
        return sum(self.paused)

    def sleep(self, stop: threading.Event, seconds: float) -> None:
        self.paused.append(seconds)


def take(api: StagedApi, count: int, clock: informer.Clock | None = None) -> tuple[list[str], informer.Reflector]:
    reflector = informer.Reflector(api, SCOPE, backoff=0.01, clock=clock or Paused())
    reflector.list()
    stop = threading.Event()
    out = []
    for change in reflector.events(stop):
        out.append(change)
        if len(out) == count:
            stop.set()
    return out, reflector


def test_ended_and_dropped_watches_resume_from_the_last_version_seen() -> None:
    api = StagedApi(
        [
            (EVENTS[:1], None),  # the server ends the stream (timeoutSeconds)
            (EVENTS[1:2], errors.UnreachableError("connection reset")),  # the connection drops
            ([], errors.UnreachableError("connection refused")),  # and cannot be made again at once
            (EVENTS[2:], None),
        ]
    )
    changes, reflector = take(api, len(EVENTS))
    assert changes == ["CHANGED"] * len(EVENTS)
    assert api.versions == [LISTING["metadata"]["resourceVersion"], rv(EVENTS[0]), rv(EVENTS[1]), rv(EVENTS[1])]
    assert api.lists == 1, "resuming does not relist"
    [job] = reflector.answer()["items"]
    assert job == EVENTS[-1]["object"]


def test_expired_version_relists_and_reports_a_change() -> None:
    api = StagedApi([(EVENTS[:1], errors.GoneError("too old resource version")), (EVENTS[1:], None)])
    changes, _ = take(api, len(EVENTS) + 1)
    assert changes[:2] == ["CHANGED", "RELISTED"]
    assert api.lists == 2
    assert api.versions[1] == LISTING["metadata"]["resourceVersion"]


def test_a_watch_that_keeps_failing_ends_the_command() -> None:
    api = StagedApi([([], errors.UnreachableError("connection refused"))] * informer.RETRIES)
    with pytest.raises(errors.UnreachableError):
        take(api, 1)


def test_the_informer_raises_a_watch_error_after_the_changes_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer, "clock", Simulation())
    api = StagedApi([(EVENTS, None), *[([], errors.UnreachableError("connection refused"))] * informer.RETRIES])
    with informer.Informer(api, backoff=0.01) as inf:
        inf.cached.get(SCOPE.path + "/watched")
        assert inf.changes(timeout=10) is True

        def drain() -> None:
            while inf.changes(timeout=10):
                pass

        with pytest.raises(errors.UnreachableError):
            drain()
        [job] = inf.reflectors[SCOPE].answer()["items"]
        assert job == EVENTS[-1]["object"]


def test_a_watch_the_server_ends_at_once_backs_off_and_ends_the_command() -> None:
    """client-go's "very short watch": a stream closed at once with no event is a failure, not a busy loop."""
    api, clock = StagedApi([([], None)] * informer.RETRIES), Paused()
    with pytest.raises(errors.UnreachableError, match="ended at once, with no event"):
        take(api, 1, clock)
    assert api.versions == [LISTING["metadata"]["resourceVersion"]] * informer.RETRIES
    assert clock.paused == [0.01 * 2**n for n in range(informer.RETRIES - 1)]  # the backoff between attempts


def test_a_store_tells_a_reader_which_objects_changed_since_its_mark() -> None:
    """Reflector.changed: the keys changed since a mark, each as it is now, and the mark of now; nothing for a
    reader that is up to date; None (unknown) across a relist, which a reader must read whole."""
    reflector = informer.Reflector(StagedApi([]), SCOPE, clock=Paused())
    reflector.list()
    listed = reflector.mark()
    key = informer.store_key(EVENTS[0]["object"])
    for event in EVENTS:
        reflector.apply(event, reflector.generation)
    now, changed = reflector.changed(listed)
    assert changed == {key: EVENTS[-1]["object"]}, "one Job changed, as it is after the last event"
    assert reflector.changed(now) == (now, {}), "and nothing since"
    reflector.apply({"type": "DELETED", "object": EVENTS[-1]["object"]}, reflector.generation)
    assert reflector.changed(now)[1] == {key: None}, "a deleted object is None"
    reflector.list()
    assert reflector.changed(now)[1] is None, "listed again: what changed is not known"


def test_a_store_forgets_old_changes_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past FORGET changes more than objects, the oldest are forgotten; a reader whose mark is older gets None."""
    monkeypatch.setattr(informer, "FORGET", 2)
    reflector = informer.Reflector(StagedApi([]), SCOPE, clock=Paused())
    reflector.list()
    first = reflector.mark()
    job = EVENTS[-1]["object"]
    for i in range(5):  # five objects (the same Job under other names) created, then deleted
        other = {**job, "metadata": {**job["metadata"], "name": f"other-{i}"}}
        reflector.apply({"type": "ADDED", "object": other}, reflector.generation)
        reflector.apply({"type": "DELETED", "object": other}, reflector.generation)
    assert len(reflector.touched) <= len(reflector.items) + 2
    assert reflector.changed(first)[1] is None
    recent = reflector.mark()
    reflector.apply({"type": "MODIFIED", "object": job}, reflector.generation)
    assert reflector.changed(recent)[1] == {informer.store_key(job): job}


def test_stores_drop_managed_fields_unless_a_map_reads_them(tmp_path: Path) -> None:
    """Stores hold thousands of objects for a whole wait: managedFields, which no built-in map reads, are not
    kept; a user map with a path through them keeps them."""
    from kubectl_cyclops.fieldmaps import FieldMaps

    assert "managedFields" in LISTING["items"][0]["metadata"], "the recorded Job has them"
    lean = informer.informing(StagedApi([]), FieldMaps())
    kept = lean.reflector(SCOPE).answer()["items"][0]["metadata"]
    assert "managedFields" not in kept
    assert kept["name"] == "watched"
    source = (Path(__file__).parent / "crd-fieldmaps" / "crontab.yaml").read_text()
    managers = "  - {name: managers, path: '.metadata.managedFields[*].manager'}\n"
    (tmp_path / "crontab.yaml").write_text(source.replace("related:", managers + "related:", 1))
    full = informer.informing(StagedApi([]), FieldMaps([str(tmp_path)]))
    assert "managedFields" in full.reflector(SCOPE).answer()["items"][0]["metadata"]


def test_a_relist_keeps_the_objects_it_already_holds_at_the_same_version() -> None:
    """Listing again (410 Gone, or a sync) decodes every object afresh; one the store holds at the same version
    is kept instead, so the store and what was read from it stay the same objects (and memory holds one page
    more, not a second store)."""
    reflector = informer.Reflector(StagedApi([]), SCOPE, clock=Paused())
    reflector.list()
    [held] = reflector.answer()["items"]
    reflector.list()
    assert reflector.answer()["items"][0] is held, "the same version: the object held"
    reflector.apply(EVENTS[-1], reflector.generation)
    reflector.list()
    [listed] = reflector.answer()["items"]
    assert listed is not held
    assert listed == LISTING["items"][0], "another version: the one listed"


def test_a_store_answers_as_a_list_would_in_the_servers_order_as_objects_come_and_go() -> None:
    """The answer is kept in the server's order (namespace, then name) as events add, change and delete objects,
    without sorting the store at every answer; an answer already given does not change afterwards."""
    reflector = informer.Reflector(StagedApi([]), SCOPE, clock=Paused())
    reflector.list()
    job = EVENTS[-1]["object"]

    def named(name: str, namespace: str = job["metadata"]["namespace"]) -> dict:
        return {**job, "metadata": {**job["metadata"], "name": name, "namespace": namespace}}

    before = reflector.answer()["items"]
    for name, namespace in [("m", "b"), ("a", "b"), ("z", "a"), ("zz", "b"), ("b", "b")]:
        reflector.apply({"type": "ADDED", "object": named(name, namespace)}, reflector.generation)
    changed = named("m", "b")
    reflector.apply({"type": "MODIFIED", "object": changed}, reflector.generation)
    reflector.apply({"type": "DELETED", "object": named("zz", "b")}, reflector.generation)
    reflector.apply({"type": "DELETED", "object": named("never-there", "b")}, reflector.generation)
    items = reflector.answer()["items"]
    keys = [informer.store_key(o) for o in items]
    assert keys == sorted(reflector.items) == sorted({*keys, ("a", "z"), ("b", "a"), ("b", "b"), ("b", "m")})
    assert next(o for o in items if o["metadata"]["name"] == "m") is changed, "the changed object, in its place"
    assert [informer.store_key(o) for o in before] == [informer.store_key(LISTING["items"][0])], "as given"


def test_a_relist_drops_the_events_it_superseded_before_they_were_decoded(monkeypatch) -> None:
    """An event kept undecoded (events.Deferred) until a reader needs the store is dropped by a relist that
    came meanwhile: a reader then sees the object as listed, and the superseded event is never decoded. Without
    a relist, the reader sees the event's object."""
    decoded: list[tuple[str, str]] = []
    read = events.Deferred.object
    monkeypatch.setattr(events.Deferred, "object", lambda self: decoded.append(self.key) or read(self))
    last = EVENTS[-1]
    assert informer.store_key(last["object"]) == informer.store_key(LISTING["items"][0])
    assert rv(last) != LISTING["items"][0]["metadata"]["resourceVersion"]

    def kept_then_read(relist: bool) -> dict:
        reflector = informer.Reflector(StagedApi([]), SCOPE, clock=Paused())
        reflector.list()
        event = events.deferred(orjson.dumps(last))
        assert event is not None
        assert reflector.apply(event, reflector.generation) is True
        if relist:
            reflector.list()
        [obj] = reflector.answer()["items"]
        return obj

    assert kept_then_read(relist=True) == LISTING["items"][0]
    assert decoded == []
    assert kept_then_read(relist=False) == last["object"]
    assert decoded == [informer.store_key(last["object"])]


def test_a_relist_reads_smaller_pages_than_a_first_list() -> None:
    """A store that holds objects is listed again in pages of RELIST_PAGE, not PAGE_SIZE: a page in hand
    beside a full store is what a relist costs in memory. The first list, of an empty store, reads the usual
    pages."""

    class Limits(StagedApi):
        def __init__(self) -> None:
            super().__init__([])
            self.limits: list[int] = []

        def get(self, path: str, params: dict | None = None, accept: str | None = None) -> dict:
            self.limits.append((params or {})["limit"])
            return super().get(path, params, accept)

    api = Limits()
    reflector = informer.Reflector(api, SCOPE, clock=Paused())
    reflector.list()
    reflector.list(not_older_than=int(LISTING["metadata"]["resourceVersion"]))
    reflector.list()
    assert informer.RELIST_PAGE < paging.PAGE_SIZE
    assert api.limits == [paging.PAGE_SIZE, informer.RELIST_PAGE, informer.RELIST_PAGE]
    assert reflector.answer()["items"] == LISTING["items"]


def test_a_store_indexes_its_objects_by_a_label_and_a_reader_keeps_the_index_it_was_answered_with() -> None:
    """Once asked to (a reader that joins a Job's pods by the Job's uid), a store answers with its objects
    indexed by the label: what a pass over the answer would give, kept up to date as pods come, change their
    label and go, and relisted. An index already handed out stays as the store was when it answered."""
    from kubectl_cyclops.relations import BY_LABEL, _by_label

    recorded = load("wait-pods-of-one")
    pods_list = next(k for k in recorded["phases"][0] if "/pods?" in k)
    pods = recorded["phases"][0][pods_list]["body"]["items"]
    label = "batch.kubernetes.io/controller-uid"

    class Listed(StagedApi):
        def get(self, path: str, params: dict | None = None, accept: str | None = None) -> dict:
            return {"metadata": {"resourceVersion": "1"}, "items": copy.deepcopy(pods[:40])}

    reflector = informer.Reflector(Listed([]), SCOPE, clock=Paused())
    reflector.list()
    assert BY_LABEL not in reflector.answer(), "not indexed unless asked"
    reflector.index_labels(label)

    def as_answered() -> tuple[dict, dict]:
        answer = reflector.answer()
        index = answer[BY_LABEL][label]
        shown = {value: sorted(informer.store_key(o) for o in found.values()) for value, found in index.items()}
        expected = {
            v: sorted(map(informer.store_key, found))
            for (_, v), found in _by_label(
                answer["items"], {(label, o["metadata"]["labels"][label]) for o in pods}
            ).items()
        }
        assert shown == expected
        for found in index.values():  # the very objects the answer holds
            assert all(any(o is a for a in answer["items"]) for o in found.values())
        return index, shown

    first, first_shown = as_answered()
    moved = copy.deepcopy(pods[1])
    moved["metadata"]["labels"][label] = pods[0]["metadata"]["labels"][label]  # now the other Job's uid
    moved["metadata"]["resourceVersion"] += "0"
    steps = [{"type": "ADDED", "object": p} for p in pods[40:60]]
    steps += [{"type": "MODIFIED", "object": moved}]
    steps += [{"type": "DELETED", "object": p} for p in pods[2:10]]
    unlabelled = copy.deepcopy(pods[12])
    del unlabelled["metadata"]["labels"][label]
    unlabelled["metadata"]["resourceVersion"] += "0"
    steps += [{"type": "MODIFIED", "object": unlabelled}]
    for step in steps:
        reflector.apply(step, reflector.generation)
        as_answered()
    assert {v: sorted(map(informer.store_key, f.values())) for v, f in first.items()} == first_shown, "as answered"
    assert informer.store_key(moved) in {
        informer.store_key(o) for o in as_answered()[0][moved["metadata"]["labels"][label]].values()
    }
    reflector.list()
    assert as_answered()[1] == {
        v: sorted(map(informer.store_key, f))
        for (_, v), f in _by_label(pods[:40], {(label, o["metadata"]["labels"][label]) for o in pods}).items()
    }, "listed again: indexed afresh"


def test_a_long_list_holds_one_page_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store (re)listed page by page does not hold a page while the next is read and decoded: the objects of
    a page that the store does not keep are freed first (at the end of a wait, every store is listed again, and
    a page of 500 pods is several megabytes)."""
    import weakref

    from kubectl_cyclops import paging
    from tests.record import PAGED

    recorded = load("list-jobs-paged")["phases"][0]
    pages = {k.split("?", 1)[1]: a["body"] for k, a in recorded.items() if "/jobs?" in k}

    class Page(dict):  # a decoded page, which (unlike a dict) can be watched going away
        pass

    class Paged(StagedApi):
        def __init__(self) -> None:
            super().__init__([])
            self.given: list[weakref.ref] = []
            self.held: list[bool] = []

        def get(self, path: str, params: dict | None = None, accept: str | None = None) -> dict:
            self.held.append(any(ref() is not None for ref in self.given))
            query = "&".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
            page = Page(copy.deepcopy(pages[query]))
            self.given.append(weakref.ref(page))
            return page

    monkeypatch.setattr(paging, "PAGE_SIZE", PAGED)
    api = Paged()
    scope = ListScope("/apis/batch/v1/namespaces/rec/jobs")
    reflector = informer.Reflector(api, scope, clock=Paused())
    reflector.list()
    assert len(api.held) == len(pages) == 3
    assert api.held == [False] * 3, "no page held while the next was read"
    assert len(reflector.items) == sum(len(p["items"]) for p in pages.values())
    assert [o["metadata"]["name"] for o in reflector.answer()["items"]] == sorted(
        o["metadata"]["name"] for p in pages.values() for o in p["items"]
    )

"""Record API answers from a real cluster, and replay them to the plugin at the HTTP call.

A recording is a JSON file: the command line, and for each GET the plugin made
(keyed by path, query and Accept header) the status and body the server
answered, as it came (Secret values included: the fixtures' are made up).
Discovery answers are shared by all recordings in _discovery.json. A watch
recording (`wait` and `--watch`) also has the events of every watch the
informer opened, by scope, as the server sent them.

Replay happens below `KubeApi`: `ReplayTransport` stands in for the HTTP
connection pool, so paging, redaction, JSON parsing and error mapping all run
as they do against a cluster.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from kubectl_cyclops import informer, kube, paging, transport

RECORDINGS = Path(__file__).parent / "recordings"
DISCOVERY = RECORDINGS / "_discovery.json"
WATCH_ONLY = {"watch", "resourceVersion", "resourceVersionMatch", "allowWatchBookmarks", "timeoutSeconds"}
PACE = 0.002  # simulated seconds between two replayed watch events
FAR = 24 * 3600.0  # simulated seconds after which a replay that never ends fails its test
LATE = 1.0  # simulated seconds a held-back stream's events come after they would have (Simulation.late)
SETTLE = 30.0  # real seconds a watch thread may take to handle one event, however loaded the machine


def key(path: str, params: dict[str, Any] | None = None, accept: str | None = None) -> str:
    query = "&".join(
        f"{k}={v}" for k, v in sorted((params or {}).items()) if v not in (None, "") and k not in WATCH_ONLY
    )
    aggregated = " (aggregated)" if accept and "apidiscovery" in accept else ""
    return f"GET {path}" + (f"?{query}" if query else "") + aggregated


def key_of_url(url: str, headers: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    path = unquote(parts.path)
    return key(path, params, headers.get("Accept")), path, params


def load(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / f"{name}.json").read_text())


def scenarios() -> list[str]:
    return sorted(p.stem for p in RECORDINGS.glob("*.json") if not p.stem.startswith("_"))


class Answer:
    """A recorded HTTP answer, read as the transport's response is."""

    retry_after = None

    def __init__(self, status: int, body: bytes, lines: Iterator[bytes] | None = None) -> None:
        self.status, self._body, self._lines = status, body, lines

    @property
    def data(self) -> bytes:
        return self._body

    def stream(self) -> Iterator[bytes]:
        if self._lines is None:
            yield self._body
        else:
            yield from self._lines

    def release_conn(self) -> None:
        pass


class Simulation(informer.Clock):
    """Simulated time for the informer, and the replayed watch streams it is stepped through.

    Every thread the informer starts (`spawn`) counts as running until it waits for its
    stream's next event, sleeps, or ends. When the command waits on the informer's queue
    and no such thread runs, time jumps to the next thing that happens: the next event of
    the open streams (PACE after now; the lowest resourceVersion first, the order the
    server wrote them), a sleeper's wake-up, or the command's own timeout. A run is
    therefore the same on an idle machine and a loaded one, and takes no real time.
    """

    def __init__(self, late: str | None = None) -> None:
        self.time = 0.0
        self.position = 0  # the newest resourceVersion released: the simulated server's present
        self.late = late  # streams whose key holds this: each event comes LATE after it would have
        self._cond = threading.Condition()
        self._running = 0
        self._heads: dict[object, tuple[float, int]] = {}  # a stream waiting: (its delay, its next event's version)
        self._sleepers: dict[object, float] = {}  # a thread sleeping: when it wakes
        self._released: set[object] = set()

    def now(self) -> float:
        return self.time

    def spawn(self, target: Callable[[], None], name: str) -> None:
        with self._cond:
            self._running += 1

        def run() -> None:
            try:
                target()
            finally:
                self._idle()

        threading.Thread(target=run, daemon=True, name=name).start()

    def _idle(self) -> None:
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    def sleep(self, stop: threading.Event, seconds: float) -> None:
        if stop.is_set():
            return
        me = object()
        with self._cond:
            self._sleepers[me] = self.time + seconds
            self._block(lambda: me not in self._sleepers)

    def await_turn(self, stream: object, key: str, version: int) -> None:
        """Block a stream's thread until its next event (of `version`) is released to it."""
        with self._cond:
            self._heads[stream] = (LATE if self.late is not None and self.late in key else PACE, version)
            self._block(lambda: stream in self._released)
            self._released.discard(stream)

    def forever(self) -> None:
        """A watch on which nothing more happens."""
        with self._cond:
            self._block(lambda: False)

    def _block(self, until: Callable[[], bool]) -> None:
        self._running -= 1
        self._cond.notify_all()
        self._cond.wait_for(until)  # whoever makes `until` true counts this thread as running again

    def gather(self, items: queue.Queue[Any], until: float) -> list[Any]:
        """As the real clock, every item queued by `until`: the simulated time runs on to it, event by event."""
        taken = []
        with contextlib.suppress(queue.Empty):
            while True:
                taken.append(self.get(items, until - self.time))
        return taken

    def get(self, items: queue.Queue[Any], timeout: float) -> Any:
        deadline = self.time + max(timeout, 0)
        with self._cond:
            while True:
                if not self._cond.wait_for(lambda: self._running == 0, timeout=SETTLE):
                    raise AssertionError(f"a watch thread still runs after {SETTLE}s of real time")
                try:
                    return items.get_nowait()
                except queue.Empty:
                    pass
                assert self.time < FAR, "the replay never ends: nothing left to happen"
                upcoming = [(self.time + delay, 0, version, stream) for stream, (delay, version) in self._heads.items()]
                upcoming += [(wake, 1, 0, me) for me, wake in self._sleepers.items()]
                if not upcoming or min(upcoming, key=_order)[0] > deadline:
                    self.time = deadline
                    raise queue.Empty
                when, sort, version, who = min(upcoming, key=_order)
                self.time = when
                self._running += 1
                if sort == 0:
                    del self._heads[who]
                    self.position = max(self.position, version)
                    self._released.add(who)
                else:
                    del self._sleepers[who]
                self._cond.notify_all()


def _order(upcoming: tuple[float, int, int, object]) -> tuple[float, int, int]:
    return upcoming[:3]


class ReplayTransport:
    """Answers from a recording, and fails on any request it has not seen.

    A watch of a scope the recording has a stream for yields that stream's events after
    the version asked for, stepped through by the simulation (`sim`); with `interrupt`,
    the last stream to run out raises KeyboardInterrupt (Ctrl-C ending `--watch` once
    everything recorded was seen). Other watches stay silent. A list at least as new as
    a version (resourceVersionMatch=NotOlderThan) is the recorded list with every event
    of its scope up to the simulated server's present, as the API server's cache answers.
    """

    gone = False  # True: the server went away after the lists, every watch (re)connection is refused

    def __init__(self, recording: dict[str, Any], interrupt: bool = False, late: str | None = None) -> None:
        shared = json.loads(DISCOVERY.read_text())
        self.answers = {**shared, **recording["phases"][0]}
        self.streams: dict[str, list[Any]] = recording.get("streams") or {}
        self.interrupt = interrupt
        self.requests: list[str] = []
        self.sim = Simulation(late)
        self._running = set(self.streams)
        self._watched: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, url: str, headers: dict[str, str], timeout: Any, stream: bool) -> Answer:
        k, path, params = key_of_url(url, headers)
        watching = params.get("watch") == "true"
        with self._lock:
            self.requests.append(("WATCH " if watching else "") + k + _newer(params))
            if watching:
                self._watched.add(k)
        if watching:
            return Answer(200, b"", self._watch(k, _version_of(params.get("resourceVersion"))))
        whole = key(path, {**params, "limit": str(paging.PAGE_SIZE)})
        if k not in self.answers and "limit" in params and whole in self.answers:  # smaller pages (a relist's)
            recorded = self.answers[whole]["body"]
            if len(recorded.get("items") or []) <= int(params["limit"]) and not (recorded.get("metadata") or {}).get(
                "continue"
            ):
                k = whole  # the recorded answer is one page of the smaller size too
        if k not in self.answers:
            raise AssertionError(f"unrecorded request {k}")
        answer = self.answers[k]
        body = answer["body"]
        if "resourceVersionMatch" in params:
            body = self._now(body, key(path, {p: v for p, v in params.items() if p != "limit"}))
        return Answer(answer["status"], json.dumps(body).encode())

    def _now(self, listing: dict[str, Any], stream: str) -> dict[str, Any]:
        """The recorded list with its scope's events up to the simulated present. The present of a scope no
        watch of this run read (its events were never released) is the end of the recording: what it held
        when the recorded command ended."""
        items = {_name(o): o for o in listing.get("items") or []}
        with self._lock:
            present = self.sim.position if stream in self._watched else None
        for event in self.streams.get(stream, []):
            if (present is None or _version(event) <= present) and event.get("type") != "BOOKMARK":
                if event["type"] == "DELETED":
                    items.pop(_name(event["object"]), None)
                else:
                    items[_name(event["object"])] = event["object"]
        version = max(self.sim.position, _version_of(listing["metadata"].get("resourceVersion")))
        return {
            **listing,
            "metadata": {**listing["metadata"], "resourceVersion": str(version)},
            "items": [*items.values()],
        }

    def _watch(self, k: str, since: int) -> Iterator[bytes]:
        if self.gone:
            raise transport.unreachable("https://recorded", ConnectionRefusedError("Connection refused"))
        me = object()  # this watch connection, among the streams waiting for their turn
        for event in self.streams.get(k, []):
            if _version(event) > since:
                self.sim.await_turn(me, k, _version(event))
                yield json.dumps(event).encode() + b"\n"
        with self._lock:
            self._running.discard(k)
            last = k in self.streams and not self._running
        if last and self.interrupt:
            raise KeyboardInterrupt
        self.sim.forever()


def _name(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def _newer(params: dict[str, str]) -> str:
    """How a list at least as new as a version shows in the requests: ` (NotOlderThan 1234)`."""
    match = params.get("resourceVersionMatch")
    return f" ({match} {params.get('resourceVersion')})" if match else ""


def _version_of(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


def _version(event: dict[str, Any]) -> int:
    return _version_of(str(((event.get("object") or {}).get("metadata") or {}).get("resourceVersion") or ""))


class ReplayApi(kube.KubeApi):
    """A real KubeApi whose HTTP connection is a recording."""

    def __init__(self, recording: dict[str, Any], interrupt: bool = False, late: str | None = None) -> None:
        self.replay = ReplayTransport(recording, interrupt, late)
        super().__init__(recording["host"], recording["namespace"], self.replay)

    @property
    def requests(self) -> list[str]:
        return self.replay.requests


class RecordingTransport:
    """A real transport that keeps every answer (errors too) as it came from the server.

    The first answer to each request is kept (a relist does not replace it), and
    the events of every watch, in order, by scope.
    """

    def __init__(self, transport: transport.Transport) -> None:
        self.transport = transport
        self.answers: dict[str, dict[str, Any]] = {}
        self.streams: dict[str, list[Any]] = {}

    def __call__(self, url: str, headers: dict[str, str], timeout: Any, stream: bool) -> transport.Response:
        resp = self.transport(url, headers, timeout, stream)
        k, _, _ = key_of_url(url, headers)
        if stream:
            return _Tee(resp, self.streams.setdefault(k, []))
        self.answers.setdefault(k, {"status": resp.status, "body": json.loads(resp.data or b"{}")})
        return resp


class _Tee:
    """A watch response whose events are also appended to `sink`."""

    def __init__(self, resp: transport.Response, sink: list[Any]) -> None:
        self.resp, self.sink = resp, sink
        self.status, self.retry_after = resp.status, resp.retry_after

    @property
    def data(self) -> bytes:
        return self.resp.data

    def stream(self) -> Iterator[bytes]:
        buffer = b""
        for chunk in self.resp.stream():
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            self.sink.extend(json.loads(line) for line in lines if line.strip())
            yield chunk

    def release_conn(self) -> None:
        self.resp.release_conn()

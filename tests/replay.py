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

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from kubectl_cyclops import kube, transport

RECORDINGS = Path(__file__).parent / "recordings"
DISCOVERY = RECORDINGS / "_discovery.json"
WATCH_ONLY = {"watch", "resourceVersion", "allowWatchBookmarks", "timeoutSeconds"}
PACE = 0.002  # seconds between replayed watch events
TURN = 1.0  # longest wait for the other streams' earlier events (then the stream goes on regardless)


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


class ReplayTransport:
    """Answers from a recording, and fails on any request it has not seen.

    A watch of a scope the recording has a stream for yields that stream's events;
    with `interrupt`, the last stream to run out raises KeyboardInterrupt (Ctrl-C
    ending `--watch` once everything recorded was seen). Other watches stay silent.

    Across the open streams, events are handed over in resourceVersion order, the
    order the server wrote them: a pod's Failed update reaches the plugin before
    the Job condition that followed it, as it did when recorded, whatever the
    threads' timing on a loaded machine.
    """

    gone = False  # True: the server went away after the lists, every watch (re)connection is refused

    def __init__(self, recording: dict[str, Any], interrupt: bool = False) -> None:
        shared = json.loads(DISCOVERY.read_text())
        self.answers = {**shared, **recording["phases"][0]}
        self.streams: dict[str, list[Any]] = recording.get("streams") or {}
        self.interrupt = interrupt
        self.requests: list[str] = []
        self._running = set(self.streams)
        self._lock = threading.Lock()
        self._silence = threading.Event()
        self._turns = threading.Condition()
        self._heads: dict[object, int] = {}  # per open watch: the resourceVersion of its next event

    def __call__(self, url: str, headers: dict[str, str], timeout: Any, stream: bool) -> Answer:
        k, _, params = key_of_url(url, headers)
        watching = params.get("watch") == "true"
        with self._lock:
            self.requests.append(("WATCH " if watching else "") + k)
        if watching:
            return Answer(200, b"", self._watch(k))
        if k not in self.answers:
            raise AssertionError(f"unrecorded request {k}")
        answer = self.answers[k]
        return Answer(answer["status"], json.dumps(answer["body"]).encode())

    def _watch(self, k: str) -> Iterator[bytes]:
        if self.gone:
            raise transport.unreachable("https://recorded", ConnectionRefusedError("Connection refused"))
        events = self.streams.get(k, [])
        me = object()  # this watch connection's place among the heads
        try:
            for i, event in enumerate(events):
                time.sleep(PACE)  # events a little apart, as a server sends them, not all in one read
                self._take_turn(me, _version(event), _version(events[i + 1]) if i + 1 < len(events) else None)
                yield json.dumps(event).encode() + b"\n"
        finally:  # a watch closed before its end no longer holds the others back
            with self._turns:
                self._heads.pop(me, None)
                self._turns.notify_all()
        with self._lock:
            self._running.discard(k)
            last = k in self.streams and not self._running
        if last and self.interrupt:
            raise KeyboardInterrupt
        self._silence.wait()  # a watch on which nothing (more) happens

    def _take_turn(self, me: object, version: int, after: int | None) -> None:
        """Wait until no other open stream has an earlier event, then make this stream's next event its head."""
        with self._turns:
            self._heads[me] = version
            self._turns.wait_for(lambda: version <= min(self._heads.values()), timeout=TURN)
            if after is None:
                self._heads.pop(me, None)
            else:
                self._heads[me] = after
            self._turns.notify_all()


def _version(event: dict[str, Any]) -> int:
    version = str(((event.get("object") or {}).get("metadata") or {}).get("resourceVersion") or "0")
    return int(version) if version.isdigit() else 0


class ReplayApi(kube.KubeApi):
    """A real KubeApi whose HTTP connection is a recording."""

    def __init__(self, recording: dict[str, Any], interrupt: bool = False) -> None:
        self.replay = ReplayTransport(recording, interrupt)
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

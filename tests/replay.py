"""Record API answers from a real cluster, and replay them to the plugin at the HTTP call.

A recording is a JSON file: the command line, and for each GET the plugin made
(keyed by path, query and Accept header) the status and body the server
answered, as it came (Secret values included: the fixtures' are made up).
Discovery answers are shared by all recordings in _discovery.json. A watch
recording has two phases of answers and the raw event stream of the watched
object between them.

Replay happens below `KubeApi`: `ReplayTransport` stands in for the HTTP
connection pool, so paging, redaction, JSON parsing and error mapping all run
as they do against a cluster.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from kubectl_cyclops import kube

RECORDINGS = Path(__file__).parent / "recordings"
DISCOVERY = RECORDINGS / "_discovery.json"
WATCH_ONLY = {"watch", "resourceVersion", "allowWatchBookmarks", "timeoutSeconds"}


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
    """A recorded HTTP answer, read as urllib3's response is."""

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
    """Answers from a recording, and fails on any request it has not seen."""

    def __init__(self, recording: dict[str, Any]) -> None:
        shared = json.loads(DISCOVERY.read_text())
        self.phases = [{**shared, **answers} for answers in recording["phases"]]
        self.stream = recording.get("stream")
        self.phase = 0
        self.requests: list[str] = []
        self._after_stream = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, url: str, headers: dict[str, str], timeout: Any, stream: bool) -> Answer:
        k, path, params = key_of_url(url, headers)
        if params.get("watch") == "true":
            return Answer(200, b"", self._watch(k))
        with self._lock:
            self.requests.append(k)
            answers = (
                self.phases[self.phase]
                if k in self.phases[self.phase]
                else next((p for p in self.phases if k in p), None)
            )
            if self.phase and path == (self.stream or {}).get("object_path"):
                self._after_stream.set()
        if answers is None:
            raise AssertionError(f"unrecorded request {k}")
        answer = answers[k]
        return Answer(answer["status"], json.dumps(answer["body"]).encode())

    def _watch(self, k: str) -> Iterator[bytes]:
        """The recorded stream for its scope, then Ctrl-C once the state after it was read; others stay silent."""
        stream = self.stream or {}
        if k != stream.get("key"):
            threading.Event().wait()  # a watch on which nothing happens
        events = stream["events"]
        for i, event in enumerate(events):
            if i == len(events) - 1:
                with self._lock:
                    self.phase = 1
            yield json.dumps(event).encode() + b"\n"
        self._after_stream.wait(timeout=30)
        raise KeyboardInterrupt


class ReplayApi(kube.KubeApi):
    """A real KubeApi whose HTTP connection is a recording."""

    def __init__(self, recording: dict[str, Any]) -> None:
        self.replay = ReplayTransport(recording)
        super().__init__(recording["host"], recording["namespace"], self.replay)

    @property
    def requests(self) -> list[str]:
        return self.replay.requests

    @property
    def phase(self) -> int:
        return self.replay.phase


class RecordingTransport:
    """A real transport that keeps every answer (errors too) as it came from the server."""

    def __init__(self, transport: kube.Transport) -> None:
        self.transport = transport
        self.answers: dict[str, dict[str, Any]] = {}

    def __call__(self, url: str, headers: dict[str, str], timeout: Any, stream: bool) -> kube.Response:
        resp = self.transport(url, headers, timeout, stream)
        if not stream:
            k, _, _ = key_of_url(url, headers)
            self.answers[k] = {"status": resp.status, "body": json.loads(resp.data or b"{}")}
        return resp

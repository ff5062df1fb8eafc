"""Record API answers from a real cluster, and replay them to the plugin in unit tests.

A recording is a JSON file: the command line, and for each GET the plugin made
(keyed by path, query and Accept header) the status and body the server
answered. Discovery answers are shared by all recordings in _discovery.json.
A watch recording has two phases of answers and the raw event stream of the
watched object between them.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubectl_cyclops import errors, kube, redact

RECORDINGS = Path(__file__).parent / "recordings"
DISCOVERY = RECORDINGS / "_discovery.json"
WATCH_ONLY = {"watch", "resourceVersion", "allowWatchBookmarks", "timeoutSeconds"}


def key(path: str, params: dict[str, Any] | None = None, accept: str | None = None) -> str:
    query = "&".join(
        f"{k}={v}" for k, v in sorted((params or {}).items()) if v not in (None, "") and k not in WATCH_ONLY
    )
    aggregated = " (aggregated)" if accept and "apidiscovery" in accept else ""
    return f"GET {path}" + (f"?{query}" if query else "") + aggregated


def load(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / f"{name}.json").read_text())


def scenarios() -> list[str]:
    return sorted(p.stem for p in RECORDINGS.glob("*.json") if not p.stem.startswith("_"))


class ReplayApi:
    """An Api (kube.Api) that answers from a recording, and fails on any request it has not seen."""

    def __init__(self, recording: dict[str, Any]) -> None:
        self.host = recording["host"]
        self.namespace = recording["namespace"]
        shared = json.loads(DISCOVERY.read_text())
        self.phases = [{**shared, **answers} for answers in recording["phases"]]
        self.stream = recording.get("stream")
        self.phase = 0
        self.requests: list[str] = []
        self._after_stream = threading.Event()
        self._lock = threading.Lock()

    def get(self, path: str, params: dict[str, Any] | None = None, accept: str | None = None) -> kube.JSON:
        k = key(path, params, accept)
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
        if answer["status"] != 200:
            raise kube.api_error(answer["status"], json.dumps(answer["body"]), path)
        return redact.response(copy.deepcopy(answer["body"]))

    def watch(self, path: str, params: dict[str, Any]) -> Iterator[kube.JSON]:
        """The recorded stream for its scope, then Ctrl-C once the state after it was read; others stay silent."""
        stream = self.stream or {}
        if key(path, params) != stream.get("key"):
            threading.Event().wait()  # a watch on which nothing happens
        events = stream["events"]
        for i, event in enumerate(events):
            if i == len(events) - 1:
                with self._lock:
                    self.phase = 1
            yield kube.watch_event(copy.deepcopy(event), path)
        self._after_stream.wait(timeout=30)
        raise KeyboardInterrupt


class RecordingApi(kube.KubeApi):
    """A real KubeApi that keeps every answer (errors too) as it came from the server."""

    def __init__(self, api: kube.KubeApi) -> None:
        super().__init__(api.client, api.host, api.namespace, api.timeout, api._exc)
        self.answers: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []

    def get(self, path: str, params: dict[str, Any] | None = None, accept: str | None = None) -> kube.JSON:
        k = key(path, params, accept)
        try:
            resp = self._call(path, params, accept or "application/json", self.timeout)
        except errors.CyclopsError as exc:
            if exc.status is None:
                raise
            body = exc.body.decode() if isinstance(exc.body, bytes) else exc.body
            self.answers[k] = {"status": exc.status, "body": json.loads(body or "{}")}
            raise
        body = json.loads(resp.data)
        self.answers[k] = {"status": 200, "body": body}
        return redact.response(copy.deepcopy(body))

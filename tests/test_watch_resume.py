"""watch.stream resumes a dropped or ended watch from the last version, and relists after 410 Gone.

The events are the recorded stream of tests/recordings/watch-job.json; only the
interruptions between them are staged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from kubectl_cyclops import errors, watch
from kubectl_cyclops.relations import ListScope
from tests.replay import load

RECORDING = load("watch-job")
LISTING = next(a["body"] for k, a in load("list-jobs")["phases"][0].items() if k.startswith("GET /apis/batch/v1/"))
EVENTS = RECORDING["stream"]["events"]
JOB_PATH = RECORDING["stream"]["object_path"]
SCOPE = ListScope(JOB_PATH.rsplit("/", 1)[0], (("fieldSelector", "metadata.name=watched"),))


class StagedApi:
    """Serves the recorded events in pieces, with an interruption between pieces."""

    def __init__(self, pieces: list[tuple[list[dict], Exception | None]]) -> None:
        self.pieces = pieces
        self.versions: list[str] = []
        self.relists = 0

    def watch(self, path: str, params: dict) -> Iterator[dict]:
        self.versions.append(params["resourceVersion"])
        events, interruption = self.pieces.pop(0)
        yield from events
        if interruption:
            raise interruption

    def get(self, path: str, params: dict | None = None, accept: str | None = None) -> dict:
        self.relists += 1
        return LISTING  # a recorded list answer: the relist reads its resourceVersion


def rv(event: dict) -> str:
    return event["object"]["metadata"]["resourceVersion"]


def take(api: StagedApi, count: int, start: str) -> list[str]:
    stop = threading.Event()
    out = []
    for change in watch.stream(api, SCOPE, start, stop, backoff=0.01):
        out.append(change)
        if len(out) == count:
            stop.set()
    return out


def test_ended_and_dropped_watches_resume_from_the_last_version_seen() -> None:
    start = "1"
    api = StagedApi(
        [
            (EVENTS[:1], None),  # the server ends the stream (timeoutSeconds)
            (EVENTS[1:2], errors.UnreachableError("connection reset")),  # the connection drops
            ([], errors.UnreachableError("connection refused")),  # and cannot be made again at once
            (EVENTS[2:], None),
        ]
    )
    assert take(api, len(EVENTS), start) == [e["type"] for e in EVENTS]
    assert api.versions == [start, rv(EVENTS[0]), rv(EVENTS[1]), rv(EVENTS[1])]


def test_expired_version_relists_and_reports_a_change() -> None:
    api = StagedApi([(EVENTS[:1], errors.GoneError("too old resource version")), (EVENTS[1:], None)])
    changes = take(api, len(EVENTS) + 1, "1")
    assert changes[1] == "RELISTED"
    assert api.relists == 1
    assert api.versions[1] == LISTING["metadata"]["resourceVersion"]


def test_a_watch_that_keeps_failing_ends_the_command() -> None:
    api = StagedApi([([], errors.UnreachableError("connection refused"))] * watch.RETRIES)
    with pytest.raises(errors.UnreachableError):
        take(api, 1, "1")

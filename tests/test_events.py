"""Watch events read only as far as a store needs them at once (events.py), over recorded objects and events."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubectl_cyclops import events
from kubectl_cyclops.kube import KubeApi
from tests.replay import Answer, load, scenarios


def recorded_events() -> list[dict]:
    """The events of every recorded watch stream: pods, Jobs and Events added, modified and deleted."""
    return [e for name in scenarios() for stream in (load(name).get("streams") or {}).values() for e in stream]


def answer(recording: str, request: str) -> dict:
    return load(recording)["phases"][0][request]["body"]


@pytest.mark.parametrize("dumps", [orjson.dumps, lambda e: json.dumps(e).encode()], ids=["compact", "spaced"])
def test_an_object_event_is_read_as_far_as_its_type_key_and_version_and_decodes_as_sent(dumps) -> None:
    """Every recorded event of a pod stream: the head read without the object matches the decoded event, and
    the object decodes to what the line holds, the server's key order kept."""
    recorded = recorded_events()
    assert {e["type"] for e in recorded} == {"ADDED", "MODIFIED", "DELETED"}
    assert {e["object"]["kind"] for e in recorded} == {"Pod", "Job", "Event"}
    for event in recorded:
        line = dumps(event)
        found = events.deferred(line)
        assert found is not None
        meta = event["object"]["metadata"]
        assert (found.type, found.key, found.version) == (
            event["type"],
            (meta["namespace"], meta["name"]),
            meta["resourceVersion"],
        )
        decoded = found.object()
        assert decoded == event["object"]
        assert list(decoded["metadata"]) == list(meta)


def test_a_bookmark_carries_only_its_version() -> None:
    """A bookmark's object has a kind and a resourceVersion and no name (the watch API's BOOKMARK)."""
    pod = next(e["object"] for e in recorded_events() if e["object"]["kind"] == "Pod")
    version = pod["metadata"]["resourceVersion"]
    bookmark = {
        "type": "BOOKMARK",
        "object": {"kind": pod["kind"], "apiVersion": pod["apiVersion"], "metadata": {"resourceVersion": version}},
    }
    found = events.deferred(orjson.dumps(bookmark))
    assert found is not None
    assert (found.type, found.key, found.version) == ("BOOKMARK", ("", ""), version)


def test_a_secret_an_error_and_what_is_not_an_object_event_are_decoded_at_once() -> None:
    """A Secret is decoded (and redacted) at once, so its values never wait in a store undecoded; an ERROR
    event, and a line that is not an object event, are left to the decoding that reports them."""
    secret = answer("secret", "GET /api/v1/namespaces/rec/secrets/creds")
    assert secret["data"], "the recording holds the Secret's values, as the server sent them"
    status = answer("error-not-found", "GET /apis/batch/v1/namespaces/rec/jobs/nope")
    pod = next(e for e in recorded_events() if e["object"]["kind"] == "Pod")
    unnamed = {**pod, "object": {**pod["object"], "metadata": {**pod["object"]["metadata"], "name": 7}}}
    nameless = {**pod, "object": {**pod["object"], "metadata": {"namespace": "rec-pods"}}}
    for line in [
        orjson.dumps({"type": "MODIFIED", "object": secret}),
        orjson.dumps({"type": "ERROR", "object": status}),
        orjson.dumps(unnamed),
        orjson.dumps(nameless),
        orjson.dumps([pod]),
        orjson.dumps(pod)[:-1],
        b"not json",
    ]:
        assert events.deferred(line) is None, line[:80]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_watch_reads_the_same_events_however_its_body_is_cut_into_reads(data) -> None:
    """KubeApi.watch over a recorded stream cut into reads at any places (blank lines between some events,
    as keep-alive newlines): every event once, in order, decoded as sent, whether it came in one read or in
    several pieces."""
    recorded = load("wait-job-complete")["streams"]
    sent = [e for stream in recorded.values() for e in stream]
    lines = [orjson.dumps(e) + b"\n" + (b"\n" if data.draw(st.booleans()) else b"") for e in sent]
    body = b"".join(lines)
    braces = [i for i in range(1, len(body)) if body[i : i + 1] == b"{"]  # a piece that looks like an event
    places = st.one_of(st.integers(1, len(body) - 1), st.sampled_from(braces))
    cuts = sorted(data.draw(st.sets(places, max_size=12)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    if data.draw(st.booleans()):  # as the server flushes them: a read per event
        pieces = lines
    api = KubeApi("https://127.0.0.1:6443", "default", lambda *_: Answer(200, b"", iter(pieces)))
    got = [e if isinstance(e, dict) else {"type": e.type, "object": e.object()} for e in api.watch("/x", {})]
    assert got == sent

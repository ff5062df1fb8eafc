"""`details --watch` on the informer, over recorded watch streams (tests/record.py: record_waits).

wait-job-complete: a suspended Job resumed until it completes; wait-job-burst:
a hundred changes to one Job in a burst, then its deletion.
"""

from __future__ import annotations

import gc

import pytest

from tests.conftest import documents
from tests.replay import load


def watch(name: str, job: str) -> list[str]:
    return ["details", "job", job, "-n", "rec", "--watch"]


def test_watch_rerenders_until_the_job_completes_and_ctrl_c_ends_cleanly(replay) -> None:
    result, _ = replay("wait-job-complete", "-o", "json", argv=watch("wait-job-complete", "watched"), interrupt=True)
    assert result.exit_code == 0, result.stderr
    docs = documents(result.stdout)
    assert len(docs) >= 2
    first, last = docs[0], docs[-1]
    assert (first["fields"]["suspend"], first["status"], first["related"]["pods"]) == (True, "unknown", [])
    assert (last["fields"]["suspend"], last["status"], last["fields"]["succeeded"]) == (False, "healthy", 1)
    assert [p["fields"]["phase"] for p in last["related"]["pods"]] == ["Succeeded"]


def test_watch_table_prints_each_state(replay) -> None:
    result, _ = replay("wait-job-complete", argv=watch("wait-job-complete", "watched"), interrupt=True)
    assert result.exit_code == 0
    assert result.stdout.count("Name:             watched") >= 2
    assert "Status:           healthy" in result.stdout.split("Name:")[-1]


def test_no_request_per_change_after_the_first_lists(replay) -> None:
    """Each scope is listed once and watched once; a hundred changes cost nothing more."""
    result, api = replay("wait-job-burst", "-o", "json", argv=watch("wait-job-burst", "burst"), interrupt=True)
    assert result.exit_code == 0, result.stderr
    data = [r for r in api.requests if not r.startswith(("GET /api ", "GET /apis ", "GET /api?", "GET /apis?"))]
    lists = [r for r in data if not r.startswith("WATCH ")]
    watches = [r.removeprefix("WATCH ") for r in data if r.startswith("WATCH ")]
    streams = load("wait-job-burst")["streams"]
    assert sum(len(events) for events in streams.values()) > 100
    assert sorted(watches) == sorted(streams) == sorted(r.replace("&limit=500", "") for r in lists)
    assert not any("/jobs/burst" in r for r in data), "no GET of the object: it is read from the informer's store"


def test_a_burst_of_changes_gives_at_most_a_few_renders(replay) -> None:
    result, _ = replay("wait-job-burst", "-o", "json", argv=watch("wait-job-burst", "burst"), interrupt=True)
    docs = documents(result.stdout)
    assert 1 <= len(docs) <= 3, f"{len(docs)} renders for a burst of 100 changes"


@pytest.mark.parametrize("command", ["watch", "wait"])
def test_long_running_commands_run_with_the_cycle_collector(replay, command: str) -> None:
    """entry.main starts without the cycle collector (a one-shot call frees all it makes by reference
    counting); `details --watch` and `wait` run for long, so they switch it on again."""
    argv = watch("wait-job-complete", "watched") if command == "watch" else None  # None: the recorded `wait`
    gc.disable()
    try:
        result, _ = replay("wait-job-complete", argv=argv, interrupt=True)
        assert result.exit_code == 0, result.stderr
        assert gc.isenabled()
    finally:
        gc.enable()

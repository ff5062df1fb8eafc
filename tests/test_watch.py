"""--watch over a recorded event stream: a suspended Job resumed until it completes."""

from __future__ import annotations

from tests.conftest import documents
from tests.replay import load


def test_watch_rerenders_until_the_job_completes_and_ctrl_c_ends_cleanly(replay) -> None:
    result, api = replay("watch-job", "-o", "json")
    assert result.exit_code == 0, result.stderr
    docs = documents(result.stdout)
    assert len(docs) >= 2
    first, last = docs[0], docs[-1]
    assert (first["fields"]["suspend"], first["status"], first["related"]["pods"]) == (True, "unknown", [])
    assert (last["fields"]["suspend"], last["status"]) == (False, "healthy")
    assert last["fields"]["succeeded"] == 1
    assert [p["fields"]["phase"] for p in last["related"]["pods"]] == ["Succeeded"]
    stream = load("watch-job")["stream"]
    assert stream["events"][-1]["object"]["status"]["succeeded"] == 1
    assert api.phase == 1, "the recorded stream was replayed to its end"


def test_watch_table_prints_each_state(replay) -> None:
    result, _ = replay("watch-job")
    assert result.exit_code == 0
    assert result.stdout.count("Name:             watched") >= 2
    assert "Status:           healthy" in result.stdout.split("Name:")[-1]

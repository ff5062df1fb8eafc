"""`wait` over recorded watch streams (tests/record.py: record_waits): success, fail-fast, timeout, deletion."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from kubectl_cyclops import details, informer
from kubectl_cyclops.discovery import Resource
from kubectl_cyclops.errors import ExitCode
from kubectl_cyclops.evaluate import evaluate, reads_events
from kubectl_cyclops.fieldmaps import FieldMaps
from tests.replay import ReplayTransport, load


def test_wait_returns_once_the_job_completes(replay) -> None:
    result, _ = replay("wait-job-complete")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "jobs.batch/watched -n rec healthy: Complete=True (CompletionsReached)\n"
    assert result.stderr == ""


def test_wait_json_prints_the_final_document(replay) -> None:
    result, _ = replay("wait-job-complete", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["name"], doc["status"], doc["fields"]["succeeded"]) == ("watched", "healthy", 1)
    assert [p["fields"]["phase"] for p in doc["related"]["pods"]] == ["Succeeded"]


def test_a_failed_job_ends_the_wait_at_once_with_its_pods_and_exit_codes(replay) -> None:
    result, api = replay("wait-job-fails")  # recorded with --timeout 2m
    # at the failure, in simulated time, not at the timeout: within the second over which wait coalesces
    # the burst of changes the failure came in
    assert api.replay.sim.time < 1 + informer.JUDGING_INTERVAL, "ended at the failure, not at the timeout"
    assert result.exit_code == ExitCode.WAIT_FAILED
    assert result.stderr.count("\n") == 1
    assert (
        result.stderr
        == "error: 1 of 1 failed: jobs.batch/doomed -n rec failed: FailureTarget=True (BackoffLimitExceeded)\n"
    )
    assert "Status:           failed" in result.stdout
    pods = result.stdout.split("Pods: ")[1].split("\n\n")[0]
    assert pods.count("doomed-") == 2, pods
    assert pods.count("exit 7") == 2, pods
    assert "BackoffLimitExceeded" in result.stdout


def test_a_failed_job_as_json_is_the_failed_document(replay) -> None:
    result, _ = replay("wait-job-fails", "-o", "json")
    assert result.exit_code == ExitCode.WAIT_FAILED
    doc = json.loads(result.stdout)
    assert doc["status"] == "failed"
    exits = [c["exitCode"] for p in doc["related"]["pods"] for c in p["fields"]["containers"]]
    assert exits == [7, 7]


def test_the_timeout_has_its_own_code_and_shows_the_last_state(replay) -> None:
    argv = ["wait", "job/paused", "-n", "rec", "--timeout", "1s"]
    result, api = replay("wait-job-timeout", argv=argv)
    assert result.exit_code == ExitCode.WAIT_TIMEOUT
    assert api.replay.sim.time == 1.0, "simulated seconds: the timeout, to the tick"
    assert result.stderr == (
        "error: timed out after 1s waiting for healthy: 1 of 1 not healthy: "
        "jobs.batch/paused -n rec unknown: Suspended=True (JobSuspended)\n"
    )
    assert "Name:             paused" in result.stdout
    assert "Status:           unknown" in result.stdout


def test_timeout_zero_checks_once(replay) -> None:
    result, api = replay("wait-job-complete", argv=["wait", "job", "watched", "-n", "rec", "--timeout", "0"])
    assert result.exit_code == ExitCode.WAIT_TIMEOUT
    assert api.replay.sim.time == 0.0
    assert not [r for r in api.requests if r.startswith("WATCH ")], "checked once, from the lists"
    assert "not healthy: jobs.batch/watched -n rec unknown: Suspended=True" in result.stderr


def test_wait_for_deleted_returns_once_it_is_gone(replay) -> None:
    result, api = replay("wait-job-burst")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "jobs.batch/burst deleted\n"
    assert not [r for r in api.requests if "/jobs/burst" in r], "read from the informer's store, not by GET"


def test_a_bad_timeout_is_a_usage_error(replay) -> None:
    result, api = replay("wait-job-complete", argv=["wait", "job", "watched", "--timeout", "soon"])
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == 'error: invalid --timeout "soon": use a duration like 30s, 5m, or 0 to check once\n'
    assert api.requests == []


def test_a_server_that_stays_gone_ends_the_wait_with_the_unreachable_code(replay, monkeypatch) -> None:
    from kubectl_cyclops import informer

    monkeypatch.setattr(informer, "RETRIES", 2)  # two refused reconnects, one short pause between them
    monkeypatch.setattr(ReplayTransport, "gone", True)
    result, api = replay("wait-job-timeout", argv=["wait", "job/paused", "-n", "rec", "--timeout", "1m"])
    assert result.exit_code == ExitCode.UNREACHABLE
    assert result.stderr == "error: cannot reach the API server at https://recorded: connection refused\n"
    assert result.stdout == ""
    assert sum(r.startswith("WATCH ") for r in api.requests) >= 2


@pytest.mark.parametrize("synced", [True, False])
def test_a_verdict_is_printed_from_stores_synced_up_to_the_event_that_decided_it(
    replay, monkeypatch, synced: bool
) -> None:
    """Each scope has its own watch: here the pods' events come a second late (`late`), after the Job's Complete.
    The pods' store is listed again, at least as new as the newest event, before the healthy Job is printed;
    without that (synced=False, Informer.sync switched off) the Job would be printed beside no pod at all."""
    if not synced:
        monkeypatch.setattr(informer.Informer, "sync", lambda self: False)
    result, api = replay("wait-job-complete", "-o", "json", late="/pods")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] == "healthy"
    phases = [p["fields"]["phase"] for p in doc["related"]["pods"]]
    newer = [r for r in api.requests if "(NotOlderThan " in r]
    # wait's collections judge: the Job's events, which its rules do not read, are read once, for the details
    # printed, at least as new as the newest event the stores applied
    read = [r for r in newer if "/events" in r]
    assert read == [r for r in newer if r.endswith("(NotOlderThan 514)")][-1:] == newer[-1:], api.requests
    resyncs = [r for r in newer if r not in read]
    if synced:
        assert phases == ["Succeeded"]
        assert "GET /api/v1/namespaces/rec/pods" in [r.split("?")[0] for r in resyncs], api.requests
        assert all(r.endswith("(NotOlderThan 514)") for r in resyncs), "the newest event applied anywhere"
    else:
        assert (phases, resyncs) == ([], [])


def test_wait_reads_the_events_of_a_kind_only_where_its_rules_or_the_output_need_them(replay) -> None:
    """A Job's rules read no event (its conditions decide): `wait` neither lists nor watches its events while it
    judges. The one-line summary needs none either; details printed (-o json) get theirs once, in the end,
    at least as new as the newest event the stores applied. A claim's rules read its last event
    (ProvisioningFailed): waiting on claims reads theirs while it judges."""
    events = "/api/v1/namespaces/rec/events?"
    result, api = replay("wait-job-complete")
    assert result.exit_code == 0, result.stderr
    assert not [r for r in api.requests if events in r], api.requests
    result, api = replay("wait-job-complete", "-o", "json")
    assert result.exit_code == 0, result.stderr
    read = [r for r in api.requests if events in r]
    assert read == api.requests[-1:], api.requests
    assert read[0].endswith("(NotOlderThan 514)"), read
    assert [e["reason"] for e in json.loads(result.stdout)["events"]][-1] == "Completed"
    maps = FieldMaps()
    assert not reads_events(maps.get("batch", "Job"))
    assert reads_events(maps.get("", "PersistentVolumeClaim"))


def test_details_whose_verdict_read_events_keep_those_events() -> None:
    """Collector.with_events reads no list for a kind whose rules read its events: the details keep the events
    their verdict was taken from (here a claim's ProvisioningFailed)."""
    recorded = load("pvc-provisioning-failed")["phases"][0]
    claim = next(a["body"] for k, a in recorded.items() if "/persistentvolumeclaims/" in k)
    events = next(a["body"] for k, a in recorded.items() if "/events?" in k)["items"]
    resource = Resource("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "pvc", True)
    maps = FieldMaps()
    evaluation = evaluate(maps.get("", "PersistentVolumeClaim"), claim, datetime(2026, 12, 1, tzinfo=UTC))
    judged = details.Details(details.Evaluated(resource, claim, (), evaluation), events=events)
    collector = details.Collector(None, None, maps, datetime(2026, 12, 1, tzinfo=UTC))  # type: ignore[arg-type]
    [kept] = collector.with_events([judged], None, 1)
    assert kept is judged

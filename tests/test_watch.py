"""`details --watch` on the informer, over recorded watch streams (tests/record.py: record_waits).

wait-job-complete: a suspended Job resumed until it completes; wait-job-burst:
a hundred changes to one Job in a burst, then its deletion.
"""

from __future__ import annotations

import gc
import math
from datetime import UTC, datetime

import pytest

import tests.replay
from kubectl_cyclops import details, evaluate, events, informer, relations
from kubectl_cyclops.discovery import Resource
from kubectl_cyclops.fieldmaps import FieldMaps
from kubectl_cyclops.informer import FULL_COLLECTION, INTERVAL
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


@pytest.mark.parametrize("pace", [0.002, 0.01, 0.05])
def test_a_burst_is_coalesced_to_one_rendering_per_interval(replay, monkeypatch, pace: float) -> None:
    """A hundred changes to one Job, `pace` simulated seconds apart: a rendering at once for the first, then at
    most one per INTERVAL whatever the rate, and one in every interval while changes keep coming."""
    monkeypatch.setattr(tests.replay, "PACE", pace)
    result, _ = replay("wait-job-burst", "-o", "json", argv=watch("wait-job-burst", "burst"), interrupt=True)
    assert result.exit_code == 0, result.stderr
    renders = len(documents(result.stdout))
    span = pace * sum(len(e) for e in load("wait-job-burst")["streams"].values())  # the lists to the last event
    assert math.floor(span / INTERVAL) <= renders - 2 <= math.ceil(span / INTERVAL), (renders, span)


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


def test_a_new_status_is_rendered_from_stores_synced_up_to_the_event_that_decided_it(replay) -> None:
    """The pods' events come a second late (`late`): the Job's Complete is there first. The rendering that
    shows it healthy lists the pods' store again first, so it shows the pod Succeeded, never no pod at all;
    the pods' watch then goes on from that list, and no later rendering goes back in time."""
    argv = watch("wait-job-complete", "watched")
    result, api = replay("wait-job-complete", "-o", "json", argv=argv, interrupt=True, late="/pods")
    assert result.exit_code == 0, result.stderr
    docs = documents(result.stdout)
    healthy = [d for d in docs if d["status"] == "healthy"]
    assert healthy, [d["status"] for d in docs]
    assert all([p["fields"]["phase"] for p in d["related"]["pods"]] == ["Succeeded"] for d in healthy)
    assert docs[-1]["status"] == "healthy"
    pods = [r.split(" ")[0] + r.partition("&limit=500")[2] for r in api.requests if "/pods?" in r]
    # listed, watched; listed again at each new status (resumed, then complete); watched again from there
    assert pods == ["GET", "WATCH", "GET (NotOlderThan 501)", "GET (NotOlderThan 515)", "WATCH"], pods


def assemblies(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The names of the objects whose details are assembled (not kept from before), by assembly."""
    built: list[list[str]] = []
    build = details.Collector._build

    def counted(self, related, resource, objects, *rest):  # type: ignore[no-untyped-def]
        built.append([o["metadata"]["name"] for o in objects])
        return build(self, related, resource, objects, *rest)

    monkeypatch.setattr(details.Collector, "_build", counted)
    return built


def burst_printed(replay, recording: str, namespace: str, jobs: int) -> list[dict]:  # type: ignore[no-untyped-def]
    """`details jobs --watch` over a recorded burst: the list, whole, at first; then what the burst printed."""
    argv = ["details", "jobs", "-n", namespace, "--watch"]
    result, _ = replay(recording, "-o", "json", argv=argv, interrupt=True)
    assert result.exit_code == 0, result.stderr
    first, *later = documents(result.stdout)
    assert len(first) == jobs, "the list, whole, at first"
    assert later, "the burst is printed"
    return later


def test_a_burst_to_one_of_500_jobs_evaluates_only_that_job_again(replay, monkeypatch) -> None:
    """wait-one-of-many: 500 suspended Jobs; one of them changes twenty times. After the first collection, each
    rendering evaluates one Job, the one that changed (its related sets did not change), and no other,
    assembles the details of that Job alone, and prints only that Job, as kubectl get --watch does."""
    evaluated: list[list[str]] = [[]]  # the Jobs evaluated, by collection

    class Counting(evaluate.Memo):
        def evaluate(self, field_map, obj, *rest):  # type: ignore[no-untyped-def]
            before = self.evaluations
            judged = super().evaluate(field_map, obj, *rest)
            if self.evaluations > before:
                evaluated[-1].append(obj["metadata"]["name"])
            return judged

        def collected(self) -> None:
            evaluated.append([])
            super().collected()

    monkeypatch.setattr(details, "Memo", Counting)
    built = assemblies(monkeypatch)
    later = burst_printed(replay, "wait-one-of-many", "rec-many", 500)
    assert [d["name"] for d in later] == ["job-123"] * len(later), "then only the Job that changed"
    collections = [names for names in evaluated if names]
    assert len(collections[0]) == 500, "the first collection evaluates every Job"
    assert len(collections) > 2, "the burst spans more than one collection"
    assert collections[1:] == [["job-123"]] * (len(collections) - 1), collections[1:]
    # assembled whole the first time, then only the Job that changed: the others' details are kept, not joined
    # again (no change to a store they were read from concerns them: tracing.Trace)
    assert len(built[0]) == 500
    assert built[1:] == [["job-123"]] * (len(built) - 1), built[1:]


def test_a_burst_to_the_pod_of_one_of_100_jobs_assembles_only_that_job_again(replay, monkeypatch) -> None:
    """wait-pods-of-one: 100 Jobs run to completion; the pod of one of them changes twenty times. A change to a
    related object is traced to the parents it concerns (tracing.Trace): after the first collection, only the
    Job that pod belongs to is joined and evaluated again, and printed. Its pod is found in the store's index
    by the Job's uid label: only the first collection passes over every pod to join them."""
    built = assemblies(monkeypatch)
    passes: list[int] = []
    by_label = relations._by_label

    def counted(objects, wanted):  # type: ignore[no-untyped-def]
        passes.append(len(objects))
        return by_label(objects, wanted)

    monkeypatch.setattr(relations, "_by_label", counted)
    later = burst_printed(replay, "wait-pods-of-one", "rec-pods", 100)
    assert passes == [100], passes
    assert {d["name"] for d in later} == {"ran-042"}, "then only the Job whose pod changed"
    assert [p["name"][: len("ran-042-")] for p in later[-1]["related"]["pods"]] == ["ran-042-"], "with its pod"
    assert len(built[0]) == 100
    assert len(built) > 1
    assert built[1:] == [["ran-042"]] * (len(built) - 1), built[1:]


def test_a_burst_to_one_pod_decodes_only_the_states_a_collection_reads(replay, monkeypatch) -> None:
    """wait-pods-of-one, its burst of twenty changes to one pod: the stores keep each event as sent and decode
    an object only when a collection reads it (events.py), so the states a newer one replaced before the next
    collection are never decoded. The output is the same (the test above)."""
    stream = load("wait-pods-of-one")["streams"][
        "GET /api/v1/namespaces/rec-pods/pods?labelSelector=batch.kubernetes.io/controller-uid"
    ]
    sent = [e["object"]["metadata"]["name"] for e in stream]
    decoded: list[str] = []
    read = events.Deferred.object

    def counted(self):  # type: ignore[no-untyped-def]
        decoded.append(self.key[1])
        return read(self)

    monkeypatch.setattr(events.Deferred, "object", counted)
    built = assemblies(monkeypatch)
    burst_printed(replay, "wait-pods-of-one", "rec-pods", 100)
    (pod,) = set(sent)
    assert len(sent) == 20
    assert 1 <= decoded.count(pod) <= len(built) - 1 < len(sent), (decoded, len(built))
    assert set(decoded) == {pod}


def test_kept_details_follow_the_parents_not_their_places_in_the_list() -> None:
    """A collection looks only at the parents answered anew and those a change concerns, by the places the
    parents had (Kept.known). A relist that swaps one parent for another at the same place keeps the list's
    length: the places are worked out again, so a change to the new parent still has it assembled again."""
    items = next(a["body"] for k, a in load("list-jobs")["phases"][0].items() if "/jobs?" in k)["items"]
    first, second, third, other = items[:4]
    resource = Resource("batch", "v1", "Job", "jobs", "job", True)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    kept, which = details.Kept(), ("/apis/batch/v1/namespaces/rec/jobs", 0)

    def collect(objects: list[dict], concerned: set[str] | None) -> tuple[list[details.Details], list[int]]:
        out, todo = kept.known(which, objects, now, concerned)
        for i in todo:
            evaluation = evaluate.Evaluation("healthy", None, evaluate.Values((), objects[i]))
            out[i] = details.Details(details.Evaluated(resource, objects[i], (), evaluation))
            kept.keep(objects[i], out[i])  # type: ignore[arg-type]
        kept.listed(which, objects, out)  # type: ignore[arg-type]
        kept.collected()
        return out, todo  # type: ignore[return-value]

    def uid(obj: dict) -> str:
        return str(obj["metadata"]["uid"])

    before, todo = collect([first, second, third], None)
    assert todo == [0, 1, 2]
    again, todo = collect([first, second, third], set())
    assert todo == []
    assert all(a is b for a, b in zip(again, before, strict=True))
    assert collect([first, second, third], {uid(second)})[1] == [1]
    swapped, todo = collect([first, other, third], None)  # a relist: every parent looked at
    assert todo == [0, 1, 2]
    assert swapped[1].subject.obj is other
    assert collect([first, other, third], {uid(other)})[1] == [1]
    assert collect([first, other, third], {uid(second)})[1] == []  # gone: it concerns no parent now


def _recorded(name: str, part: str) -> dict:  # type: ignore[type-arg]
    """The body of the recorded answer whose request has `part` in it."""
    return next(a["body"] for k, a in load(name)["phases"][0].items() if part in k)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("recording", "group", "kind", "part", "reads"),
    [
        ("job-complete", "batch", "Job", "/jobs/done", False),
        ("pvc-provisioning-failed", "", "PersistentVolumeClaim", "/persistentvolumeclaims/", True),
    ],
)
def test_an_event_evaluates_an_object_again_only_if_its_rules_read_events(
    recording: str, group: str, kind: str, part: str, reads: bool
) -> None:
    """Memo: a Job's rules read no event (its conditions decide), so a new event about it keeps its evaluation; a
    claim's rules read its last event (ProvisioningFailed), so a new one has it evaluated again."""
    fmap = FieldMaps().get(group, kind)
    obj = _recorded(recording, part)
    events = _recorded(recording, "/events?")["items"]
    assert events, "the recording has events about the object"
    memo, now = evaluate.Memo(), datetime(2026, 12, 1, tzinfo=UTC)
    first = memo.evaluate(fmap, obj, now, fmap.fields, events[:-1], None)
    again = memo.evaluate(fmap, obj, now, fmap.fields, events, None)
    assert memo.evaluations == (2 if reads else 1)
    assert (again is first) is not reads
    assert memo.evaluate(fmap, obj, now, fmap.fields, events, None) is again, "nothing new: kept either way"


def test_while_an_informer_runs_full_collections_run_once_a_minute_not_by_cpythons_rule(replay, monkeypatch) -> None:
    """The stores hold thousands of acyclic objects, which CPython's own rule would have the cycle collector walk
    every few seconds under a steady stream of events: while the informer runs, that rule is off (the
    full-collection threshold is out of reach) and a full collection runs every FULL_COLLECTION seconds of the
    informer's clock instead; young collections run after YOUNG_COLLECTION new objects, not 700, and every
    threshold is restored after."""
    events = sum(len(e) for e in load("wait-job-burst")["streams"].values())
    monkeypatch.setattr(tests.replay, "PACE", 3.5 * FULL_COLLECTION / events)  # the burst spans 3.5 minutes
    full: list[tuple[int, int, int]] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: full.append(gc.get_threshold()) or 0)
    before = gc.get_threshold()
    result, _ = replay("wait-job-burst", "-o", "json", argv=watch("wait-job-burst", "burst"), interrupt=True)
    assert result.exit_code == 0, result.stderr
    assert len(full) == 3, full
    assert all(t == (informer.YOUNG_COLLECTION, before[1], informer._NEVER) for t in full), full
    assert before[0] < informer.YOUNG_COLLECTION
    assert gc.get_threshold() == before

"""Every built-in map, every output format, over answers recorded from a real cluster."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import pytest
import yaml

from kubectl_cyclops import paging
from kubectl_cyclops.discovery import _from_aggregated, match
from kubectl_cyclops.fieldmaps import FieldMaps, shows
from kubectl_cyclops.formats import FORMATTERS
from kubectl_cyclops.text import NONE
from tests.replay import DISCOVERY, load, scenarios

DETAILS = [s for s in scenarios() if load(s)["expect"] is not None and "--watch" not in load(s)["argv"]]
MAPS = FieldMaps(["tests/crd-fieldmaps"])
RESOURCES = [r for doc in json.loads(DISCOVERY.read_text()).values() for r in _from_aggregated(doc["body"])]


def _object(name: str) -> dict:
    """The recorded body of the object a scenario shows (its first GET by name)."""
    argv = load(name)["argv"]
    kind, _, target = argv[1].partition("/")
    resource = match(RESOURCES, kind)
    answers = load(name)["phases"][0]
    return next(a["body"] for k, a in answers.items() if k.endswith(f"/{resource.plural}/{target or argv[2]}"))


@pytest.mark.parametrize("name", DETAILS)
def test_json_document_matches_the_recorded_object_and_its_map(replay, name: str) -> None:
    result, _ = replay(name, "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    obj = _object(name)
    assert (doc["kind"], doc["name"], doc["uid"]) == (obj["kind"], obj["metadata"]["name"], obj["metadata"]["uid"])
    assert doc["namespace"] == obj["metadata"].get("namespace")
    assert doc["status"] == load(name)["expect"]
    group = obj["apiVersion"].rpartition("/")[0]
    fmap = MAPS.get(group, obj["kind"]) if "--field-maps" in load(name)["argv"] else FieldMaps().get(group, obj["kind"])
    assert list(doc["fields"]) == [f.name for f in fmap.fields if shows(f, "json")]
    firsts = {r.name: r for r in reversed(fmap.related)}  # relations of one name are one, as the first declares it
    assert list(doc["related"]) == list(dict.fromkeys(r.name for r in fmap.related))
    for relation in firsts.values():
        for item in doc["related"][relation.name]:
            assert item["kind"] == relation.kind
            assert list(item["fields"]) == [f.name for f in relation.fields if shows(f, "json")]
    assert set(doc) >= {"apiVersion", "kind", "name", "namespace", "status", "fields", "related", "events"}


@pytest.mark.parametrize("name", DETAILS)
def test_yaml_is_the_same_document_as_json(replay, name: str) -> None:
    as_json, _ = replay(name, "-o", "json")
    as_yaml, _ = replay(name, "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout)


@pytest.mark.parametrize("name", DETAILS)
def test_table_and_wide_show_the_fields_a_person_reads(replay, name: str) -> None:
    table, _ = replay(name)
    wide, _ = replay(name, "-o", "wide")
    assert table.exit_code == wide.exit_code == 0
    obj = _object(name)
    group = obj["apiVersion"].rpartition("/")[0]
    maps = MAPS if "--field-maps" in load(name)["argv"] else FieldMaps()
    fmap = maps.get(group, obj["kind"])
    now = datetime.now(UTC)
    for field in fmap.fields:
        value = [p.value(obj) for p in field.paths] if len(field.paths) > 1 else field.paths[0].value(obj)
        fmt = FORMATTERS[field.format]
        text = fmt.table(value, now, field.args) if fmt.takes_args else fmt.table(value, now)
        empty = text == NONE
        in_table = f"\n{field.title}:" in table.stdout
        in_wide = f"\n{field.title}:" in wide.stdout
        if field.omit_empty and empty:
            assert not in_table, field.name
        else:
            assert (in_table, in_wide) == (shows(field, "table"), shows(field, "wide")), field.name
    assert re.search(rf"^Status:\s+{load(name)['expect']}$", table.stdout, re.M)
    assert table.stdout.splitlines()[0].split() == ["Name:", obj["metadata"]["name"]]


def test_pv_facts(replay) -> None:
    doc = json.loads(replay("pv", "-o", "json")[0].stdout)
    pv = _object("pv")
    assert doc["fields"]["capacity"] == pv["spec"]["capacity"]["storage"] == "10Gi"
    assert doc["fields"]["capacityBytes"] == 10 * 2**30
    assert doc["fields"]["claim"] == f"{pv['spec']['claimRef']['namespace']}/{pv['spec']['claimRef']['name']}"
    assert doc["fields"]["sourceParameters"] == {"source": "hostPath", "parameters": pv["spec"]["hostPath"]}
    assert doc["related"]["storageClass"][0]["fields"]["provisioner"] == "kubernetes.io/no-provisioner"
    table = replay("pv")[0].stdout
    assert "Access Modes:    RWO" in table
    assert "Claim:           rec/rec-pv-claim" in table


def test_job_facts(replay) -> None:
    doc = json.loads(replay("job-failed", "-o", "json")[0].stdout)
    job = _object("job-failed")
    assert doc["fields"]["failed"] == job["status"]["failed"] == 2
    assert doc["fields"]["succeeded"] == 0  # omitted by the API, shown as 0
    assert [p["fields"]["containers"][0]["exitCode"] for p in doc["related"]["pods"]] == [3, 3]
    reasons = {c["type"]: c["reason"] for c in doc["fields"]["conditions"]}
    assert reasons["Failed"] == "BackoffLimitExceeded"
    cron = json.loads(replay("job-from-cronjob", "-o", "json")[0].stdout)
    assert [c["name"] for c in cron["related"]["cronJob"]] == ["tick"]


def leaked_secret_values(replay) -> list[tuple[str, str]]:
    """(format, value) for every Secret value, raw or base64, that some output format prints."""
    secret = _object("secret")
    values = [base64.b64decode(v).decode() for v in secret["data"].values()] + list(secret["data"].values())
    leaks = []
    for fmt in ("table", "wide", "json", "yaml"):
        result, _ = replay("secret", "-o", fmt)
        assert result.exit_code == 0
        leaks += [(fmt, v) for v in values if v in result.stdout]
    return leaks


def test_secret_values_are_never_printed(replay) -> None:
    assert leaked_secret_values(replay) == []
    doc = json.loads(replay("secret", "-o", "json")[0].stdout)
    assert doc["fields"]["keys"] == ["password", "username"]
    assert "password: 20 bytes" in replay("secret")[0].stdout


def test_list_mode_reads_every_object(replay) -> None:
    docs = json.loads(replay("list-jobs", "-o", "json")[0].stdout)
    listing = next(
        v["body"]
        for k, v in load("list-jobs")["phases"][0].items()
        if k.startswith("GET /apis/batch/v1/namespaces/rec/jobs?")
    )
    assert [d["name"] for d in docs] == [j["metadata"]["name"] for j in listing["items"]]
    assert len(docs) >= 5
    pods = json.loads(replay("list-pods-selector", "-o", "json")[0].stdout)
    assert {p["kind"] for p in pods} == {"Pod"}
    assert len(pods) == 2


def test_empty_list(replay) -> None:
    result, _ = replay("list-empty")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == 'No jobs.batch found in namespace "rec".\n'
    assert replay("list-empty", "-o", "json")[0].stdout == "[]\n"


def test_missing_values_read_none_in_tables(replay) -> None:
    table = replay("job-suspended")[0].stdout
    assert f"Start Time:       {NONE}" in table
    assert f"Pods: {NONE}" in table


def test_lists_are_read_page_by_page(replay, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.record import PAGED

    everything = json.loads(replay("list-jobs", "-o", "json")[0].stdout)  # one page of 500
    monkeypatch.setattr(paging, "PAGE_SIZE", PAGED)
    result, api = replay("list-jobs-paged", "-o", "json")
    pages = [r for r in api.requests if r.startswith("GET /apis/batch/v1/namespaces/rec/jobs?")]
    assert len(pages) >= 3
    assert sum("continue=" in r for r in pages) == len(pages) - 1
    assert [d["name"] for d in json.loads(result.stdout)] == [d["name"] for d in everything]


def test_the_secret_test_fails_when_the_api_layer_stops_redacting(replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redaction happens in KubeApi, under which the recordings are replayed: without it, values leak."""
    from kubectl_cyclops import redact

    monkeypatch.setattr(redact, "response", lambda body: body)
    leaks = leaked_secret_values(replay)
    assert {fmt for fmt, _ in leaks} >= {"json", "yaml"}


def test_list_mode_reads_related_objects_in_batches_not_per_object(replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """details pv over many PVs: a LIST of claims and one of classes, paged, never a GET per PV."""
    from tests.record import PAGED

    monkeypatch.setattr(paging, "PAGE_SIZE", PAGED)
    result, api = replay("list-pvs-paged", "-o", "json")
    assert result.exit_code == 0, result.stderr
    docs = json.loads(result.stdout)
    assert len(docs) >= 8
    bound = [d for d in docs if d["fields"]["phase"] == "Bound"]
    assert len(bound) >= 7
    for d in bound:
        [claim] = d["related"]["claim"]
        assert f"{claim['namespace']}/{claim['name']}" == d["fields"]["claim"]
        assert [c["name"] for c in d["related"]["storageClass"]] == [d["fields"]["storageClass"]]
    requests = [r for r in api.requests if "(aggregated)" not in r]
    per_object = [r for r in requests if re.search(r"/(persistentvolumeclaims|storageclasses)/[^/?]+$", r)]
    assert per_object == []
    lists = {
        "pv": [r for r in requests if r.startswith("GET /api/v1/persistentvolumes?")],
        "pvc": [r for r in requests if r.startswith("GET /api/v1/namespaces/rec/persistentvolumeclaims?")],
        "sc": [r for r in requests if r.startswith("GET /apis/storage.k8s.io/v1/storageclasses?")],
        "events": [r for r in requests if r.startswith("GET /api/v1/events?")],
    }
    assert len(lists["pv"]) == -(-len(docs) // PAGED)  # one request per page of PVs
    assert sorted(requests) == sorted(r for found in lists.values() for r in found)
    # Claims and classes are listed once, shared by every page of PVs: the count does not grow with them.
    assert len(lists["pvc"]) < len(lists["pv"]) + 2
    assert len(set(lists["pvc"])) == len(lists["pvc"])


def test_reverse_references_are_listed_once_for_every_page_of_parents(replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """details storageclass over many classes: each shows the PVs and claims that name it (referencedBy),
    read with one list of PVs and one of claims in all namespaces, shared by every page of classes."""
    from tests.record import PAGED

    monkeypatch.setattr(paging, "PAGE_SIZE", PAGED)
    result, api = replay("list-storageclasses-paged", "-o", "json")
    assert result.exit_code == 0, result.stderr
    docs = {d["name"]: d for d in json.loads(result.stdout)}
    assert len(docs) > PAGED
    answers = api.replay.answers
    recorded = [a for key, a in answers.items() if key.startswith("GET /api/v1/persistentvolumes?")]
    pvs = [pv for body in recorded for pv in body["body"]["items"]]
    for name, doc in docs.items():
        want = sorted(pv["metadata"]["name"] for pv in pvs if pv["spec"].get("storageClassName") == name)
        assert [v["name"] for v in doc["related"]["volumes"]] == want
    standard = docs["standard"]["related"]["claims"]
    assert {(c["namespace"], c["name"]) for c in standard} >= {("rec", "rec-dynamic"), ("rec", "rec-waiting")}
    requests = [r for r in api.requests if "(aggregated)" not in r]
    classes = [r for r in requests if r.startswith("GET /apis/storage.k8s.io/v1/storageclasses?")]
    assert len(classes) == -(-len(docs) // PAGED)  # one request per page of classes
    referrers = [
        r for r in requests if r.startswith(("GET /api/v1/persistentvolumes?", "GET /api/v1/persistentvolumeclaims?"))
    ]
    # One paginated list of each, whatever the number of classes: two first pages, and no page read twice.
    assert sorted(r for r in referrers if "continue=" not in r) == [
        "GET /api/v1/persistentvolumeclaims?limit=2",
        "GET /api/v1/persistentvolumes?limit=2",
    ]
    assert len(referrers) == len(set(referrers))
    # The claims' status reads their events (storageclass.yaml: events: true): one list in their namespace.
    claim_events = [r for r in requests if "involvedObject.kind=PersistentVolumeClaim" in r]
    assert [r for r in claim_events if "continue=" not in r] == [
        "GET /api/v1/namespaces/rec/events?fieldSelector=involvedObject.kind=PersistentVolumeClaim&limit=2"
    ]
    assert len(claim_events) == len(set(claim_events))


@pytest.mark.parametrize(
    ("scenario", "relation"), [("pod-failed-claim", "claims"), ("storageclass-failed-claim", "claims")]
)
def test_a_related_claim_reads_its_events_as_details_pvc_does(replay, scenario: str, relation: str) -> None:
    """A claim the driver refused shows `failed` with the driver's message wherever it appears, as
    `details pvc` says of it (the rule reads the provisioner's last event): here under a pod that waits for
    it and under its StorageClass."""
    claim_doc = json.loads(replay("pvc-provisioning-failed", "-o", "json")[0].stdout)
    result, _ = replay(scenario, "-o", "json")
    assert result.exit_code == 0, result.stderr
    [claim] = json.loads(result.stdout)["related"]["claims"]
    assert claim["name"] == claim_doc["name"] == "rec-toobig"
    assert (claim["status"], claim["statusReason"]) == (claim_doc["status"], claim_doc["statusReason"])
    assert claim["status"] == "failed"
    assert claim["statusReason"].startswith("ProvisioningFailed: rpc error: code = OutOfRange")


def test_a_generic_ephemeral_claim_is_used_by_the_pod_that_owns_it(replay) -> None:
    """persistentvolumeclaim.yaml declares `usedBy` twice: pods that name the claim, and the pod that owns
    it (a generic ephemeral volume's claim, <pod>-<volume>). One relation, its objects joined once each."""
    result, api = replay("pvc-ephemeral", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["owners"] == [{"kind": "Pod", "name": "scratchy", "controller": True}]
    assert [(p["name"], p["status"]) for p in doc["related"]["usedBy"]] == [("scratchy", "healthy")]
    assert list(doc["related"]).count("usedBy") == 1
    assert "GET /api/v1/namespaces/rec/pods/scratchy" in api.requests


def test_relations_of_one_name_join_their_objects_once_each() -> None:
    """A pod that both names a claim and owns it is under Used By once (joined by uid)."""
    from kubectl_cyclops.relations import Found, joined

    first, second = [r for r in FieldMaps().get("", "PersistentVolumeClaim").related if r.name == "usedBy"]
    [pod] = [
        item
        for answer in load("pvc-ephemeral")["phases"][0].values()
        for item in [answer["body"]]
        if item.get("kind") == "Pod"
    ]
    [(relation, [found])] = joined((first, second), [[Found(first, None, [pod])], [Found(second, None, [pod])]])
    assert relation is first
    assert found.objects == [pod]

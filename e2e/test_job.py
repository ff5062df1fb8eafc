"""Job fixtures, verified through `kubectl cyclops details` against the API and kubectl describe."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest

from e2e.harness.k8s import Cluster, has_condition, phase
from e2e.verify import describe_fields, pod_statuses, section, table_rows


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _pods(cluster: Cluster, ns: str, job: str, count: int, *phases: str) -> list[dict]:
    return cluster.wait(
        "Pod",
        lambda ps: len(ps) == count and all(phase(*phases)(p) for p in ps),
        namespace=ns,
        labels=f"job-name={job}",
        what=f"{count} pods of {job} in {phases}",
    )


def _counts_match_describe(cluster: Cluster, ns: str, job: str, fields: dict) -> None:
    described = cluster.describe("job", job, ns)
    statuses = pod_statuses(described)
    assert {k: fields[k] for k in statuses} == statuses
    top = describe_fields(described)
    assert top["Parallelism"] == str(fields["parallelism"])
    assert top["Completions"] == str(fields["completions"] if fields["completions"] is not None else "<unset>")
    assert top["Completion Mode"] == fields["completionMode"]


def test_single_pod_job_succeeds(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="once", namespace=ns)
    job = cluster.wait_one("Job", "once", has_condition("Complete"), namespace=ns)
    _pods(cluster, ns, "once", 1, "Succeeded")

    doc = cluster.details_json("job", "once", "-n", ns)
    fields = doc["fields"]
    assert (doc["apiVersion"], doc["kind"], doc["namespace"], doc["status"]) == ("batch/v1", "Job", ns, "healthy")
    assert (fields["active"], fields["succeeded"], fields["failed"]) == (0, 1, 0)
    assert _time(fields["startTime"]) == _time(job["status"]["startTime"])
    assert _time(fields["completionTime"]) == _time(job["status"]["completionTime"])
    assert isinstance(fields["duration"], int)
    assert fields["duration"] >= 0
    assert {c["type"]: c["status"] for c in fields["conditions"]}["Complete"] == "True"
    [pod] = doc["related"]["pods"]
    assert pod["fields"]["phase"] == "Succeeded"
    assert pod["status"] == "healthy"
    [container] = pod["fields"]["containers"]
    assert (container["state"], container["exitCode"], container["reason"]) == ("terminated", 0, "Completed")
    assert doc["related"]["cronJob"] == []
    assert any(e["reason"] == "SuccessfulCreate" for e in doc["events"])
    _counts_match_describe(cluster, ns, "once", fields)

    table = cluster.cyclops("details", "jobs.batch/once", "-n", ns)
    assert table.returncode == 0, table.stderr
    rows = table_rows(table.stdout)
    assert (rows["Status"], rows["Succeeded"], rows["Failed"]) == ("healthy", "1", "0")
    header, *pods = section(table.stdout, "Pods")
    assert header[:4] == ["NAME", "STATUS", "PHASE", "READY"]
    assert [p[2] for p in pods] == ["Succeeded"]


def test_job_with_three_completions_two_at_a_time(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="three", namespace=ns, completions=3, parallelism=2)
    cluster.wait_one("Job", "three", has_condition("Complete"), namespace=ns)
    _pods(cluster, ns, "three", 3, "Succeeded")

    doc = cluster.details_json("job", "three", "-n", ns)
    assert (doc["fields"]["completions"], doc["fields"]["parallelism"], doc["fields"]["succeeded"]) == (3, 2, 3)
    assert len(doc["related"]["pods"]) == 3
    assert {p["fields"]["phase"] for p in doc["related"]["pods"]} == {"Succeeded"}
    _counts_match_describe(cluster, ns, "three", doc["fields"])


def test_indexed_job_shows_completed_indexes(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="indexed", namespace=ns, completions=3, parallelism=3, completion_mode="Indexed")
    cluster.wait_one("Job", "indexed", has_condition("Complete"), namespace=ns)
    _pods(cluster, ns, "indexed", 3, "Succeeded")

    doc = cluster.details_json("job", "indexed", "-n", ns)
    assert doc["fields"]["completionMode"] == "Indexed"
    assert doc["fields"]["completedIndexes"] == "0-2"
    assert sorted(p["fields"]["completionIndex"] for p in doc["related"]["pods"]) == ["0", "1", "2"]
    assert describe_fields(cluster.describe("job", "indexed", ns))["Completed Indexes"] == "0-2"


def test_failing_job_reaches_failed_after_backoff_limit(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="fails", namespace=ns, backoff_limit=1, fail="true", exit_code=7)
    cluster.wait_one("Job", "fails", has_condition("Failed"), namespace=ns, timeout=90)
    _pods(cluster, ns, "fails", 2, "Failed")

    doc = cluster.details_json("job", "fails", "-n", ns)
    assert doc["status"] == "failed"
    assert doc["fields"]["failed"] == 2
    assert doc["fields"]["backoffLimit"] == 1
    failed = next(c for c in doc["fields"]["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "BackoffLimitExceeded")
    assert {p["status"] for p in doc["related"]["pods"]} == {"failed"}
    assert {p["fields"]["containers"][0]["exitCode"] for p in doc["related"]["pods"]} == {7}
    _counts_match_describe(cluster, ns, "fails", doc["fields"])
    assert "BackoffLimitExceeded" in cluster.cyclops("details", "job", "fails", "-n", ns).stdout


def test_suspended_job_has_no_pods(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="paused", namespace=ns, suspend="true")
    cluster.wait_one("Job", "paused", has_condition("Suspended"), namespace=ns)

    doc = cluster.details_json("job", "paused", "-n", ns)
    assert doc["fields"]["suspend"] is True
    assert doc["status"] == "unknown"
    assert doc["related"]["pods"] == []
    assert {c["type"]: c["status"] for c in doc["fields"]["conditions"]}["Suspended"] == "True"
    assert describe_fields(cluster.describe("job", "paused", ns))["Suspend"] == "true"


@pytest.mark.slow  # the CronJob controller starts the first Job at the next full minute
def test_cronjob_and_the_jobs_it_creates(cluster: Cluster, ns: str) -> None:
    cluster.apply("cronjob", name="tick", namespace=ns)
    [job] = cluster.wait(
        "Job",
        lambda js: any(has_condition("Complete")(j) for j in js),
        namespace=ns,
        timeout=100,
        what="a completed Job created by CronJob tick",
    )[:1]
    name = job["metadata"]["name"]
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"

    job_doc = cluster.details_json("job", name, "-n", ns)
    [owner] = job_doc["related"]["cronJob"]
    assert (owner["name"], owner["fields"]["schedule"]) == ("tick", "* * * * *")
    assert job_doc["owners"] == [{"kind": "CronJob", "name": "tick", "controller": True}]

    cron_doc = cluster.details_json("cronjob", "tick", "-n", ns)
    assert name in [j["name"] for j in cron_doc["related"]["jobs"]]
    assert cron_doc["fields"]["schedule"] == "* * * * *"
    assert cron_doc["fields"]["lastSchedule"] is not None


def test_listing_every_job_of_a_namespace(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="a", namespace=ns)
    cluster.apply("job", name="b", namespace=ns, suspend="true")
    cluster.wait_one("Job", "a", has_condition("Complete"), namespace=ns)

    docs = cluster.details_json("jobs", "-n", ns)
    assert [d["name"] for d in docs] == ["a", "b"]
    assert [d["status"] for d in docs] == ["healthy", "unknown"]
    cluster.kubectl("label", "job", "a", "-n", ns, "tier=one")
    selected = cluster.details_json("jobs", "-n", ns, "-l", "tier=one")
    assert [d["name"] for d in selected] == ["a"]
    assert cluster.details_json("jobs", "-n", ns, "-l", "tier=none") == []


def test_errors_against_a_real_server(cluster: Cluster, ns: str) -> None:
    missing = cluster.cyclops("details", "job", "nope", "-n", ns)
    assert (missing.returncode, missing.stdout) == (5, "")
    assert missing.stderr.strip() == f'error: jobs.batch "nope" not found in namespace "{ns}"'
    unknown = cluster.cyclops("details", "frobnicators", "x")
    assert unknown.returncode == 4
    assert 'resource type "frobnicators"' in unknown.stderr
    bad = cluster.cyclops("details", "pods", "-n", ns, "-l", "a in (")
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_job_with_an_init_container_and_env_from_a_secret(cluster: Cluster, ns: str) -> None:
    """The image, the init container and the env source show; the Secret's value shows nowhere."""
    value = "e2e-value-that-must-not-show"
    cluster.kubectl("create", "secret", "generic", "db", f"--from-literal=password={value}", "-n", ns)
    env = [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": ns},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "initContainers": [{"name": "wait-db", "image": "busybox:1.36", "command": ["true"]}],
                    "containers": [{"name": "main", "image": "busybox:1.37", "command": ["true"], "env": env}],
                }
            },
        },
    }
    cluster.create(job)
    cluster.wait_one("Job", "migrate", has_condition("Complete"), namespace=ns)
    doc = cluster.details_json("job", "migrate", "-n", ns)
    [pod] = doc["related"]["pods"]
    init, main = pod["fields"]["containers"]
    assert (init["name"], init["init"], init["image"], init["state"]) == ("wait-db", True, "busybox:1.36", "terminated")
    assert (main["name"], main["init"], main["image"]) == ("main", False, "busybox:1.37")
    assert main["env"] == [
        {"name": "PASSWORD", "value": None, "valueFrom": "<set to the key 'password' in secret 'db'>"}
    ]
    api_pod = cluster.get("pod", pod["name"], ns)
    assert init["exitCode"] == api_pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"]
    pod_doc = cluster.details_json("pod", pod["name"], "-n", ns)
    assert pod_doc["fields"]["containers"] == pod["fields"]["containers"]
    outputs = [json.dumps(doc), json.dumps(pod_doc)]
    for args in (["job", "migrate"], ["pod", pod["name"]]):
        for fmt in ("table", "wide", "yaml"):
            inv = cluster.cyclops("details", *args, "-n", ns, "-o", fmt)
            assert inv.returncode == 0, inv.stderr
            outputs.append(inv.stdout + inv.stderr)
    encoded = base64.b64encode(value.encode()).decode()
    assert not [o for o in outputs if value in o or encoded in o]
    assert "main: PASSWORD <set to the key 'password' in secret 'db'>" in outputs[-2]  # pod -o wide

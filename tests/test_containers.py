"""Container facts over answers recorded from a real cluster: init containers, images, states with messages,
the last termination of a restarted container, environment sources, terminating pods, a PV's phase age."""

from __future__ import annotations

import base64
import json

import pytest

from tests.replay import load

SECRET_VALUE = "hunter2-is-not-shown"  # the fixtures' Secret creds, which the pod reads from


def _doc(replay, name: str) -> dict:
    result, _ = replay(name, "-o", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _recorded(name: str, plural: str, obj: str) -> dict:
    return next(a["body"] for k, a in load(name)["phases"][0].items() if k.endswith(f"/{plural}/{obj}"))


def test_init_containers_come_first_with_their_own_state_and_image(replay) -> None:
    containers = _doc(replay, "pod-containers")["fields"]["containers"]
    summary = [(c["name"], c["init"], c["image"], c["state"], c["reason"], c["exitCode"]) for c in containers]
    assert summary == [
        ("migrate", True, "busybox:1.36", "terminated", "Completed", 0),
        ("app", False, "nginx:1.27", "running", None, None),
    ]
    pod = _recorded("pod-containers", "pods", "envy")
    assert containers[0]["finishedAt"] == pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["finishedAt"]


def test_environment_by_source_as_kubectl_describe_words_it(replay) -> None:
    app = _doc(replay, "pod-containers")["fields"]["containers"][1]
    assert app["env"] == [
        {"name": "MODE", "value": "fast", "valueFrom": None},
        {"name": "PASSWORD", "value": None, "valueFrom": "<set to the key 'password' in secret 'creds'>"},
        {"name": "LEVEL", "value": None, "valueFrom": "<set to the key 'level' of config map 'settings'>"},
        {"name": "POD_NAME", "value": None, "valueFrom": "(v1:metadata.name)"},
        {"name": "CPU_LIMIT", "value": None, "valueFrom": "(limits.cpu)"},
    ]
    assert app["envFrom"] == [
        {"kind": "ConfigMap", "name": "settings", "prefix": None, "optional": False},
        {"kind": "Secret", "name": "creds", "prefix": "CREDS_", "optional": False},
    ]
    wide, _ = replay("pod-containers", "-o", "wide")
    assert "app: PASSWORD <set to the key 'password' in secret 'creds'>" in wide.stdout
    assert "app: all of Secret creds (prefix CREDS_)" in wide.stdout
    table, _ = replay("pod-containers")
    assert "Environment:" not in table.stdout, "the environment is for -o wide and JSON only"


@pytest.mark.parametrize("fmt", [[], ["-o", "wide"], ["-o", "json"], ["-o", "yaml"]])
def test_no_output_holds_the_secret_value(replay, fmt: list[str]) -> None:
    result, _ = replay("pod-containers", *fmt)
    assert result.exit_code == 0
    for form in (SECRET_VALUE, base64.b64encode(SECRET_VALUE.encode()).decode()):
        assert form not in result.stdout + result.stderr


def test_a_restarted_container_shows_its_last_termination_and_its_message(replay) -> None:
    [app] = _doc(replay, "pod-restarted")["fields"]["containers"]
    last = _recorded("pod-restarted", "pods", "crashy")["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert (app["state"], app["reason"], app["restartCount"]) == ("waiting", "CrashLoopBackOff", 4)
    assert app["message"] == "back-off 1m20s restarting failed container"
    assert app["lastTermination"] == {
        "reason": "OOMKilled",
        "exitCode": 137,
        "message": None,
        "finishedAt": last["finishedAt"],
    }
    wide, _ = replay("pod-restarted", "-o", "wide")
    line = next(x for x in wide.stdout.splitlines() if x.startswith("Container Details:"))
    assert line.split(None, 2)[2].startswith(
        "app: busybox:1.36 | back-off 1m20s restarting failed container | last: OOMKilled, exit 137, "
    )
    table, _ = replay("pod-restarted")
    assert "Container Details:" not in table.stdout


def test_a_terminating_pod_says_so_in_the_table_and_json(replay) -> None:
    doc = _doc(replay, "pod-terminating")
    deleted = _recorded("pod-terminating", "pods", "leaving")["metadata"]["deletionTimestamp"]
    assert doc["deletionTimestamp"] == deleted
    assert (doc["status"], doc["statusReason"]) == ("progressing", f"terminating (since {deleted})")
    table, _ = replay("pod-terminating")
    lines = table.stdout.splitlines()
    assert any(x.startswith("Terminating:") and f"since {deleted} (" in x for x in lines)
    assert any(x.startswith("Phase:") and "Terminating (since " in x for x in lines)


def test_a_pv_shows_when_it_entered_its_phase(replay) -> None:
    doc = _doc(replay, "pv")
    pv = _recorded("pv", "persistentvolumes", "rec-pv")
    assert doc["fields"]["phaseSince"] == pv["status"]["lastPhaseTransitionTime"]
    assert doc["fields"]["phase"] == "Bound"
    table, _ = replay("pv")
    assert any(
        x.startswith("Phase:") and x.split(None, 1)[1].startswith("Bound (since ") for x in table.stdout.splitlines()
    )

"""Real container failures on a real kubelet (the kind provider): the plugin against the API and `kubectl describe`.

Each test makes a failure happen for real (an image that cannot be pulled, a container that crashes,
a missing Secret key, an init container that fails, an exit code, a memory limit) and compares
`kubectl cyclops details` (JSON and table) with the pod's status and with `kubectl describe pod`.
On the local provider pods are simulated by kwok, so these tests run on kind only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from e2e.harness.k8s import Cluster, has_condition, phase
from e2e.verify import describe_container, section, table_rows

IMAGE = "busybox:1.36"  # in the offline node image


@pytest.fixture(autouse=True)
def _real_kubelet(provider_state: dict[str, Any]) -> None:
    if provider_state.get("provider") != "kind":
        pytest.skip("needs a real kubelet and container runtime (--cluster=kind)")


def _pod(cluster: Cluster, ns: str, name: str, containers: list[dict[str, Any]], **spec: Any) -> None:
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"terminationGracePeriodSeconds": 0, **spec, "containers": containers},
        }
    )


def _waiting(
    reason: str, container: str = "main", init: bool = False, restarts: int = 0
) -> Callable[[dict[str, Any]], bool]:
    key = "initContainerStatuses" if init else "containerStatuses"

    def check(pod: dict[str, Any]) -> bool:
        for status in pod.get("status", {}).get(key) or []:
            waiting = (status.get("state", {}).get("waiting") or {}).get("reason")
            if status["name"] == container and waiting == reason and status.get("restartCount", 0) >= restarts:
                return True
        return False

    return check


def _status(pod: dict[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    return next(s for s in pod["status"][key] if s["name"] == name)


def _steady(pod: dict[str, Any]) -> tuple[Any, ...]:
    """What a crash-looping container's status says between two restarts."""
    status = _status(pod, "main")
    return status.get("restartCount"), (status.get("state", {}).get("waiting") or {}).get("reason")


def _reason(waiting: str, main: dict[str, Any]) -> str:
    """The pod's status reason: the container, why it waits, and the kubelet's message (on one line)."""
    return f"container main: {waiting} ({' '.join(main['message'].split())})"


def _container(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["fields"]["containers"] if c["name"] == name)


def test_image_pull_failure_is_errimagepull_then_imagepullbackoff(cluster: Cluster, ns: str) -> None:
    _pod(cluster, ns, "puller", [{"name": "main", "image": "registry.invalid/cyclops/nope:1"}])
    pod = cluster.wait_one("Pod", "puller", _waiting("ImagePullBackOff"), namespace=ns, timeout=120)
    events = cluster.kubectl("get", "events", "-n", ns, "-o", "json").json()["items"]
    assert any(e["reason"] == "Failed" and "ErrImagePull" in e.get("message", "") for e in events), events
    waiting = _status(pod, "main")["state"]["waiting"]

    doc = cluster.details_json("pod", "puller", "-n", ns)
    main = _container(doc, "main")
    assert (main["state"], main["reason"]) == ("waiting", "ImagePullBackOff")
    assert main["message"] == waiting["message"]  # the kubelet's own words
    assert doc["status"] == "failed"
    assert doc["statusReason"] == _reason("ImagePullBackOff", main)
    described = describe_container(cluster.describe("pod", "puller", ns), "main")
    assert (described["State"], described["State.Reason"]) == ("Waiting", "ImagePullBackOff")
    table = cluster.cyclops("details", "pod", "puller", "-n", ns).stdout
    assert "main: waiting (ImagePullBackOff)" in table


def test_crash_loop_shows_restarts_and_the_last_exit_code(cluster: Cluster, ns: str) -> None:
    _pod(cluster, ns, "crasher", [{"name": "main", "image": IMAGE, "command": ["sh", "-c", "exit 3"]}])
    crash_looping = _waiting("CrashLoopBackOff", restarts=2)
    for _ in range(5):  # the kubelet restarts it between back-offs: compare during one back-off
        before = cluster.wait_one("Pod", "crasher", crash_looping, namespace=ns, timeout=180)
        doc = cluster.details_json("pod", "crasher", "-n", ns)
        described = describe_container(cluster.describe("pod", "crasher", ns), "main")
        after = cluster.get("pod", "crasher", ns)
        if _steady(after) == _steady(before):
            break
    else:
        pytest.fail("the container never stayed in one back-off long enough to compare")
    status = _status(after, "main")
    assert status["lastState"]["terminated"]["exitCode"] == 3

    main = _container(doc, "main")
    assert (main["state"], main["reason"]) == ("waiting", "CrashLoopBackOff")
    assert main["restartCount"] == status["restartCount"] >= 2
    assert main["lastTermination"]["exitCode"] == 3
    assert main["lastTermination"]["reason"] == status["lastState"]["terminated"]["reason"] == "Error"
    assert (doc["status"], doc["statusReason"]) == ("failed", _reason("CrashLoopBackOff", main))
    assert (described["State"], described["State.Reason"]) == ("Waiting", "CrashLoopBackOff")
    assert (described["Last State"], described["Last State.Exit Code"]) == ("Terminated", "3")
    assert int(described["Restart Count"]) == status["restartCount"]
    wide = cluster.cyclops("details", "pod", "crasher", "-n", ns, "-o", "wide").stdout
    assert re.search(r"last: Error, exit 3", wide)


def test_config_error_from_a_missing_secret_key(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "secret", "generic", "db", "--from-literal=user=app", "-n", ns)
    env = [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    _pod(cluster, ns, "configless", [{"name": "main", "image": IMAGE, "command": ["sleep", "3600"], "env": env}])
    pod = cluster.wait_one("Pod", "configless", _waiting("CreateContainerConfigError"), namespace=ns, timeout=120)
    waiting = _status(pod, "main")["state"]["waiting"]
    assert "password" in waiting["message"]

    doc = cluster.details_json("pod", "configless", "-n", ns)
    main = _container(doc, "main")
    assert (main["reason"], main["message"]) == ("CreateContainerConfigError", waiting["message"])
    assert main["env"] == [
        {"name": "PASSWORD", "value": None, "valueFrom": "<set to the key 'password' in secret 'db'>"}
    ]
    assert (doc["status"], doc["statusReason"]) == ("failed", _reason("CreateContainerConfigError", main))
    described = describe_container(cluster.describe("pod", "configless", ns), "main")
    assert described["State.Reason"] == "CreateContainerConfigError"


def test_init_container_failure_fails_the_pod(cluster: Cluster, ns: str) -> None:
    _pod(
        cluster,
        ns,
        "initfail",
        [{"name": "main", "image": IMAGE, "command": ["true"]}],
        restartPolicy="Never",
        initContainers=[{"name": "setup", "image": IMAGE, "command": ["sh", "-c", "exit 5"]}],
    )
    pod = cluster.wait_one("Pod", "initfail", phase("Failed"), namespace=ns, timeout=120)
    init = _status(pod, "setup", init=True)["state"]["terminated"]
    assert (init["exitCode"], init["reason"]) == (5, "Error")

    doc = cluster.details_json("pod", "initfail", "-n", ns)
    setup = _container(doc, "setup")
    assert (setup["init"], setup["state"], setup["reason"], setup["exitCode"]) == (True, "terminated", "Error", 5)
    assert doc["status"] == "failed"
    assert doc["statusReason"].startswith("phase Failed")
    described = describe_container(cluster.describe("pod", "initfail", ns), "setup")
    assert (described["State"], described["State.Exit Code"]) == ("Terminated", "5")
    table = cluster.cyclops("details", "pod", "initfail", "-n", ns).stdout
    assert "init setup: terminated (Error, exit 5)" in table


@pytest.mark.parametrize("code", [7, 42])
def test_exit_code_of_a_real_container_fails_its_job(cluster: Cluster, ns: str, name: str, code: int) -> None:
    cluster.apply("job", name=name, namespace=ns, backoff_limit=0, exit_code=code, image=IMAGE)
    cluster.wait_one("Job", name, has_condition("Failed"), namespace=ns, timeout=120)
    [pod] = cluster.kubectl("get", "pods", "-n", ns, "-l", f"job-name={name}", "-o", "json").json()["items"]
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == code

    doc = cluster.details_json("job", name, "-n", ns)
    assert doc["status"] == "failed"
    assert "BackoffLimitExceeded" in doc["statusReason"]
    [row] = doc["related"]["pods"]
    [main] = row["fields"]["containers"]
    assert (main["state"], main["exitCode"], main["reason"]) == ("terminated", code, "Error")
    described = describe_container(cluster.describe("pod", pod["metadata"]["name"], ns), main["name"])
    assert described["State.Exit Code"] == str(code)
    rows = section(cluster.cyclops("details", "job", name, "-n", ns).stdout, "Pods")
    assert any(f"exit {code})" in " ".join(r) for r in rows[1:]), rows


def test_oom_killed_container_is_exit_137(cluster: Cluster, ns: str) -> None:
    # 128 MiB in a shell variable, under a 32 MiB limit, in a child shell: the kernel kills it (the largest
    # process of the cgroup), and the container's first process passes its status (137) on two seconds
    # later. A container whose first process is the one killed ends with it, and containerd can take its
    # exit before the OOM event and report "Error" (containerd issue 8180); so it did here, now and then.
    hog = "sleep 1; sh -c 'a=$(yes | head -c 134217728)'; s=$?; sleep 2; exit $s"
    limits = {"limits": {"memory": "32Mi"}, "requests": {"memory": "32Mi"}}
    _pod(
        cluster,
        ns,
        "hog",
        [{"name": "main", "image": IMAGE, "command": ["sh", "-c", hog], "resources": limits}],
        restartPolicy="Never",
    )
    pod = cluster.wait_one("Pod", "hog", phase("Failed"), namespace=ns, timeout=120)
    terminated = _status(pod, "main")["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137)
    main = _container(cluster.details_json("pod", "hog", "-n", ns), "main")
    assert (main["reason"], main["exitCode"]) == ("OOMKilled", 137)
    described = describe_container(cluster.describe("pod", "hog", ns), "main")
    assert (described["State.Reason"], described["State.Exit Code"]) == ("OOMKilled", "137")


def test_provisioned_claim_written_by_a_job_is_read_by_a_second_pod(cluster: Cluster, ns: str, name: str) -> None:
    cluster.apply("pvc-dynamic", name=name, namespace=ns)
    cluster.apply("job-pvc", name=f"{name}-writer", namespace=ns, claim=name, image=IMAGE)
    cluster.wait_one("Job", f"{name}-writer", has_condition("Complete"), namespace=ns, timeout=180)
    claim = cluster.wait_one("PersistentVolumeClaim", name, phase("Bound"), namespace=ns)
    volume = {"name": "data", "persistentVolumeClaim": {"claimName": name}}
    reader = {"name": "main", "image": IMAGE, "command": ["cat", "/data/written"],
              "volumeMounts": [{"name": "data", "mountPath": "/data"}]}  # fmt: skip
    _pod(cluster, ns, "reader", [reader], restartPolicy="Never", volumes=[volume])
    cluster.wait_one("Pod", "reader", phase("Succeeded"), namespace=ns, timeout=120)
    assert cluster.kubectl("logs", "reader", "-n", ns).stdout == "cyclops\n"

    doc = cluster.details_json("pvc", name, "-n", ns)
    assert (doc["status"], doc["fields"]["volumeName"]) == ("healthy", claim["spec"]["volumeName"])
    assert {p["name"] for p in doc["related"]["usedBy"]} >= {"reader"}
    pv = cluster.details_json("pv", claim["spec"]["volumeName"])
    assert pv["fields"]["claim"] == f"{ns}/{name}"
    rows = table_rows(cluster.cyclops("details", "pvc", name, "-n", ns).stdout)
    assert rows["Phase"] == "Bound"

"""The API server killed while the plugin watches: `details --watch` (one object and list mode) and `wait`
end with the unreachable code, one line, within 30 s. A cluster of its own, since its server is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from e2e.conftest import start_local
from e2e.harness.k8s import VENV_BIN, Cluster, has_condition
from e2e.harness.local import LocalCluster, alive

UNREACHABLE = 8


@pytest.fixture
def doomed(request: pytest.FixtureRequest) -> Iterator[tuple[Cluster, LocalCluster]]:
    local = start_local(request, "this test kills the kube-apiserver of a local control plane of its own", csi=False)
    try:
        cluster = Cluster(local.kubeconfig)
        cluster.kubectl("create", "namespace", "doomed")
        cluster.apply("job", name="paused", namespace="doomed", suspend="true")
        cluster.wait_one("Job", "paused", has_condition("Suspended"), namespace="doomed")
        yield cluster, local
    finally:
        local.stop()


def _plugin(cluster: Cluster, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(VENV_BIN / "kubectl"), "cyclops", *args],
        env=cluster.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _sockets(pid: int) -> int:
    try:
        return sum(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _watching(proc: subprocess.Popen[str], watches: int) -> None:
    """Until the plugin holds a socket per watch (kubectl execs the plugin in its own process)."""
    deadline = time.monotonic() + 30
    while _sockets(proc.pid) < watches:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{_sockets(proc.pid)} sockets after 30s"
        time.sleep(0.1)  # /proc has no event to wait on; polled with a deadline


@pytest.mark.parametrize(
    ("args", "watches"),
    [
        (["details", "jobs", "-A", "--watch"], 3),  # the Jobs, their pods and their events
        (["wait", "job/paused", "-n", "doomed", "--timeout", "10m"], 2),  # no events: no rule of a Job reads them
    ],
    ids=["list-mode-watch", "wait"],
)
def test_killing_the_api_server_ends_the_command_with_exit_8_within_30s(
    doomed: tuple[Cluster, LocalCluster], args: list[str], watches: int
) -> None:
    cluster, local = doomed
    proc = _plugin(cluster, *args)
    _watching(proc, watches)  # listed, and now watched
    apiserver = local.pids["kube-apiserver"]
    os.kill(apiserver, signal.SIGKILL)
    killed = time.monotonic()
    while alive(apiserver):
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=40)
    elapsed = time.monotonic() - killed
    assert proc.returncode == UNREACHABLE, (proc.returncode, stderr)
    assert elapsed < 30, elapsed
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: cannot reach the API server at https://"), lines[0]
    assert "Traceback" not in stderr

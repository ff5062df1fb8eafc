"""The harness, interrupted: Ctrl-C (SIGINT to the process group, as a terminal sends it) to a running
`pytest e2e -n 2` partway through. Afterwards no process, listening port, test namespace or work
directory of that run remains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from e2e.conftest import PREFIX, STATE, provider_name
from e2e.harness.k8s import Cluster
from e2e.test_controlplane import _assert_gone

ROOT = Path(__file__).parent.parent


def _wait_for(what: str, condition: Callable[[], object], proc: subprocess.Popen[str], timeout: float = 120) -> object:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert proc.poll() is None, f"the inner run ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.2)  # files and a namespace list: nothing to watch, polled with a deadline


def test_ctrl_c_to_a_running_suite_leaves_nothing_behind(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if provider_name(request.config) != "local":
        pytest.skip("the inner run starts a local control plane")
    request.getfixturevalue("cluster")  # the outer run's cluster first
    basetemp = tmp_path / "inner"
    prefix = f"{PREFIX}int"
    env = {**os.environ, "CYCLOPS_E2E_PREFIX": prefix}
    cmd = [sys.executable, "-m", "pytest", "e2e/test_job.py", "-n", "2", "-p", "no:cacheprovider"]
    cmd += ["--basetemp", str(basetemp), "-q", "--cluster=local"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    state_file = basetemp / STATE
    _wait_for("cluster", lambda: state_file.exists() and "pids" in state_file.read_text(), proc)
    state = json.loads(state_file.read_text())
    cluster = Cluster(Path(state["kubeconfig"]))

    def test_namespaces() -> list[str]:
        names = cluster.kubectl("get", "namespaces", "-o", "name", check=False).stdout.split()
        return [n for n in names if n.startswith(f"namespace/{prefix}-")]

    _wait_for("test namespace", test_namespaces, proc)  # partway: tests are running
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, output
    assert "KeyboardInterrupt" in output or "Interrupted" in output or "interrupted" in output, output[-2000:]
    _assert_gone(state["pids"], state["ports"], Path(state["workdir"]))  # processes, ports, work directory
    assert not state_file.exists(), "the inner run's controller stopped its cluster and removed its state"
    # Its test namespaces lived in that cluster: with its API server gone, none remains anywhere.
    assert cluster.kubectl("get", "namespaces", "--request-timeout", "5s", check=False).returncode != 0

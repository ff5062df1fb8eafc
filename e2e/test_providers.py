"""The `existing` provider against a running cluster; kind's provider where no engine exists."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from e2e.harness.k8s import Cluster

ROOT = Path(__file__).resolve().parents[1]
JOB_TEST = "e2e/test_job.py::test_single_pod_job_succeeds"
PV_TEST = "e2e/test_pv.py::test_hostpath_pv_binds_and_details_match_api_and_describe"


def pytest_run(basetemp: Path, *args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """A separate pytest session of this suite, as a CI pipeline would start it."""
    env = {k: v for k, v in env.items() if k != "PYTEST_XDIST_WORKER"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"--basetemp={basetemp}", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_existing_provider_validates_a_running_cluster_and_deletes_what_it_created(
    cluster: Cluster, tmp_path: Path
) -> None:
    prefix = f"ex{uuid.uuid4().hex[:6]}"
    report = tmp_path / "existing.xml"
    proc = pytest_run(
        tmp_path / "run",
        f"--junitxml={report}",
        "--cluster=existing",
        f"--kubeconfig={cluster.kubeconfig}",
        PV_TEST,
        JOB_TEST,
        env={**os.environ, "CYCLOPS_E2E_PREFIX": prefix},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    suite = ET.parse(report).getroot().find("testsuite")
    counts = {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "2", "failures": "0", "errors": "0", "skipped": "0"}

    def left(kind: str) -> list[str]:
        items = cluster.kubectl("get", kind, "-o", "json").json()["items"]
        return [
            i["metadata"]["name"]
            for i in items
            if i["metadata"]["name"].startswith(prefix) and not i["metadata"].get("deletionTimestamp")
        ]

    assert left("namespaces") == []
    assert left("persistentvolumes") == []
    assert left("storageclasses") == []


def test_kind_provider_is_skipped_without_a_container_engine(tmp_path: Path) -> None:
    """On a machine without Docker or Podman the kind provider skips (fails under CI) with the reason."""
    if subprocess.run(["sh", "-c", "docker info || podman info"], capture_output=True, check=False).returncode == 0:
        pytest.skip("a container engine answers here; the kind provider would really run")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = pytest_run(tmp_path / "run", "--cluster=kind", JOB_TEST, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout
    assert "kind needs a container engine" in proc.stdout
    ci = pytest_run(tmp_path / "ci", "--cluster=kind", JOB_TEST, env={**env, "CI": "true"})
    assert ci.returncode == 1
    assert "CI is set and no cluster provider is usable" in ci.stdout


def test_the_provider_is_chosen_once_per_run(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine that starts answering in the middle of a run does not change the provider the tests see: it is
    read from what the controller recorded when the run began, not asked of the machine again."""
    from e2e import conftest
    from e2e.harness import providers

    chosen = conftest.provider_name(request.config)
    other = "local" if chosen == "kind" else "kind"
    monkeypatch.setattr(providers, "default_provider", lambda *a, **k: other)
    monkeypatch.setattr(providers, "container_engine", lambda *a, **k: "docker")
    assert conftest.provider_name(request.config) == chosen
    assert conftest.run_info(request.config)["run"]  # and the run's id, which every object it creates carries

"""The release as users install it, against the e2e cluster.

`make dist` builds the wheel, the sdist and the krew archive once per run. The wheel and the sdist are each
installed into a fresh virtualenv without dev extras; krew (built from Go modules) installs the archive, and the
launcher's first-use install reads a package index served on 127.0.0.1 from a wheelhouse of the wheel and its
dependencies, as a mirror of PyPI would serve them. Every command then runs through kubectl's plugin lookup, with
no other kubectl-cyclops on PATH.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from filelock import FileLock

from e2e.conftest import shared_dir
from e2e.harness.k8s import VENV_BIN, Cluster, has_condition

ROOT = Path(__file__).resolve().parents[1]
PYTHON = Path(sys.base_prefix) / "bin" / "python3"  # the interpreter, not this virtualenv's
HEAVY = {"kubernetes", "aiohttp", "pydantic", "requests", "oauthlib"}  # only the extra auth-provider pulls these


class Release(NamedTuple):
    dist: Path
    wheelhouse: Path  # the wheel, its dependencies and setuptools (to build the sdist), as wheels

    def one(self, pattern: str) -> Path:
        (found,) = self.dist.glob(pattern)
        return found


@pytest.fixture(scope="session")
def release(request: pytest.FixtureRequest) -> Release:
    """`make dist` (wheel, sdist, krew archive and manifest, all checked), once per run for every worker."""
    if os.environ.get("CYCLOPS_KIND_OFFLINE"):
        pytest.skip("building the release needs PyPI, which the kind run's network namespace cannot reach")
    if os.environ.get("KUBE_VERSION"):
        pytest.skip("the release is checked once, on the newest Kubernetes; the matrix checks the plugin's reads")
    shared = shared_dir(request.config) / "release"
    built = Release(shared / "dist", shared / "wheelhouse")
    with FileLock(f"{shared}.lock"):
        if not (shared / "done").exists():
            _run(["make", "dist", f"DIST={built.dist}"], cwd=ROOT)
            wheel = built.one("*.whl")
            _run(
                [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(built.wheelhouse), str(wheel), "setuptools>=69"]
            )
            (shared / "done").touch()
    return built


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, **kwargs)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@contextmanager
def package_index(wheelhouse: Path | None, root: Path) -> Iterator[tuple[str, list[str]]]:
    """A PEP 503 simple index of the wheelhouse's files on 127.0.0.1 (an empty one for None): its URL, and the
    paths requested so far."""
    (root / "simple").mkdir(parents=True)
    (root / "files").mkdir()
    projects: dict[str, list[Path]] = {}
    for wheel in sorted(wheelhouse.glob("*.whl")) if wheelhouse else []:
        projects.setdefault(re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower(), []).append(wheel)
        shutil.copy(wheel, root / "files")
    for project, wheels in projects.items():
        (root / "simple" / project).mkdir()
        links = "".join(
            f'<a href="/files/{w.name}#sha256={hashlib.sha256(w.read_bytes()).hexdigest()}">{w.name}</a>\n'
            for w in wheels
        )
        (root / "simple" / project / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            requested.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/", requested
    finally:
        server.shutdown()
        server.server_close()


def _only_kubectl(tmp: Path, *tools: Path) -> str:
    """A PATH with kubectl (and the tools named) and the system's directories: no other kubectl-cyclops."""
    bin_dir = tmp / "tools"
    bin_dir.mkdir()
    for tool in (VENV_BIN / "kubectl", *tools):
        (bin_dir / tool.name).symlink_to(tool)
    return f"{bin_dir}:/usr/bin:/bin"


def _completed_job(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="once", namespace=ns)
    cluster.wait_one("Job", "once", has_condition("Complete"), namespace=ns)


def _works_through_kubectl(env: dict[str, str], plugin: Path, ns: str) -> None:
    """--version, kinds and details of the completed Job, as `kubectl cyclops`, from this installation."""
    kubectl = str(VENV_BIN / "kubectl")
    listed = _run([kubectl, "plugin", "list", "--name-only"], env=env)
    assert "kubectl-cyclops" in listed.stdout.split(), listed
    lookup = _run(["bash", "-c", "command -v kubectl-cyclops"], env=env).stdout.strip()
    assert Path(lookup).resolve() == plugin.resolve(), lookup
    version = _run([kubectl, "cyclops", "--version"], env=env)
    assert version.stdout.strip() == "kubectl-cyclops, version 0.1.0", version.stdout
    kinds = json.loads(_run([kubectl, "cyclops", "kinds", "-o", "json"], env=env).stdout)
    assert {"Job", "PersistentVolume", "Pod"} <= {k["kind"] for k in kinds}
    doc = json.loads(_run([kubectl, "cyclops", "details", "job", "once", "-n", ns, "-o", "json"], env=env).stdout)
    assert (doc["name"], doc["status"], len(doc["related"]["pods"])) == ("once", "healthy", 1), doc


@pytest.mark.parametrize("artifact", ["*.whl", "kubectl_cyclops-*.tar.gz"], ids=["wheel", "sdist"])
def test_the_release_installs_without_dev_extras_and_works_through_kubectl(
    cluster: Cluster, ns: str, release: Release, artifact: str, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    _run([str(PYTHON), "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    with package_index(release.wheelhouse, tmp_path / "index") as (url, _):
        _run([*pip, "install", "-q", "--index-url", url, str(release.one(artifact))])
    installed = {p["name"].lower() for p in json.loads(_run([*pip, "list", "--format", "json"]).stdout)}
    assert "kubectl-cyclops" in installed
    assert not HEAVY & installed, HEAVY & installed
    _completed_job(cluster, ns)
    env = {**cluster.env(), "PATH": f"{venv / 'bin'}:{_only_kubectl(tmp_path)}"}
    _works_through_kubectl(env, venv / "bin" / "kubectl-cyclops", ns)


def test_krew_installs_the_plugin_whose_first_use_installs_the_release_once(
    cluster: Cluster, ns: str, release: Release, tmp_path: Path
) -> None:
    krew = Path(_run(["bash", str(ROOT / "e2e/controlplane/build.sh"), "krew"]).stdout.strip()) / "kubectl-krew"
    krew_root, cache = tmp_path / "krew", tmp_path / "cache"
    env = {
        **cluster.env(),
        "PATH": f"{krew_root / 'bin'}:{_only_kubectl(tmp_path, krew, PYTHON)}",
        "KREW_ROOT": str(krew_root),
        "KREW_NO_UPGRADE_CHECK": "1",
        "XDG_CACHE_HOME": str(cache),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    kubectl = str(VENV_BIN / "kubectl")
    manifest, archive = release.one("cyclops.yaml"), release.one("kubectl-cyclops.tar.gz")
    installed = _run([kubectl, "krew", "install", f"--manifest={manifest}", f"--archive={archive}"], env=env)
    assert "Installed plugin: cyclops" in installed.stderr, installed.stderr
    shim = krew_root / "bin" / "kubectl-cyclops"
    assert shim.is_symlink()
    home = cache / "kubectl-cyclops" / "venv-0.1.0"

    # A first use whose index lacks the release fails, says so, and leaves no half-made virtualenv.
    with package_index(None, tmp_path / "empty") as (url, requested):
        failed = subprocess.run(
            [kubectl, "cyclops", "kinds"], env={**env, "PIP_INDEX_URL": url}, capture_output=True, text=True
        )
    assert failed.returncode != 0, failed
    assert "first run, installing version 0.1.0" in failed.stderr, failed.stderr
    assert "installing version 0.1.0 failed" in failed.stderr.splitlines()[-1], failed.stderr
    assert "/simple/kubectl-cyclops/" in requested, requested
    assert not home.exists()
    assert list(cache.rglob("pyvenv.cfg")) == [], "a failed install leaves no virtualenv behind"

    # The next run installs the release from the index, then runs it.
    _completed_job(cluster, ns)
    with package_index(release.wheelhouse, tmp_path / "index") as (url, requested):
        first = _run([kubectl, "cyclops", "--version"], env={**env, "PIP_INDEX_URL": url})
    assert "first run, installing version 0.1.0" in first.stderr, first.stderr
    assert any(p.startswith("/files/kubectl_cyclops-0.1.0-") for p in requested), requested
    assert not HEAVY & {p.name.split("-")[0].lower() for p in (home / "lib").glob("python3*/site-packages/*")}

    # Later runs use it as it is: the index is gone, and nothing is installed again.
    _works_through_kubectl(env, shim, ns)
    again = _run([kubectl, "cyclops", "--version"], env=env)
    assert "installing" not in again.stderr, again.stderr

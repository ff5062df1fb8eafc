"""The e2e harness: one cluster per run shared by xdist workers, a namespace per test.

Options: --cluster=local|kind|existing (default: kind when a Docker or Podman
engine answers, else local), --context, and pytest-kind's --kubeconfig,
--keep-cluster, --kind-bin, --kind-image, --kind-kubectl-bin.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock
from kubernetes.client.exceptions import ApiException

from e2e.harness import providers
from e2e.harness.k8s import Cluster, interruptible
from e2e.harness.local import LocalCluster

STATE = "cyclops-cluster.json"
# Every object the suite creates carries this label with the run's id; the session deletes whatever is
# left with it and fails if anything remains (a CI pipeline's own cluster must be left as it was found).
RUN_LABEL = "cyclops-e2e/run"
# The kinds the fixtures and tests create, swept and checked at the end of a session.
SWEPT = "namespaces,persistentvolumes,storageclasses,customresourcedefinitions,clusterroles,clusterrolebindings"
# Prefix of every namespace and cluster-scoped object a test creates, so a run can find what it left.
PREFIX = os.environ.get("CYCLOPS_E2E_PREFIX", "cy")
CREATED_BY = {"app.kubernetes.io/created-by": "cyclops-e2e"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cyclops e2e")
    group.addoption(
        "--cluster",
        choices=("local", "kind", "existing"),
        default=None,
        help="Cluster provider (default: kind if a Docker/Podman engine answers, else local).",
    )
    group.addoption("--context", default=None, help="Context in --kubeconfig for --cluster=existing.")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark e2e tests, and hand the slow ones to xdist first (longest first keeps both workers busy)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)
            item.user_properties.append(("provider", provider_name(config)))  # every entry, skipped ones too
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_configure(config: pytest.Config) -> None:
    """The controller (or the only process) chooses the provider and the run's id once; workers read them
    from it (pytest_configure_node), so an engine that starts answering mid-run changes nothing."""
    interruptible()
    if not hasattr(config, "workerinput"):
        chosen = config.getoption("--cluster", default=None) or providers.default_provider()
        # The run's label value starts with a letter: hex digits alone can read as a number to kubectl's YAML
        # (0e70044151 is a float there, though not to PyYAML, which writes it unquoted).
        run = f"r{uuid.uuid4().hex[:9]}"
        config._cyclops_run = {"provider": chosen, "run": run}  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: hand the controller's choice to each worker."""
    node.workerinput["cyclops_run"] = json.dumps(node.config._cyclops_run)


def run_info(config: pytest.Config) -> dict[str, str]:
    """The provider chosen for this run and the run's id, as the controller recorded them."""
    if hasattr(config, "workerinput"):
        return dict(json.loads(config.workerinput["cyclops_run"]))
    return dict(config._cyclops_run)  # type: ignore[attr-defined]


def provider_name(config: pytest.Config) -> str:
    return run_info(config)["provider"]


def shared_dir(config: pytest.Config) -> Path:
    """The controller's basetemp: xdist gives each worker a subdirectory of it."""
    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    return base.parent if hasattr(config, "workerinput") else base


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and no cluster provider is usable: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Cluster:
    config = request.config
    shared = shared_dir(config)
    state_file = shared / STATE
    with FileLock(str(shared / f"{STATE}.lock")):
        if state_file.exists():
            state = json.loads(state_file.read_text())
            if "unavailable" in state:
                _unavailable(state["unavailable"])
            provider = providers.adopt(state)
        else:
            options = {
                "kind_bin": config.getoption("--kind-bin"),
                "kubectl_bin": config.getoption("--kind-kubectl-bin"),
                "image": config.getoption("--kind-image"),
                "kubeconfig": config.getoption("--kubeconfig"),
                "context": config.getoption("--context"),
            }
            provider = providers.make(provider_name(config), options)
            try:
                provider.start()
            except providers.ProviderUnavailable as exc:
                state_file.write_text(json.dumps({"unavailable": str(exc)}))
                _unavailable(str(exc))
            state_file.write_text(json.dumps(provider.state()))
    # Stopped once by pytest_sessionfinish in the controller, not here: other workers may still use it.
    return Cluster(provider.kubeconfig, provider.context, run=run_info(config)["run"])


def start_local(request: pytest.FixtureRequest, why: str, **options: Any) -> LocalCluster:
    """A local control plane of a test's own, started after the shared cluster (its ports are the kernel's
    picks, so it may start while other clusters start)."""
    if provider_name(request.config) != "local":
        pytest.skip(why)
    request.getfixturevalue("cluster")
    return LocalCluster(**options).start()


@pytest.fixture(scope="session")
def provider_state(cluster: Cluster, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The shared cluster's provider state (provider name, and for `local` its work directory and processes)."""
    return dict(json.loads((shared_dir(request.config) / STATE).read_text()))


@pytest.fixture(scope="session")
def hostpath_csi(provider_state: dict[str, Any]) -> LocalCluster:
    """The local provider's cluster, whose CSI driver (hostpath-csi) tests inspect: its state directory, its
    --maxvolumesize, its processes. Other providers provision with their own driver (kind: local-path)."""
    if provider_state.get("provider") != "local" or not provider_state.get("csi_bin_dir"):
        pytest.skip("this test inspects the local provider's CSI driver (hostpath-csi)")
    return LocalCluster.from_state(provider_state)


@pytest.fixture(scope="session")
def server_version(cluster: Cluster) -> str:
    """The API server's gitVersion (v1.34.4): tests compare with the server they run on."""
    return str(cluster.kubectl("version", "-o", "json").json()["serverVersion"]["gitVersion"])


@pytest.fixture(autouse=True)
def _kubernetes_version_in_junit(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> None:
    """Each e2e test's JUnit entry that uses the cluster carries the Kubernetes version it ran against
    (`kubernetes`); the provider (`provider`) is added to every entry at collection."""
    if request.node.get_closest_marker("e2e") and "cluster" in request.fixturenames:
        record_property("kubernetes", request.getfixturevalue("server_version"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (or the only process) stops the shared cluster once, after every worker is done."""
    config = session.config
    if hasattr(config, "workerinput") or not hasattr(config, "_tmp_path_factory"):
        return
    state_file = shared_dir(config) / STATE
    if not state_file.exists():
        return
    state = json.loads(state_file.read_text())
    state_file.unlink()
    if "unavailable" in state:
        return
    provider = providers.adopt(state)
    left = sweep(
        Cluster(provider.kubeconfig, provider.context), run_info(config)["run"], state["provider"] == "existing"
    )
    if left:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        line = f"objects of this run were left in the cluster and could not be deleted: {', '.join(left)}"
        if reporter:
            reporter.write_line(f"ERROR: {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if config.getoption("--keep-cluster"):
        kubeconfig = state.get("kubeconfig") or state.get("workdir")
        print(f"\n--keep-cluster: the cluster is still running; kubeconfig: {kubeconfig}; state: {json.dumps(state)}")
        return
    provider.stop()


def sweep(cluster: Cluster, run: str, wait_for_namespaces: bool) -> list[str]:
    """Delete every object labelled with this run's id that is still there, then list what remains.

    On a cluster the run does not own (`existing`) namespaces are waited for until they are gone; on one it
    is about to delete (local, kind), a namespace that is terminating counts as deleted.
    """
    selector = f"{RUN_LABEL}={run}"
    cluster.kubectl("delete", SWEPT, "-l", selector, "--ignore-not-found", "--wait=false", check=False)
    kinds = SWEPT if wait_for_namespaces else SWEPT.removeprefix("namespaces,")
    cluster.kubectl("wait", "--for=delete", kinds, "-l", selector, "--timeout=120s", check=False)
    listed = cluster.kubectl("get", SWEPT, "-l", selector, "-o", "json", check=False)
    if listed.returncode != 0:
        return [f"(listing failed: {listed.stderr.strip()})"]
    return [
        f"{item['kind']}/{item['metadata']['name']}"
        for item in listed.json()["items"]
        if wait_for_namespaces or item["kind"] != "Namespace" or not item["metadata"].get("deletionTimestamp")
    ]


@pytest.fixture
def ns(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards even when the test fails."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_")).strip("-")
    name = f"{PREFIX}-{slug[:40].strip('-')}-{uuid.uuid4().hex[:5]}"
    cluster.invocations.clear()
    cluster.applied.clear()
    cluster.core.create_namespace({"metadata": {"name": name, "labels": {**CREATED_BY, RUN_LABEL: cluster.run}}})
    # Pods are admitted only once the namespace's default ServiceAccount exists (a real cluster's admission).
    cluster.wait_one("ServiceAccount", "default", lambda _: True, namespace=name, timeout=30)
    request.node.cyclops_ns = name
    try:
        yield name
    finally:
        cluster.cleanup()
        try:
            cluster.core.delete_namespace(name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def name() -> str:
    """A unique name for cluster-scoped fixture objects (PVs, StorageClasses)."""
    return f"{PREFIX}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """On failure: the plugin's output, the fixture objects as YAML, and the namespace's events."""
    outcome = yield
    report = outcome.get_result()
    cluster: Cluster | None = getattr(item, "funcargs", {}).get("cluster")
    if report.when != "call" or not report.failed or cluster is None:
        return
    for inv in cluster.invocations[-5:]:
        report.sections.append(
            (
                f"kubectl {' '.join(inv.args[1:])}",
                f"exit {inv.returncode}\n--- stdout\n{inv.stdout}\n--- stderr\n{inv.stderr}",
            )
        )
    namespace = getattr(item, "cyclops_ns", None)
    for obj in cluster.applied:
        ns_args = ["-n", obj["metadata"]["namespace"]] if obj["metadata"].get("namespace") else []
        got = cluster.kubectl("get", obj["kind"], obj["metadata"]["name"], *ns_args, "-o", "yaml", check=False)
        report.sections.append(
            (
                f"kubectl get {obj['kind']} {obj['metadata']['name']} -o yaml",
                got.stdout or got.stderr,
            )
        )
    if namespace:
        report.sections.append((f"events in {namespace}", cluster.events(namespace)))

"""The local control plane runs the real controllers, and the provider cleans up after itself."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import provider_name
from e2e.harness import local
from e2e.harness.k8s import Cluster, has_condition, phase
from e2e.harness.local import LocalCluster, alive


def test_job_completes_with_pod_succeeded(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="ok", namespace=ns)
    job = cluster.wait_one("Job", "ok", has_condition("Complete"), namespace=ns, timeout=60)
    assert job["status"]["succeeded"] == 1
    pods = cluster.wait(
        "Pod",
        lambda ps: bool(ps) and all(phase("Succeeded")(p) for p in ps),
        namespace=ns,
        labels="job-name=ok",
        what="pods of job ok Succeeded",
    )
    assert len(pods) == 1
    [state] = pods[0]["status"]["containerStatuses"]
    assert state["state"]["terminated"]["exitCode"] == 0


def test_job_fails_once_backoff_limit_is_exhausted(cluster: Cluster, ns: str) -> None:
    cluster.apply("job", name="bad", namespace=ns, backoff_limit=1, fail="true", exit_code=3)
    job = cluster.wait_one("Job", "bad", has_condition("Failed"), namespace=ns, timeout=90)
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 2  # the first try and one retry
    pods = cluster.wait(
        "Pod",
        lambda ps: len(ps) == 2 and all(phase("Failed")(p) for p in ps),
        namespace=ns,
        labels="job-name=bad",
        what="two failed pods",
    )
    codes = {p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] for p in pods}
    assert codes == {3}


def test_static_pv_and_claim_bind_to_each_other(cluster: Cluster, ns: str, name: str) -> None:
    cluster.apply("pv-hostpath", name=name, namespace=ns)
    claim = cluster.wait_one("PersistentVolumeClaim", f"{name}-claim", phase("Bound"), namespace=ns)
    pv = cluster.wait_one("PersistentVolume", name, phase("Bound"))
    assert claim["spec"]["volumeName"] == name
    assert pv["spec"]["claimRef"]["name"] == f"{name}-claim"
    assert pv["spec"]["claimRef"]["namespace"] == ns
    assert pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]


# ---------------------------------------------------------------- teardown of the provider


@pytest.fixture
def local_only(request: pytest.FixtureRequest) -> None:
    """Local provider only, after the shared cluster is up."""
    if provider_name(request.config) != "local":
        pytest.skip("teardown tests exercise the local provider")
    request.getfixturevalue("cluster")


def _listeners(ports: list[int]) -> dict[int, list[int]]:
    """For each TCP port, the pids of processes with a socket listening on it (TIME_WAIT does not count)."""
    wanted = set(ports)
    port_of = {}  # socket inode -> port
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            port = int(cols[1].rsplit(":", 1)[1], 16)
            if cols[3] == "0A" and port in wanted:
                port_of[f"socket:[{cols[9]}]"] = port
    found: dict[int, list[int]] = {p: [] for p in ports}
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):  # one pass over every process's descriptors
        try:
            held = {port_of[link] for link in map(os.readlink, fd_dir.iterdir()) if link in port_of}
        except OSError:
            continue  # a process that ended meanwhile
        for port in held:
            found[port].append(int(fd_dir.parent.name))
    return found


def _of_cluster(pid: int, workdir: Path) -> bool:
    """Whether a process belongs to the cluster: every component is started with paths in its work directory."""
    try:
        return str(workdir) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _assert_gone(pids: dict[str, int], ports: list[int], workdir: Path) -> None:
    """No recorded process alive, no process of the cluster (recorded or not) listening on its ports, no work
    directory. Another cluster started meanwhile may have been given a freed port: its listener is no leak."""
    assert [name for name, pid in pids.items() if alive(pid)] == []
    leaked = {p: pid for p, pids in _listeners(ports).items() for pid in pids if _of_cluster(pid, workdir)}
    assert leaked == {}, subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    assert not workdir.exists()


@pytest.mark.usefixtures("local_only")
def test_leaving_the_with_block_on_an_exception_leaves_no_process_port_or_directory() -> None:
    """`with LocalCluster()` stops the whole cluster, CSI stack included, even when its body raises;
    stop() again is a no-op. (One cluster for both: each start costs the suite seconds of CPU.)"""
    seen: dict = {}

    def use_then_fail() -> None:
        with LocalCluster() as cluster:
            seen.update(cluster=cluster, pids=dict(cluster.pids), ports=list(cluster.ports), workdir=cluster.workdir)
            seen["socket"] = cluster.csi_dir.joinpath("csi.sock").is_socket()
            seen["alive"] = all(alive(pid) for pid in cluster.pids.values())
            seen["listening"] = bool(cluster.ports) and all(_listeners(cluster.ports).values())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        use_then_fail()
    assert set(seen["pids"]) == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok-controller",
        "hostpath-csi",
        "csi-provisioner",
        "csi-resizer",
    }
    assert seen["socket"]
    assert seen["alive"]
    assert seen["listening"]
    _assert_gone(seen["pids"], seen["ports"], seen["workdir"])
    seen["cluster"].stop()  # idempotent
    _assert_gone(seen["pids"], seen["ports"], seen["workdir"])


@pytest.mark.usefixtures("local_only")
@pytest.mark.parametrize("interrupt", [RuntimeError("start failed"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_failure_during_start_tears_down(monkeypatch: pytest.MonkeyPatch, interrupt: BaseException) -> None:
    """An exception (or Ctrl-C) after the processes are up but before the cluster is ready."""
    created: list[LocalCluster] = []

    def interrupted(kubeconfig: object, deadline: float, exited: object) -> None:
        created[0].pids_at_interrupt = dict(created[0].pids)
        raise interrupt

    monkeypatch.setattr(local, "wait_until_usable", interrupted)
    cluster = LocalCluster(csi=False)
    created.append(cluster)
    with pytest.raises(type(interrupt)):
        cluster.start()
    assert len(cluster.pids_at_interrupt) == 5, "the processes had started before the interruption"
    _assert_gone(cluster.pids, cluster.ports, cluster.workdir)


@pytest.mark.usefixtures("local_only")
def test_a_component_exiting_during_start_gets_one_fresh_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first attempt reports an exited component (as a port clash would); the retry starts cleanly."""
    real_wait = local.wait_until_usable
    first: dict = {}

    def exited_once(kubeconfig: object, deadline: float, exited: object) -> None:
        if not first:
            first.update(workdir=cluster.workdir, pids=dict(cluster.pids), ports=list(cluster.ports))
            raise local.ComponentExited("kwok-controller")
        real_wait(kubeconfig, deadline=deadline, exited=exited)

    monkeypatch.setattr(local, "wait_until_usable", exited_once)
    cluster = LocalCluster(csi=False)
    with cluster:
        assert cluster.workdir != first["workdir"]
        assert cluster.kubeconfig.is_relative_to(cluster.workdir)
        assert Cluster(cluster.kubeconfig).core.list_node().items
        _assert_gone(first["pids"], [p for p in first["ports"] if p not in cluster.ports], first["workdir"])
    _assert_gone(cluster.pids, cluster.ports, cluster.workdir)


# ---------------------------------------------------------------- loopback only


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} writes it: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def _listening_addresses(pids: set[int]) -> dict[int, list[str]]:
    """For each process, the address:port of every TCP socket it listens on."""
    bound: dict[str, str] = {}  # socket inode -> address:port
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A":
                host, port = cols[1].rsplit(":", 1)
                bound[f"socket:[{cols[9]}]"] = f"{_address(host)}:{int(port, 16)}"
    found: dict[int, list[str]] = {}
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        found[pid] = sorted(bound[link] for link in links if link in bound)
    return found


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def test_every_process_of_the_local_cluster_listens_on_loopback_only(
    local_only: None, provider_state: dict[str, Any]
) -> None:
    """etcd's ports are plain HTTP without authentication: reachable from the network, they would give
    anyone every Secret of the cluster. Every component and CSI sidecar must bind 127.0.0.1."""
    workdir = Path(provider_state["workdir"])
    pids = set(provider_state["pids"].values())
    pids |= {int(p.name) for p in Path("/proc").glob("[0-9]*") if _of_cluster(int(p.name), workdir)}
    listening = _listening_addresses(pids)
    names = {pid: Path(f"/proc/{pid}/comm").read_text().strip() for pid in listening if Path(f"/proc/{pid}").exists()}
    assert {"etcd", "kube-apiserver", "kwok-controller"} <= set(names.values()), names
    assert sum(map(len, listening.values())) >= 6, listening  # etcd twice, apiserver, KCM, scheduler, kwok
    exposed = {
        f"{names.get(pid, pid)} ({pid})": [a for a in addrs if not _loopback(a)] for pid, addrs in listening.items()
    }
    assert {k: v for k, v in exposed.items() if v} == {}

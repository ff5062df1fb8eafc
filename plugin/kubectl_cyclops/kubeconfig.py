"""kubeconfig resolution as kubectl does it, without the kubernetes client.

Follows client-go's loading rules: `--kubeconfig` names one file that must
exist; otherwise `$KUBECONFIG` is a list whose files are merged first-wins
(per cluster, user and context name, and for current-context), missing files
skipped; otherwise `~/.kube/config`. Relative file references are resolved
against the directory of the file that names them (an exec command only when
it contains a path separator). Without any kubeconfig, a pod's service
account is used. `tests/test_kubeconfig.py` compares the result with
`kubectl config view --minify --raw --flatten` over a corpus of kubeconfigs.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from . import errors

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Target(NamedTuple):
    """Everything needed to talk to one cluster as one user: a resolved kubeconfig context."""

    server: str
    namespace: str = "default"
    context: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    exec: dict[str, Any] | None = None
    auth_provider: dict[str, Any] | None = None
    source: str = ""  # the kubeconfig path(s), for messages
    cluster: dict[str, Any] | None = None  # the kubeconfig's cluster entry, for exec's cluster info


def _read(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=_Loader)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path} is not a kubeconfig mapping")
    return doc


def _absolute(base: str, value: Any) -> Any:
    if isinstance(value, str) and value and not os.path.isabs(value):
        return os.path.join(base, value)
    return value


def _resolve_paths(doc: dict[str, Any], path: str) -> None:
    """client-go's ResolveLocalPaths: file references relative to the file that holds them."""
    base = os.path.dirname(os.path.abspath(path))
    for entry in doc.get("clusters") or []:
        cluster = (entry or {}).get("cluster") or {}
        if "certificate-authority" in cluster:
            cluster["certificate-authority"] = _absolute(base, cluster["certificate-authority"])
    for entry in doc.get("users") or []:
        user = (entry or {}).get("user") or {}
        for key in ("client-certificate", "client-key", "tokenFile"):
            if key in user:
                user[key] = _absolute(base, user[key])
        exec_ = user.get("exec") or {}
        command = exec_.get("command")
        if isinstance(command, str) and os.sep in command:
            exec_["command"] = _absolute(base, command)


def merged(paths: list[str]) -> dict[str, Any]:
    """The files merged first-wins: a name defined twice keeps its first definition."""
    out: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    for path in paths:
        doc = _read(path)
        _resolve_paths(doc, path)
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for entry in doc.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") is not None:
                    out[section].setdefault(str(entry["name"]), entry.get(inner) or {})
        if not out["current-context"] and doc.get("current-context"):
            out["current-context"] = str(doc["current-context"])
    return out


def files(kubeconfig: str | None) -> tuple[list[str], str]:
    """The kubeconfig files to merge, and how to name them in messages."""
    if kubeconfig:
        if not os.path.exists(kubeconfig):
            raise errors.ConfigError(f"no kubeconfig found at {kubeconfig}: the file does not exist")
        return [kubeconfig], kubeconfig
    env = os.environ.get("KUBECONFIG")
    if env:
        listed = [p for p in env.split(os.pathsep) if p]
        seen: list[str] = []
        for p in listed:
            if p not in seen and os.path.exists(p):
                seen.append(p)
        return seen, env
    default = os.path.expanduser("~/.kube/config")
    return ([default] if os.path.exists(default) else []), default


def _data(entry: dict[str, Any], key: str, where: str) -> bytes | None:
    """`key-data` (base64) wins over the file named by `key`, as in client-go."""
    if entry.get(f"{key}-data"):
        try:
            return base64.b64decode(entry[f"{key}-data"], validate=True)
        except (binascii.Error, ValueError):
            raise errors.ConfigError(f"{where}: {key}-data is not valid base64") from None
    if entry.get(key):
        try:
            return Path(entry[key]).read_bytes()
        except OSError as exc:
            raise errors.ConfigError(f"{where}: cannot read {key} {entry[key]}: {exc.strerror}") from None
    return None


def resolve(kubeconfig: str | None, context: str | None) -> Target:
    """The cluster, user and namespace kubectl would use for these flags and this environment."""
    paths, named = files(kubeconfig)
    if not paths:
        if not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
            return in_cluster()
        raise errors.ConfigError(f"no kubeconfig found at {named}: pass --kubeconfig or set KUBECONFIG")
    try:
        config = merged(paths)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        raise errors.ConfigError(f"cannot load kubeconfig {named}: {reason}") from None
    name = context or config["current-context"]
    if not name:
        raise errors.ConfigError(f"kubeconfig {named} has no current-context: pass --context")
    ctx = config["contexts"].get(name)
    if ctx is None:
        if context:
            known = ", ".join(config["contexts"]) or "none"
            raise errors.ConfigError(f'context "{context}" not found in kubeconfig {named} (contexts: {known})')
        raise errors.ConfigError(f'kubeconfig {named}: current-context "{name}" does not exist')
    cluster = config["clusters"].get(str(ctx.get("cluster") or ""))
    if cluster is None:
        raise errors.ConfigError(
            f'kubeconfig {named}: context "{name}" names cluster "{ctx.get("cluster")}", not found'
        )
    if not cluster.get("server"):
        raise errors.ConfigError(f'kubeconfig {named}: cluster "{ctx.get("cluster")}" has no server')
    user = config["users"].get(str(ctx.get("user") or "")) or {}
    where = f"kubeconfig {named}"
    return Target(
        server=str(cluster["server"]).rstrip("/"),
        namespace=str(ctx.get("namespace") or "default"),
        context=name,
        ca_data=_data(cluster, "certificate-authority", where),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
        proxy_url=cluster.get("proxy-url") or None,
        cert_data=_data(user, "client-certificate", where),
        key_data=_data(user, "client-key", where),
        token=user.get("token") or None,
        token_file=user.get("tokenFile") or None,
        username=user.get("username") or None,
        password=user.get("password") or None,
        exec=user.get("exec") or None,
        auth_provider=user.get("auth-provider") or None,
        source=named,
        cluster=cluster,
    )


def in_cluster() -> Target:
    """A pod's service account, as rest.InClusterConfig reads it."""
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host
    root = Path(SERVICE_ACCOUNT)
    try:
        namespace = (root / "namespace").read_text().strip() or "default"
    except OSError:
        namespace = "default"
    ca = root / "ca.crt"
    return Target(
        server=f"https://{host}:{port}",
        namespace=namespace,
        ca_data=ca.read_bytes() if ca.exists() else None,
        token_file=str(root / "token"),
        source="in-cluster service account",
    )

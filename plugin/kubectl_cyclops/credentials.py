"""Credentials: the headers and client certificate a kubeconfig's user gives, as kubectl reads them.

Bearer tokens and token files, basic auth, exec credential plugins
(client.authentication.k8s.io v1 and v1beta1) and the legacy `auth-provider`
plugins (oidc, gcp, azure), which only the kubernetes client knows how to
refresh: the only module that may import it.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from typing import Any

from . import __version__, errors
from .kubeconfig import Target

JSON = dict[str, Any]
USER_AGENT = f"kubectl-cyclops/{__version__}"
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")


def _exec_credential(target: Target) -> JSON:
    """Run an exec credential plugin (client.authentication.k8s.io v1 or v1beta1) and read its status."""
    spec = target.exec or {}
    api_version = spec.get("apiVersion") or ""
    command = spec.get("command") or ""
    if api_version not in EXEC_API_VERSIONS:
        raise errors.ConfigError(f"exec plugin {command}: unsupported apiVersion {api_version!r}")
    mode = spec.get("interactiveMode") or ("IfAvailable" if api_version.endswith("v1beta1") else "")
    if api_version.endswith("/v1") and mode not in ("Never", "IfAvailable", "Always"):
        raise errors.ConfigError(f"exec plugin {command}: interactiveMode must be Never, IfAvailable or Always")
    tty = sys.stdin.isatty()
    if mode == "Always" and not tty:
        raise errors.ConfigError(f"exec plugin {command} needs an interactive terminal (interactiveMode: Always)")
    interactive = mode != "Never" and tty
    request: JSON = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": interactive}}
    if spec.get("provideClusterInfo"):
        cluster = {"server": target.server, "insecure-skip-tls-verify": target.insecure}
        if target.ca_data:
            cluster["certificate-authority-data"] = base64.b64encode(target.ca_data).decode()
        if target.tls_server_name:
            cluster["tls-server-name"] = target.tls_server_name
        if target.proxy_url:
            cluster["proxy-url"] = target.proxy_url
        extensions = (target.cluster or {}).get("extensions")
        config = extensions[0] if extensions else None
        request["spec"]["cluster"] = {k: v for k, v in cluster.items() if v} | ({"config": config} if config else {})
    env = dict(os.environ)
    env.update({str(e.get("name")): str(e.get("value")) for e in spec.get("env") or [] if isinstance(e, dict)})
    env["KUBERNETES_EXEC_INFO"] = json.dumps(request)
    import subprocess  # only for exec plugins: other starts do not pay for it

    try:
        done = subprocess.run(
            [command, *[str(a) for a in spec.get("args") or []]],
            env=env,
            stdin=None if interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None,  # the plugin's prompts and errors reach the user, as with kubectl
            check=False,
        )
    except OSError as exc:
        hint = f" ({spec['installHint'].strip()})" if spec.get("installHint") else ""
        raise errors.ConfigError(f"exec plugin {command}: {exc.strerror}{hint}") from None
    if done.returncode:
        raise errors.ConfigError(f"exec plugin {command} exited with status {done.returncode}")
    try:
        cred = json.loads(done.stdout)
    except ValueError:
        raise errors.ConfigError(f"exec plugin {command} did not print an ExecCredential") from None
    if cred.get("apiVersion") != api_version or cred.get("kind") != "ExecCredential":
        raise errors.ConfigError(f"exec plugin {command}: expected an ExecCredential of {api_version}")
    status = cred.get("status") or {}
    if not status.get("token") and not (status.get("clientCertificateData") and status.get("clientKeyData")):
        raise errors.ConfigError(f"exec plugin {command}: the ExecCredential has neither a token nor a certificate")
    return status


def _auth_provider_token(target: Target, kubeconfig: str | None, context: str | None) -> str:
    """Legacy auth-provider plugins (oidc, gcp, azure): the kubernetes client refreshes them."""
    name = (target.auth_provider or {}).get("name")
    try:
        from kubernetes import client, config  # only here: a heavy import that other paths never pay
    except ImportError:
        raise errors.ConfigError(
            f"auth-provider {name} needs the kubernetes client: pip install 'kubectl-cyclops[auth-provider]'"
        ) from None

    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig or None, context=target.context, client_configuration=configuration
        )
    except Exception as exc:  # the client raises a variety of errors for broken provider configs
        reason = " ".join(str(exc).split())
        raise errors.ConfigError(f"auth-provider {name}: {reason}") from None
    header = str((configuration.api_key or {}).get("authorization", ""))
    return header.removeprefix("Bearer ").strip()


def headers_for(target: Target, kubeconfig: str | None, context: str | None) -> tuple[dict[str, str], JSON]:
    """The Authorization header (if any) and client certificate data an exec plugin may give."""
    headers = {"User-Agent": USER_AGENT}
    extra: JSON = {}
    token = target.token
    if target.exec:
        status = _exec_credential(target)
        token = status.get("token") or None
        if status.get("clientCertificateData"):
            extra = {"cert": status["clientCertificateData"].encode(), "key": status["clientKeyData"].encode()}
    elif target.auth_provider:
        token = _auth_provider_token(target, kubeconfig, context)
    if not token and target.token_file:
        try:
            with open(target.token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            raise errors.ConfigError(f"cannot read token file {target.token_file}: {exc.strerror}") from None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif target.username is not None and target.password is not None:
        basic = base64.b64encode(f"{target.username}:{target.password}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    return headers, extra

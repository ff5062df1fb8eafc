"""kubeconfig resolution without the kubernetes client, compared with the real kubectl.

For each kubeconfig of a corpus (multi-file merges, relative paths, every
credential kind, exec plugins), what `kubeconfig.resolve` gives must equal
what `kubectl config view --minify --raw --flatten` prints. Then the
credentials a server receives are compared too: kubectl and the plugin each
send a request to a local HTTP server that records the Authorization header.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from kubectl_cyclops import credentials, errors, kube
from kubectl_cyclops.kubeconfig import Target, resolve

KUBECTL = str(Path(sys.executable).parent / "kubectl")
CA = b"-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n"
CERT = b"-----BEGIN CERTIFICATE-----\nMIIBclient\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIkey\n-----END EC PRIVATE KEY-----\n"
EXEC_SCRIPT = """#!/bin/sh
# An exec credential plugin: prints an ExecCredential whose token names its argument and environment.
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"exec-%s-%s"}}' \
  "$(echo "$KUBERNETES_EXEC_INFO" | sed 's/.*"apiVersion": *"\\([^"]*\\)".*/\\1/')" "$1" "$CYCLOPS_TEST_ENV"
"""


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def config(clusters: dict, users: dict, contexts: dict, current: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": c} for n, c in contexts.items()],
    }
    if current is not None:
        doc["current-context"] = current
    return doc


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def corpus(tmp_path: Path) -> dict[str, tuple[dict[str, str], list[str]]]:
    """name -> (environment, extra arguments): each a way people point kubectl at a cluster."""
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_bytes(CA)
    (tmp_path / "certs" / "client.crt").write_bytes(CERT)
    (tmp_path / "certs" / "client.key").write_bytes(KEY)
    (tmp_path / "token").write_text("file-token\n")
    plugin = tmp_path / "bin" / "cred-plugin"
    plugin.parent.mkdir()
    plugin.write_text(EXEC_SCRIPT)
    plugin.chmod(0o755)

    files = {
        "token": write(
            tmp_path / "token.yaml",
            config(
                {"c": {"server": "https://10.0.0.1:6443", "certificate-authority-data": b64(CA)}},
                {"u": {"token": "abc"}},
                {"ctx": {"cluster": "c", "user": "u", "namespace": "team"}},
                "ctx",
            ),
        ),
        "relative": write(
            tmp_path / "nested" / "relative.yaml",
            config(
                {"c": {"server": "https://api.example:443", "certificate-authority": "../certs/ca.crt"}},
                {"u": {"client-certificate": "../certs/client.crt", "client-key": "../certs/client.key"}},
                {"ctx": {"cluster": "c", "user": "u"}},
                "ctx",
            ),
        ),
        "token-file": write(
            tmp_path / "nested" / "tokenfile.yaml",
            config(
                {
                    "c": {
                        "server": "https://h:1",
                        "insecure-skip-tls-verify": True,
                        "tls-server-name": "api.internal",
                        "proxy-url": "http://proxy.local:3128",
                    }
                },
                {"u": {"tokenFile": "../token"}},
                {"ctx": {"cluster": "c", "user": "u"}},
                "ctx",
            ),
        ),
        "basic": write(
            tmp_path / "basic.yaml",
            config(
                {"c": {"server": "https://h:2"}},
                {"u": {"username": "ann", "password": "s3cret"}},
                {"ctx": {"cluster": "c", "user": "u", "namespace": "basic-ns"}},
                "ctx",
            ),
        ),
        "data": write(
            tmp_path / "data.yaml",
            config(
                {"c": {"server": "https://h:3", "certificate-authority-data": b64(CA)}},
                {"u": {"client-certificate-data": b64(CERT), "client-key-data": b64(KEY)}},
                {"ctx": {"cluster": "c", "user": "u"}},
                "ctx",
            ),
        ),
        "exec-v1": write(
            tmp_path / "execs" / "exec.yaml",
            config(
                {"c": {"server": "https://h:4"}},
                {
                    "u": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1",
                            "command": "../bin/cred-plugin",
                            "args": ["one"],
                            "env": [{"name": "CYCLOPS_TEST_ENV", "value": "v1env"}],
                            "interactiveMode": "Never",
                        }
                    },
                    "b": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "cred-plugin",
                            "args": ["two"],
                        }
                    },
                },
                {"ctx": {"cluster": "c", "user": "u"}, "beta": {"cluster": "c", "user": "b", "namespace": "b"}},
                "ctx",
            ),
        ),
        # Merged with the token file: "ctx" and cluster "c" are defined first there and win; this file adds "other".
        "merge-second": write(
            tmp_path / "merge" / "second.yaml",
            config(
                {"c": {"server": "https://loses:9"}, "c2": {"server": "https://second:6443"}},
                {"u": {"token": "loses"}, "u2": {"token": "second-token"}},
                {"ctx": {"cluster": "c2", "user": "u2"}, "other": {"cluster": "c2", "user": "u2", "namespace": "o"}},
                "other",
            ),
        ),
        "no-current": write(
            tmp_path / "merge" / "nocurrent.yaml",
            config(
                {"c3": {"server": "https://third:6443"}},
                {"u3": {"token": "third"}},
                {"third": {"cluster": "c3", "user": "u3"}},
            ),
        ),
    }
    env_list = lambda *names: os.pathsep.join(str(files[n]) for n in names)  # noqa: E731
    return {
        "token": ({"KUBECONFIG": str(files["token"])}, []),
        "relative paths": ({"KUBECONFIG": str(files["relative"])}, []),
        "token file, insecure, server name, proxy": ({"KUBECONFIG": str(files["token-file"])}, []),
        "basic auth": ({"KUBECONFIG": str(files["basic"])}, []),
        "inline data": ({"KUBECONFIG": str(files["data"])}, []),
        "exec v1, relative command": ({"KUBECONFIG": str(files["exec-v1"])}, []),
        "exec v1beta1, command on PATH, --context": ({"KUBECONFIG": str(files["exec-v1"])}, ["--context", "beta"]),
        "merge: first file wins": ({"KUBECONFIG": env_list("token", "merge-second")}, []),
        "merge: second file's context": ({"KUBECONFIG": env_list("token", "merge-second")}, ["--context", "other"]),
        "merge: current-context from a later file": ({"KUBECONFIG": env_list("no-current", "merge-second")}, []),
        "merge: missing files are skipped": (
            {"KUBECONFIG": os.pathsep.join([str(tmp_path / "missing"), str(files["basic"])])},
            [],
        ),
        "--kubeconfig overrides KUBECONFIG": (
            {"KUBECONFIG": str(files["token"])},
            ["--kubeconfig", str(files["basic"])],
        ),
    }


def kubectl_view(env: dict[str, str], args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [KUBECTL, "config", "view", "--minify", "--raw", "--flatten", "-o", "json", *args],
        env={"PATH": os.environ["PATH"], "HOME": env.get("HOME", "/nonexistent"), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def kubectl_facts(view: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    [cluster], [user], [context] = view["clusters"], view["users"], view["contexts"]
    c, u = cluster["cluster"], user.get("user") or {}
    token_file = u.get("tokenFile")
    if token_file and not os.path.isabs(token_file):
        # `config view` prints tokenFile as written; client-go reads it relative to the file that names it
        # (test_the_server_receives_the_credentials_kubectl_sends shows kubectl doing so).
        token_file = os.path.join(os.path.dirname(env["KUBECONFIG"]), token_file)
    exec_ = u.get("exec")
    if exec_ and os.sep in exec_["command"] and not os.path.isabs(exec_["command"]):
        exec_["command"] = os.path.join(os.path.dirname(env["KUBECONFIG"]), exec_["command"])  # likewise
    return {
        "server": c["server"],
        "ca": c.get("certificate-authority-data"),
        "insecure": bool(c.get("insecure-skip-tls-verify")),
        "tls-server-name": c.get("tls-server-name"),
        "proxy-url": c.get("proxy-url"),
        "cert": u.get("client-certificate-data"),
        "key": u.get("client-key-data"),
        "token": u.get("token"),
        "tokenFile": token_file,
        "basic": (u.get("username"), u.get("password")),
        "exec": None
        if exec_ is None
        else {k: exec_.get(k) for k in ("command", "args", "apiVersion")} | {"env": exec_.get("env") or None},
        "namespace": context["context"].get("namespace") or "default",
    }


def our_facts(target: Target) -> dict[str, Any]:
    exec_ = target.exec
    return {
        "server": target.server,
        "ca": b64(target.ca_data) if target.ca_data else None,
        "insecure": target.insecure,
        "tls-server-name": target.tls_server_name,
        "proxy-url": target.proxy_url,
        "cert": b64(target.cert_data) if target.cert_data else None,
        "key": b64(target.key_data) if target.key_data else None,
        "token": target.token,
        "tokenFile": target.token_file,
        "basic": (target.username, target.password),
        "exec": None
        if exec_ is None
        else {k: exec_.get(k) for k in ("command", "args", "apiVersion")} | {"env": exec_.get("env") or None},
        "namespace": target.namespace,
    }


def our_resolve(env: dict[str, str], args: list[str], monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("KUBECONFIG", env.get("KUBECONFIG", ""))
    flags = dict(zip(args[::2], args[1::2], strict=True))
    return resolve(flags.get("--kubeconfig"), flags.get("--context"))


def test_every_kubeconfig_resolves_as_kubectl_resolves_it(corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(corpus) >= 12
    for name, (env, args) in corpus.items():
        expected = kubectl_facts(kubectl_view(env, args), env)
        assert our_facts(our_resolve(env, args, monkeypatch)) == expected, name


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every GET with an empty APIVersions and keeps the Authorization and User-Agent headers."""

    seen: ClassVar[list[tuple[str | None, str | None]]] = []

    def do_GET(self) -> None:
        Recorder.seen.append((self.headers.get("Authorization"), self.headers.get("User-Agent")))
        body = b'{"kind":"APIVersions","versions":["v1"]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server(tls: tuple[Path, Path]) -> Iterator[dict[str, str]]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {
        "server": f"https://127.0.0.1:{httpd.server_address[1]}",
        "certificate-authority-data": b64(tls[0].read_bytes()),
    }
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    "user",
    [
        {"token": "plain-token"},
        {"tokenFile": "../token"},
        {"username": "ann", "password": "s3cret"},
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "./cred-plugin",
                "args": ["x"],
                "env": [{"name": "CYCLOPS_TEST_ENV", "value": "e1"}],
                "interactiveMode": "Never",
            }
        },
        {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "./cred-plugin", "args": ["yy"]}},
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "./cred-plugin",
                "interactiveMode": "IfAvailable",
                "provideClusterInfo": True,
            }
        },
    ],
    ids=["token", "tokenFile", "basic", "exec-v1", "exec-v1beta1", "exec-cluster-info"],
)
def test_the_server_receives_the_credentials_kubectl_sends(tmp_path: Path, server: dict, user: dict) -> None:
    (tmp_path / "token").write_text("from-file\n")
    (tmp_path / "conf" / "cred-plugin").parent.mkdir()
    (tmp_path / "conf" / "cred-plugin").write_text(EXEC_SCRIPT)
    (tmp_path / "conf" / "cred-plugin").chmod(0o755)
    path = write(
        tmp_path / "conf" / "config", config({"c": server}, {"u": user}, {"x": {"cluster": "c", "user": "u"}}, "x")
    )
    Recorder.seen = []
    subprocess.run(
        [KUBECTL, "--kubeconfig", str(path), "get", "--raw", "/api"],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    api = kube.connect(str(path), None, 5)
    assert api.get("/api")["kind"] == "APIVersions"
    (kubectl_auth, _), (ours, agent) = Recorder.seen[-2:]
    assert kubectl_auth is not None
    assert ours == kubectl_auth
    assert agent == credentials.USER_AGENT


def test_exec_plugin_failures_are_one_clear_config_error(tmp_path: Path) -> None:
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "no-such-plugin-here",
            "interactiveMode": "Never",
            "installHint": "install it from example.org",
        }
    }
    path = write(
        tmp_path / "config",
        config({"c": {"server": "https://h:1"}}, {"u": user}, {"x": {"cluster": "c", "user": "u"}}, "x"),
    )
    with pytest.raises(errors.ConfigError, match=r"no-such-plugin-here.*install it from example\.org"):
        kube.connect(str(path), None, None)
    user["exec"]["interactiveMode"] = "Always"
    write(path, config({"c": {"server": "https://h:1"}}, {"u": user}, {"x": {"cluster": "c", "user": "u"}}, "x"))
    with pytest.raises(errors.ConfigError, match="interactive terminal"):
        kube.connect(str(path), None, None)


def test_in_cluster_service_account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setattr("kubectl_cyclops.kubeconfig.SERVICE_ACCOUNT", str(tmp_path))
    (tmp_path / "namespace").write_text("apps\n")
    (tmp_path / "ca.crt").write_bytes(CA)
    target = resolve(None, None)
    assert (target.server, target.namespace, target.ca_data) == ("https://10.96.0.1:443", "apps", CA)
    assert target.token_file == str(tmp_path / "token")


def test_a_legacy_auth_provider_without_the_extra_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kubernetes` is the extra `auth-provider`: without it installed, such a kubeconfig is exit 3 (config)."""
    from click.testing import CliRunner

    from kubectl_cyclops import cli
    from tests.conftest import one_line

    user = {"auth-provider": {"name": "oidc", "config": {"id-token": "t", "idp-issuer-url": "https://h"}}}
    path = write(
        tmp_path / "config",
        config({"c": {"server": "https://h:1"}}, {"u": user}, {"x": {"cluster": "c", "user": "u"}}, "x"),
    )
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # as if not installed: importing it raises ImportError
    result = CliRunner().invoke(cli.cli, ["details", "pods", "--kubeconfig", str(path)])
    line = one_line(result, errors.ExitCode.CONFIG)
    assert line == "error: auth-provider oidc needs the kubernetes client: pip install 'kubectl-cyclops[auth-provider]'"

"""Faults on real sockets: a small TLS server the kubeconfig points at serves answers recorded from a real
cluster, then misbehaves: a body cut short, an answer that is not JSON, a slow answer, a watch stream
that ends mid-event. Each gives one clean line and a documented exit code."""

from __future__ import annotations

import base64
import http.server
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import yaml
from click.testing import CliRunner, Result

from kubectl_cyclops import cli, informer
from kubectl_cyclops.errors import ExitCode
from tests.conftest import one_line
from tests.replay import DISCOVERY, key, load


class Misbehaving(http.server.BaseHTTPRequestHandler):
    """Answers from a recording; `fault` decides how the answer to `target` (a path) goes wrong."""

    answers: ClassVar[dict[str, Any]] = {}
    fault: ClassVar[str] = "none"
    target: ClassVar[str] = ""
    peers: ClassVar[list[str]] = []  # the subject CN of each request's client certificate ("" for none)

    def do_GET(self) -> None:
        peer = dict(pair[0] for pair in (self.connection.getpeercert() or {}).get("subject", ()))
        self.peers.append(peer.get("commonName", ""))
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query))
        path = unquote(parts.path)
        if self.fault == "slow":
            time.sleep(2)
        if params.get("watch") == "true":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            if self.fault == "truncated-watch":
                self.wfile.write(b'{"type":"MODIFIED","object":{"kind":"Jo')  # and the connection closes
            return
        answer = self.answers.get(key(path, params, self.headers.get("Accept")))
        if answer is None:
            self.send_error(404)
            return
        body = json.dumps(answer["body"]).encode()
        if path == self.target and self.fault == "garbage":
            body = b"<html>502 Bad Gateway</html>"
        self.send_response(answer["status"])
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if path == self.target and self.fault == "cut":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    """A client that gave up (a timeout) breaks the pipe: expected here, so not printed on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@pytest.fixture
def server(tls: tuple[Path, Path], tmp_path: Path) -> Iterator[Any]:
    """Start the server; returns a function (recording, fault, target) -> kubeconfig path."""
    httpd = QuietServer(("127.0.0.1", 0), Misbehaving)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls)
    context.verify_mode = ssl.CERT_OPTIONAL  # a client certificate, if sent, must be signed by the same key
    context.load_verify_locations(tls[0])
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def configure(recording: str, fault: str, target: str = "", user: dict[str, str] | None = None) -> Path:
        Misbehaving.answers = {**json.loads(DISCOVERY.read_text()), **load(recording)["phases"][0]}
        Misbehaving.fault, Misbehaving.target, Misbehaving.peers = fault, target, []
        config = tmp_path / "kubeconfig"
        cluster = {
            "server": f"https://127.0.0.1:{httpd.server_address[1]}",
            "certificate-authority-data": base64.b64encode(tls[0].read_bytes()).decode(),
        }
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "t",
                    "clusters": [{"name": "c", "cluster": cluster}],
                    "users": [{"name": "u", "user": user or {"token": "t"}}],
                    "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u", "namespace": "rec"}}],
                }
            )
        )
        return config

    yield configure
    httpd.shutdown()
    httpd.server_close()


def run(config: Path, tmp_path: Path, *args: str) -> Result:
    argv = [*args, "--kubeconfig", str(config), "--cache-dir", str(tmp_path / "cache")]
    return CliRunner().invoke(cli.cli, argv, catch_exceptions=False)


JOB = "/apis/batch/v1/namespaces/rec/jobs/done"


def test_the_recorded_answers_work_through_the_server(server, tmp_path: Path) -> None:
    result = run(server("job-complete", "none"), tmp_path, "details", "job", "done")
    assert result.exit_code == 0, result.stderr
    assert "Status:           healthy" in result.stdout


@pytest.mark.parametrize("memfd", [True, False], ids=["memfd", "private-file"])
def test_a_client_certificate_reaches_the_server_and_leaves_no_file(
    server, tls: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memfd: bool
) -> None:
    """ssl reads a client key from a path only: an anonymous memory file on Linux, else a private temporary file."""
    if not memfd:
        monkeypatch.delattr(os, "memfd_create")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    pem = {k: base64.b64encode(p.read_bytes()).decode() for k, p in zip(("cert", "key"), tls, strict=True)}
    user = {"client-certificate-data": pem["cert"], "client-key-data": pem["key"]}
    result = run(server("job-complete", "none", user=user), tmp_path, "details", "job", "done")
    assert result.exit_code == 0, result.stderr
    assert set(Misbehaving.peers) == {"127.0.0.1"}  # every request came with the certificate
    assert list(scratch.iterdir()) == []


def test_a_body_cut_short_is_one_line_and_exit_8(server, tmp_path: Path) -> None:
    line = one_line(run(server("job-complete", "cut", JOB), tmp_path, "details", "job", "done"), ExitCode.UNREACHABLE)
    assert line.startswith("error: cannot reach the API server at https://127.0.0.1:")
    assert "IncompleteRead" in line


def test_an_answer_that_is_not_json_is_one_line_and_exit_8(server, tmp_path: Path) -> None:
    line = one_line(
        run(server("job-complete", "garbage", JOB), tmp_path, "details", "job", "done"), ExitCode.UNREACHABLE
    )
    assert f"its answer to GET {JOB} is not JSON" in line


def test_a_slow_server_and_a_short_request_timeout(server, tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(server("job-complete", "slow"), tmp_path, "details", "job", "done", "--request-timeout", "1s")
    assert one_line(result, ExitCode.UNREACHABLE).endswith("the request timed out (see --request-timeout)")
    assert time.monotonic() - started < 5


def test_a_watch_stream_that_ends_mid_event_ends_the_wait_with_exit_8(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(informer, "RETRIES", 2)
    config = server("wait-job-timeout", "truncated-watch")
    line = one_line(run(config, tmp_path, "wait", "job/paused", "--timeout", "1m"), ExitCode.UNREACHABLE)
    assert line.endswith("ended mid-event")


@pytest.mark.parametrize("output", ["table", "json", "yaml"])
def test_the_console_script_writes_all_of_its_output_before_it_exits(server, tmp_path: Path, output: str) -> None:
    """entry._exit ends the process without finalizing the interpreter, after flushing what is buffered."""
    config = server("job-complete", "none")
    script = Path(sys.executable).parent / "kubectl-cyclops"
    argv = [str(script), "details", "job", "done", "-o", output, "--kubeconfig", str(config)]
    env = {**os.environ, "KUBECTL_CYCLOPS_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    expected = run(config, tmp_path, "details", "job", "done", "-o", output)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == expected.stdout
    assert len(done.stdout) > 500

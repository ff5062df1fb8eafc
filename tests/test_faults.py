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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import yaml
from click.testing import CliRunner, Result

from kubectl_cyclops import cli, informer, kube, paging
from kubectl_cyclops.errors import ExitCode
from tests.conftest import one_line
from tests.replay import DISCOVERY, key, load


@dataclass
class Pushback:
    """One answer a busy server gives (once) instead of the recorded one, to a GET or a watch of `path`."""

    path: str
    status: int
    retry_after: str | None = None
    reason: str = "TooManyRequests"
    watch: bool = False
    token: str | None = None  # an Expired list's continuation token, in its Status
    at: str | None = None  # only for a request with this continue token


class Misbehaving(http.server.BaseHTTPRequestHandler):
    """Answers from a recording; `fault` decides how the answer to `target` (a path) goes wrong.

    `pushback` answers come first, once each, as a busy server's; with `paged`, lists are served in pages
    of the request's `limit` (continue tokens `p<offset>`) from the recorded whole list; `seen` keeps every
    request, `GET path?query` or `WATCH path`.
    """

    protocol_version = "HTTP/1.1"  # kept-alive connections, as an API server's
    answers: ClassVar[dict[str, Any]] = {}
    fault: ClassVar[str] = "none"
    target: ClassVar[str] = ""
    peers: ClassVar[list[str]] = []  # the subject CN of each request's client certificate ("" for none)
    pushback: ClassVar[list[Pushback]] = []
    paged: ClassVar[bool] = False
    seen: ClassVar[list[str]] = []
    served: ClassVar[list[int]] = []  # answers per connection, in the order the connections came

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _pushed_back(self, path: str, params: dict[str, str]) -> bool:
        watch = params.get("watch") == "true"
        for p in self.pushback:
            if p.path == path and p.watch == watch and p.at in (None, params.get("continue")):
                self.pushback.remove(p)
                status = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "code": p.status,
                    "reason": p.reason,
                    "message": f"the server says {p.reason}",
                    "metadata": {"continue": p.token} if p.token else {},
                }
                self._send(
                    p.status, json.dumps(status).encode(), {"Retry-After": p.retry_after} if p.retry_after else {}
                )
                return True
        return False

    def _page(self, path: str, params: dict[str, str]) -> dict[str, Any] | None:
        whole = self.answers.get(key(path, {**{k: v for k, v in params.items() if k != "continue"}, "limit": "500"}))
        if whole is None or "items" not in whole["body"] or ("limit" not in params and "continue" in params):
            return None
        items = whole["body"]["items"]
        start = int(params.get("continue", "p0")[1:])
        size = int(params["limit"]) if "limit" in params else len(items)
        body = {**whole["body"], "items": items[start : start + size], "metadata": {**whole["body"]["metadata"]}}
        if start + size < len(items):
            body["metadata"]["continue"] = f"p{start + size}"
        return body

    def do_GET(self) -> None:
        peer = dict(pair[0] for pair in (self.connection.getpeercert() or {}).get("subject", ()))
        self.peers.append(peer.get("commonName", ""))
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query))
        path = unquote(parts.path)
        self.seen.append(("WATCH " + path) if params.get("watch") == "true" else f"GET {self.path}")
        # One handler per connection: its own count (a socket's id may be a closed one's again)
        if not hasattr(self, "_mine"):
            self._mine = len(self.served)
            self.served.append(0)
        self.served[self._mine] += 1
        if self.fault == "reset-kept-alive" and self.served[self._mine] == 2:
            self.close_connection = True  # the second request on a kept-alive connection finds it closed
            return
        if self._pushed_back(path, params):
            return
        if self.paged and (page := self._page(path, params)) is not None:
            self._send(200, json.dumps(page).encode())
            return
        if self.fault == "slow":
            time.sleep(2)
        if params.get("watch") == "true":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if self.fault == "truncated-watch":
                self.wfile.write(b'{"type":"MODIFIED","object":{"kind":"Jo')  # and the connection closes
            if self.fault == "quiet-watch":  # open, with nothing to say, for longer than the waits of these tests
                self.wfile.flush()
                time.sleep(5)
            return
        answer = self.answers.get(key(path, params, self.headers.get("Accept")))
        if answer is None:
            self._send(
                404, json.dumps({"kind": "Status", "code": 404, "message": f"not recorded: {self.path}"}).encode()
            )
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
        Misbehaving.pushback, Misbehaving.paged, Misbehaving.seen, Misbehaving.served = [], False, [], []
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
    result = run(server("job-complete", "slow"), tmp_path, "details", "job", "done", "--request-timeout", "1s")
    assert one_line(result, ExitCode.UNREACHABLE).endswith("the request timed out (see --request-timeout)")


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


# ---------------------------------------------------------------- a server that pushes back


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The retries' clock and pauses, faked: the pauses asked for, and no real wait (no wall-clock test)."""
    paused: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        paused.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(kube, "clock", lambda: now[0])
    monkeypatch.setattr(kube, "sleep", sleep)
    return paused


def test_429_with_retry_after_twice_then_success(server, tmp_path: Path, fake_clock: list[float]) -> None:
    config = server("job-complete", "none")
    Misbehaving.pushback = [Pushback(JOB, 429, "1"), Pushback(JOB, 429, "1")]
    result = run(config, tmp_path, "details", "job", "done")
    assert result.exit_code == 0, result.stderr
    assert "Status:           healthy" in result.stdout
    assert fake_clock == [1.0, 1.0]  # the time the server asked for, twice: at least 2 s in all
    assert [r for r in Misbehaving.seen if r.startswith(f"GET {JOB}")] == [f"GET {JOB}"] * 3


def test_each_retry_is_a_line_with_debug(
    server, tmp_path: Path, fake_clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = server("job-complete", "none")
    Misbehaving.pushback = [Pushback(JOB, 503, None, "ServiceUnavailable"), Pushback(JOB, 500, "2", "InternalError")]
    monkeypatch.setenv("KUBECTL_CYCLOPS_DEBUG", "1")
    result = run(config, tmp_path, "details", "job", "done")
    assert result.exit_code == 0, result.stderr
    assert fake_clock == [1.0, 2.0]  # 503 without Retry-After: 1 s; 500 with it: the time given
    assert result.stderr.splitlines() == [
        f"retry 2/10 in 1s: GET {JOB}: HTTP 503",
        f"retry 3/10 in 2s: GET {JOB}: HTTP 500",
    ]


def test_503_forever_within_a_request_timeout_is_exit_8_naming_the_reason(
    server, tmp_path: Path, fake_clock: list[float]
) -> None:
    config = server("job-complete", "none")
    Misbehaving.pushback = [Pushback(JOB, 503, "1", "ServiceUnavailable") for _ in range(20)]
    result = run(config, tmp_path, "details", "job", "done", "--request-timeout", "3s")
    line = one_line(result, ExitCode.UNREACHABLE)
    assert line == (
        f"error: cannot use the API server at {config_server(config)}: the server answered HTTP 503 "
        "(ServiceUnavailable): the server says ServiceUnavailable (still after 4 tries, within --request-timeout 3s)"
    )
    assert sum(fake_clock) <= 4  # within 4 s of the first answer


def test_429_ten_times_keeps_its_mapped_exit_code(server, tmp_path: Path, fake_clock: list[float]) -> None:
    config = server("job-complete", "none")
    Misbehaving.pushback = [Pushback(JOB, 429, "1") for _ in range(10)]
    line = one_line(run(config, tmp_path, "details", "job", "done"), ExitCode.ERROR)
    assert line == "error: the server answered HTTP 429 (TooManyRequests): the server says TooManyRequests"
    assert fake_clock == [1.0] * 9  # ten tries, as client-go


@pytest.mark.parametrize("status", [400, 404, 500, 502])
def test_other_answers_are_not_retried(server, tmp_path: Path, fake_clock: list[float], status: int) -> None:
    config = server("job-complete", "none")
    Misbehaving.pushback = [Pushback(JOB, status, None, "Whatever")]
    result = run(config, tmp_path, "details", "job", "done")
    assert result.exit_code != 0
    assert fake_clock == []
    assert Misbehaving.seen.count(f"GET {JOB}") == 1


def test_a_kept_alive_connection_the_server_closed_is_tried_again_on_a_fresh_one(server, tmp_path: Path) -> None:
    config = server("job-complete", "reset-kept-alive")
    result = run(config, tmp_path, "details", "job", "done")
    assert result.exit_code == 0, result.stderr
    assert "Status:           healthy" in result.stdout
    assert len(Misbehaving.served) > 1  # a second connection was opened after the first was dropped


@pytest.mark.parametrize("offered", [True, False], ids=["inconsistent-continue", "relist"])
def test_an_expired_continue_token_on_the_third_page_loses_and_repeats_nothing(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offered: bool
) -> None:
    """Every ConfigMap of a real cluster, served two a page; the third page's token has expired."""
    config = server("list-configmaps", "none")
    Misbehaving.paged = True
    monkeypatch.setattr(paging, "PAGE_SIZE", 2)
    listed = "/api/v1/configmaps"
    Misbehaving.pushback = [Pushback(listed, 410, None, "Expired", token="p4" if offered else None, at="p4")]
    whole = load("list-configmaps")["phases"][0][f"GET {listed}?limit=500"]["body"]["items"]
    recorded = [(c["metadata"]["namespace"], c["metadata"]["name"]) for c in whole]
    assert len(recorded) > 4  # the third page exists
    result = run(config, tmp_path, "details", "configmaps", "-A", "-o", "json")
    assert result.exit_code == 0, result.stderr
    docs = json.loads(result.stdout)
    assert [(d["namespace"], d["name"]) for d in docs] == recorded  # every ConfigMap once, in order
    said = "changed while it was read" if offered else "expired while it was read"
    assert all(said in " ".join(d["warnings"]) for d in docs[4:]), [d["warnings"] for d in docs]
    assert not any(said in " ".join(d["warnings"]) for d in docs[:4])
    assert result.stderr.count(said) == len(recorded) - 4
    asked = [r for r in Misbehaving.seen if r.startswith(f"GET {listed}")]
    if offered:  # the expired page again, with the token the server offered, then the rest
        assert asked == [f"GET {listed}?limit=2", *(f"GET {listed}?limit=2&continue=p{i}" for i in (2, 4, 4, 6))]
    else:  # once more, whole
        assert asked == [
            f"GET {listed}?limit=2",
            *(f"GET {listed}?limit=2&continue=p{i}" for i in (2, 4)),
            f"GET {listed}",
        ]


def test_a_watch_that_answers_429_while_reestablishing_is_tried_again(
    server, tmp_path: Path, fake_clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(informer, "RETRIES", 2)
    config = server("wait-job-timeout", "quiet-watch")
    jobs = "/apis/batch/v1/namespaces/rec/jobs"
    Misbehaving.pushback = [Pushback(jobs, 429, "1", watch=True)]
    result = run(config, tmp_path, "wait", "job/paused", "--timeout", "2s")
    assert result.exit_code == ExitCode.WAIT_TIMEOUT, result.stderr
    assert Misbehaving.seen.count(f"WATCH {jobs}") >= 2  # the 429, then the watch it retried
    assert 1.0 in fake_clock


def config_server(config: Path) -> str:
    return str(yaml.safe_load(config.read_text())["clusters"][0]["cluster"]["server"])

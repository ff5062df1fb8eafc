"""Every error class: one line on stderr, a documented exit code, nothing on stdout, no traceback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from kubectl_cyclops import cli, kube
from kubectl_cyclops.errors import ExitCode
from tests.conftest import one_line


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ("error-not-found", ExitCode.NOT_FOUND, 'error: jobs.batch "nope" not found in namespace "rec"'),
        ("error-bad-selector", ExitCode.USAGE, "error: the server rejected the request: unable to parse requirement"),
        ("error-forbidden", ExitCode.FORBIDDEN, 'system:serviceaccount:rec:nobody" cannot get resource "jobs"'),
        ("error-unauthorized", ExitCode.UNAUTHORIZED, "error: the server rejected the credentials (Unauthorized)"),
    ],
)
def test_recorded_api_errors(replay, name: str, code: int, says: str) -> None:
    result, _ = replay(name)
    assert says in one_line(result, code)


def test_unknown_kind(replay) -> None:
    result, _ = replay("pv", argv=["details", "frobnicators", "x"])
    assert one_line(result, ExitCode.UNKNOWN_KIND) == (
        'error: the server doesn\'t have a resource type "frobnicators" (see: kubectl api-resources)'
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["details", "job", "x", "-A"], "a resource cannot be retrieved by name across all namespaces"),
        (["details", "job", "x", "-l", "a=b"], "name cannot be provided when a selector is specified"),
        (["details", "job/x", "y"], "give either KIND/NAME or KIND NAME"),
        (["details", "job", "x", "--request-timeout", "soon"], 'invalid --request-timeout "soon"'),
        (["details", "job", "x", "-o", "xml"], "Invalid value for '-o' / '--output': 'xml' is not one of"),
        (["details", "job", "x", "--bogus"], "No such option '--bogus'"),
        (["details"], "Missing argument 'KIND[/NAME]'"),
        (["wait", "job", "x", "--for", "done"], "Invalid value for '--for': 'done' is not one of"),
    ],
)
def test_usage_errors_change_nothing_and_say_why(replay, argv: list[str], says: str) -> None:
    result, api = replay("job-complete", argv=argv)
    assert says in one_line(result, ExitCode.USAGE)
    assert api.requests == []


def test_an_unknown_kind_with_terminal_escapes_is_echoed_escaped(replay) -> None:
    result, _ = replay("pv", argv=["details", "\x1b[31mred\x07", "x"])
    assert one_line(result, ExitCode.UNKNOWN_KIND) == (
        'error: the server doesn\'t have a resource type "\\x1b[31mred\\x07" (see: kubectl api-resources)'
    )


def test_click_errors_are_one_escaped_line(replay) -> None:
    result, api = replay("pv", argv=["details", "pv", "x", "-o", "\x1b]0;owned\x07"])
    line = one_line(result, ExitCode.USAGE)
    assert "\x1b" not in line
    assert "'\\x1b]0;owned\\x07' is not one of" in line
    assert api.requests == []


def kubeconfig(path: Path, server: str, context: str = "test") -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": context,
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    return path


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.cli, list(args), env=env, catch_exceptions=False)


def test_no_kubeconfig(tmp_path: Path) -> None:
    result = invoke("details", "pv", "x", env={"KUBECONFIG": str(tmp_path / "missing")})
    assert one_line(result, ExitCode.CONFIG).startswith(f"error: no kubeconfig found at {tmp_path / 'missing'}")


def test_unknown_context(tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "config", "https://127.0.0.1:1")
    result = invoke("details", "pv", "x", "--kubeconfig", str(config), "--context", "elsewhere")
    assert one_line(result, ExitCode.CONFIG) == (
        f'error: context "elsewhere" not found in kubeconfig {config} (contexts: test)'
    )


def test_malformed_kubeconfig(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("clusters: [unclosed")
    assert "cannot load kubeconfig" in one_line(invoke("details", "pv", "--kubeconfig", str(config)), ExitCode.CONFIG)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server(tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "config", f"http://127.0.0.1:{_closed_port()}")
    result = invoke("details", "pv", "x", "--kubeconfig", str(config), "--cache-dir", str(tmp_path))
    assert one_line(result, ExitCode.UNREACHABLE).endswith(": connection refused")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_silent_tls_server_fails_at_the_handshake_timeout_without_request_timeout(
    tmp_path: Path, silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server accepts the connection and never speaks: the handshake timeout ends it (10 s; 1 s here)."""
    monkeypatch.setattr(kube, "CONNECT_TIMEOUT", 1.0)
    config = kubeconfig(tmp_path / "config", f"https://127.0.0.1:{silent_server}")
    result = invoke("details", "pv", "x", "--kubeconfig", str(config), "--cache-dir", str(tmp_path))
    assert one_line(result, ExitCode.UNREACHABLE) == (
        f"error: cannot reach the API server at https://127.0.0.1:{silent_server}: "
        "no connection and TLS handshake within 1s"
    )


def test_silent_server_respects_request_timeout(tmp_path: Path, silent_server: int) -> None:
    config = kubeconfig(tmp_path / "config", f"http://127.0.0.1:{silent_server}")
    result = invoke(
        "details", "pv", "x", "--kubeconfig", str(config), "--request-timeout", "1s", "--cache-dir", str(tmp_path)
    )
    assert "timed out (see --request-timeout)" in one_line(result, ExitCode.UNREACHABLE)


def test_a_bad_field_map_is_one_line_before_any_request(replay, tmp_path: Path) -> None:
    """Every rule of the format has a map in tests/fieldmap-corpus (test_fieldmap_schema.py); here, one through
    `details`: rejected before the kind is read."""
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "pod.yaml").write_text(
        "apiVersion: kubectl-cyclops/v1\nkind: FieldMap\nresource: {group: '', version: v1, kind: Pod}\n"
        "fields: [{name: x, path: .a, wide: 'false'}]\n"
    )
    result, api = replay("pod", "--field-maps", str(tmp_path / "maps"))
    line = one_line(result, ExitCode.FIELD_MAP)
    assert line == (
        f"error: invalid field map {tmp_path / 'maps' / 'pod.yaml'}: fields[0]: unknown key(s) wide; "
        "allowed: args, format, ifAbsent, name, omitEmpty, path, paths, show, title"
    )
    assert api.requests == []


def test_field_map_directory_must_exist(tmp_path: Path) -> None:
    result = invoke("kinds", "--field-maps", str(tmp_path / "nowhere"))
    assert "field map directory does not exist" in one_line(result, ExitCode.FIELD_MAP)


def test_a_bad_user_map_is_rejected_even_for_another_kind(replay, tmp_path: Path) -> None:
    """User maps are checked when loaded, not only when their kind is shown."""
    (tmp_path / "ds.yaml").write_text(
        "apiVersion: kubectl-cyclops/v1\nkind: FieldMap\nresource: {group: apps, version: v1, kind: DaemonSet}\n"
        "fields: [{name: x, path: '.a[?(@'}]\n"
    )
    result, api = replay("pv", "--field-maps", str(tmp_path))
    assert "ds.yaml: fields[0] (x): bad JSONPath" in one_line(result, ExitCode.FIELD_MAP)
    assert api.requests == []

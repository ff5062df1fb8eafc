"""Unit tests replay API answers recorded from a real cluster (tests/record.py); nothing here needs one."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from kubectl_cyclops import cli, informer, kube, selection
from tests.replay import ReplayApi, load

# The same examples on every run, however loaded the machine: a failure is the code's, not the draw's or the
# clock's. `pytest --hypothesis-profile=explore` draws new ones.
settings.register_profile(
    "repeatable", derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("repeatable")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-expected", action="store_true", help="Rewrite tests/expected/ from the current output.")


def recorded_now(recording: dict) -> datetime:
    """A fixed 'now' a minute after the newest timestamp in a recording, so ages are stable."""
    stamps = []

    def walk(v: object) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and len(v) == 20 and v[4] == "-" and v.endswith("Z"):
            stamps.append(datetime.fromisoformat(v.replace("Z", "+00:00")))

    walk([recording["phases"], recording.get("streams")])
    return max(stamps, default=datetime(2026, 1, 1, tzinfo=UTC)) + timedelta(minutes=1)


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., tuple[Result, ReplayApi]]:
    """Run the CLI against a recording: replay("pv", "-o", "json") -> (result, api)."""

    def run(
        name: str,
        *extra: str,
        argv: list[str] | None = None,
        interrupt: bool = False,
        stdin: str | None = None,
        late: str | None = None,
    ) -> tuple[Result, ReplayApi]:
        """`interrupt`: Ctrl-C once every recorded watch stream was replayed (ends --watch); `late`: hold back
        the streams whose scope holds this text until the others have nothing left (tests/replay.py)."""
        recording = load(name)
        api = ReplayApi(recording, interrupt, late)
        monkeypatch.setattr(kube, "connect", lambda *a: api)
        monkeypatch.setattr(informer, "clock", api.replay.sim)
        monkeypatch.setattr(selection, "now", lambda: recorded_now(recording))
        args = [*(argv if argv is not None else recording["argv"]), *extra, "--cache-dir", str(tmp_path / "cache")]
        args = [a for a in args if a != "--watch"] + (["--watch"] if "--watch" in (argv or recording["argv"]) else [])
        return CliRunner().invoke(cli.cli, args, catch_exceptions=False, input=stdin), api

    return run


def one_line(result: Result, code: int) -> str:
    """The single stderr line of a failed command, after checking its exit code and empty stdout."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


_SPACE = re.compile(r"\s*")


def documents(text: str) -> list:
    """Every JSON document in a stream of concatenated documents (what --watch -o json prints)."""
    decoder, docs = json.JSONDecoder(), []
    end, i = len(text.rstrip()), _SPACE.match(text).end()
    while i < end:
        doc, i = decoder.raw_decode(text, i)
        docs.append(doc)
        i = _SPACE.match(text, i).end()
    return docs


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (kubectl sends credentials over TLS only)."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "server.crt", where / "server.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key

"""The console script as users run it, in a process of its own: it ends without finalizing the
interpreter (entry._exit), so its exit code, its flushed output and a reader that went away are
checked here, where that exit really happens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kubectl_cyclops.errors import ExitCode

SCRIPT = str(Path(sys.executable).parent / "kubectl-cyclops")


def run(*args: str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBECTL_CYCLOPS")}
    return subprocess.run([SCRIPT, *args], stdout=stdout, stderr=subprocess.PIPE, text=True, env=env, check=False)


def test_the_whole_document_is_written_and_the_exit_code_is_zero() -> None:
    done = run("kinds", "-o", "json")
    assert (done.returncode, done.stderr) == (0, "")
    kinds = json.loads(done.stdout)
    assert {"PersistentVolume", "Job"} <= {k["kind"] for k in kinds}


def test_a_usage_error_keeps_its_exit_code_and_its_one_line() -> None:
    done = run("details", "--output", "xml", "pods")
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("error: ")


def test_a_reader_gone_before_the_last_flush_is_exit_141_without_a_message() -> None:
    read, write = os.pipe()
    os.close(read)  # nobody will read: the buffered output fails when it is flushed
    try:
        done = run("kinds", stdout=write)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (ExitCode.BROKEN_PIPE, "")


def test_a_full_disk_is_one_line_and_exit_1() -> None:
    with open("/dev/full", "w") as full:
        done = run("kinds", "-o", "json", stdout=full.fileno())
    assert done.returncode == ExitCode.ERROR
    assert done.stderr.count("\n") == 1
    assert "No space left on device" in done.stderr
    assert "Traceback" not in done.stderr

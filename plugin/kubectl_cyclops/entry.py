"""The console scripts' entry points: answer `--version` before importing anything else.

`kubectl-cyclops --version` is what scripts and krew run to check the plugin;
it prints exactly what Click's version option prints, without loading Click
(or typing: this module imports nothing that Python has not loaded at start).
"""

from __future__ import annotations

import os
import sys

from . import __version__


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"kubectl-cyclops, version {__version__}\n")
        return
    import gc

    # Start-up allocates much and leaves no cyclic garbage: the cycle collector would only slow the imports
    # down. The long-running commands (details --watch, wait) switch it on again.
    gc.disable()
    from .cli import main as run

    try:
        run()
    except SystemExit as done:
        _exit(done.code)


def _exit(code: object) -> None:
    """End the process once its output is out, without finalizing the interpreter: tearing down every
    module and object takes a noticeable part of a one-object call and does nothing for a command that is done.
    atexit handlers do not run (the plugin registers none; its thread pools are joined by then).
    A code that is not a number is printed and exits 1, as Python's own exit does."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away after the last write: as cli.Group does for earlier ones
        from .errors import ExitCode

        code = ExitCode.BROKEN_PIPE
    sys.stderr.flush()
    os._exit(code)


def complete() -> None:
    from .cli import complete as run

    run()

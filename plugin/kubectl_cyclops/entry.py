"""The console scripts' entry points: answer `--version` before importing anything else.

`kubectl-cyclops --version` is what scripts and krew run to check the plugin;
it prints exactly what Click's version option prints, without loading Click.
"""

from __future__ import annotations

import sys

from . import __version__


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"kubectl-cyclops, version {__version__}\n")
        return
    import gc

    # Start-up allocates much and leaves no cyclic garbage: without the cycle collector the imports take 9%
    # less time. The long-running commands (details --watch, wait) switch it on again.
    gc.disable()
    from .cli import main as run

    run()


def complete() -> None:
    from .cli import complete as run

    run()

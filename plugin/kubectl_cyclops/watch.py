"""--watch: render, then render again whenever what is shown changes, on the informer (informer.py).

The first collection lists every scope it reads into the informer's stores;
later ones read only the stores, so a change costs no request. A deleted
object keeps its last rendering and is watched until it comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import errors
from .informer import Informer
from .kube import Api


def run(
    informer: Informer,
    collect: Callable[[Api], Any],
    shown_of: Callable[[Any], Any],
    render: Callable[[Any], None],
) -> None:
    """Render, then re-render on every change of `shown_of(state)` until interrupted (KeyboardInterrupt)."""
    state = collect(informer.cached)
    render(state)
    shown = shown_of(state)
    while True:
        informer.changes()
        try:
            state = collect(informer.cached)
        except errors.NotFoundError:
            continue
        if shown_of(state) != shown:
            shown = shown_of(state)
            render(state)

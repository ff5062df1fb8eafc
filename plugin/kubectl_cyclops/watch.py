"""--watch: render, then render again whenever what is shown changes, on the informer (informer.py).

The first collection lists every scope it reads into the informer's stores;
later ones read only the stores, so a change costs no request. A deleted
object keeps its last rendering and is watched until it comes back. A
rendering with a new status is taken from stores synced up to the event that
decided it (Informer.sync), so a Job shown healthy is shown with its pods as
they were by then; that can cost a list of a store that is behind.
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
    statuses_of: Callable[[Any], Any],
) -> None:
    """Render, then re-render on every change of `shown_of(state)` until interrupted (KeyboardInterrupt)."""
    state = collect(informer.cached)
    render(state)
    shown, statuses = shown_of(state), statuses_of(state)
    while True:
        informer.changes()
        try:
            state = collect(informer.cached)
            if statuses_of(state) != statuses and informer.sync():
                state = collect(informer.cached)
        except errors.NotFoundError:
            continue
        if shown_of(state) != shown:
            shown, statuses = shown_of(state), statuses_of(state)
            render(state)

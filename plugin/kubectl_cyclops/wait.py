"""`wait`: until every object has the status asked for, on the informer; fail fast, time out, say why.

Statuses are the ones `details` computes from each kind's field map. Waiting
for `healthy` ends at once when an object is `failed`. A NAME must exist (as
with kubectl wait), unless waiting for `deleted`; a selector may match nothing
yet: the wait goes on until objects match and have the status, or time runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import errors
from .details import Details
from .informer import Informer
from .kube import Api


@dataclass
class Outcome:
    """How a wait ended: `met`, `failed` (an object failed while waiting for healthy) or `timeout`.

    `items` are the objects to show: all of them when met, the failed ones, or those not there yet.
    """

    result: str
    items: list[Details] = field(default_factory=list)
    matched: int = 0


def status(d: Details) -> str:
    return d.subject.evaluation.status


def verdict(items: list[Details], goal: str) -> Outcome | None:
    if goal == "deleted":
        return Outcome("met", [], 0) if not items else None
    failed = [d for d in items if status(d) == "failed"]
    if goal == "healthy" and failed:
        return Outcome("failed", failed, len(items))
    if items and all(status(d) == goal for d in items):
        return Outcome("met", items, len(items))
    return None


def wait(
    informer: Informer,
    collect: Callable[[Api], list[Details]],
    goal: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Evaluate from the informer's stores after every change until the goal is met, failed or timed out.

    `collect` raises NotFoundError for a NAME that does not exist: that is the
    goal when waiting for `deleted`, an error before it was seen, and an error
    (deleted while waiting) after.
    """
    deadline = clock() + timeout
    seen = False
    while True:
        try:
            items = collect(informer.cached)
        except errors.NotFoundError as exc:
            if goal == "deleted":
                return Outcome("met")
            if seen:
                raise errors.NotFoundError(f"{exc.message} (deleted while waiting)") from None
            raise
        seen = True
        outcome = verdict(items, goal)
        if outcome is not None:
            return outcome
        remaining = deadline - clock()
        if remaining <= 0:
            return Outcome("timeout", [d for d in items if status(d) != goal], len(items))
        informer.changes(timeout=remaining)


def _said(d: Details) -> str:
    reason = d.subject.evaluation.reason
    return status(d) + (f": {reason}" if reason else "")


def _name(d: Details, qualified: str) -> str:
    return f"{qualified}/{d.subject.name}" + (f" -n {d.subject.namespace}" if d.subject.namespace else "")


def summary(outcome: Outcome, goal: str, qualified: str, name: str | None) -> list[str]:
    """One line per object that got there: `jobs.batch/ok -n ci healthy: Complete=True (...)`."""
    if goal == "deleted":
        return [f"{qualified}/{name} deleted" if name else f"no {qualified} left"]
    return [f"{_name(d, qualified)} {_said(d)}" for d in outcome.items]


def failure(outcome: Outcome, goal: str, timeout: str, qualified: str, where: str) -> errors.CyclopsError:
    """The one stderr line for a failed or timed-out wait, naming each object and why."""
    named = "; ".join(f"{_name(d, qualified)} {_said(d)}" for d in outcome.items)
    if outcome.result == "failed":
        return errors.WaitFailedError(f"{len(outcome.items)} of {outcome.matched} failed: {named}")
    if not outcome.matched and goal != "deleted":
        return errors.WaitTimeoutError(f"timed out after {timeout}: nothing matched {where}")
    return errors.WaitTimeoutError(
        f"timed out after {timeout} waiting for {goal}: {len(outcome.items)} of {outcome.matched} not {goal}: {named}"
    )

"""`wait`: until every object has the status asked for, on the informer; fail fast, time out, say why.

Statuses are the ones `details` computes from each kind's field map. Waiting
for `healthy` ends at once when an object is `failed`. A NAME must exist (as
with kubectl wait), unless waiting for `deleted`; a selector may match nothing
yet: the wait goes on until objects match and have the status, or time runs out.
"""

from __future__ import annotations

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
    seen: list[Details] = field(default_factory=list)  # every object, as last seen

    @property
    def matched(self) -> int:
        return len(self.seen)


def status(d: Details) -> str:
    return d.subject.evaluation.status


def verdict(items: list[Details], goal: str) -> Outcome | None:
    if goal == "deleted":
        return Outcome("met") if not items else None
    statuses = [d.subject.evaluation.status for d in items]  # one pass: it is taken after every change
    if goal == "healthy" and "failed" in statuses:
        return Outcome("failed", [d for d, s in zip(items, statuses, strict=True) if s == "failed"], items)
    if items and statuses.count(goal) == len(statuses):
        return Outcome("met", items, items)
    return None


def wait(
    informer: Informer,
    collect: Callable[[Api], list[Details]],
    goal: str,
    timeout: float,
) -> Outcome:
    """Evaluate from the informer's stores after every change until the goal is met, failed or timed out.

    `collect` raises NotFoundError for a NAME that does not exist: that is the
    goal when waiting for `deleted`, an error before it was seen, and an error
    (deleted while waiting) after. A verdict is taken only from stores synced
    up to the event that decided it (Informer.sync), and synced once: stores
    that keep changing meanwhile (a busy namespace) do not put it off again.
    """
    clock = informer.clock.now
    deadline = clock() + timeout
    seen = synced = False
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
        if outcome is not None and (synced or not informer.sync()):
            return outcome
        synced = outcome is not None
        if synced:
            continue  # judged again from stores that have all seen the event that decided it
        remaining = deadline - clock()
        if remaining <= 0:
            return Outcome("timeout", [d for d in items if status(d) != goal], items)
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


@dataclass
class Entry:
    """One object of `wait -f`: its label and namespace, its details (None while it does not exist), and the
    seconds from the start of the wait until it reached the state it ended in (None if it never did)."""

    label: str
    namespace: str | None
    details: Details | None
    seconds: float | None = None

    @property
    def state(self) -> str:
        return "absent" if self.details is None else status(self.details)

    @property
    def reason(self) -> str | None:
        return "not found" if self.details is None else self.details.subject.evaluation.reason

    def met(self, goal: str) -> bool:
        return self.details is None if goal == "deleted" else self.state == goal

    def failed(self, goal: str) -> bool:
        return goal == "healthy" and self.state == "failed"


@dataclass
class Tally:
    """How `wait -f` ended (`met`, `failed` or `timeout`), every object as last seen, and the seconds it took."""

    result: str
    entries: list[Entry]
    seconds: float

    def shown(self, goal: str) -> list[Details]:
        """The objects whose details explain the end: the failed ones, those not there yet, or all when met."""
        if self.result == "met":
            return [e.details for e in self.entries if e.details is not None]
        wanted = (lambda e: e.failed(goal)) if self.result == "failed" else (lambda e: not e.met(goal))
        return [e.details for e in self.entries if e.details is not None and wanted(e)]


def wait_all(
    informer: Informer,
    collect: Callable[[Api], list[tuple[str, str | None, Details | None]]],
    goal: str,
    timeout: float,
) -> Tally:
    """Evaluate every object of the manifests from the informer's stores after every change.

    An object not there yet is waited for (an apply may still be running); waiting for healthy ends
    at the first failure. As with `wait`, the verdict is taken from synced stores.
    """
    clock = informer.clock.now
    start = clock()
    deadline = start + timeout
    reached: dict[int, float] = {}
    synced = False
    while True:
        entries = [Entry(label, ns, d) for label, ns, d in collect(informer.cached)]
        elapsed = clock() - start
        for i, e in enumerate(entries):
            if e.met(goal) or e.failed(goal):
                e.seconds = reached.setdefault(i, elapsed)
            else:
                reached.pop(i, None)
        ended = any(e.failed(goal) for e in entries) or all(e.met(goal) for e in entries)
        if ended and not synced and informer.sync():
            synced = True
            continue  # judged again from stores that have all seen the event that decided it
        synced = False
        if any(e.failed(goal) for e in entries):
            return Tally("failed", entries, elapsed)
        if all(e.met(goal) for e in entries):
            return Tally("met", entries, elapsed)
        if clock() >= deadline:
            return Tally("timeout", entries, elapsed)
        informer.changes(timeout=deadline - clock())


def summary_rows(tally: Tally) -> list[list[str]]:
    """One row per object: OBJECT, NAMESPACE, STATUS, TIME, REASON."""
    return [
        [
            e.label,
            e.namespace or "",
            e.state,
            f"{tally.seconds if e.seconds is None else e.seconds:.1f}s",
            " ".join((e.reason or "").split()),
        ]
        for e in tally.entries
    ]


SUMMARY_HEADERS = ("OBJECT", "NAMESPACE", "STATUS", "TIME", "REASON")


def summary_json(tally: Tally) -> list[dict[str, object]]:
    return [
        {
            "object": e.label,
            "namespace": e.namespace,
            "status": e.state,
            "reason": e.reason,
            "seconds": round(tally.seconds if e.seconds is None else e.seconds, 3),
        }
        for e in tally.entries
    ]


def fleet_failure(tally: Tally, goal: str, timeout: str) -> errors.CyclopsError:
    """The one stderr line for `wait -f` that failed or timed out, naming each object and why."""

    def named(e: Entry) -> str:
        return f"{e.label}" + (f" -n {e.namespace}" if e.namespace else "") + f" {e.state}: {e.reason}"

    total = len(tally.entries)
    if tally.result == "failed":
        failed = [e for e in tally.entries if e.failed(goal)]
        return errors.WaitFailedError(f"{len(failed)} of {total} failed: {'; '.join(named(e) for e in failed)}")
    late = [e for e in tally.entries if not e.met(goal)]
    return errors.WaitTimeoutError(
        f"timed out after {timeout} waiting for {goal}: {len(late)} of {total} not {goal}: "
        + "; ".join(named(e) for e in late)
    )

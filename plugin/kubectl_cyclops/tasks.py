"""Calls run on worker threads: the requests of one call that do not wait for each other.

A `Pool` does what concurrent.futures' ThreadPoolExecutor does for this plugin,
`submit(fn, *args)` and the `result()` of what it returns, and no more.
concurrent.futures imports logging, and with it traceback, string and more:
on the machines the plugin is measured on that is about a tenth of a
one-object call's start (docs/performance.md).

As in ThreadPoolExecutor, a call goes to an idle worker if there is one, and a
new worker starts only if none is idle, up to `workers`. Workers are kept for
the pool's life: the transport keeps one connection alive per thread, so a
worker's next request reuses its connection. A worker counts as idle before
its call's result is out, so a request made on seeing that result (a Job's
pods, once the Job is read) reuses its connection rather than opening one.
Leaving the pool's `with` block waits for every worker to finish what it was
given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Task(Generic[T]):
    """The outcome of a call submitted to a Pool: its value, or the exception it raised."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def result(self) -> T:
        """The call's value once it has returned; the exception it raised is raised here."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[no-any-return]

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...], idle: Callable[[], None]) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:  # handed to whoever asks for the result, as concurrent.futures does
            self._error = exc
        finally:
            idle()  # before the result is out: a call submitted on seeing it goes to this worker
            self._done.set()


class Pool:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._calls: SimpleQueue[tuple[Task[Any], Callable[..., Any], tuple[Any, ...]] | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)  # released by a worker each time it is done with a call

    def submit(self, fn: Callable[..., T], *args: Any) -> Task[T]:
        task: Task[T] = Task()
        self._calls.put((task, fn, args))
        if not self._idle.acquire(blocking=False) and len(self._threads) < self.workers:
            worker = threading.Thread(target=self._work, name=f"cyclops-{len(self._threads)}")
            worker.start()
            self._threads.append(worker)
        return task

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            task, fn, args = call
            task._run(fn, args, self._idle.release)
            del task, fn, args, call  # a worker waiting for its next call holds nothing of the last one

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        for _ in self._threads:
            self._calls.put(None)
        for worker in self._threads:
            worker.join()

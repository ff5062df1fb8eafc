"""tasks.Pool: calls on worker threads, their values and exceptions, and workers reused as the transport needs."""

from __future__ import annotations

import threading

import pytest

from kubectl_cyclops.tasks import Pool


def test_each_task_gives_its_own_calls_value() -> None:
    with Pool(3) as pool:
        tasks = [pool.submit(pow, n, 2) for n in range(20)]
        assert [t.result() for t in tasks] == [n * n for n in range(20)]


def test_an_exception_is_raised_by_result_not_by_submit() -> None:
    class Refused(Exception):
        pass

    def refuse() -> None:
        raise Refused("no")

    with Pool(2) as pool:
        failed = pool.submit(refuse)
        fine = pool.submit(len, "abc")
        with pytest.raises(Refused, match="no"):
            failed.result()
        assert fine.result() == 3


def test_an_idle_worker_takes_the_next_call_so_its_connection_is_reused() -> None:
    with Pool(8) as pool:
        first = pool.submit(threading.get_ident).result()
        for _ in range(5):
            assert pool.submit(threading.get_ident).result() == first
        assert len(pool._threads) == 1


def test_no_more_workers_than_asked_for_and_the_rest_wait_their_turn() -> None:
    gate = threading.Event()
    started: list[int] = []
    lock = threading.Lock()

    def held(n: int) -> int:
        with lock:
            started.append(n)
        gate.wait()
        return threading.get_ident()

    with Pool(3) as pool:
        tasks = [pool.submit(held, n) for n in range(7)]
        assert len(pool._threads) == 3
        gate.set()
        idents = {t.result() for t in tasks}
    assert len(idents) <= 3
    assert sorted(started) == list(range(7))


def test_leaving_the_pool_waits_for_every_call() -> None:
    gate = threading.Event()
    finished: list[str] = []

    def slow() -> None:
        gate.wait()
        finished.append("slow")

    pool = Pool(2)
    with pool:
        pool.submit(slow)
        pool.submit(finished.append, "quick")
        gate.set()
    assert sorted(finished) == ["quick", "slow"]
    assert not any(t.is_alive() for t in pool._threads)

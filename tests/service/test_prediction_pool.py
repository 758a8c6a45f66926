"""Decisions on sent candles run in worker processes, a few at a time, apart from trading."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from tradebrain.exceptions import TemporaryError
from tradebrain.service.prediction_pool import PredictionPool, PredictionsBusyError


@pytest.fixture
def pool() -> Iterator[PredictionPool]:
    """One worker and no queue: a second job while one runs is refused."""
    made = PredictionPool(workers=1, queue=0, timeout_s=120)
    yield made
    made.close()


def _occupy(pool: PredictionPool, seconds: float) -> threading.Thread:
    """Start a job that sleeps ``seconds`` in the worker; return once it holds its place."""
    worker = threading.Thread(target=pool.run, args=(time.sleep, seconds))
    worker.start()
    deadline = time.monotonic() + 10
    while pool.held == 0:
        assert time.monotonic() < deadline, "the job never took its place"
        time.sleep(0.01)
    return worker


def test_a_job_runs_in_another_process_at_a_lower_cpu_priority(pool: PredictionPool) -> None:
    assert pool.run(os.getpid) != os.getpid()
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert pool.run(os.getpriority, os.PRIO_PROCESS, 0) > mine  # the trading loop comes first


def test_a_job_beyond_the_workers_and_the_queue_is_refused_at_once_with_a_retry_after(
    pool: PredictionPool,
) -> None:
    pool.run(os.getpid)  # the worker is up
    busy = _occupy(pool, 2.0)
    with pytest.raises(PredictionsBusyError, match=r"api\.predict_workers") as refused:
        pool.run(os.getpid)
    assert 1 <= refused.value.retry_after <= 300
    busy.join()
    assert pool.held == 0
    assert pool.run(os.getpid) != os.getpid()  # the place is free again


def test_the_queue_lets_that_many_jobs_wait_for_a_worker() -> None:
    pool = PredictionPool(workers=1, queue=1, timeout_s=120)
    try:
        pool.run(os.getpid)
        first = _occupy(pool, 1.0)
        second = threading.Thread(target=pool.run, args=(time.sleep, 0.1))
        second.start()
        while pool.held < 2:
            time.sleep(0.01)
        with pytest.raises(PredictionsBusyError):
            pool.run(os.getpid)
        first.join()
        second.join()
    finally:
        pool.close()


def test_a_worker_that_dies_is_replaced_and_its_caller_told_to_try_again(
    pool: PredictionPool,
) -> None:
    with pytest.raises(TemporaryError, match="worker died"):
        pool.run(os._exit, 1)
    assert pool.run(os.getpid) != os.getpid()


def test_a_job_past_its_time_is_stopped_and_the_worker_replaced() -> None:
    pool = PredictionPool(workers=1, queue=0, timeout_s=120)
    try:
        first = pool.run(os.getpid)  # the worker is up (starting it takes a while)
        pool.timeout_s = 1.0
        with pytest.raises(TemporaryError, match="longer than 1 s"):
            pool.run(time.sleep, 60)
        assert pool.held == 0
        pool.timeout_s = 120
        assert pool.run(os.getpid) not in (first, os.getpid())  # a new worker
    finally:
        pool.close()

"""Decisions on candles a caller sends, in worker processes apart from the trading loop.

A decision on sent candles computes every feature over up to 5,000 candles and walks a fresh
brain through them: seconds of CPU and hundreds of MB. Run in the API's threads it holds the
interpreter lock the runner needs (live trading fell from 20 to 12 candles/s under three such
requests), and unbounded it lets a few callers exhaust the memory. So:

- the work runs in ``api.predict_workers`` worker processes (spawned; their CPU priority is
  lowered so the trading loop comes first, and torch uses one thread), which load the
  service's model bundle from its folder, once;
- at most ``workers + api.predict_queue`` requests hold a place at once; the next one is
  refused at once with :class:`PredictionsBusyError` (the API answers 429 with ``Retry-After``);
- a worker that dies (out of memory) or overruns ``timeout_s`` is replaced, and its caller
  gets a :class:`~tradebrain.exceptions.TemporaryError` (the API answers 503).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from tradebrain.exceptions import TemporaryError, UserInputError

_R = TypeVar("_R")
WORKER_NICENESS = 10
FIRST_GUESS_S = 5.0  # how long a job takes, until one has been timed

_bundles: dict[tuple[str, float], Any] = {}  # in a worker: the bundles it loaded


class PredictionsBusyError(TemporaryError):
    """Every worker is busy and the queue is full; ask again in ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.retry_after))


def _worker_started() -> None:
    """Set a new worker up: lower its CPU priority, one torch thread."""
    with contextlib.suppress(OSError):  # not allowed here: run at the same priority
        os.nice(WORKER_NICENESS)
    import torch

    torch.set_num_threads(1)


def _bundle(model_dir: str) -> Any:
    """Return the bundle saved in ``model_dir``, loaded once per worker (again if re-saved)."""
    from tradebrain.models.bundle import MANIFEST, ModelBundle

    key = (model_dir, (Path(model_dir) / MANIFEST).stat().st_mtime)
    if key not in _bundles:
        _bundles.clear()
        _bundles[key] = ModelBundle.load(model_dir)
    return _bundles[key]


def decide_each(
    model_dir: str, settings: Any, requests: list[tuple[Any, str, str]]
) -> list[dict[str, Any] | str]:
    """In a worker: decide on each ``(candles, symbol, timeframe)`` in order.

    Returns one decision dict per request; at the first request refused, its message (text)
    instead, and nothing after it.
    """
    from tradebrain.service.prediction import decide_on_candles

    bundle = _bundle(model_dir)
    answers: list[dict[str, Any] | str] = []
    for candles, symbol, timeframe in requests:
        try:
            answers.append(decide_on_candles(bundle, candles, symbol, timeframe, settings))
        except UserInputError as error:
            answers.append(str(error))
            break
    return answers


class PredictionPool:
    """A bounded set of worker processes (see the module notes).

    Parameters
    ----------
    workers
        Worker processes (started on the first job, not before).
    queue
        Jobs that may wait for a worker; one more is refused with :class:`PredictionsBusyError`.
    timeout_s
        Seconds a job may take, waiting included; past it the workers are replaced.
    """

    def __init__(self, workers: int = 1, queue: int = 2, timeout_s: float = 120.0) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self.timeout_s = timeout_s
        self.held = 0  # jobs running or waiting
        self._seconds = FIRST_GUESS_S
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

    def run(self, job: Callable[..., _R], *args: Any) -> _R:
        """Run ``job(*args)`` in a worker and return what it returns.

        Raises
        ------
        PredictionsBusyError
            At once, when every place is taken.
        TemporaryError
            The worker died or overran ``timeout_s`` (it was replaced; try again).
        """
        self._take()
        started = time.monotonic()
        executor = self._pool()
        try:
            future = executor.submit(job, *args)
            result = future.result(timeout=self.timeout_s)
        except FutureTimeout:
            self._replace_workers(executor)
            raise TemporaryError(
                f"the decision took longer than {self.timeout_s:.0f} s and was stopped; "
                "send fewer candles or try again later"
            ) from None
        except BrokenProcessPool:
            self._replace_workers(executor)
            raise TemporaryError(
                "the prediction worker died (out of memory?); it was restarted, try again"
            ) from None
        finally:
            self._give(time.monotonic() - started)
        return result

    def retry_after(self) -> int:
        """Return the seconds after which a place is likely free (1 to 300)."""
        with self._lock:
            return self._retry_after()

    def close(self) -> None:
        """Stop the workers (a later job starts new ones)."""
        with self._lock:
            executor = self._executor
        if executor is not None:
            self._replace_workers(executor)

    def _retry_after(self) -> int:
        waves = max(self.held, 1) / self.workers
        return int(min(max(math.ceil(self._seconds * waves), 1), 300))

    def _take(self) -> None:
        with self._lock:
            if self.held >= self.capacity:
                wait = self._retry_after()
                raise PredictionsBusyError(
                    f"{self.held} decisions on sent candles are running or waiting, the most "
                    f"this service takes (api.predict_workers + api.predict_queue); try again "
                    f"in {wait} s",
                    wait,
                )
            self.held += 1

    def _give(self, seconds: float) -> None:
        with self._lock:
            self.held -= 1
            self._seconds = 0.7 * self._seconds + 0.3 * seconds

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    # spawn: a fork of a process running threads (runner, API) is unsafe
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_started,
                )
            return self._executor

    def _replace_workers(self, executor: ProcessPoolExecutor) -> None:
        """Stop ``executor``'s workers; the next job starts new ones. Only the executor that
        failed is stopped, never a newer one another caller already uses."""
        with self._lock:
            if self._executor is executor:
                self._executor = None
        processes = list(getattr(executor, "_processes", {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # a stuck job would never see the shutdown
            if process.is_alive():
                process.terminate()

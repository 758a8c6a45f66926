"""Where fan-out work runs: one process pool, a Ray cluster, or this process.

An :class:`Executor` maps a top-level (picklable) function over jobs and gives the results back
in job order. Three kinds ship (:func:`make_executor`):

``"local"``
    A :class:`concurrent.futures.ProcessPoolExecutor` on the ``spawn`` start method (a fresh
    interpreter per worker: no forked locks or thread pools), ``os.cpu_count()`` workers.
``"ray"``
    Ray tasks: on the cluster at ``$RAY_ADDRESS`` when it is set, else on a local Ray started
    on demand (and shut down by :meth:`close`).
``"serial"``
    This process, one job after the other: for debugging, tests and the baseline of a
    benchmark.

Every worker of ``"local"`` and ``"ray"`` runs its math on one thread (``OMP_NUM_THREADS=1``
and its kin, ``torch.set_num_threads(1)``, :mod:`threadpoolctl`): the parallelism is across
jobs, so two workers on two cores do not fight over them.

A job that raises stops the map: the jobs not started are cancelled and a
:class:`JobFailedError` names the job (its index and ``repr``) and carries the original error,
in the same family of :mod:`tradebrain.exceptions` (a job's bad input stays a
:class:`~tradebrain.exceptions.UserInputError`).
"""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from tradebrain.exceptions import (
    OperationalError,
    TemporaryError,
    TradebrainError,
    UserInputError,
)

T = TypeVar("T")
R = TypeVar("R")

EXECUTOR_KINDS = ("local", "ray", "serial")
"""The kinds :func:`make_executor` builds."""

THREAD_LIMITS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "POLARS_MAX_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}
"""Environment of every worker process: one thread per native library."""

_JOB_TEXT_LIMIT = 200


class Executor(Protocol):
    """Runs a function over jobs, somewhere; results come back in job order.

    Attributes
    ----------
    name
        The kind (``"local"``, ``"ray"``, ``"serial"``).
    workers
        How many jobs run at once.
    """

    name: str
    workers: int

    def map(self, fn: Callable[[T], R], jobs: Sequence[T]) -> list[R]:
        """Return ``[fn(job) for job in jobs]``; raise :class:`JobFailedError` if one fails."""
        ...

    def close(self) -> None:
        """Release the workers (idempotent)."""
        ...


class JobFailedError(TradebrainError):
    """A job of a fan-out raised; the message names the job and what it raised.

    Attributes
    ----------
    index
        Position of the failed job in the jobs given to ``map``.
    job
        ``repr`` of the job (cut to 200 characters).
    error
        The exception the job raised (also the ``__cause__``).
    """

    def __init__(self, index: int, count: int, job: object, error: BaseException) -> None:
        self.index = index
        self.job = _job_text(job)
        self.error = error
        super().__init__(
            f"job {index + 1} of {count} failed: {self.job}: {type(error).__name__}: {error}"
        )


class UserInputJobFailedError(JobFailedError, UserInputError):
    """A job failed on its input; fix the input named in the message and run again."""


class TemporaryJobFailedError(JobFailedError, TemporaryError):
    """A job met a temporary condition; running again later may succeed."""


class OperationalJobFailedError(JobFailedError, OperationalError):
    """A job failed for a reason a human must look at (including a worker that died)."""


def job_failed(index: int, count: int, job: object, error: BaseException) -> JobFailedError:
    """Return the :class:`JobFailedError` of the original ``error``'s family."""
    failure: type[JobFailedError] = JobFailedError
    if isinstance(error, UserInputError):
        failure = UserInputJobFailedError
    elif isinstance(error, TemporaryError):
        failure = TemporaryJobFailedError
    elif isinstance(error, OperationalError) or _worker_died(error):
        failure = OperationalJobFailedError
    return failure(index, count, job, error)


def executor_kind(configured: str, jobs: int, chosen: str | None = None) -> str:
    """Return where ``jobs`` jobs run: ``chosen`` (a flag) when given, in-process for one job,
    else the ``configured`` kind (``learning.executor``)."""
    if chosen:
        return chosen
    return "serial" if jobs == 1 else configured


def make_executor(kind: str = "local", *, workers: int | None = None) -> Executor:
    """Return an executor of ``kind``: ``"local"``, ``"ray"`` or ``"serial"``.

    Parameters
    ----------
    kind
        Where the jobs run (see the module docstring).
    workers
        Jobs at once (``"local"``: processes; ``"ray"``: CPUs of a local Ray); by default
        ``os.cpu_count()``. Ignored by ``"serial"`` (always 1).

    Raises
    ------
    UserInputError
        For an unknown ``kind`` or a ``workers`` below 1.
    """
    if workers is not None and workers < 1:
        raise UserInputError(f"workers must be at least 1; got {workers}")
    count = workers or os.cpu_count() or 1
    if kind == "local":
        return LocalExecutor(count)
    if kind == "ray":
        return RayExecutor(count)
    if kind == "serial":
        return SerialExecutor()
    raise UserInputError(f"unknown executor {kind!r}; choose one of: {', '.join(EXECUTOR_KINDS)}")


class _Closing(ABC):
    """Context-manager support: ``with make_executor(...) as executor:`` closes it."""

    @abstractmethod
    def close(self) -> None:
        """Release the workers."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class SerialExecutor(_Closing):
    """Runs every job in this process, in order (no thread limits: this is the caller's)."""

    name = "serial"
    workers = 1

    def map(self, fn: Callable[[T], R], jobs: Sequence[T]) -> list[R]:
        """Return ``[fn(job) for job in jobs]``; raise :class:`JobFailedError` if one fails."""
        results: list[R] = []
        for index, job in enumerate(jobs):
            try:
                results.append(fn(job))
            except Exception as error:
                raise job_failed(index, len(jobs), job, error) from error
        return results

    def close(self) -> None:
        """Nothing to release."""


class LocalExecutor(_Closing):
    """A pool of ``workers`` spawned processes, each limited to one thread per library.

    The pool starts on the first :meth:`map` and is kept for the next ones until
    :meth:`close`.
    """

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[T], R], jobs: Sequence[T]) -> list[R]:
        """Return ``[fn(job) for job in jobs]``; raise :class:`JobFailedError` if one fails."""
        if not jobs:
            return []
        pool = self._ensure_pool()
        futures: list[Future[R]] = [pool.submit(fn, job) for job in jobs]
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = [i for i, future in enumerate(futures) if future.done() and future.exception()]
        if failed:
            for future in futures:
                future.cancel()
            index = failed[0]
            error = futures[index].exception()
            assert error is not None
            if _worker_died(error):
                self.close()  # a broken pool cannot run anything again
            raise job_failed(index, len(jobs), jobs[index], error) from error
        return [future.result() for future in futures]

    def close(self) -> None:
        """Stop the worker processes (after the jobs they run), cancelling the queued ones."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=limit_threads,
            )
        return self._pool


class RayExecutor(_Closing):
    """Ray tasks of one CPU each, on ``$RAY_ADDRESS`` or on a local Ray started on demand.

    A local Ray gets ``workers`` CPUs, no dashboard and a small object store; it is shut down
    by :meth:`close`. A Ray that was already running (``ray.init`` by the caller, or a cluster
    at ``$RAY_ADDRESS``) is used as it is and left running.
    """

    name = "ray"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._started = False
        self._task: Any = None

    def map(self, fn: Callable[[T], R], jobs: Sequence[T]) -> list[R]:
        """Return ``[fn(job) for job in jobs]``; raise :class:`JobFailedError` if one fails."""
        if not jobs:
            return []
        ray = self._ensure_ray()
        refs = [self._task.remote(fn, job) for job in jobs]
        index_of = {ref: i for i, ref in enumerate(refs)}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                ray.get(ready[0])
            except Exception as error:
                for ref in pending:
                    ray.cancel(ref)  # queued jobs are dropped; a running one finishes
                index = index_of[ready[0]]
                cause = _ray_cause(error)
                raise job_failed(index, len(jobs), jobs[index], cause) from cause
        results: list[R] = ray.get(refs)
        return results

    def close(self) -> None:
        """Shut down the local Ray this executor started (a Ray found running is left)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
        self._task = None

    def _ensure_ray(self) -> Any:
        import logging

        import ray

        if not ray.is_initialized():
            runtime_env = {"env_vars": dict(THREAD_LIMITS)}
            address = os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
            else:
                ray.init(
                    address="local",
                    num_cpus=self.workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    object_store_memory=256 * 1024**2,
                    runtime_env=runtime_env,
                )
            self._started = True
        if self._task is None:
            self._task = ray.remote(num_cpus=1, max_retries=0)(_call_limited)
        return ray


def limit_threads() -> None:
    """Make this (worker) process run its math on one thread per native library.

    Sets :data:`THREAD_LIMITS` in the environment (read by libraries loaded from now on),
    caps the thread pools of the BLAS/OpenMP libraries already loaded (:mod:`threadpoolctl`)
    and calls ``torch.set_num_threads(1)`` when torch is imported.
    """
    os.environ.update(THREAD_LIMITS)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    else:
        threadpool_limits(limits=1)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _call_limited(fn: Callable[[T], R], job: T) -> R:
    """Run ``fn(job)`` in a Ray worker after limiting its threads."""
    limit_threads()
    return fn(job)


def _worker_died(error: BaseException) -> bool:
    """Whether ``error`` says a worker process died (not that the job raised)."""
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(error, BrokenProcessPool):
        return True
    ray = sys.modules.get("ray")
    if ray is None:
        return False
    died = (ray.exceptions.WorkerCrashedError, ray.exceptions.RayActorError)
    return isinstance(error, died)


def _ray_cause(error: BaseException) -> BaseException:
    """Return the exception a Ray task raised (``ray.get`` wraps it in a ``RayTaskError``)."""
    import ray

    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return error


def _job_text(job: object) -> str:
    text = repr(job)
    if len(text) > _JOB_TEXT_LIMIT:
        text = text[: _JOB_TEXT_LIMIT - 3] + "..."
    return text

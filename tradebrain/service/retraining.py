"""Retraining in a worker process, so the decision path never waits for a model to fit.

:class:`RetrainWorker` hands a :class:`RetrainRequest` to one spawned worker process
(:func:`retrain_and_register`): it trains a bundle on the candles written for it, exactly as
the service's first training does (:func:`~tradebrain.learning.fan_out.train_job`), and
registers it in the model registry as the ``candidate``, with its lineage. The runner only
asks :meth:`RetrainWorker.poll` on each candle whether the new version is there.

A worker whose service died (``kill -9``) registers nothing: it checks that its parent is
still alive before it writes to the registry, so no candidate appears that no service asked
for, and the training folder it leaves is a temporary one.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from tradebrain.core.atomic_write import write_parquet_atomic

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
"""Linux prctl option: the signal a process gets when its parent dies."""


@dataclass(frozen=True)
class RetrainRequest:
    """What one retraining learns from, and where it registers the result."""

    symbol: str
    timeframe: str
    source: str
    candles_path: Path
    settings: dict[str, Any]
    seed: int
    home: Path
    registry_uri: str | None
    parent_version: int | None
    parent_pid: int
    reason: str


@dataclass(frozen=True)
class RetrainOutcome:
    """A finished retraining: the version registered (None when the service had gone)."""

    version: int | None
    rows: int
    data_end: str
    seconds: float
    reason: str


def retrain_and_register(request: RetrainRequest) -> RetrainOutcome:
    """Train a bundle on ``request``'s candles and register it as the candidate.

    Runs in the worker process (a top-level function, so it can be sent there).
    """
    from tradebrain.learning.fan_out import TrainJob, train_job
    from tradebrain.learning.registry import BundleRegistry, Lineage, code_version

    out_dir = request.home / "learning" / "bundles" / request.candles_path.stem
    job = TrainJob(
        symbol=request.symbol,
        candles_path=request.candles_path,
        settings=request.settings,
        out_dir=out_dir,
        seed=request.seed,
    )
    result = train_job(job)
    if os.getppid() != request.parent_pid:  # the service is gone: register nothing
        return RetrainOutcome(None, result.rows, result.data_end, result.seconds, request.reason)
    settings = request.settings
    lineage = Lineage(
        symbol=request.symbol,
        timeframe=request.timeframe,
        source=request.source,
        data_start=result.data_start,
        data_end=result.data_end,
        data_hash=result.data_hash,
        rows=result.rows,
        feature_sets=tuple(settings["features"]["sets"]),
        settings=settings,
        seed=request.seed,
        code_version=code_version(),
        parent=request.parent_version,
    )
    registry = BundleRegistry(request.home, request.registry_uri)
    metrics = {"train_seconds": result.seconds, "rows": float(result.rows)}
    version = registry.register(result.bundle_dir, lineage, metrics)
    return RetrainOutcome(
        version.version, result.rows, result.data_end, result.seconds, request.reason
    )


class RetrainWorker:
    """One worker process that retrains on request; the runner polls it without waiting."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._job: Future[RetrainOutcome] | None = None
        self.started_at: datetime | None = None
        self.reason = ""

    @property
    def busy(self) -> bool:
        """Return whether a retraining is running."""
        return self._job is not None

    def submit(self, request: RetrainRequest, candles: pl.DataFrame, at: datetime) -> None:
        """Write ``candles`` where the request says and start training on them."""
        if self._job is not None:
            raise RuntimeError("a retraining is already running; poll it first")
        request.candles_path.parent.mkdir(parents=True, exist_ok=True)
        write_parquet_atomic(candles, request.candles_path)
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=_quiet_worker
            )
        self._job = self._pool.submit(retrain_and_register, request)
        self.started_at = at
        self.reason = request.reason

    def poll(self) -> RetrainOutcome | BaseException | None:
        """Return the finished outcome (or the error it raised), None while it runs or idles."""
        job = self._job
        if job is None or not job.done():
            return None
        self._job = None
        self.started_at = None
        error = job.exception()
        return error if error is not None else job.result()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running retraining finishes (its outcome is left for :meth:`poll`)."""
        if self._job is not None:
            wait([self._job], timeout)

    def close(self) -> None:
        """Stop the worker process (a running retraining is abandoned, nothing registered)."""
        if self._pool is not None:
            processes = list((getattr(self._pool, "_processes", None) or {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
            self._pool = None
        self._job = None


def _quiet_worker() -> None:
    """Keep the worker to one thread and its log to warnings (it shares two cores), and make
    it die with the service: a worker left behind by a ``kill -9`` would train on for nothing
    and hold the service's output open."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    os.nice(5)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    _die_with_parent()


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGKILL when its parent dies (elsewhere: nothing; the
    parent-pid check in :func:`retrain_and_register` still keeps it from registering)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl: the parent-pid check remains
        log.debug("prctl(PR_SET_PDEATHSIG) is not available", exc_info=True)


__all__ = ["RetrainOutcome", "RetrainRequest", "RetrainWorker", "retrain_and_register"]

"""Retraining in a worker process: it registers a candidate, or nothing when its service is gone.

One registry per module: the first production is registered by ``retrain_and_register`` run in
this process (its parent is the one the request names), so every retraining after it registers
a candidate against it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from tradebrain.config import Settings
from tradebrain.core.atomic_write import write_parquet_atomic
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.exceptions import DataFormatError
from tradebrain.learning.registry import BundleRegistry
from tradebrain.service.retraining import (
    RetrainOutcome,
    RetrainRequest,
    RetrainWorker,
    retrain_and_register,
)

SYMBOL = "BTC/USDT"
BARS = 1_500
AT = datetime(2024, 3, 3, 12, tzinfo=UTC)
SETTINGS = Settings.model_validate({"models": {"enabled": ["logistic"]}}).model_dump(mode="json")
WAIT = 180.0  # seconds a retraining may take on a loaded two-core machine


@dataclass(frozen=True)
class Home:
    """The service's home, its registry, and the first production's outcome."""

    folder: Path
    registry: BundleRegistry
    first: RetrainOutcome


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return generate_market(SyntheticConfig(bars=BARS, seed=1, signal=0.4, edge="trend")).candles


def request(
    home: Path, name: str, *, parent_pid: int, parent_version: int | None
) -> RetrainRequest:
    return RetrainRequest(
        symbol=SYMBOL,
        timeframe="1h",
        source="synthetic",
        candles_path=home / "learning" / "datasets" / f"{name}.parquet",
        settings=SETTINGS,
        seed=7,
        home=home,
        registry_uri=None,
        parent_version=parent_version,
        parent_pid=parent_pid,
        reason=f"test: {name}",
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, candles: pl.DataFrame) -> Home:
    folder = tmp_path_factory.mktemp("home")
    first = request(folder, "first", parent_pid=os.getppid(), parent_version=None)
    write_parquet_atomic(candles, first.candles_path)
    outcome = retrain_and_register(first)  # in this process, whose parent is os.getppid()
    return Home(folder, BundleRegistry(folder), outcome)


@pytest.fixture
def worker() -> Iterator[RetrainWorker]:
    made = RetrainWorker()
    yield made
    made.close()


def versions(registry: BundleRegistry) -> list[int]:
    return [v.version for v in registry.versions()]


def test_a_retraining_run_by_the_service_that_asked_registers_its_bundle(home: Home) -> None:
    assert home.first.version == 1
    assert (home.first.rows, home.first.reason) == (BARS, "test: first")
    production = home.registry.production()
    assert production is not None and production.version == 1  # nothing was in production


def test_a_retraining_whose_service_is_gone_registers_nothing(
    home: Home, candles: pl.DataFrame
) -> None:
    before = versions(home.registry)
    orphan = request(home.folder, "orphan", parent_pid=-1, parent_version=1)
    write_parquet_atomic(candles, orphan.candles_path)
    outcome = retrain_and_register(orphan)
    assert outcome.version is None
    assert (outcome.rows, outcome.data_end) == (BARS, candles["timestamp"][-1].isoformat())
    assert versions(home.registry) == before


def test_an_idle_worker_has_nothing_to_report(worker: RetrainWorker) -> None:
    assert worker.poll() is None
    assert not worker.busy and worker.started_at is None
    worker.wait(0.1)  # nothing to wait for: returns at once


def test_the_worker_registers_a_candidate_and_reports_its_version_once(
    home: Home, candles: pl.DataFrame, worker: RetrainWorker
) -> None:
    before = versions(home.registry)
    asked = request(home.folder, "scheduled", parent_pid=os.getpid(), parent_version=1)
    worker.submit(asked, candles, AT)
    assert worker.busy and worker.started_at == AT and worker.reason == "test: scheduled"
    assert worker.poll() is None  # the spawned process has not even imported its modules yet
    with pytest.raises(RuntimeError, match="already running"):
        worker.submit(replace(asked, reason="a second one"), candles, AT)

    worker.wait(WAIT)
    outcome = worker.poll()
    assert isinstance(outcome, RetrainOutcome), outcome
    assert outcome.version == max(before) + 1 and outcome.reason == "test: scheduled"
    assert worker.poll() is None  # reported once
    assert not worker.busy and worker.started_at is None
    candidate = home.registry.candidate()
    assert candidate is not None and candidate.version == outcome.version
    assert candidate.status == "candidate"
    assert candidate.lineage.parent == 1 and candidate.lineage.rows == BARS
    production = home.registry.production()
    assert production is not None and production.version == 1  # a candidate, not promoted


def test_an_error_in_the_retraining_comes_back_from_poll(
    home: Home, candles: pl.DataFrame, worker: RetrainWorker
) -> None:
    before = versions(home.registry)
    asked = request(home.folder, "no-volume", parent_pid=os.getpid(), parent_version=1)
    worker.submit(asked, candles.drop("volume"), AT)
    worker.wait(WAIT)
    error = worker.poll()
    assert isinstance(error, DataFormatError)
    assert "volume" in str(error)
    assert worker.poll() is None and not worker.busy
    assert versions(home.registry) == before


def test_closing_the_worker_stops_its_process_and_abandons_the_retraining(
    home: Home, candles: pl.DataFrame
) -> None:
    before = versions(home.registry)
    others = set(multiprocessing.active_children())  # processes other tests left running
    worker = RetrainWorker()
    asked = request(home.folder, "abandoned", parent_pid=os.getpid(), parent_version=1)
    worker.submit(asked, candles, AT)
    children = set(multiprocessing.active_children()) - others
    assert children, "the retraining runs in a process of its own"
    worker.close()
    assert not worker.busy and worker.poll() is None
    deadline = time.monotonic() + 30
    while any(child.is_alive() for child in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(child.is_alive() for child in children)
    assert versions(home.registry) == before

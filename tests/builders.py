"""Builders of small market-data frames for tests, and where the real data lives."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

import numpy as np
import polars as pl
import pytest

from tradebrain.data.schemas import TIMESTAMP
from tradebrain.data.timeframes import timeframe_seconds

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
REAL_DATA_REQUIRED = "TRADEBRAIN_REAL_DATA_REQUIRED"
START = datetime(2024, 1, 1, tzinfo=UTC)

CandleMaker = Callable[..., pl.DataFrame]


def make_candles(
    n: int = 50, timeframe: str = "1h", start: datetime = START, seed: int = 0
) -> pl.DataFrame:
    """Return ``n`` valid candles on the ``timeframe`` grid: a small random walk."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    step = timedelta(seconds=timeframe_seconds(timeframe))
    return pl.DataFrame(
        {
            "timestamp": pl.Series([start + i * step for i in range(n)], dtype=TIMESTAMP),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.uniform(1, 10, n),
        }
    )


def skip_without_real_data(reason: str) -> NoReturn:
    """Skip the test for want of real data, or fail it when ``TRADEBRAIN_REAL_DATA_REQUIRED=1``
    (set by CI, where the data must be there: a silent skip would hide ~40 tests)."""
    if os.environ.get(REAL_DATA_REQUIRED, "").strip() == "1":
        pytest.fail(f"{reason}; {REAL_DATA_REQUIRED}=1 says it must be there", pytrace=False)
    pytest.skip(reason)


def real_file(name: str) -> Path:
    """Return one real data file, skipping the test when it is absent (failing in CI)."""
    path = REAL_DATA / name
    if not path.exists():
        skip_without_real_data(f"real data file {name} not found in {REAL_DATA}")
    return path

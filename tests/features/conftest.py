"""Candle fixtures for the feature tests: synthetic (always) and real BTC/USDT 1h (if present)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from builders import skip_without_real_data

from tradebrain.data.synthetic import SyntheticConfig, generate_market

REAL_BTC_1H = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "real"
    / "marketlab__BTC_USDT__1h.parquet"
)
BARS = 2400


@pytest.fixture(scope="session")
def synthetic_candles() -> pl.DataFrame:
    """2,400 synthetic 1h candles (fat tails, regime switches, flash crashes)."""
    return generate_market(SyntheticConfig(bars=BARS, seed=11)).candles


@pytest.fixture(scope="session")
def real_candles() -> pl.DataFrame:
    """2,400 real BTC/USDT 1h candles; the test is skipped when the file is absent."""
    if not REAL_BTC_1H.is_file():
        skip_without_real_data(f"real candles not found at {REAL_BTC_1H} (../shared/data/real)")
    frame = pl.read_parquet(REAL_BTC_1H).rename({"date": "timestamp"})
    return frame.with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC"))).head(BARS)


@pytest.fixture(scope="session", params=["synthetic", "real"])
def market(request: pytest.FixtureRequest) -> pl.DataFrame:
    """Each candle source in turn: synthetic, then real."""
    return request.getfixturevalue(f"{request.param}_candles")

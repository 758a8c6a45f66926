"""Fixtures of the brain tests: hand-made feature rows and a synthetic market with crashes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.features import compute_features, orderflow_columns

START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)

CALM_ROW: dict[str, float] = {
    "adx_14": 18.0,
    "atr_ratio_14_96": 1.0,
    "ema_alignment": 1 / 3,
    "range_width_20": 0.05,
    "range_width_60": 0.09,
    "cycle_power_64": 0.12,
    "cycle_period_64": 16.0,
    "atr_pct_14": 0.01,
    "efficiency_ratio_20": 0.2,
    "spread_bps": 2.0,
    "funding_rate_bps": 1.0,
}
"""A quiet, directionless candle: choppy regime, no filter raises the bar."""

RowMaker = Callable[..., dict[str, float]]


def make_row(**overrides: float) -> dict[str, float]:
    """Return :data:`CALM_ROW` with some features changed (``adx_14=31``)."""
    return CALM_ROW | overrides


@pytest.fixture
def row() -> RowMaker:
    """A factory of feature rows: ``row(adx_14=31, ema_alignment=1)``."""
    return make_row


@dataclass(frozen=True)
class CrashMarket:
    """A synthetic market with order flow, its feature rows and where the crashes are."""

    rows: list[dict[str, float]]
    timestamps: list[datetime]
    close: np.ndarray
    crash: np.ndarray  # (n,) bool: candle is part of a flash crash


@pytest.fixture(scope="session")
def crash_market() -> CrashMarket:
    """3000 hourly candles with about 10 flash crashes and every feature the brain reads."""
    market = generate_market(
        SyntheticConfig(bars=3000, orderflow=True, flash_crashes_per_year=30.0, seed=11)
    )
    frame = orderflow_columns(
        market.candles, "1h", trades=market.trades, book=market.book, funding=market.funding
    )
    features = compute_features(frame, ["atomic", "regime", "orderflow", "sentiment"], threads=2)
    features = features.with_columns(
        compute_features(frame, ["indicators"], threads=2).get_column("adx_14")
    )
    rows = [
        {k: v for k, v in r.items() if v is not None}
        for r in features.drop("timestamp").fill_nan(None).to_dicts()
    ]
    return CrashMarket(
        rows=rows,
        timestamps=features.get_column("timestamp").to_list(),
        close=market.candles.get_column("close").to_numpy(),
        crash=market.regimes.get_column("flash_crash").to_numpy(),
    )


def crash_events(crash: np.ndarray) -> list[np.ndarray]:
    """Return the candle indexes of each flash crash (runs of consecutive flagged candles)."""
    flagged = np.flatnonzero(crash)
    if flagged.size == 0:
        return []
    return np.split(flagged, np.flatnonzero(np.diff(flagged) > 1) + 1)

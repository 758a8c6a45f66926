"""Fixtures shared by every test: small candle frames and the real-data folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import REAL_DATA, CandleMaker, make_candles


@pytest.fixture
def candles() -> CandleMaker:
    """A factory of valid candle frames: ``candles(n=50, timeframe="1h", seed=0)``."""
    return make_candles


@pytest.fixture
def real_data() -> Path:
    """The folder of real exchange data; the test is skipped when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real market data not found at {REAL_DATA} (../shared/data/real)")
    return REAL_DATA

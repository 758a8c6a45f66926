"""The replay feed's events: the fast candle constructor builds the same frozen events."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tradebrain.core.events import CandleClosed, FundingSettled, make_candle
from tradebrain.engine.feed import ReplayFeed

START = datetime(2024, 1, 1, tzinfo=UTC)


def test_make_candle_equals_the_dataclass_constructor_and_stays_frozen() -> None:
    args = ("BTC/USDT", START, START + timedelta(minutes=1), 1.0, 2.0, 0.5, 1.5, 3.0)
    fast = make_candle(*args)
    assert type(fast) is CandleClosed
    assert fast == CandleClosed(*args) and hash(fast) == hash(CandleClosed(*args))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.close = 2.0  # type: ignore[misc]


def test_replay_times_match_the_frame_across_gaps_and_funding() -> None:
    minutes = [0, 1, 2, 5, 6]
    stamps = [START + timedelta(minutes=m) for m in minutes]
    prices = np.arange(1.0, 6.0)
    candles = pl.DataFrame(
        {
            "timestamp": stamps,
            "open": prices,
            "high": prices + 1,
            "low": prices - 0.5,
            "close": prices + 0.5,
            "volume": prices,
        }
    )
    funding = pl.DataFrame({"timestamp": [START + timedelta(minutes=4)], "funding_rate": [0.001]})
    events = list(ReplayFeed(candles, "BTC/USDT", "1m", funding))
    bars = [e for e in events if isinstance(e, CandleClosed)]
    assert [b.open_time for b in bars] == stamps
    assert [b.close_time for b in bars] == [s + timedelta(minutes=1) for s in stamps]
    assert all(b.open_time.tzinfo is not None for b in bars)
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("FundingSettled") == 3  # after the 3rd close, before the gap's candle
    settled = next(e for e in events if isinstance(e, FundingSettled))
    assert settled.timestamp == START + timedelta(minutes=4)

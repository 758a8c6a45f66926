"""Feeds: where market events come from. :class:`ReplayFeed` replays stored candles and funding.

A replay yields :class:`CandleClosed` events at each candle's close time and
:class:`FundingSettled` events at each settlement, merged in time order (a settlement at the
same instant as a close comes after it; settlements after the last close are not replayed,
since no price is known for them). It also hands out the same data as numpy arrays
(:meth:`ReplayFeed.arrays`) for strategies that precompute causal indicators and for the
engine's array fast path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from tradebrain.core.events import (
    FundingSettled,
    MarketEvent,
    make_candle,
    to_datetime,
)
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.exceptions import UserInputError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CandleArrays:
    """Candles of one symbol as numpy arrays, all (n,): times in epoch microseconds (UTC)."""

    symbol: str
    timeframe: str
    open_time: np.ndarray  # int64 microseconds, the candle's open time
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.close.shape[0])

    @property
    def step_us(self) -> int:
        """Return one candle's length in microseconds."""
        return timeframe_seconds(self.timeframe) * 1_000_000

    @property
    def close_time(self) -> np.ndarray:
        """Return the close times (open time + one timeframe), int64 microseconds."""
        return self.open_time + self.step_us

    def head(self, n: int) -> CandleArrays:
        """Return the first ``n`` candles (what was known after candle ``n - 1`` closed)."""
        return CandleArrays(
            self.symbol,
            self.timeframe,
            self.open_time[:n],
            self.open[:n],
            self.high[:n],
            self.low[:n],
            self.close[:n],
            self.volume[:n],
        )


def _columns(
    frame: pl.DataFrame, names: tuple[str, str, str, str, str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    o, h, low, c, v = (frame[name].to_numpy().astype(np.float64) for name in names)
    return o, h, low, c, v


class ReplayFeed:
    """Replays a candle frame (and an optional funding frame) as events, in time order.

    Parameters
    ----------
    candles
        A frame in the candle schema (``timestamp`` = open time, UTC), sorted by time.
    symbol, timeframe
        What the candles are; ``timeframe`` sets each candle's close time.
    funding
        Optional frame in the funding schema (``timestamp``, ``funding_rate``).
    """

    def __init__(
        self,
        candles: pl.DataFrame,
        symbol: str,
        timeframe: str,
        funding: pl.DataFrame | None = None,
    ) -> None:
        if candles.height == 0:
            raise UserInputError("the candle frame is empty; nothing to replay")
        times = candles["timestamp"].dt.epoch("us").to_numpy()
        if np.any(np.diff(times) <= 0):
            raise UserInputError("candles must be sorted by timestamp without duplicates")
        self.symbol = symbol
        self.timeframe = timeframe
        self._arrays = CandleArrays(
            symbol,
            timeframe,
            times.astype(np.int64),
            *_columns(candles, ("open", "high", "low", "close", "volume")),
        )
        self._funding_times = np.zeros(0, dtype=np.int64)
        self._funding_rates = np.zeros(0, dtype=np.float64)
        if funding is not None and funding.height:
            ordered = funding.sort("timestamp")
            self._funding_times = ordered["timestamp"].dt.epoch("us").to_numpy().astype(np.int64)
            self._funding_rates = ordered["funding_rate"].to_numpy().astype(np.float64)

    def arrays(self) -> CandleArrays:
        """Return the candles as arrays."""
        return self._arrays

    def funding(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the settlement times (int64 us) and funding rates, both (k,)."""
        return self._funding_times, self._funding_rates

    def __iter__(self) -> Iterator[MarketEvent]:
        arrays = self._arrays
        symbol = self.symbol
        step_us = arrays.step_us
        step = timedelta(microseconds=step_us)
        rows = zip(
            arrays.open.tolist(),
            arrays.high.tolist(),
            arrays.low.tolist(),
            arrays.close.tolist(),
            arrays.volume.tolist(),
            arrays.open_time.tolist(),
            strict=True,
        )
        funding = zip(self._funding_times.tolist(), self._funding_rates.tolist(), strict=True)
        next_funding = next(funding, None)
        candle = make_candle
        previous_close_us = None
        close_time = _EPOCH
        for open_, high, low, close, volume, open_us in rows:
            # A candle that opens when the previous one closed shares its datetime object.
            open_time = close_time if open_us == previous_close_us else to_datetime(open_us)
            close_time = open_time + step
            previous_close_us = open_us + step_us
            while next_funding is not None and next_funding[0] < previous_close_us:
                yield FundingSettled(symbol, to_datetime(next_funding[0]), next_funding[1])
                next_funding = next(funding, None)
            yield candle(symbol, open_time, close_time, open_, high, low, close, volume)

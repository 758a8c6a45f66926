"""Live order-flow inputs: each closed candle's row of :func:`orderflow_columns`, from a tail.

:class:`LiveOrderFlow` keeps the last :func:`tail_candles` candles of one symbol and, when a
candle closes, runs the batch function :func:`~tradebrain.features.orderflow_inputs.
orderflow_columns` on them and on the streamed trades, book snapshots and funding of the same
span, keeping only the newest row. The tail is long enough that nothing older changes that row
beyond rounding: the size quantile reads :data:`SIZE_WINDOW` candles back, and the decayed
pressures forget a trade's weight below ``exp(-46)`` after ``46 tau`` seconds. So the live
inputs equal the batch inputs on the recorded stream (tested on a replayed recording, to 1e-9).
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime

import numpy as np
import polars as pl

from tradebrain.data.schemas import TIMESTAMP
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.features.orderflow_inputs import (
    DECAY_SECONDS,
    ORDERFLOW_COLUMNS,
    SIZE_WINDOW,
    orderflow_columns,
)

_FORGET_TIMES = 46  # decays are read over this many time constants


def tail_candles(timeframe: str) -> int:
    """Candles of history that fix the newest candle's order-flow inputs."""
    step_s = timeframe_seconds(timeframe)
    decays = math.ceil(_FORGET_TIMES * max(DECAY_SECONDS) / step_s)
    return max(SIZE_WINDOW + 4, decays + 2)


class LiveOrderFlow:
    """The order-flow inputs of one symbol's candles, one candle at a time.

    Parameters
    ----------
    timeframe
        The candles' timeframe.
    """

    def __init__(self, timeframe: str) -> None:
        self.timeframe = timeframe
        self.tail = tail_candles(timeframe)
        self.keep_ms = self.tail * timeframe_seconds(timeframe) * 1000
        self._candles: deque[tuple[datetime, float, float, float, float, float]] = deque(
            maxlen=self.tail
        )

    def update(
        self,
        open_time: datetime,
        ohlcv: tuple[float, float, float, float, float],
        trades: pl.DataFrame,
        book: pl.DataFrame,
        funding: pl.DataFrame,
    ) -> tuple[float, ...]:
        """Add a closed candle; return its inputs, in the order of :data:`ORDERFLOW_COLUMNS`.

        ``trades``, ``book`` and ``funding`` are the streamed rows stamped before the candle's
        close (a :meth:`~tradebrain.data.flow_tape.FlowTape.window`); rows older than the tail
        are ignored.
        """
        self._candles.append((open_time, *ohlcv))
        candles = pl.DataFrame(
            list(self._candles),
            schema=["timestamp", "open", "high", "low", "close", "volume"],
            orient="row",
        ).with_columns(pl.col("timestamp").cast(TIMESTAMP))
        row = (
            orderflow_columns(candles, self.timeframe, trades=trades, book=book, funding=funding)
            .select(ORDERFLOW_COLUMNS)
            .row(-1)
        )
        return tuple(float(value) if value is not None else np.nan for value in row)

"""Order flow around synthetic candles: trades, order-book snapshots and funding rates.

Each function reads a finished candle frame and never changes it, so the candles of a market
are the same with or without order flow.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from tradebrain.data.schemas import TIMESTAMP, Kind, conform, schema_for
from tradebrain.data.timeframes import timeframe_seconds

FUNDING_INTERVAL_SECONDS = 8 * 3600
_FUNDING_BASE = 1e-4  # 0.01 % per 8 h: longs pay shorts in a calm market
_FUNDING_TREND = 3e-4
_FUNDING_NOISE = 5e-5
_FUNDING_CAP = 7.5e-3


def make_trades(
    candles: pl.DataFrame, timeframe: str, mean_trades: float, rng: np.random.Generator
) -> pl.DataFrame:
    """Return trades whose prices follow each candle's path open -> extremes -> close.

    Parameters
    ----------
    candles
        ``(n, 6)`` candle frame.
    timeframe
        Candle length; trade timestamps fall in ``[open time, open time + timeframe)``.
    mean_trades
        Mean trades per candle at median volume; the count is ``1 + Poisson`` and grows with
        volume (capped at 20x).
    rng
        Random stream of the trades.

    Returns
    -------
    polars.DataFrame
        Trades schema, sorted by time. Prices lie in the candle's ``[low, high]``, amounts of
        a candle sum to its volume, and the aggressor is more often the buyer on up-candles.
    """
    open_, high, low, close, volume = (
        candles[name].to_numpy() for name in ("open", "high", "low", "close", "volume")
    )
    n = open_.size
    activity = np.clip(volume / np.median(volume), 0.2, 20.0)
    counts = 1 + rng.poisson(mean_trades * activity)
    candle = np.repeat(np.arange(n), counts)
    total = candle.size
    fraction = rng.random(total)
    fraction = fraction[np.lexsort((fraction, candle))]

    # Knots of the intra-candle path: open, first extreme, second extreme, close.
    up = close >= open_
    first_extreme = np.where(up, low, high)[candle]
    second_extreme = np.where(up, high, low)[candle]
    first_at = rng.uniform(0.1, 0.45, n)[candle]
    second_at = rng.uniform(0.55, 0.9, n)[candle]
    start, end = open_[candle], close[candle]
    price = np.where(
        fraction < first_at,
        start + (first_extreme - start) * fraction / first_at,
        np.where(
            fraction < second_at,
            first_extreme
            + (second_extreme - first_extreme) * (fraction - first_at) / (second_at - first_at),
            second_extreme + (end - second_extreme) * (fraction - second_at) / (1.0 - second_at),
        ),
    )
    wobble = 0.05 * np.log(high / low)[candle] * rng.standard_normal(total)
    price = np.clip(price * np.exp(wobble), low[candle], high[candle])

    weight = rng.exponential(size=total)
    amount = volume[candle] * weight / np.bincount(candle, weight, minlength=n)[candle]
    direction = np.log(close / open_) / np.maximum(np.log(high / low), 1e-12)
    buy = rng.random(total) < (0.5 + 0.3 * direction)[candle]

    step = timeframe_seconds(timeframe) * 1_000_000
    open_micros = candles["timestamp"].cast(pl.Int64).to_numpy()
    micros = open_micros[candle] + np.floor(fraction * step).astype(np.int64)
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(micros, dtype=pl.Int64).cast(TIMESTAMP),
            "id": pl.Series(np.arange(total), dtype=pl.Int64).cast(pl.String).str.zfill(10),
            "price": price,
            "amount": amount,
            "side": pl.Series(np.where(buy, "buy", "sell"), dtype=pl.String),
        }
    )
    return conform(frame, Kind.TRADES)


def make_book(
    candles: pl.DataFrame, spread: np.ndarray, levels: int, rng: np.random.Generator
) -> pl.DataFrame:
    """Return one order-book snapshot per candle, taken at its open.

    Parameters
    ----------
    candles
        ``(n, 6)`` candle frame; the mid price of snapshot ``t`` is ``open[t]``.
    spread
        ``(n,)`` relative bid-ask spread of each candle.
    levels
        Price levels per side.
    rng
        Random stream of the book.

    Returns
    -------
    polars.DataFrame
        Book schema, ``2 * levels`` rows per candle (bids best first, then asks best first),
        ``is_snapshot`` true and ``update_id`` the candle number. Levels are spaced by half
        the spread; depth grows away from the touch and thins when the spread widens.
    """
    mid = candles["open"].to_numpy()
    n = mid.size
    depth = np.arange(levels, dtype=np.float64)
    offset = spread[:, None] * (0.5 + 0.5 * depth[None, :])  # (n, levels), relative to mid
    bids = mid[:, None] * (1.0 - offset)
    asks = mid[:, None] * (1.0 + offset)
    typical = float(np.median(candles["volume"].to_numpy())) * 0.02
    thinning = (np.median(spread) / spread)[:, None]
    size = typical * thinning * (1.0 + 0.3 * depth[None, :])
    amounts = size[:, None, :] * np.exp(rng.normal(-0.125, 0.5, (n, 2, levels)))

    open_micros = candles["timestamp"].cast(pl.Int64).to_numpy()
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(np.repeat(open_micros, 2 * levels)).cast(TIMESTAMP),
            "side": pl.Series(np.tile(np.repeat(["bid", "ask"], levels), n), dtype=pl.String),
            "price": np.concatenate([bids, asks], axis=1).ravel(),
            "amount": amounts.reshape(n, 2 * levels).ravel(),
            "is_snapshot": np.ones(n * 2 * levels, dtype=bool),
            "update_id": np.repeat(np.arange(n, dtype=np.int64), 2 * levels),
        }
    )
    return conform(frame, Kind.BOOK)


def make_funding(
    candles: pl.DataFrame, timeframe: str, sigma_base: float, rng: np.random.Generator
) -> pl.DataFrame:
    """Return perpetual funding rates settled every 8 h (00:00, 08:00, 16:00 UTC).

    The rate at settlement ``T`` is ``1e-4 + 3e-4 * tanh(trend) + noise`` (per 8 h, capped at
    +-0.75 %), where ``trend`` is the log return of the last 24 h of candles closed by ``T``
    in units of ``sigma_base * sqrt(bars)``: it turns negative in sell-offs.

    Parameters
    ----------
    candles
        ``(n, 6)`` candle frame.
    timeframe
        Candle length.
    sigma_base
        Base volatility of one candle's log return.
    rng
        Random stream of the funding.

    Returns
    -------
    polars.DataFrame
        Funding schema; settlements between the first candle's close and the last one's.
    """
    bar = timeframe_seconds(timeframe)
    first = int(candles["timestamp"][0].timestamp())
    last_close = first + candles.height * bar
    interval = FUNDING_INTERVAL_SECONDS
    first_settlement = -(-(first + bar) // interval) * interval
    settlements = np.arange(first_settlement, last_close + 1, interval, dtype=np.int64)
    if settlements.size == 0:
        return schema_for(Kind.FUNDING).empty()

    log_close = np.log(np.concatenate(([candles["open"][0]], candles["close"].to_numpy())))
    closed = (settlements - first) // bar  # candles closed by each settlement
    lookback = max(1, 86_400 // bar)
    trend = log_close[closed] - log_close[np.maximum(closed - lookback, 0)]
    pressure = np.tanh(trend / (sigma_base * math.sqrt(lookback)))
    noise = rng.normal(0.0, _FUNDING_NOISE, settlements.size)
    rate = np.clip(_FUNDING_BASE + _FUNDING_TREND * pressure + noise, -_FUNDING_CAP, _FUNDING_CAP)
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(settlements * 1_000_000, dtype=pl.Int64).cast(TIMESTAMP),
            "funding_rate": rate,
        }
    )
    return conform(frame, Kind.FUNDING)

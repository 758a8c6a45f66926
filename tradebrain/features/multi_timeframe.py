"""Multi-timeframe features: features of higher candles, as of the last CLOSED higher candle.

Higher candles are built from the base candles by complete-bucket resampling on the UTC epoch
grid (the rule of :mod:`tradebrain.data.resample`): a 4x bucket of 1h candles opens at 00:00,
04:00, 08:00 ... UTC, and is used only when all 4 base candles are present. Its values reach
the base row whose candle closes it: the 08:00 4h candle (made of 08:00 .. 11:00) first shows
on the 11:00 base row, which is itself known at 12:00; the 08:00 .. 10:00 rows still see the
04:00 candle. The base timeframe is the smallest step between timestamps.
"""

from __future__ import annotations

import numpy as np

from tradebrain.core.market import true_range
from tradebrain.features.registry import Bars, ComputeFn, register_group
from tradebrain.features.rolling import (
    bar_changes,
    lagged,
    log_returns,
    rolling_extremes,
    rolling_mean_std,
    rolling_sums,
)

SET = "multi_timeframe"
FACTORS = (4, 24)
"""Higher timeframes as multiples of the base one (1h base: 4h and 1d)."""

HIGHER_FEATURES: dict[str, tuple[int, str]] = {
    "logret_1": (1, "log return of the last closed higher candle"),
    "logret_3": (3, "log return over the last 3 closed higher candles"),
    "rv_std_20": (20, "standard deviation of higher-candle log returns over 20 candles"),
    "sma_dist_20": (19, "higher close over its 20-candle mean, minus 1"),
    "bb_pctb_20": (19, "Bollinger %B(20, 2 sigma) of the higher close"),
    "range_pos_14": (13, "higher close within the 14-candle low-high range, 0 to 1"),
    "atr_pct_14": (14, "mean true range of 14 higher candles over the close"),
    "volume_z_20": (19, "z-score of higher-candle volume over 20 candles"),
    "rsi_14": (14, "Cutler RSI(14) (simple means of gains and losses) of higher candles, 0-100"),
}
INPUTS = ("timestamp", "open", "high", "low", "close", "volume")


def higher_candles(bars: Bars, factor: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Build the complete higher candles of ``factor`` base candles each.

    Returns
    -------
    candles, closing_row
        Higher candles as arrays (``open, high, low, close, volume``), oldest first, and for
        each the index of the base row that completes it.
    """
    stamps = bars["timestamp"]
    n = stamps.shape[0]
    empty = {k: np.empty(0) for k in ("open", "high", "low", "close", "volume")}
    if n < 2:
        return empty, np.empty(0, dtype=np.int64)
    step = int(np.min(np.diff(stamps)))
    size = step * factor
    bucket = stamps // size
    firsts = np.flatnonzero(np.diff(bucket, prepend=bucket[0] - 1))
    lasts = np.append(firsts[1:], n) - 1
    complete = (
        (lasts - firsts + 1 == factor)
        & (stamps[firsts] == bucket[firsts] * size)
        & (stamps[lasts] - stamps[firsts] == (factor - 1) * step)
    )
    candles = {
        "open": bars["open"][firsts][complete],
        "high": np.maximum.reduceat(bars["high"], firsts)[complete],
        "low": np.minimum.reduceat(bars["low"], firsts)[complete],
        "close": bars["close"][lasts][complete],
        "volume": np.add.reduceat(bars["volume"], firsts)[complete],
    }
    return candles, lasts[complete]


def higher_features(candles: Bars, start: int) -> dict[str, np.ndarray]:
    """Compute :data:`HIGHER_FEATURES` on higher ``candles`` for rows ``start .. m-1``."""
    close, high, low, volume = (candles[k] for k in ("close", "high", "low", "volume"))
    now = close[start:]
    log_ret = log_returns(close)
    mean, std = rolling_mean_std(close, 20, 0, start)
    hh, ll, _, _ = rolling_extremes(high, low, 14, start)
    change = bar_changes(close)
    moves = np.vstack((true_range(high, low, close), np.maximum(change, 0.0), np.abs(change)))
    sums = rolling_sums(moves, 14, start)
    volume_mean, volume_std = rolling_mean_std(volume, 20, 0, start)
    return {
        "logret_1": log_ret[start:],
        "logret_3": np.log(now / lagged(close, 3, start)),
        "rv_std_20": rolling_mean_std(log_ret, 20, 1, start)[1],
        "sma_dist_20": now / mean - 1.0,
        "bb_pctb_20": (now - mean + 2.0 * std) / (4.0 * std + 1e-12),
        "range_pos_14": (now - ll) / np.where(hh > ll, hh - ll, np.inf),
        "atr_pct_14": sums[0] / 14.0 / now,
        "volume_z_20": (volume[start:] - volume_mean) / (volume_std + 1e-12),
        "rsi_14": np.where(sums[2] > 0, 100.0 * sums[1] / np.where(sums[2] > 0, sums[2], 1), 50.0),
    }


def _timeframe_compute(factor: int) -> ComputeFn:
    def compute(bars: Bars, start: int) -> dict[str, np.ndarray]:
        n = bars["timestamp"].shape[0]
        candles, closing_row = higher_candles(bars, factor)
        # For base row i, the last higher candle closed at or before i.
        latest = np.searchsorted(closing_row, np.arange(start, n), side="right") - 1
        needed_from = int(max(0, latest[0])) if latest.size else 0
        values = higher_features(candles, needed_from) if closing_row.size else {}
        out: dict[str, np.ndarray] = {}
        for name in HIGHER_FEATURES:
            column = np.full(n - start, np.nan)
            if values:
                known = latest >= 0
                column[known] = values[name][latest[known] - needed_from]
            out[f"htf{factor}_{name}"] = column
        return out

    return compute


for _factor in FACTORS:
    register_group(
        SET,
        f"x{_factor}",
        INPUTS,
        {
            f"htf{_factor}_{name}": (
                _factor * (warmup + 2) - 1,
                f"{text} (candles {_factor}x the base timeframe)",
            )
            for name, (warmup, text) in HIGHER_FEATURES.items()
        },
        _timeframe_compute(_factor),
    )

"""Regime features: trend strength, volatility regime, EMA alignment, range width, chop.

The chop detector looks for a dominant cycle: the share of the spectral power of the last 64
log returns held by the strongest frequency. White-noise returns spread power evenly; a market
that swings back and forth concentrates it.
"""

from __future__ import annotations

import numpy as np

from tradebrain.core.market import true_range
from tradebrain.features.indicators import ADX_PERIOD, directional_index
from tradebrain.features.registry import Bars, feature_group
from tradebrain.features.rolling import (
    lagged,
    log_returns,
    rolling_extremes,
    rolling_sums,
)
from tradebrain.features.smoothing import ema, ema_warmup, wilder_warmup

SET = "regime"
ATR_SHORT, ATR_LONG = 14, 96
ALIGNMENT_SPANS = (9, 21, 50)
RANGE_WINDOWS = (20, 60)
EFFICIENCY_WINDOW = 20
CHOP_WINDOW = 14
CYCLE_WINDOW = 64
_CHUNK = 16_384


@feature_group(
    SET,
    ("high", "low", "close"),
    {
        "regime_trend_strength": (
            1 + wilder_warmup(ADX_PERIOD, 1e-12),
            "ADX(14) / 100: 0 no trend, above 0.25 trending",
        ),
        "atr_ratio_14_96": (ATR_LONG, "mean true range over 14 bars over that over 96 bars"),
        "ema_alignment": (
            ema_warmup(max(ALIGNMENT_SPANS)),
            "mean of sign(close-EMA9), sign(EMA9-EMA21), sign(EMA21-EMA50): +1 stacked up",
        ),
        **{
            f"range_width_{w}": (w - 1, f"{w}-bar high-low range over the close")
            for w in RANGE_WINDOWS
        },
        f"efficiency_ratio_{EFFICIENCY_WINDOW}": (
            EFFICIENCY_WINDOW,
            "Kaufman efficiency: net 20-bar move over the path travelled (1 straight, 0 chop)",
        ),
        f"choppiness_{CHOP_WINDOW}": (
            CHOP_WINDOW,
            "choppiness index (14): 100 choppy, near 0 trending",
        ),
    },
)
def _trend_and_range(bars: Bars, start: int) -> dict[str, np.ndarray]:
    high, low, close = bars["high"], bars["low"], bars["close"]
    now = close[start:]
    adx = directional_index(high, low, close, ADX_PERIOD, start)[2]
    ranges = true_range(high, low, close)
    path = np.abs(np.diff(close, prepend=np.nan))
    long_sum = rolling_sums(ranges[None, :], ATR_LONG, start)[0]
    short_sum = rolling_sums(ranges[None, :], ATR_SHORT, start)[0]
    fast, mid, slow = (ema(close, span, start) for span in ALIGNMENT_SPANS)
    alignment = (np.sign(now - fast) + np.sign(fast - mid) + np.sign(mid - slow)) / 3.0
    out = {
        "regime_trend_strength": adx / 100.0,
        "atr_ratio_14_96": (short_sum / ATR_SHORT) / (long_sum / ATR_LONG),
        "ema_alignment": alignment,
    }
    for w in RANGE_WINDOWS:
        hh, ll, _, _ = rolling_extremes(high, low, w, start)
        out[f"range_width_{w}"] = (hh - ll) / now
    travelled = rolling_sums(path[None, :], EFFICIENCY_WINDOW, start)[0]
    net = np.abs(now - lagged(close, EFFICIENCY_WINDOW, start))
    out[f"efficiency_ratio_{EFFICIENCY_WINDOW}"] = net / np.where(travelled > 0, travelled, np.inf)
    hh, ll, _, _ = rolling_extremes(high, low, CHOP_WINDOW, start)
    ratio = short_sum / np.where(hh > ll, hh - ll, np.nan)
    out[f"choppiness_{CHOP_WINDOW}"] = 100.0 * np.log10(ratio) / np.log10(CHOP_WINDOW)
    return out


@feature_group(
    SET,
    ("close",),
    {
        "cycle_power_64": (
            CYCLE_WINDOW,
            "share of spectral power of the last 64 log returns in the strongest cycle",
        ),
        "cycle_period_64": (
            CYCLE_WINDOW,
            "period in bars of the strongest cycle in the last 64 log returns",
        ),
    },
)
def _dominant_cycle(bars: Bars, start: int) -> dict[str, np.ndarray]:
    log_ret = log_returns(bars["close"])
    n = log_ret.shape[0]
    power_share = np.full(n - start, np.nan)
    period = np.full(n - start, np.nan)
    first = max(start, CYCLE_WINDOW)
    if first >= n:
        return {"cycle_power_64": power_share, "cycle_period_64": period}
    periods = CYCLE_WINDOW / np.arange(1, CYCLE_WINDOW // 2 + 1)
    windows = np.lib.stride_tricks.sliding_window_view(log_ret, CYCLE_WINDOW)
    for lo in range(first, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        block = windows[lo - CYCLE_WINDOW + 1 : hi - CYCLE_WINDOW + 1]
        block = block - block.mean(axis=1, keepdims=True)
        spectrum = np.abs(np.fft.rfft(block, axis=1)[:, 1:]) ** 2
        total = spectrum.sum(axis=1)
        strongest = spectrum.argmax(axis=1)
        power_share[lo - start : hi - start] = spectrum.max(axis=1) / np.where(
            total > 0, total, np.inf
        )
        period[lo - start : hi - start] = periods[strongest]
    return {"cycle_power_64": power_share, "cycle_period_64": period}

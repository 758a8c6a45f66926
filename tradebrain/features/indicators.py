"""Classic indicators, computed to agree with TA-Lib once warmed up.

Oscillators keep their usual scales (RSI, ADX, stochastic 0-100); MACD is divided by the close
so that it is free of the price level.
"""

from __future__ import annotations

import numpy as np

from tradebrain.features._oscillator_kernels import directional_kernel, macd_kernel, rsi_kernel
from tradebrain.features.registry import Bars, feature_group
from tradebrain.features.rolling import (
    bar_changes,
    rolling_extremes,
    rolling_linear_fit,
    rolling_mean_abs_deviation,
    rolling_mean_std,
    rolling_sums,
)
from tradebrain.features.smoothing import (
    ema_warmup,
    wilder_warmup,
)

SET = "indicators"
RSI_PERIODS = (7, 14)
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
ADX_PERIOD = 14
BOLLINGER_WINDOW, BOLLINGER_WIDTH = 20, 2.0
STOCH_K, STOCH_SMOOTH, STOCH_D = 14, 3, 3
CCI_WINDOW = 20
MFI_WINDOW = 14
OBV_WINDOW = 20
WILLR_WINDOW = 14
AROON_PERIOD = 25


def relative_strength(close: np.ndarray, period: int, start: int) -> np.ndarray:
    """Return Wilder's RSI of ``period`` bars (0-100) for rows ``start .. n-1``."""
    return rsi_kernel(close, period, start)


@feature_group(
    SET,
    ("close",),
    {
        f"rsi_{p}": (1 + wilder_warmup(p, 1e-12), f"Wilder relative strength index, {p} bars")
        for p in RSI_PERIODS
    },
)
def _rsi(bars: Bars, start: int) -> dict[str, np.ndarray]:
    return {f"rsi_{p}": relative_strength(bars["close"], p, start) for p in RSI_PERIODS}


_MACD_WARMUP = ema_warmup(MACD_SLOW)


@feature_group(
    SET,
    ("close",),
    {
        "macd_pct": (_MACD_WARMUP, "MACD line (EMA 12 - EMA 26) as a fraction of the close"),
        "macd_signal_pct": (
            _MACD_WARMUP + ema_warmup(MACD_SIGNAL),
            "MACD signal line (EMA 9 of the line) as a fraction of the close",
        ),
        "macd_hist_pct": (
            _MACD_WARMUP + ema_warmup(MACD_SIGNAL),
            "MACD histogram (line - signal) as a fraction of the close",
        ),
    },
)
def _macd(bars: Bars, start: int) -> dict[str, np.ndarray]:
    close = bars["close"]
    _, _, line, signal = macd_kernel(close, MACD_FAST, MACD_SLOW, MACD_SIGNAL, start)
    now = close[start:]
    return {
        "macd_pct": line / now,
        "macd_signal_pct": signal / now,
        "macd_hist_pct": (line - signal) / now,
    }


_DI_WARMUP = 1 + wilder_warmup(ADX_PERIOD)


def directional_index(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int, start: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return +DI, -DI and ADX (0-100) of ``period`` bars for rows ``start .. n-1``."""
    return directional_kernel(high, low, close, period, start)


@feature_group(
    SET,
    ("high", "low", "close"),
    {
        f"adx_{ADX_PERIOD}": (
            _DI_WARMUP + wilder_warmup(ADX_PERIOD, 1e-12) - wilder_warmup(ADX_PERIOD),
            "average directional index (trend strength, 0-100)",
        ),
        f"plus_di_{ADX_PERIOD}": (_DI_WARMUP, "plus directional indicator +DI (0-100)"),
        f"minus_di_{ADX_PERIOD}": (_DI_WARMUP, "minus directional indicator -DI (0-100)"),
    },
)
def _adx(bars: Bars, start: int) -> dict[str, np.ndarray]:
    plus_di, minus_di, adx = directional_index(
        bars["high"], bars["low"], bars["close"], ADX_PERIOD, start
    )
    return {
        f"adx_{ADX_PERIOD}": adx,
        f"plus_di_{ADX_PERIOD}": plus_di,
        f"minus_di_{ADX_PERIOD}": minus_di,
    }


@feature_group(
    SET,
    ("close",),
    {
        f"bb_pctb_{BOLLINGER_WINDOW}": (
            BOLLINGER_WINDOW - 1,
            "Bollinger %B: where the close sits between the 2-sigma bands (0 lower, 1 upper)",
        ),
        f"bb_width_{BOLLINGER_WINDOW}": (
            BOLLINGER_WINDOW - 1,
            "Bollinger bandwidth: band distance over the middle band",
        ),
    },
)
def _bollinger(bars: Bars, start: int) -> dict[str, np.ndarray]:
    middle, std = rolling_mean_std(bars["close"], BOLLINGER_WINDOW, 0, start)
    width = 2.0 * BOLLINGER_WIDTH * std
    lower = middle - BOLLINGER_WIDTH * std
    return {
        f"bb_pctb_{BOLLINGER_WINDOW}": (bars["close"][start:] - lower) / (width + 1e-12),
        f"bb_width_{BOLLINGER_WINDOW}": width / middle,
    }


_STOCH_WARMUP = STOCH_K - 1 + STOCH_SMOOTH - 1


@feature_group(
    SET,
    ("high", "low", "close"),
    {
        "stoch_k": (_STOCH_WARMUP, "slow stochastic %K (14, 3): close in the 14-bar range, 0-100"),
        "stoch_d": (_STOCH_WARMUP + STOCH_D - 1, "slow stochastic %D: 3-bar mean of %K"),
        f"willr_{WILLR_WINDOW}": (WILLR_WINDOW - 1, "Williams %R (-100 at the low, 0 at the high)"),
    },
)
def _stochastic(bars: Bars, start: int) -> dict[str, np.ndarray]:
    close = bars["close"]
    lead = max(0, start - _STOCH_WARMUP)
    hh, ll, _, _ = rolling_extremes(bars["high"], bars["low"], STOCH_K, lead)
    span = hh - ll
    fast_k = 100.0 * (close[lead:] - ll) / np.where(span > 0.0, span, np.inf)
    slow_k = rolling_sums(fast_k[None, :], STOCH_SMOOTH, 0)[0] / STOCH_SMOOTH
    slow_d = rolling_sums(slow_k[None, :], STOCH_D, 0)[0] / STOCH_D
    offset = start - lead
    willr = -100.0 * (hh - close[lead:]) / np.where(span > 0.0, span, np.inf)
    return {
        "stoch_k": slow_k[offset:],
        "stoch_d": slow_d[offset:],
        f"willr_{WILLR_WINDOW}": willr[offset:],
    }


@feature_group(
    SET,
    ("high", "low", "close", "volume"),
    {
        f"cci_{CCI_WINDOW}": (CCI_WINDOW - 1, "commodity channel index of the typical price"),
        f"mfi_{MFI_WINDOW}": (MFI_WINDOW, "money flow index (volume-weighted RSI, 0-100)"),
        f"obv_slope_{OBV_WINDOW}": (
            OBV_WINDOW - 1,
            "slope of on-balance volume per bar over 20 bars, in units of mean volume",
        ),
    },
)
def _volume_oscillators(bars: Bars, start: int) -> dict[str, np.ndarray]:
    typical = (bars["high"] + bars["low"] + bars["close"]) / 3.0
    mean = rolling_mean_std(typical, CCI_WINDOW, 0, start)[0]
    deviation = rolling_mean_abs_deviation(typical, CCI_WINDOW, start)
    cci = (typical[start:] - mean) / (0.015 * np.where(deviation > 0.0, deviation, np.inf))
    flow = typical * bars["volume"]
    change = bar_changes(typical)
    flows = np.vstack((np.where(change > 0.0, flow, 0.0), np.where(change < 0.0, flow, 0.0)))
    flows[:, 0] = np.nan
    sums = rolling_sums(flows, MFI_WINDOW, start)
    total = sums[0] + sums[1]
    mfi = 100.0 * sums[0] / np.where(total > 0.0, total, np.inf)
    signed = np.sign(bar_changes(bars["close"])) * bars["volume"]
    signed[0] = 0.0
    slope = rolling_linear_fit(np.cumsum(signed), OBV_WINDOW, start)[0]
    mean_volume = rolling_sums(bars["volume"][None, :], OBV_WINDOW, start)[0] / OBV_WINDOW
    return {
        f"cci_{CCI_WINDOW}": cci,
        f"mfi_{MFI_WINDOW}": mfi,
        f"obv_slope_{OBV_WINDOW}": slope / (mean_volume + 1e-12),
    }


@feature_group(
    SET,
    ("high", "low"),
    {
        f"aroon_up_{AROON_PERIOD}": (AROON_PERIOD, "Aroon up: recency of the 25-bar high, 0-100"),
        f"aroon_down_{AROON_PERIOD}": (
            AROON_PERIOD,
            "Aroon down: recency of the 25-bar low, 0-100",
        ),
        f"aroon_osc_{AROON_PERIOD}": (AROON_PERIOD, "Aroon oscillator: up minus down"),
    },
)
def _aroon(bars: Bars, start: int) -> dict[str, np.ndarray]:
    _, _, high_at, low_at = rolling_extremes(
        bars["high"], bars["low"], AROON_PERIOD + 1, start, True
    )
    up = 100.0 * (high_at - 1.0) / AROON_PERIOD
    down = 100.0 * (low_at - 1.0) / AROON_PERIOD
    return {
        f"aroon_up_{AROON_PERIOD}": up,
        f"aroon_down_{AROON_PERIOD}": down,
        f"aroon_osc_{AROON_PERIOD}": up - down,
    }

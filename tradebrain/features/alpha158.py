"""Qlib's Alpha158 factor set, computed on crypto candles.

Definitions follow ``qlib.contrib.data.loader.Alpha158DL`` (9 K-bar features, 4 price ratios,
29 rolling operators over 5, 10, 20, 30 and 60 bars), with two differences that come from our
contracts: a window is only reported once it is full (Qlib uses ``min_periods=1``), and VWAP0
uses the typical price ``(high + low + close) / 3`` because candles carry no traded amount.
Operator conventions follow Qlib: ``Std`` is the sample deviation, ``Quantile`` interpolates
linearly, ``Rank`` is the newest value's percentile rank in its window, ``IdxMax``/``IdxMin``
count 1 for the oldest bar up to ``window`` for the newest.
"""

from __future__ import annotations

import numpy as np

from tradebrain.features.registry import Bars, ComputeFn, feature_group, register_group
from tradebrain.features.rolling import (
    bar_changes,
    lagged,
    rolling_corr,
    rolling_extremes,
    rolling_linear_fit,
    rolling_mean_std,
    rolling_quantiles_rank,
    rolling_sums,
)

SET = "alpha158"
WINDOWS = (5, 10, 20, 30, 60)
EPS = 1e-12

_KBAR = {
    "KMID": "(close - open) / open",
    "KLEN": "(high - low) / open",
    "KMID2": "(close - open) / (high - low)",
    "KUP": "(high - max(open, close)) / open",
    "KUP2": "(high - max(open, close)) / (high - low)",
    "KLOW": "(min(open, close) - low) / open",
    "KLOW2": "(min(open, close) - low) / (high - low)",
    "KSFT": "(2 close - high - low) / open",
    "KSFT2": "(2 close - high - low) / (high - low)",
}


@feature_group(
    SET,
    ("open", "high", "low", "close"),
    {name: (0, f"K-bar shape: {formula}") for name, formula in _KBAR.items()},
)
def _kbar(bars: Bars, start: int) -> dict[str, np.ndarray]:
    open_, high, low, close = (bars[k][start:] for k in ("open", "high", "low", "close"))
    span = high - low + EPS
    upper = high - np.maximum(open_, close)
    lower = np.minimum(open_, close) - low
    shift = 2.0 * close - high - low
    return {
        "KMID": (close - open_) / open_,
        "KLEN": (high - low) / open_,
        "KMID2": (close - open_) / span,
        "KUP": upper / open_,
        "KUP2": upper / span,
        "KLOW": lower / open_,
        "KLOW2": lower / span,
        "KSFT": shift / open_,
        "KSFT2": shift / span,
    }


@feature_group(
    SET,
    ("open", "high", "low", "close"),
    {
        "OPEN0": (0, "open / close"),
        "HIGH0": (0, "high / close"),
        "LOW0": (0, "low / close"),
        "VWAP0": (0, "typical price (high + low + close) / 3, over the close"),
    },
)
def _price(bars: Bars, start: int) -> dict[str, np.ndarray]:
    open_, high, low, close = (bars[k][start:] for k in ("open", "high", "low", "close"))
    return {
        "OPEN0": open_ / close,
        "HIGH0": high / close,
        "LOW0": low / close,
        "VWAP0": (high + low + close) / (3.0 * close),
    }


_OPERATORS: dict[str, tuple[int, str]] = {
    # name: (extra warm-up beyond window - 1, description with {d} for the window)
    "ROC": (1, "close {d} bars ago over the close"),
    "MA": (0, "{d}-bar mean close over the close"),
    "STD": (0, "{d}-bar standard deviation of the close over the close"),
    "BETA": (0, "{d}-bar linear-trend slope of the close per bar, over the close"),
    "RSQR": (0, "R-squared of the {d}-bar linear trend of the close"),
    "RESI": (0, "close minus its {d}-bar linear trend, over the close"),
    "MAX": (0, "{d}-bar highest high over the close"),
    "MIN": (0, "{d}-bar lowest low over the close"),
    "QTLU": (0, "{d}-bar 80% quantile of the close over the close"),
    "QTLD": (0, "{d}-bar 20% quantile of the close over the close"),
    "RANK": (0, "percentile rank of the close among the last {d} closes"),
    "RSV": (0, "close within the {d}-bar low-high range (0 at the low, 1 at the high)"),
    "IMAX": (0, "position of the {d}-bar highest high in the window, over {d}"),
    "IMIN": (0, "position of the {d}-bar lowest low in the window, over {d}"),
    "IMXD": (0, "(IMAX - IMIN) position difference over {d}"),
    "CORR": (0, "{d}-bar correlation of the close with log(volume + 1)"),
    "CORD": (1, "{d}-bar correlation of close change ratio with log volume change ratio"),
    "CNTP": (1, "share of up bars over {d} bars"),
    "CNTN": (1, "share of down bars over {d} bars"),
    "CNTD": (1, "share of up bars minus share of down bars over {d} bars"),
    "SUMP": (1, "gains over total absolute change of the close over {d} bars (RSI-like)"),
    "SUMN": (1, "losses over total absolute change of the close over {d} bars"),
    "SUMD": (1, "(gains - losses) over total absolute change of the close over {d} bars"),
    "VMA": (0, "{d}-bar mean volume over the volume"),
    "VSTD": (0, "{d}-bar standard deviation of volume over the volume"),
    "WVMA": (1, "{d}-bar volatility of volume-weighted absolute returns over their mean"),
    "VSUMP": (1, "volume increases over total absolute volume change over {d} bars"),
    "VSUMN": (1, "volume decreases over total absolute volume change over {d} bars"),
    "VSUMD": (1, "(increases - decreases) over total absolute volume change over {d} bars"),
}


def _rolling_operators(bars: Bars, start: int, d: int) -> dict[str, np.ndarray]:
    """Compute the 29 rolling operators over window ``d`` for rows ``start .. n-1``."""
    close, high, low, volume = (bars[k] for k in ("close", "high", "low", "volume"))
    now = close[start:]
    vol_now = volume[start:]
    out: dict[str, np.ndarray] = {f"ROC{d}": lagged(close, d, start) / now}

    mean, std = rolling_mean_std(close, d, 1, start)
    out[f"MA{d}"] = mean / now
    out[f"STD{d}"] = std / now
    slope, rsquare, residual = rolling_linear_fit(close, d, start)
    out[f"BETA{d}"] = slope / now
    out[f"RSQR{d}"] = rsquare
    out[f"RESI{d}"] = residual / now

    highest, lowest, high_at, low_at = rolling_extremes(high, low, d, start)
    out[f"MAX{d}"] = highest / now
    out[f"MIN{d}"] = lowest / now
    out[f"RSV{d}"] = (now - lowest) / (highest - lowest + EPS)
    out[f"IMAX{d}"] = high_at / d
    out[f"IMIN{d}"] = low_at / d
    out[f"IMXD{d}"] = (high_at - low_at) / d

    q_low, q_high, rank = rolling_quantiles_rank(close, d, 0.2, 0.8, start)
    out[f"QTLU{d}"] = q_high / now
    out[f"QTLD{d}"] = q_low / now
    out[f"RANK{d}"] = rank

    out[f"CORR{d}"] = rolling_corr(close, np.log(volume + 1.0), d, start)
    prev_close = np.empty_like(close)
    prev_close[0] = np.nan
    prev_close[1:] = close[:-1]
    prev_volume = np.empty_like(volume)
    prev_volume[0] = np.nan
    prev_volume[1:] = volume[:-1]
    close_ratio = close / prev_close
    out[f"CORD{d}"] = rolling_corr(close_ratio, np.log(volume / prev_volume + 1.0), d, start)

    change = bar_changes(close)
    volume_change = bar_changes(volume)
    weighted = np.abs(close_ratio - 1.0) * volume
    stacked = np.vstack(
        (
            (change > 0.0).astype(np.float64),
            (change < 0.0).astype(np.float64),
            np.maximum(change, 0.0),
            np.maximum(-change, 0.0),
            np.abs(change),
            np.maximum(volume_change, 0.0),
            np.maximum(-volume_change, 0.0),
            np.abs(volume_change),
        )
    )
    stacked[:, 0] = np.nan
    sums = rolling_sums(stacked, d, start)
    out[f"CNTP{d}"] = sums[0] / d
    out[f"CNTN{d}"] = sums[1] / d
    out[f"CNTD{d}"] = (sums[0] - sums[1]) / d
    out[f"SUMP{d}"] = sums[2] / (sums[4] + EPS)
    out[f"SUMN{d}"] = sums[3] / (sums[4] + EPS)
    out[f"SUMD{d}"] = (sums[2] - sums[3]) / (sums[4] + EPS)

    volume_mean, volume_std = rolling_mean_std(volume, d, 1, start)
    out[f"VMA{d}"] = volume_mean / (vol_now + EPS)
    out[f"VSTD{d}"] = volume_std / (vol_now + EPS)
    weighted_mean, weighted_std = rolling_mean_std(weighted, d, 1, start)
    out[f"WVMA{d}"] = weighted_std / (weighted_mean + EPS)
    out[f"VSUMP{d}"] = sums[5] / (sums[7] + EPS)
    out[f"VSUMN{d}"] = sums[6] / (sums[7] + EPS)
    out[f"VSUMD{d}"] = (sums[5] - sums[6]) / (sums[7] + EPS)
    return out


def _window_compute(d: int) -> ComputeFn:
    def compute(bars: Bars, start: int) -> dict[str, np.ndarray]:
        return _rolling_operators(bars, start, d)

    return compute


for _d in WINDOWS:
    register_group(
        SET,
        f"rolling_{_d}",
        ("high", "low", "close", "volume"),
        {
            f"{name}{_d}": (_d - 1 + extra, text.format(d=_d))
            for name, (extra, text) in _OPERATORS.items()
        },
        _window_compute(_d),
    )

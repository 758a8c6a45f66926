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

from tradebrain.features._kernels_alpha158 import OPERATOR_ORDER, window_operators
from tradebrain.features.registry import Bars, ComputeFn, feature_group, register_group

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


_OPERATORS: dict[str, tuple[int, str]] = {  # in the order of OPERATOR_ORDER
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
    values = np.empty((len(OPERATOR_ORDER), bars["close"].shape[0] - start))
    window_operators(bars["high"], bars["low"], bars["close"], bars["volume"], d, start, values)
    return {f"{name}{d}": values[row] for row, name in enumerate(OPERATOR_ORDER)}


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

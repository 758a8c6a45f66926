"""Atomic features: returns, realized volatility, ATR, distances to averages, volume and VWAP."""

from __future__ import annotations

import math

import numpy as np

from tradebrain.core.market import true_range
from tradebrain.features.registry import Bars, feature_group
from tradebrain.features.rolling import lagged, log_returns, rolling_mean_std, rolling_sums
from tradebrain.features.smoothing import ema, ema_warmup, wilder, wilder_warmup

SET = "atomic"
RETURN_HORIZONS = (1, 3, 6, 12, 24, 48)
STD_WINDOWS = (10, 20, 60)
RANGE_WINDOWS = (20, 60)
SMA_WINDOWS = (10, 20, 50, 100, 200)
EMA_SPANS = (9, 21, 50)
VOLUME_WINDOWS = (20, 60)
VWAP_WINDOWS = (20, 60)
ATR_PERIOD = 14

_returns_columns: dict[str, tuple[int, str]] = {}
for _h in RETURN_HORIZONS:
    _returns_columns[f"ret_{_h}"] = (_h, f"simple return of the close over {_h} bars")
    _returns_columns[f"logret_{_h}"] = (_h, f"log return of the close over {_h} bars")


@feature_group(SET, ("close",), _returns_columns)
def _returns(bars: Bars, start: int) -> dict[str, np.ndarray]:
    close = bars["close"]
    now = close[start:]
    out: dict[str, np.ndarray] = {}
    for horizon in RETURN_HORIZONS:
        growth = now / lagged(close, horizon, start)
        out[f"ret_{horizon}"] = growth - 1.0
        out[f"logret_{horizon}"] = np.log(growth)
    return out


_volatility_columns: dict[str, tuple[int, str]] = {
    f"rv_std_{w}": (w, f"standard deviation of 1-bar log returns over {w} bars")
    for w in STD_WINDOWS
}
for _w in RANGE_WINDOWS:
    _volatility_columns[f"rv_parkinson_{_w}"] = (
        _w - 1,
        f"Parkinson high-low volatility per bar over {_w} bars",
    )
    _volatility_columns[f"rv_garman_klass_{_w}"] = (
        _w - 1,
        f"Garman-Klass OHLC volatility per bar over {_w} bars",
    )


@feature_group(SET, ("open", "high", "low", "close"), _volatility_columns)
def _volatility(bars: Bars, start: int) -> dict[str, np.ndarray]:
    log_ret = log_returns(bars["close"])
    out = {f"rv_std_{w}": rolling_mean_std(log_ret, w, 1, start)[1] for w in STD_WINDOWS}
    range_sq = np.log(bars["high"] / bars["low"]) ** 2
    body_sq = np.log(bars["close"] / bars["open"]) ** 2
    parkinson = range_sq / (4.0 * math.log(2.0))
    garman_klass = 0.5 * range_sq - (2.0 * math.log(2.0) - 1.0) * body_sq
    for w in RANGE_WINDOWS:
        sums = rolling_sums(np.vstack((parkinson, garman_klass)), w, start) / w
        out[f"rv_parkinson_{w}"] = np.sqrt(sums[0])
        out[f"rv_garman_klass_{w}"] = np.sqrt(np.maximum(sums[1], 0.0))
    return out


@feature_group(
    SET,
    ("high", "low", "close"),
    {
        "true_range_pct": (1, "true range of the bar as a fraction of the close"),
        f"atr_pct_{ATR_PERIOD}": (
            1 + wilder_warmup(ATR_PERIOD),
            f"Wilder ATR({ATR_PERIOD}) as a fraction of the close",
        ),
    },
)
def _average_true_range(bars: Bars, start: int) -> dict[str, np.ndarray]:
    close = bars["close"][start:]
    ranges = true_range(bars["high"], bars["low"], bars["close"])
    return {
        "true_range_pct": ranges[start:] / close,
        f"atr_pct_{ATR_PERIOD}": wilder(ranges, ATR_PERIOD, start) / close,
    }


_average_columns: dict[str, tuple[int, str]] = {
    f"sma_dist_{w}": (w - 1, f"close over its {w}-bar simple moving average, minus 1")
    for w in SMA_WINDOWS
}
_average_columns.update(
    {
        f"ema_dist_{s}": (ema_warmup(s), f"close over its {s}-bar exponential average, minus 1")
        for s in EMA_SPANS
    }
)


@feature_group(SET, ("close",), _average_columns)
def _moving_averages(bars: Bars, start: int) -> dict[str, np.ndarray]:
    close = bars["close"]
    now = close[start:]
    out = {
        f"sma_dist_{w}": now / (rolling_sums(close[None, :], w, start)[0] / w) - 1.0
        for w in SMA_WINDOWS
    }
    for span in EMA_SPANS:
        out[f"ema_dist_{span}"] = now / ema(close, span, start) - 1.0
    return out


_volume_columns: dict[str, tuple[int, str]] = {
    f"volume_z_{w}": (w - 1, f"z-score of volume against its last {w} bars") for w in VOLUME_WINDOWS
}
_volume_columns["log_volume_z_20"] = (19, "z-score of log(1 + volume) against its last 20 bars")


@feature_group(SET, ("volume",), _volume_columns)
def _volume(bars: Bars, start: int) -> dict[str, np.ndarray]:
    volume = bars["volume"]
    out = {}
    for w in VOLUME_WINDOWS:
        mean, std = rolling_mean_std(volume, w, 0, start)
        out[f"volume_z_{w}"] = (volume[start:] - mean) / (std + 1e-12)
    log_volume = np.log1p(volume)
    mean, std = rolling_mean_std(log_volume, 20, 0, start)
    out["log_volume_z_20"] = (log_volume[start:] - mean) / (std + 1e-12)
    return out


_vwap_columns: dict[str, tuple[int, str]] = {}
for _w in VWAP_WINDOWS:
    _vwap_columns[f"vwap_dist_{_w}"] = (
        _w - 1,
        f"close over the {_w}-bar volume-weighted average price, minus 1",
    )
    _vwap_columns[f"vwap_z_{_w}"] = (
        _w - 1,
        f"close minus {_w}-bar VWAP, in {_w}-bar standard deviations of the close",
    )


@feature_group(SET, ("high", "low", "close", "volume"), _vwap_columns)
def _vwap(bars: Bars, start: int) -> dict[str, np.ndarray]:
    close = bars["close"]
    typical = (bars["high"] + bars["low"] + close) / 3.0
    volume = bars["volume"]
    now = close[start:]
    out = {}
    for w in VWAP_WINDOWS:
        sums = rolling_sums(np.vstack((typical * volume, volume)), w, start)
        # A window without any volume has no VWAP: NaN, not a price divided by ~0.
        vwap = np.where(sums[1] > 0.0, sums[0] / np.where(sums[1] > 0.0, sums[1], 1.0), np.nan)
        std = rolling_mean_std(close, w, 0, start)[1]
        out[f"vwap_dist_{w}"] = now / vwap - 1.0
        out[f"vwap_z_{w}"] = (now - vwap) / (std + 1e-12 * now)
    return out

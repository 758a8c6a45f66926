"""Indicators agree with TA-Lib once both have warmed up."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tradebrain.features import compute_features

talib = pytest.importorskip("talib", reason="TA-Lib (pip install ta-lib) is not installed")

SETTLED = 1000
"""Rows from which both implementations have forgotten their different seeds."""


@pytest.fixture(scope="module")
def pair(market: pl.DataFrame) -> tuple[dict[str, np.ndarray], pl.DataFrame]:
    columns = {name: market[name].to_numpy() for name in ("open", "high", "low", "close", "volume")}
    return columns, compute_features(market, ["atomic", "indicators"])


def _talib_columns(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    high, low, close, volume = c["high"], c["low"], c["close"], c["volume"]
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    slow_k, slow_d = talib.STOCH(high, low, close, 14, 3, 0, 3, 0)
    aroon_down, aroon_up = talib.AROON(high, low, 25)
    return {
        "rsi_7": talib.RSI(close, 7),
        "rsi_14": talib.RSI(close, 14),
        "macd_pct": macd / close,
        "macd_signal_pct": signal / close,
        "macd_hist_pct": hist / close,
        "adx_14": talib.ADX(high, low, close, 14),
        "plus_di_14": talib.PLUS_DI(high, low, close, 14),
        "minus_di_14": talib.MINUS_DI(high, low, close, 14),
        "bb_pctb_20": (close - lower) / (upper - lower),
        "bb_width_20": (upper - lower) / middle,
        "stoch_k": slow_k,
        "stoch_d": slow_d,
        "cci_20": talib.CCI(high, low, close, 20),
        "mfi_14": talib.MFI(high, low, close, volume, 14),
        "obv_slope_20": talib.LINEARREG_SLOPE(talib.OBV(close, volume), 20) / talib.SMA(volume, 20),
        "willr_14": talib.WILLR(high, low, close, 14),
        "aroon_up_25": aroon_up,
        "aroon_down_25": aroon_down,
        "aroon_osc_25": talib.AROONOSC(high, low, 25),
        "atr_pct_14": talib.ATR(high, low, close, 14) / close,
        "sma_dist_50": close / talib.SMA(close, 50) - 1.0,
        "ema_dist_21": close / talib.EMA(close, 21) - 1.0,
    }


def test_indicators_match_talib_after_warmup(
    pair: tuple[dict[str, np.ndarray], pl.DataFrame],
) -> None:
    columns, features = pair
    disagreements = {}
    for name, expected in _talib_columns(columns).items():
        got = features[name].to_numpy()[SETTLED:]
        want = expected[SETTLED:]
        scale = np.median(np.abs(want))
        error = np.max(np.abs(got - want) / np.maximum(np.abs(want), scale))
        if not error <= 1e-8:
            disagreements[name] = float(error)
    assert disagreements == {}

"""Hand-made alphas from candles: momentum decay, VWAP reversion, volume-delta divergence, curl.

Candles carry no aggressor side, so the signed volume of a bar is estimated from where it
closed in its range (the close location value): ``volume * (2 close - high - low) / (high -
low)``, +volume when it closed at the high, -volume at the low.
"""

from __future__ import annotations

import numpy as np

from tradebrain.features.registry import Bars, feature_group
from tradebrain.features.rolling import lagged, log_returns, rolling_mean_std, rolling_sums

SET = "alphas"
VOL_WINDOW = 20
DECAY_HORIZONS = (10, 20)
DELTA_WINDOWS = (5, 20)
CURL_STEPS = (2, 3)


def _rv(log_ret: np.ndarray, start: int) -> np.ndarray:
    return rolling_mean_std(log_ret, VOL_WINDOW, 1, start)[1] + 1e-12


@feature_group(
    SET,
    ("close",),
    {
        **{
            f"momentum_decay_{h}": (
                max(VOL_WINDOW, h + h // 2),
                f"{h}-bar log return now minus {h // 2} bars ago, in units of volatility",
            )
            for h in DECAY_HORIZONS
        },
        **{
            f"micro_curl_{k}": (
                max(VOL_WINDOW, 2 * k),
                f"second difference of log close over steps of {k} bars (short arc), "
                "in units of volatility",
            )
            for k in CURL_STEPS
        },
    },
)
def _momentum_shape(bars: Bars, start: int) -> dict[str, np.ndarray]:
    close = bars["close"]
    log_close = np.log(close)
    vol = _rv(log_returns(close), start)
    out: dict[str, np.ndarray] = {}
    for h in DECAY_HORIZONS:
        momentum = log_close[start:] - lagged(log_close, h, start)
        earlier = lagged(log_close, h // 2, start) - lagged(log_close, h + h // 2, start)
        out[f"momentum_decay_{h}"] = (momentum - earlier) / (vol * np.sqrt(h))
    for k in CURL_STEPS:
        curve = (
            log_close[start:] - 2.0 * lagged(log_close, k, start) + lagged(log_close, 2 * k, start)
        )
        out[f"micro_curl_{k}"] = curve / (vol * np.sqrt(k))
    return out


@feature_group(
    SET,
    ("high", "low", "close", "volume"),
    {
        "vwap_reversion_20": (
            2 * VOL_WINDOW - 2,
            "minus the z-score of (close - 20-bar VWAP) against its own last 20 bars: "
            "positive when price is stretched below VWAP",
        ),
        **{
            f"volume_delta_ratio_{w}": (
                w - 1,
                f"estimated signed volume over total volume, {w} bars (-1 all selling, +1 buying)",
            )
            for w in DELTA_WINDOWS
        },
        "volume_delta_divergence_20": (
            VOL_WINDOW,
            "20-bar volume delta ratio minus tanh of the 20-bar return in volatility units: "
            "buying without price progress is positive",
        ),
    },
)
def _flow_from_candles(bars: Bars, start: int) -> dict[str, np.ndarray]:
    high, low, close, volume = (bars[k] for k in ("high", "low", "close", "volume"))
    lead = max(0, start - VOL_WINDOW + 1)
    typical = (high + low + close) / 3.0
    sums = rolling_sums(np.vstack((typical * volume, volume)), VOL_WINDOW, lead)
    gap = close[lead:] - sums[0] / (sums[1] + 1e-12)
    gap_mean, gap_std = rolling_mean_std(gap, VOL_WINDOW, 0, 0)
    offset = start - lead
    out = {"vwap_reversion_20": (-(gap - gap_mean) / (gap_std + 1e-12 * close[lead:]))[offset:]}
    span = high - low
    signed = volume * np.where(
        span > 0.0, (2.0 * close - high - low) / np.where(span > 0.0, span, 1.0), 0.0
    )
    for w in DELTA_WINDOWS:
        flows = rolling_sums(np.vstack((signed, volume)), w, start)
        out[f"volume_delta_ratio_{w}"] = flows[0] / (flows[1] + 1e-12)
    log_ret = log_returns(close)
    move = np.log(close[start:] / lagged(close, VOL_WINDOW, start))
    progress = np.tanh(move / (_rv(log_ret, start) * np.sqrt(VOL_WINDOW)))
    out["volume_delta_divergence_20"] = out["volume_delta_ratio_20"] - progress
    return out

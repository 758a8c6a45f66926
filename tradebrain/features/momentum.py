"""Momentum features in units of risk: trend and stretch, scaled by recent volatility.

A 3 % move means little in a market that swings 2 % an hour and a lot in one that swings 0.2 %.
These features divide each move by the volatility expected over its window (the standard
deviation of one-candle log returns over the last ``VOL_WINDOW`` candles, times the square root
of the window), as time-series momentum research does (Moskowitz, Ooi & Pedersen, 2012), so one
model can read them across calm and wild markets alike:

- ``mom_z_h``: the log return over the last ``h`` candles, in ``sigma * sqrt(h)``;
- ``sma_dist_z_w``: the log close minus the mean log close of the last ``w`` candles, in
  ``sigma * sqrt(w)`` (how far the price is stretched from its average).
"""

from __future__ import annotations

import math

import numpy as np

from tradebrain.features.registry import Bars, feature_group
from tradebrain.features.rolling import lagged, log_returns, rolling_mean_std, rolling_sums

SET = "momentum"
VOL_WINDOW = 96
MOMENTUM_HORIZONS = (12, 24, 48, 96, 192)
STRETCH_WINDOWS = (24, 48, 96, 192)

_columns: dict[str, tuple[int, str]] = {
    f"mom_z_{h}": (
        max(h, VOL_WINDOW),
        f"log return over {h} bars in units of the {VOL_WINDOW}-bar volatility x sqrt({h})",
    )
    for h in MOMENTUM_HORIZONS
}
_columns.update(
    {
        f"sma_dist_z_{w}": (
            max(w - 1, VOL_WINDOW),
            f"log close minus its {w}-bar mean, in units of the {VOL_WINDOW}-bar volatility "
            f"x sqrt({w})",
        )
        for w in STRETCH_WINDOWS
    }
)


@feature_group(SET, ("close",), _columns)
def _momentum(bars: Bars, start: int) -> dict[str, np.ndarray]:
    close = bars["close"]
    log_close = np.log(close)
    sigma = rolling_mean_std(log_returns(close), VOL_WINDOW, 1, start)[1]
    sigma = np.where(sigma > 0.0, sigma, np.nan)
    now = log_close[start:]
    out: dict[str, np.ndarray] = {}
    for h in MOMENTUM_HORIZONS:
        out[f"mom_z_{h}"] = (now - lagged(log_close, h, start)) / (sigma * math.sqrt(h))
    for w in STRETCH_WINDOWS:
        mean = rolling_sums(log_close[None, :], w, start)[0] / w
        out[f"sma_dist_z_{w}"] = (now - mean) / (sigma * math.sqrt(w))
    return out

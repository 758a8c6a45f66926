"""Momentum features in units of risk: trend and stretch, scaled by recent volatility.

A 3 % move means little in a market that swings 2 % an hour and a lot in one that swings 0.2 %.
These features divide each move by the volatility expected over its window (the standard
deviation of one-candle log returns over the last ``VOL_WINDOW`` candles, times the square root
of the window), as time-series momentum research does (Moskowitz, Ooi & Pedersen, 2012), so one
model can read them across calm and wild markets alike:

- ``mom_z_h``: the log return over the last ``h`` candles, in ``sigma * sqrt(h)``;
- ``sma_dist_z_w``: the log close minus the mean log close of the last ``w`` candles, in
  ``sigma * sqrt(w)`` (how far the price is stretched from its average);
- ``trend_z_h``: an exponentially weighted sum of the volatility-scaled one-candle returns
  with half-life ``h`` (over the last ``4h`` candles, so its warm-up is finite), in units of
  its own spread under pure noise — the smoothed trend signal of trend-following funds.
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
TREND_HALF_LIVES = (6, 12, 24, 48)
_SPAN = 4  # an exponential trend sums the last SPAN half-lives (weights down to 1/16)

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


_columns.update(
    {
        f"trend_z_{h}": (
            VOL_WINDOW + _SPAN * h,
            f"exponentially weighted sum (half-life {h}) of returns in units of the "
            f"{VOL_WINDOW}-bar volatility, in units of its spread under noise",
        )
        for h in TREND_HALF_LIVES
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
    full_sigma = np.full(close.shape[0], np.nan)
    full_sigma[start:] = sigma
    first = max(0, start - _SPAN * max(TREND_HALF_LIVES))
    if first < start:  # the scaled returns of the rows before ``start`` the sums reach back to
        full_sigma[first:start] = rolling_mean_std(log_returns(close), VOL_WINDOW, 1, first)[1][
            : start - first
        ]
    scaled = np.diff(log_close, prepend=np.nan) / full_sigma
    for h in TREND_HALF_LIVES:
        out[f"trend_z_{h}"] = _exponential_sum(scaled, h, start)
    return out


def _exponential_sum(values: np.ndarray, half_life: int, start: int) -> np.ndarray:
    """Return ``sum_k w**k * values[t-k]`` over ``k < 4 * half_life`` for rows ``start..``.

    Scaled by the spread of that sum over unit noise; NaN where the window reaches a NaN.
    """
    window = _SPAN * half_life
    weights = 0.5 ** (np.arange(window) / half_life)
    out = np.full(values.shape[0] - start, np.nan)
    first = max(start, window - 1)
    if first < values.shape[0]:
        segment = values[first - window + 1 :]
        out[first - start :] = np.convolve(segment, weights, mode="valid")
    spread: float = math.sqrt(float(weights @ weights))
    return out / spread

"""Sentiment proxies: funding rate level, z-score and sign flips; fear and panic proxies.

``funding_rate`` is the last settled rate at each candle's close (see
:func:`~tradebrain.features.orderflow_inputs.orderflow_columns`); it is a step series that
changes at settlements (every 8 h on most venues), so windows are in bars but a flip is a
change of sign between two consecutive bars. The panic proxy reads the order book.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradebrain.features.registry import Bars, feature_group
from tradebrain.features.rolling import log_returns, rolling_mean_std, rolling_sums

SET = "sentiment"
FUNDING_WINDOW = 72
FEAR_WINDOW = 24
PANIC_WINDOW = 20
_FUNDING_STD_FLOOR = 1e-6  # 0.01 bps: a flat funding history gives a z-score of 0, not NaN


@njit(cache=True, nogil=True)
def _flip_counts(rate: np.ndarray, window: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Return sign flips in the last ``window`` bar-to-bar changes, and bars since the last.

    A flip is a bar whose rate has the opposite strict sign of the previous bar's; bars since
    the last flip are capped at ``window`` (no flip in the window).
    """
    n = rate.shape[0]
    flips = np.full(n - start, np.nan)
    since = np.full(n - start, np.nan)
    for i in range(max(start, window), n):
        count = 0.0
        last = -1
        valid = True
        for j in range(i - window + 1, i + 1):
            now, before = rate[j], rate[j - 1]
            if np.isnan(now) or np.isnan(before):
                valid = False
                break
            if now * before < 0.0:
                count += 1.0
                last = j
        if valid:
            flips[i - start] = count
            since[i - start] = float(window) if last < 0 else float(i - last)
    return flips, since


@feature_group(
    SET,
    ("funding_rate", "close"),
    {
        "funding_rate_bps": (0, "last settled funding rate, in basis points per interval"),
        f"funding_z_{FUNDING_WINDOW}": (
            FUNDING_WINDOW - 1,
            f"z-score of the funding rate against its last {FUNDING_WINDOW} bars",
        ),
        f"funding_flips_{FUNDING_WINDOW}": (
            FUNDING_WINDOW,
            f"times the funding rate changed sign in the last {FUNDING_WINDOW} bars",
        ),
        "bars_since_funding_flip": (
            FUNDING_WINDOW,
            f"bars since the funding rate last changed sign (capped at {FUNDING_WINDOW})",
        ),
        f"fear_proxy_{FEAR_WINDOW}": (
            FEAR_WINDOW,
            f"{FEAR_WINDOW}-bar volatility of log returns (bps) times minus the funding rate "
            "(bps): high when shorts pay in a turbulent market",
        ),
    },
)
def _funding(bars: Bars, start: int) -> dict[str, np.ndarray]:
    rate = bars["funding_rate"]
    mean, std = rolling_mean_std(rate, FUNDING_WINDOW, 0, start)
    flips, since = _flip_counts(rate, FUNDING_WINDOW, start)
    volatility = rolling_mean_std(log_returns(bars["close"]), FEAR_WINDOW, 1, start)[1]
    return {
        "funding_rate_bps": rate[start:] * 1e4,
        f"funding_z_{FUNDING_WINDOW}": (rate[start:] - mean) / (std + _FUNDING_STD_FLOOR),
        f"funding_flips_{FUNDING_WINDOW}": flips,
        "bars_since_funding_flip": since,
        f"fear_proxy_{FEAR_WINDOW}": volatility * 1e4 * (-rate[start:] * 1e4),
    }


@feature_group(
    SET,
    ("best_bid", "best_ask", "bid_depth_10", "ask_depth_10", "close"),
    {
        f"price_impact_{PANIC_WINDOW}": (
            PANIC_WINDOW - 1,
            f"|1-bar log return| in bps per unit of 10-level depth relative to its "
            f"{PANIC_WINDOW}-bar mean",
        ),
        f"panic_proxy_{PANIC_WINDOW}": (
            PANIC_WINDOW - 1,
            f"log(1 + spread in bps times price_impact_{PANIC_WINDOW}): wide spread, thin book "
            "and a big move together",
        ),
    },
)
def _panic(bars: Bars, start: int) -> dict[str, np.ndarray]:
    bid, ask = bars["best_bid"][start:], bars["best_ask"][start:]
    spread_bps = (ask - bid) / (0.5 * (ask + bid)) * 1e4
    depth = bars["bid_depth_10"] + bars["ask_depth_10"]
    mean_depth = rolling_sums(depth[None, :], PANIC_WINDOW, start)[0] / PANIC_WINDOW
    move_bps = np.abs(log_returns(bars["close"])[start:]) * 1e4
    impact = move_bps * mean_depth / np.maximum(depth[start:], 1e-12 * mean_depth)
    return {
        f"price_impact_{PANIC_WINDOW}": impact,
        f"panic_proxy_{PANIC_WINDOW}": np.log1p(np.maximum(spread_bps, 0.0) * impact),
    }

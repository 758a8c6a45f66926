"""Recursive smoothers (numba) and the warm-ups they need.

An exponential smoother forgets its seed geometrically: after ``k`` bars the seed's weight is
``(1 - alpha) ** k``. :func:`decay_bars` gives the ``k`` at which that weight falls below a
tolerance (1e-10 by default), which is the warm-up of a feature built on it.

Smoothers always run from the first valid input value (they are seeded with it), whatever
``start`` is, and return rows ``start .. n-1``; their cost is linear in the tail length.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tradebrain.features.rolling import first_valid

SEED_TOLERANCE = 1e-10
"""Relative weight of the seed below which a smoothed value counts as warmed up."""


def decay_bars(alpha: float, tolerance: float = SEED_TOLERANCE) -> int:
    """Return the bars after which a smoother with weight ``alpha`` has forgotten its seed.

    Parameters
    ----------
    alpha
        Weight of the newest value, ``2 / (span + 1)`` for an EMA, ``1 / period`` for Wilder.
    tolerance
        Remaining weight of the seed that counts as forgotten.
    """
    return math.ceil(math.log(tolerance) / math.log(1.0 - alpha))


def ema_warmup(span: int, tolerance: float = SEED_TOLERANCE) -> int:
    """Return the warm-up in bars of an EMA of ``span`` bars."""
    return decay_bars(2.0 / (span + 1.0), tolerance)


def wilder_warmup(period: int, tolerance: float = SEED_TOLERANCE) -> int:
    """Return the warm-up in bars of Wilder's smoothing of ``period`` bars."""
    return decay_bars(1.0 / period, tolerance)


def exponential_smoothing(values: np.ndarray, alpha: float, start: int) -> np.ndarray:
    """Return ``s[t] = alpha * x[t] + (1 - alpha) * s[t-1]``, seeded with the first valid value.

    The output is allocated by numpy (huge-page advised, unlike numba's allocations).
    """
    out = np.empty(values.shape[0] - start)
    _smooth_into(values, alpha, start, out)
    return out


@njit(cache=True, nogil=True)
def _smooth_into(values: np.ndarray, alpha: float, start: int, out: np.ndarray) -> None:
    n = values.shape[0]
    first = first_valid(values)
    out[: min(max(first, start), n) - start] = np.nan
    if first >= n:
        return
    level = values[first]
    if first >= start:
        out[first - start] = level
    keep = 1.0 - alpha
    for i in range(first + 1, n):
        level = alpha * values[i] + keep * level
        if i >= start:
            out[i - start] = level


def ema(values: np.ndarray, span: int, start: int) -> np.ndarray:
    """Return the exponential moving average of ``span`` bars (``alpha = 2 / (span + 1)``)."""
    return exponential_smoothing(values, 2.0 / (span + 1.0), start)


def wilder(values: np.ndarray, period: int, start: int) -> np.ndarray:
    """Return Wilder's moving average of ``period`` bars (``alpha = 1 / period``)."""
    return exponential_smoothing(values, 1.0 / period, start)


@njit(cache=True, nogil=True)
def directional_movement(high: np.ndarray, low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return Wilder's +DM and -DM of each bar; NaN on the first bar."""
    n = high.shape[0]
    plus = np.full(n, np.nan)
    minus = np.full(n, np.nan)
    for i in range(1, n):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        plus[i] = up if (up > down and up > 0.0) else 0.0
        minus[i] = down if (down > up and down > 0.0) else 0.0
    return plus, minus

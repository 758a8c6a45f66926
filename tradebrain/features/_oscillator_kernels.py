"""Single-pass numba kernels for RSI, +DI/-DI/ADX and MACD.

Each kernel fuses what :mod:`tradebrain.features.smoothing` does in several passes (bar change
or true range, then one or more exponential smoothers, then the ratio) into one loop with the
same arithmetic in the same order, so the values are those of the multi-pass definition.
Outputs are allocated by numpy and filled by the compiled loop: numpy advises the kernel to
back large arrays with huge pages, which numba's own allocations do not get, and on a virtual
machine the page faults of a fresh array otherwise cost more than the loop. A
smoother starts at its first non-NaN input (seeded with it) and NaN propagates after that, as
in :func:`tradebrain.features.smoothing.exponential_smoothing`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _smoothed_moves(
    change: float, alpha: float, keep: float, gain: float, loss: float
) -> tuple[float, float]:
    """Smooth one bar's gain and loss into ``gain`` and ``loss``; a NaN change stays NaN."""
    up = change if change > 0.0 else 0.0 * change
    down = -change if change < 0.0 else 0.0 * change
    return alpha * up + keep * gain, alpha * down + keep * loss


def rsi_kernel(close: np.ndarray, period: int, start: int) -> np.ndarray:
    """Return Wilder's RSI (0-100; 50 where gains plus losses are 0 or NaN), rows ``start..``."""
    out = np.empty(max(close.shape[0] - start, 0))
    _rsi_into(close, period, start, out)
    return out


@njit(cache=True, nogil=True)
def _rsi_into(close: np.ndarray, period: int, start: int, out: np.ndarray) -> None:
    """Return Wilder's RSI (0-100; 50 where gains plus losses are 0 or NaN), rows ``start..``.

    The loop is split around the seed bar and ``start`` so that the hot loop has no branch
    besides the ratio's guard.
    """
    n = close.shape[0]
    alpha = 1.0 / period
    keep = 1.0 - alpha
    first = 1  # the seed: first bar whose change is not NaN
    while first < n and math.isnan(close[first] - close[first - 1]):
        first += 1
    gain = loss = math.nan
    if first < n:
        gain, loss = _smoothed_moves(close[first] - close[first - 1], 1.0, 0.0, 0.0, 0.0)
    for i in range(first + 1, start):
        gain, loss = _smoothed_moves(close[i] - close[i - 1], alpha, keep, gain, loss)
    for i in range(start, min(first + 1, n)):
        total = gain + loss if i == first else math.nan
        out[i - start] = 100.0 * gain / total if total > 0.0 else 50.0
    for i in range(max(start, first + 1), n):
        gain, loss = _smoothed_moves(close[i] - close[i - 1], alpha, keep, gain, loss)
        total = gain + loss
        out[i - start] = 100.0 * gain / total if total > 0.0 else 50.0


@njit(cache=True, nogil=True)
def _directional_step(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, i: int
) -> tuple[float, float, float]:
    """Return bar ``i``'s true range, +DM and -DM (``i >= 1``)."""
    prev = close[i - 1]
    bar_range = max(high[i], prev) - min(low[i], prev)
    up = high[i] - high[i - 1]
    down = low[i - 1] - low[i]
    plus_move = up if (up > down and up > 0.0) else 0.0
    minus_move = down if (down > up and down > 0.0) else 0.0
    return bar_range, plus_move, minus_move


@njit(cache=True, nogil=True)
def _directional_index(ranges: float, plus: float, minus: float) -> tuple[float, float, float]:
    """Return +DI, -DI and DX from the smoothed range and directional moves.

    A market that has not moved at all yet (smoothed range exactly 0) has no direction:
    0, 0, 0, as TA-Lib gives, instead of a division by zero.
    """
    if ranges == 0.0:
        return 0.0, 0.0, 0.0
    plus_di = 100.0 * plus / ranges
    minus_di = 100.0 * minus / ranges
    spread = plus_di + minus_di
    dx = 100.0 * abs(plus_di - minus_di) / (spread if spread > 0.0 else 1.0)
    return plus_di, minus_di, dx


def directional_kernel(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int, start: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return +DI, -DI and ADX (0-100) of ``period`` bars for rows ``start .. n-1``."""
    out = np.empty((3, max(high.shape[0] - start, 0)))
    _directional_into(high, low, close, period, start, out[0], out[1], out[2])
    return out[0], out[1], out[2]


@njit(cache=True, nogil=True)
def _directional_into(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    period: int,
    start: int,
    plus_out: np.ndarray,
    minus_out: np.ndarray,
    adx_out: np.ndarray,
) -> None:
    n = high.shape[0]
    alpha = 1.0 / period
    keep = 1.0 - alpha
    ranges = plus = minus = adx = math.nan
    seeded = adx_seeded = False
    i = 0
    while i < n and not (seeded and adx_seeded and i > 1):  # until every smoother is seeded
        if i > 0:
            bar_range, plus_move, minus_move = _directional_step(high, low, close, i)
            if seeded:
                ranges = alpha * bar_range + keep * ranges
            elif bar_range == bar_range:
                ranges, seeded = bar_range, True
            # Directional moves are never NaN, so their smoothers start on the second bar.
            if i > 1:
                plus = alpha * plus_move + keep * plus
                minus = alpha * minus_move + keep * minus
            else:
                plus, minus = plus_move, minus_move
        plus_di, minus_di, dx = _directional_index(ranges, plus, minus)
        if adx_seeded:
            adx = alpha * dx + keep * adx
        elif dx == dx:
            adx, adx_seeded = dx, True
        if i >= start:
            plus_out[i - start] = plus_di
            minus_out[i - start] = minus_di
            adx_out[i - start] = adx
        i += 1
    for j in range(i, n):
        bar_range, plus_move, minus_move = _directional_step(high, low, close, j)
        ranges = alpha * bar_range + keep * ranges
        plus = alpha * plus_move + keep * plus
        minus = alpha * minus_move + keep * minus
        plus_di, minus_di, dx = _directional_index(ranges, plus, minus)
        adx = alpha * dx + keep * adx
        if j >= start:
            plus_out[j - start] = plus_di
            minus_out[j - start] = minus_di
            adx_out[j - start] = adx


def macd_kernel(
    close: np.ndarray, fast: int, slow: int, signal: int, start: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the fast EMA, slow EMA, MACD line and signal line for rows ``start .. n-1``.

    EMAs use ``alpha = 2 / (span + 1)`` and are seeded with the first valid close; the signal
    is the EMA of the line, seeded with the line's first valid value.
    """
    out = np.empty((4, max(close.shape[0] - start, 0)))
    _macd_into(close, fast, slow, signal, start, out[0], out[1], out[2], out[3])
    return out[0], out[1], out[2], out[3]


@njit(cache=True, nogil=True)
def _macd_into(
    close: np.ndarray,
    fast: int,
    slow: int,
    signal: int,
    start: int,
    fast_out: np.ndarray,
    slow_out: np.ndarray,
    line_out: np.ndarray,
    signal_out: np.ndarray,
) -> None:
    n = close.shape[0]
    a_fast = 2.0 / (fast + 1.0)
    a_slow = 2.0 / (slow + 1.0)
    a_signal = 2.0 / (signal + 1.0)
    k_fast, k_slow, k_signal = 1.0 - a_fast, 1.0 - a_slow, 1.0 - a_signal
    fast_level = slow_level = signal_level = math.nan
    seeded = signal_seeded = False
    i = 0
    while i < n and not (seeded and signal_seeded):  # until both smoothers are seeded
        x = close[i]
        if seeded:
            fast_level = a_fast * x + k_fast * fast_level
            slow_level = a_slow * x + k_slow * slow_level
        elif x == x:
            fast_level, slow_level, seeded = x, x, True
        line = fast_level - slow_level
        if signal_seeded:
            signal_level = a_signal * line + k_signal * signal_level
        elif line == line:
            signal_level, signal_seeded = line, True
        if i >= start:
            fast_out[i - start] = fast_level
            slow_out[i - start] = slow_level
            line_out[i - start] = line
            signal_out[i - start] = signal_level
        i += 1
    for j in range(i, start):
        fast_level = a_fast * close[j] + k_fast * fast_level
        slow_level = a_slow * close[j] + k_slow * slow_level
        signal_level = a_signal * (fast_level - slow_level) + k_signal * signal_level
    for j in range(max(i, start), n):
        fast_level = a_fast * close[j] + k_fast * fast_level
        slow_level = a_slow * close[j] + k_slow * slow_level
        line = fast_level - slow_level
        signal_level = a_signal * line + k_signal * signal_level
        fast_out[j - start] = fast_level
        slow_out[j - start] = slow_level
        line_out[j - start] = line
        signal_out[j - start] = signal_level

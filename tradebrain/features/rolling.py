"""Rolling-window kernels (numba): sums, moments, extremes, quantiles, ranks, regression.

Every kernel takes the input arrays, a ``window`` and ``start`` (the first row wanted) and
returns float64 arrays of length ``n - start``. Row ``t`` reads rows ``t - window + 1 .. t``
only; rows whose window reaches before the first non-NaN input value are NaN.

Running sums are re-computed from scratch every ``window`` rows, so rounding cannot drift, and
they are taken about an anchor (a value inside the window) so that variances of prices do not
lose digits to cancellation. The newest row alone (``start = n - 1``) is computed directly
from its window, which is what makes the live path cheap.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def first_valid(values: np.ndarray) -> int:
    """Return the index of the first non-NaN value (``len(values)`` when there is none)."""
    i = 0
    while i < values.shape[0] and math.isnan(values[i]):
        i += 1
    return i


@njit(cache=True, nogil=True)
def rolling_sum(values: np.ndarray, window: int, start: int) -> np.ndarray:
    """Return the sum of the last ``window`` values at each row."""
    out = np.empty(values.shape[0] - start)
    _sum_into(values, window, start, out)
    return out


@njit(cache=True, nogil=True)
def _sum_into(values: np.ndarray, window: int, start: int, out: np.ndarray) -> None:
    n = values.shape[0]
    begin = max(start, first_valid(values) + window - 1)
    out[: min(begin, n) - start] = np.nan
    total = 0.0
    refresh = begin
    for i in range(begin, n):
        if i == refresh:
            refresh = i + window
            total = 0.0
            for j in range(i - window + 1, i + 1):
                total += values[j]
        else:
            total += values[i] - values[i - window]
        out[i - start] = total


def rolling_mean_std(
    values: np.ndarray, window: int, ddof: int, start: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the rolling mean and standard deviation (``ddof`` 0: population, 1: sample).

    The outputs are allocated by numpy (huge-page advised, unlike numba's allocations) and
    filled by :func:`mean_std_into`.
    """
    out = np.empty((2, values.shape[0] - start))
    mean_std_into(values, window, ddof, start, out[0], out[1])
    return out[0], out[1]


@njit(cache=True, nogil=True)
def mean_std_into(
    values: np.ndarray, window: int, ddof: int, start: int, mean: np.ndarray, std: np.ndarray
) -> None:
    """Fill ``mean`` and ``std`` (length ``n - start``) as :func:`rolling_mean_std` returns them."""
    n = values.shape[0]
    begin = max(start, first_valid(values) + window - 1)
    mean[: min(begin, n) - start] = np.nan
    std[: min(begin, n) - start] = np.nan
    anchor = 0.0
    s1 = 0.0
    s2 = 0.0
    refresh = begin
    for i in range(begin, n):
        if i == refresh:
            refresh = i + window
            anchor = values[i]
            s1 = 0.0
            s2 = 0.0
            for j in range(i - window + 1, i + 1):
                d = values[j] - anchor
                s1 += d
                s2 += d * d
        else:
            d_in = values[i] - anchor
            d_out = values[i - window] - anchor
            s1 += d_in - d_out
            s2 += d_in * d_in - d_out * d_out
        var = (s2 - s1 * s1 / window) / (window - ddof)
        mean[i - start] = anchor + s1 / window
        std[i - start] = math.sqrt(var) if var > 0.0 else 0.0


@njit(cache=True, nogil=True)
def rolling_corr(x: np.ndarray, y: np.ndarray, window: int, start: int) -> np.ndarray:
    """Return the rolling Pearson correlation of ``x`` and ``y`` (NaN where one is flat)."""
    n = x.shape[0]
    out = np.full(n - start, np.nan)
    begin = max(start, max(first_valid(x), first_valid(y)) + window - 1)
    ax = 0.0
    ay = 0.0
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    refresh = begin
    for i in range(begin, n):
        if i == refresh:
            refresh = i + window
            ax = x[i]
            ay = y[i]
            sx = sy = sxx = syy = sxy = 0.0
            for j in range(i - window + 1, i + 1):
                dx = x[j] - ax
                dy = y[j] - ay
                sx += dx
                sy += dy
                sxx += dx * dx
                syy += dy * dy
                sxy += dx * dy
        else:
            dx = x[i] - ax
            dy = y[i] - ay
            ox = x[i - window] - ax
            oy = y[i - window] - ay
            sx += dx - ox
            sy += dy - oy
            sxx += dx * dx - ox * ox
            syy += dy * dy - oy * oy
            sxy += dx * dy - ox * oy
        vx = sxx - sx * sx / window
        vy = syy - sy * sy / window
        if vx > 1e-14 * (sxx + 1e-300) and vy > 1e-14 * (syy + 1e-300):
            out[i - start] = (sxy - sx * sy / window) / math.sqrt(vx * vy)
    return out


@njit(cache=True, nogil=True)
def rolling_linear_fit(
    values: np.ndarray, window: int, start: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit a line to the last ``window`` values against time 1..window at each row.

    Returns
    -------
    slope, rsquare, residual
        Slope per bar, R² of the fit (NaN when the window is flat), and the newest value
        minus the fitted line at the newest bar.
    """
    n = values.shape[0]
    slope = np.full(n - start, np.nan)
    rsq = np.full(n - start, np.nan)
    resid = np.full(n - start, np.nan)
    begin = max(start, first_valid(values) + window - 1)
    w = float(window)
    sx = w * (w + 1.0) / 2.0
    sxx = w * (w + 1.0) * (2.0 * w + 1.0) / 6.0
    x_var = w * sxx - sx * sx
    anchor = 0.0
    sy = 0.0
    syy = 0.0
    sxy = 0.0
    refresh = begin
    for i in range(begin, n):
        if i == refresh:
            refresh = i + window
            anchor = values[i]
            sy = syy = sxy = 0.0
            for k in range(window):
                d = values[i - window + 1 + k] - anchor
                sy += d
                syy += d * d
                sxy += (k + 1.0) * d
        else:
            d_out = values[i - window] - anchor
            d_in = values[i] - anchor
            sxy -= sy
            sy += d_in - d_out
            syy += d_in * d_in - d_out * d_out
            sxy += w * d_in
        cov = w * sxy - sx * sy
        b = cov / x_var
        slope[i - start] = b
        intercept = (sy - b * sx) / w
        resid[i - start] = (values[i] - anchor) - (b * w + intercept)
        y_var = w * syy - sy * sy
        if y_var > 1e-14 * (w * syy + 1e-300):
            rsq[i - start] = cov * cov / (x_var * y_var)
    return slope, rsq, resid


_SCAN_WINDOW = 16
"""Up to this window, scanning each window beats the monotonic queue."""


@njit(cache=True, nogil=True)
def rolling_extremes(
    high: np.ndarray, low: np.ndarray, window: int, start: int, latest_ties: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the highest high, lowest low and their positions in the last ``window`` bars.

    Positions count 1 for the oldest bar of the window up to ``window`` for the newest; ties go
    to the oldest bar (as ``argmax`` does), or to the newest with ``latest_ties`` (as TA-Lib).
    """
    n = high.shape[0]
    rows = n - start
    hh = np.full(rows, np.nan)
    ll = np.full(rows, np.nan)
    hpos = np.full(rows, np.nan)
    lpos = np.full(rows, np.nan)
    begin = max(start, max(first_valid(high), first_valid(low)) + window - 1)
    if begin >= n:
        return hh, ll, hpos, lpos
    lo = begin - window + 1
    if window <= _SCAN_WINDOW or np.isnan(high[lo:]).any() or np.isnan(low[lo:]).any():
        _scan_extremes(high, low, window, start, begin, latest_ties, hh, ll, hpos, lpos)
    else:
        _deque_extremes(high, window, start, begin, latest_ties, True, hh, hpos)
        _deque_extremes(low, window, start, begin, latest_ties, False, ll, lpos)
    return hh, ll, hpos, lpos


@njit(cache=True, nogil=True)
def _deque_extremes(
    values: np.ndarray,
    window: int,
    start: int,
    begin: int,
    latest_ties: bool,
    highest: bool,
    extreme: np.ndarray,
    position: np.ndarray,
) -> None:
    """Fill rows ``begin ..`` with the window's max (or min) and its position, in O(n).

    A monotonic queue of candidate indices (NaN-free input): a newer value evicts the older
    ones it beats, and equal ones too with ``latest_ties``, so the front is the answer.
    """
    n = values.shape[0]
    sign = 1.0 if highest else -1.0
    mask = 1
    while mask < window + 1:
        mask *= 2
    queue = np.empty(mask, dtype=np.int64)  # a ring; its size is a power of two
    mask -= 1
    head = 0
    size = 0
    for j in range(begin - window + 1, n):
        x = sign * values[j]
        while size > 0:
            back = queue[(head + size - 1) & mask]
            y = sign * values[back]
            if y < x or (latest_ties and y == x):
                size -= 1
            else:
                break
        queue[(head + size) & mask] = j
        size += 1
        if queue[head] <= j - window:
            head = (head + 1) & mask
            size -= 1
        if j >= begin:
            at = queue[head]
            extreme[j - start] = values[at]
            position[j - start] = at - (j - window + 1) + 1.0


@njit(cache=True, nogil=True)
def _scan_extremes(
    high: np.ndarray,
    low: np.ndarray,
    window: int,
    start: int,
    begin: int,
    latest_ties: bool,
    hh: np.ndarray,
    ll: np.ndarray,
    hpos: np.ndarray,
    lpos: np.ndarray,
) -> None:
    """Fill rows ``begin ..`` by scanning each window (the reference; handles NaN inputs)."""
    for i in range(begin, high.shape[0]):
        lo = i - window + 1
        best_h = high[lo]
        best_l = low[lo]
        at_h = 0
        at_l = 0
        for k in range(1, window):
            if high[lo + k] > best_h or (latest_ties and high[lo + k] == best_h):
                best_h = high[lo + k]
                at_h = k
            if low[lo + k] < best_l or (latest_ties and low[lo + k] == best_l):
                best_l = low[lo + k]
                at_l = k
        hh[i - start] = best_h
        ll[i - start] = best_l
        hpos[i - start] = at_h + 1.0
        lpos[i - start] = at_l + 1.0


@njit(cache=True, nogil=True)
def _quantile_of_sorted(ordered: np.ndarray, q: float) -> float:
    pos = q * (ordered.shape[0] - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, ordered.shape[0] - 1)
    frac = pos - lo
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * frac)


@njit(cache=True, nogil=True)
def rolling_quantiles_rank(
    values: np.ndarray, window: int, q_low: float, q_high: float, start: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return two rolling quantiles (linear interpolation) and the percentile rank of the newest.

    The rank is the newest value's average rank in its window divided by ``window`` (pandas'
    ``rolling(window).rank(pct=True)``).
    """
    n = values.shape[0]
    low_q = np.full(n - start, np.nan)
    high_q = np.full(n - start, np.nan)
    rank = np.full(n - start, np.nan)
    begin = max(start, first_valid(values) + window - 1)
    if begin >= n:
        return low_q, high_q, rank
    ordered = np.sort(values[begin - window + 1 : begin + 1])
    for i in range(begin, n):
        if i > begin:
            # Shift in place: no allocation per row.
            at = np.searchsorted(ordered, values[i - window])
            for j in range(at, window - 1):
                ordered[j] = ordered[j + 1]
            entering = values[i]
            at = np.searchsorted(ordered[: window - 1], entering)
            for j in range(window - 1, at, -1):
                ordered[j] = ordered[j - 1]
            ordered[at] = entering
        low_q[i - start] = _quantile_of_sorted(ordered, q_low)
        high_q[i - start] = _quantile_of_sorted(ordered, q_high)
        newest = values[i]
        below = np.searchsorted(ordered, newest, side="left")
        upto = np.searchsorted(ordered, newest, side="right")
        rank[i - start] = (below + (upto - below + 1) / 2.0) / window
    return low_q, high_q, rank


@njit(cache=True, nogil=True)
def rolling_mean_abs_deviation(values: np.ndarray, window: int, start: int) -> np.ndarray:
    """Return the mean absolute deviation from the window's mean (the CCI denominator)."""
    n = values.shape[0]
    out = np.full(n - start, np.nan)
    begin = max(start, first_valid(values) + window - 1)
    for i in range(begin, n):
        lo = i - window + 1
        mean = 0.0
        for j in range(lo, i + 1):
            mean += values[j]
        mean /= window
        dev = 0.0
        for j in range(lo, i + 1):
            dev += abs(values[j] - mean)
        out[i - start] = dev / window
    return out


def rolling_sums(rows: np.ndarray, window: int, start: int) -> np.ndarray:
    """Return the rolling sum of each row of a ``(k, n)`` matrix, shape ``(k, n - start)``.

    One call for several series that share a window (Alpha158's SUMP/SUMN/SUMD...). The
    output is allocated by numpy (huge-page advised, unlike numba's allocations).
    """
    out = np.empty((rows.shape[0], rows.shape[1] - start))
    _sums_into(rows, window, start, out)
    return out


@njit(cache=True, nogil=True)
def _sums_into(rows: np.ndarray, window: int, start: int, out: np.ndarray) -> None:
    for r in range(rows.shape[0]):
        _sum_into(rows[r], window, start, out[r])


def lagged(values: np.ndarray, lag: int, start: int) -> np.ndarray:
    """Return ``values`` ``lag`` bars ago for rows ``start .. n-1`` (NaN before the first bar)."""
    n = values.shape[0]
    out = np.full(n - start, np.nan)
    first = max(start, lag)
    if first < n:
        out[first - start :] = values[first - lag : n - lag]
    return out


def bar_changes(values: np.ndarray) -> np.ndarray:
    """Return ``values[t] - values[t-1]`` for every row (NaN on the first)."""
    out = np.empty_like(values, dtype=np.float64)
    out[0] = np.nan
    np.subtract(values[1:], values[:-1], out=out[1:])
    return out


def log_returns(close: np.ndarray) -> np.ndarray:
    """Return the one-bar log return of every row (NaN on the first)."""
    out = np.empty_like(close, dtype=np.float64)
    out[0] = np.nan
    np.log(close[1:] / close[:-1], out=out[1:])
    return out

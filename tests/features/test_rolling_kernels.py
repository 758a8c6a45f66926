"""Rolling kernels agree with plain numpy definitions, from any start row (property tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from tradebrain.features.rolling import (
    rolling_corr,
    rolling_extremes,
    rolling_linear_fit,
    rolling_mean_std,
    rolling_quantiles_rank,
    rolling_sum,
)

series = st.integers(0, 2**32 - 1).flatmap(
    lambda seed: st.tuples(st.just(seed), st.integers(2, 30), st.integers(40, 160))
)


def _prices(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    price = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return price, rng.lognormal(2.0, 0.5, n)


def _pad(values: np.ndarray, window: int) -> np.ndarray:
    return np.concatenate((np.full(window - 1, np.nan), values))


@settings(max_examples=40, deadline=None)
@given(series, st.data())
def test_rolling_statistics_match_numpy_from_any_start(case: tuple[int, int, int], data) -> None:
    seed, window, n = case
    start = data.draw(st.integers(0, n - 1))
    price, volume = _prices(seed, n)
    view = sliding_window_view(price, window)
    close = dict(rtol=1e-9, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(
        rolling_sum(price, window, start), _pad(view.sum(1), window)[start:], **close
    )
    mean, std = rolling_mean_std(price, window, 1, start)
    np.testing.assert_allclose(mean, _pad(view.mean(1), window)[start:], **close)
    np.testing.assert_allclose(
        std, _pad(view.std(1, ddof=1), window)[start:], rtol=1e-7, equal_nan=True
    )
    low_q, high_q, rank = rolling_quantiles_rank(price, window, 0.2, 0.8, start)
    np.testing.assert_allclose(low_q, _pad(np.quantile(view, 0.2, axis=1), window)[start:], **close)
    np.testing.assert_allclose(
        high_q, _pad(np.quantile(view, 0.8, axis=1), window)[start:], **close
    )
    newest = view[:, -1:]
    avg_rank = ((view < newest).sum(1) + ((view == newest).sum(1) + 1) / 2) / window
    np.testing.assert_allclose(rank, _pad(avg_rank, window)[start:], **close)
    hh, _, h_at, l_at = rolling_extremes(price * 1.01, price * 0.99, window, start)
    np.testing.assert_allclose(hh, _pad(view.max(1) * 1.01, window)[start:], **close)
    np.testing.assert_allclose(h_at, _pad(view.argmax(1) + 1.0, window)[start:], **close)
    np.testing.assert_allclose(l_at, _pad(view.argmin(1) + 1.0, window)[start:], **close)
    log_volume = np.log(volume)
    expected_corr = [
        np.corrcoef(a, b)[0, 1]
        for a, b in zip(view, sliding_window_view(log_volume, window), strict=True)
    ]
    np.testing.assert_allclose(
        rolling_corr(price, log_volume, window, start),
        _pad(np.array(expected_corr), window)[start:],
        rtol=1e-7,
        atol=1e-9,
        equal_nan=True,
    )
    slope, rsq, resid = rolling_linear_fit(price, window, start)
    x = np.arange(1.0, window + 1.0)
    fits = [np.polyfit(x, y, 1) for y in view]
    np.testing.assert_allclose(
        slope,
        _pad(np.array([f[0] for f in fits]), window)[start:],
        rtol=1e-6,
        atol=1e-9,
        equal_nan=True,
    )
    residuals = np.array([y[-1] - (f[0] * window + f[1]) for f, y in zip(fits, view, strict=True)])
    np.testing.assert_allclose(
        resid, _pad(residuals, window)[start:], rtol=1e-6, atol=1e-8, equal_nan=True
    )
    r2 = np.array([np.corrcoef(x, y)[0, 1] ** 2 for y in view])
    np.testing.assert_allclose(rsq, _pad(r2, window)[start:], rtol=1e-6, atol=1e-9, equal_nan=True)

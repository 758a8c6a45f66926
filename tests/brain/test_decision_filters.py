"""The decision filters: Kalman, chop, volatility bar, trend depth, funding flip, gaps, spread."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradebrain.brain.filters import (
    FundingFlipGuard,
    GapSafeMode,
    KalmanSmoother,
    SpreadRegime,
    chop_filter,
    order_type,
    smooth_proba,
    trend_depth,
    volatility_threshold,
)


def side_changes(edges: np.ndarray, bar: float = 0.1) -> int:
    """Count buy -> sell and sell -> buy switches of a signal that trades beyond ``bar``."""
    sides = [int(math.copysign(1, e)) for e in edges if abs(e) > bar]
    return sum(a != b for a, b in itertools.pairwise(sides))


def test_kalman_cuts_buy_sell_flicker_on_a_noisy_alternating_edge() -> None:
    rng = np.random.default_rng(3)
    raw = 0.3 * (-1.0) ** np.arange(200) + rng.normal(0.0, 0.1, 200)
    kalman = KalmanSmoother()
    smoothed = np.array([kalman.update(e) for e in raw])
    assert side_changes(raw) > 150
    assert side_changes(smoothed) <= side_changes(raw) // 10


def test_kalman_lets_a_persistent_edge_through_within_a_few_candles() -> None:
    kalman = KalmanSmoother()
    kalman.update(0.0)
    levels = [kalman.update(0.4) for _ in range(10)]
    assert levels[4] > 0.25
    assert levels[-1] > 0.35


def test_kalman_grows_less_sure_across_a_data_gap() -> None:
    kalman = KalmanSmoother()
    for _ in range(20):
        kalman.update(0.2)
    before = kalman.variance
    kalman.skip(10)
    assert kalman.variance > before


@given(
    proba=st.tuples(*(st.floats(0.0, 1.0) for _ in range(3))).filter(lambda p: sum(p) > 0),
    edge=st.floats(-2.0, 2.0),
)
def test_smoothed_probabilities_keep_flat_and_sum_to_one(
    proba: tuple[float, float, float], edge: float
) -> None:
    total = sum(proba)
    proba = (proba[0] / total, proba[1] / total, proba[2] / total)
    smoothed = smooth_proba(proba, edge)
    assert math.fsum(smoothed) == pytest.approx(1.0)
    assert all(-1e-12 <= p <= 1.0 + 1e-12 for p in smoothed)
    assert smoothed[1] == proba[1]


def test_chop_filter_doubles_the_entry_bar_in_a_quiet_market_with_no_cycle() -> None:
    raise_by, reason = chop_filter(atr_ratio=0.8, cycle_power=0.10)
    assert raise_by == pytest.approx(1.0)
    assert reason is not None and "ATR ratio 0.80 <= 0.9" in reason
    assert chop_filter(atr_ratio=0.8, cycle_power=0.25) == (0.0, None)
    assert chop_filter(atr_ratio=1.1, cycle_power=0.10) == (0.0, None)


def test_the_entry_bar_rises_with_volatility_up_to_double() -> None:
    assert volatility_threshold(1.0) == (0.0, None)
    assert volatility_threshold(1.7)[0] == pytest.approx(0.5)
    assert volatility_threshold(5.0)[0] == pytest.approx(1.0)


def test_a_deep_trend_needs_adx_stacked_emas_and_efficiency() -> None:
    assert trend_depth(40.0, 1.0, 0.5) is not None
    assert trend_depth(40.0, 1.0, float("nan")) is not None
    assert trend_depth(30.0, 1.0, 0.5) is None
    assert trend_depth(40.0, 1 / 3, 0.5) is None
    assert trend_depth(40.0, -1.0, 0.1) is None


def test_a_funding_flip_either_way_cools_longs_for_eight_candles() -> None:
    guard = FundingFlipGuard(cooldown_bars=8)
    assert [guard.update(r) for r in (1.0, 0.5, 0.0)] == [0, 0, 0]
    assert guard.update(-0.2) == 8
    assert "positive to negative" in guard.reason()
    left = [guard.update(-0.3) for _ in range(8)]
    assert left == [7, 6, 5, 4, 3, 2, 1, 0]
    assert guard.update(0.4) == 8
    assert "negative to positive" in guard.reason()


def test_a_missing_funding_rate_neither_flips_nor_resets() -> None:
    guard = FundingFlipGuard()
    guard.update(1.0)
    assert guard.update(float("nan")) == 0
    assert guard.update(-1.0) == guard.cooldown_bars


def test_gap_safe_mode_halves_size_for_24_candles_after_a_gap() -> None:
    mode = GapSafeMode()
    assert mode.update(0) == (1.0, None)
    factor, reason = mode.update(3)
    assert factor == 0.5
    assert reason is not None and "3 candle(s) missing" in reason
    factors = [mode.update(0)[0] for _ in range(24)]
    assert factors[:23] == [0.5] * 23
    assert factors[23] == 1.0


def test_the_spread_is_read_against_its_own_past() -> None:
    spreads = SpreadRegime(min_history=20)
    assert math.isnan(spreads.update(2.0))
    for _ in range(30):
        spreads.update(2.0)
    assert spreads.update(4.0) == pytest.approx(2.0)


def test_a_wide_spread_posts_maker_a_normal_one_takes() -> None:
    maker, reason = order_type(spread_ratio=2.0, deep_trend_with_trade=False)
    assert maker and "maker" in reason
    maker, reason = order_type(spread_ratio=1.0, deep_trend_with_trade=False)
    assert not maker and "taker" in reason
    assert order_type(float("nan"), deep_trend_with_trade=False)[0] is False


def test_a_deep_trend_takes_liquidity_even_when_the_spread_is_wide() -> None:
    maker, reason = order_type(spread_ratio=3.0, deep_trend_with_trade=True)
    assert not maker
    assert "deep trend" in reason

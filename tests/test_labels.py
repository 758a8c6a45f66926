"""Labels: what happens after the close of candle t, never made up, never read early."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.exceptions import UserInputError
from tradebrain.labels import (
    LabelSettings,
    TimeLimitRule,
    average_true_range,
    direction_labels,
    fixed_horizon_end,
    forward_returns,
    meta_labels,
    rolling_sigma,
    triple_barrier_labels,
)

Candles = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def random_candles(n: int, seed: int, volatility: float = 0.01) -> Candles:
    """Return (open, high, low, close) of a random walk, valid OHLC, oldest first."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0.0, volatility / 2, (2, n)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    return open_, high, low, close


def quiet_candles(highs_lows: list[tuple[float, float]], warmup: int = 3) -> Candles:
    """Return candles closing at 100 with a true range of 1 for ``warmup`` bars (ATR = 1),
    followed by bars with the given (high, low) that also close at 100."""
    bars = [(100.5, 99.5)] * warmup + highs_lows
    high = np.array([h for h, _ in bars])
    low = np.array([lo for _, lo in bars])
    close = np.full(len(bars), 100.0)
    return close.copy(), high, low, close


def barrier_labels(
    candles: Candles,
    horizon: int,
    on_time_limit: TimeLimitRule = "flat",
    time_limit_dead_zone: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return triple-barrier labels at 2 ATR (window 2) either side."""
    open_, high, low, close = candles
    return triple_barrier_labels(
        open_, high, low, close, horizon, take_profit=2.0, stop=2.0, window=2,
        on_time_limit=on_time_limit, time_limit_dead_zone=time_limit_dead_zone,
    )  # fmt: skip


def test_direction_labels_compare_the_forward_return_with_a_volatility_dead_zone() -> None:
    close = 100.0 * np.exp(np.array([0.0, 0.01, 0.0, 0.01, 0.0, 0.05, 0.0, 0.001]))
    labels = direction_labels(close, horizon=1, dead_zone=0.5, vol_window=4)
    sigma = np.std(np.diff(np.log(close))[:4], ddof=1)  # returns of rows 1..4, known at row 4
    assert np.log(close[5] / close[4]) > 0.5 * sigma
    assert labels[4] == 2.0  # +5 % against a dead zone of about 0.6 %
    assert labels[5] == 0.0  # -5 %
    assert labels[6] == 1.0  # +0.1 % is inside the dead zone
    assert np.isnan(labels[:4]).all(), "rows without a full volatility window have no label"
    assert np.isnan(labels[-1]), "the last row has no future candle"


def test_the_dead_zone_widens_with_the_square_root_of_the_horizon() -> None:
    _, _, _, close = random_candles(600, seed=1)
    short = direction_labels(close, horizon=1, dead_zone=1.0, vol_window=50)
    long = direction_labels(close, horizon=16, dead_zone=1.0, vol_window=50)
    flat_short = np.nanmean(short == 1.0) / np.mean(~np.isnan(short))
    flat_long = np.nanmean(long == 1.0) / np.mean(~np.isnan(long))
    assert abs(flat_short - flat_long) < 0.12  # both near P(|Z| < 1) = 0.68


def test_the_last_horizon_rows_have_no_direction_or_forward_return() -> None:
    _, _, _, close = random_candles(200, seed=2)
    assert np.isnan(direction_labels(close, 7, vol_window=20)[-7:]).all()
    returns = forward_returns(close, 7)
    assert np.isnan(returns[-7:]).all()
    np.testing.assert_allclose(returns[:-7], np.log(close[7:] / close[:-7]))
    np.testing.assert_allclose(
        forward_returns(close, 7, log=False)[:-7], close[7:] / close[:-7] - 1
    )


def test_rolling_scales_match_a_plain_computation_over_past_candles_only() -> None:
    _, high, low, close = random_candles(300, seed=3)
    sigma = rolling_sigma(close, 20)
    atr = average_true_range(high, low, close, 20)
    t = 150
    returns = np.diff(np.log(close[: t + 1]))[-20:]
    true_range = np.maximum(high[1:], close[:-1]) - np.minimum(low[1:], close[:-1])
    assert sigma[t] == pytest.approx(np.std(returns, ddof=1), rel=1e-12)
    assert atr[t] == pytest.approx(np.mean(true_range[t - 20 : t]), rel=1e-12)
    assert np.isnan(sigma[:20]).all() and np.isnan(atr[:20]).all()
    assert not np.isnan(sigma[20:]).any() and not np.isnan(atr[20:]).any()


def test_a_candle_touching_both_barriers_counts_as_a_stop() -> None:
    candles = quiet_candles([(103.0, 97.0), (100.5, 99.5)])  # row 2: barriers at 102 and 98
    labels, end = barrier_labels(candles, horizon=1)
    assert labels[2] == 0.0
    assert end[2] == 3


def test_the_profit_take_touched_first_labels_up_and_ends_at_that_candle() -> None:
    candles = quiet_candles([(101.0, 99.5), (102.0, 99.5), (100.5, 97.0), (100.5, 99.5)])
    labels, end = barrier_labels(candles, horizon=3)
    assert labels[2] == 2.0, "the high of row 4 reaches 102 before row 5's low reaches 98"
    assert end[2] == 4


def test_the_stop_touched_first_labels_down_even_if_the_target_follows() -> None:
    candles = quiet_candles([(100.5, 98.0), (105.0, 99.5), (100.5, 99.5)])
    labels, end = barrier_labels(candles, horizon=3)
    assert labels[2] == 0.0
    assert end[2] == 3


def test_neither_barrier_within_the_horizon_is_flat_at_the_time_limit() -> None:
    candles = quiet_candles([(101.0, 99.0)] * 3 + [(110.0, 99.5)])
    labels, end = barrier_labels(candles, horizon=3)
    assert labels[2] == 1.0, "the touch at row 6 is after the time limit of row 2"
    assert end[2] == 5
    assert labels[3] == 2.0


def test_the_sign_rule_labels_a_time_limit_by_its_return_beyond_a_dead_zone() -> None:
    open_, high, low, close = quiet_candles([(101.0, 99.0)] * 4)
    close[-3:] = [101.0, 100.1, 100.0]  # row 2 exits (h=2) at 101: +1 %; row 3 at 100.1
    candles = (open_, high, low, close)
    flat_rule, _ = barrier_labels(candles, horizon=2)
    labels, _ = barrier_labels(candles, horizon=2, on_time_limit="sign", time_limit_dead_zone=0.5)
    assert flat_rule[2] == 1.0
    assert labels[2] == 2.0
    assert labels[3] == 1.0, "+0.1 % is inside half an ATR"


def test_rows_without_a_full_horizon_have_no_barrier_label_even_when_one_was_touched() -> None:
    candles = quiet_candles([(100.5, 99.5), (110.0, 99.5)])
    labels, end = barrier_labels(candles, horizon=3)
    assert np.isnan(labels[2:]).all() and (end[2:] == -1).all()
    assert np.isnan(labels[:2]).all(), "rows without a full ATR window have no label either"


def test_sigma_barriers_are_multiples_of_the_rolling_log_return_sigma() -> None:
    open_, high, low, close = random_candles(300, seed=4)
    labels, end = triple_barrier_labels(
        open_, high, low, close, 10, take_profit=1.5, stop=1.0, scale="sigma", window=30
    )
    sigma = rolling_sigma(close, 30)
    for t in np.flatnonzero(~np.isnan(labels)):
        path = slice(t + 1, end[t] + 1)
        upper, lower = close[t] * np.exp(1.5 * sigma[t]), close[t] * np.exp(-1.0 * sigma[t])
        touched_lower = low[path] <= lower
        touched_upper = high[path] >= upper
        if labels[t] == 0.0:
            assert touched_lower[-1] and not touched_upper[:-1].any()
        elif labels[t] == 2.0:
            assert touched_upper[-1] and not touched_lower.any()
        else:
            assert not touched_lower.any() and not touched_upper.any() and end[t] == t + 10


def test_meta_labels_say_whether_each_side_hit_its_target_before_its_stop() -> None:
    candles = quiet_candles([(102.0, 99.5), (100.5, 99.5), (100.5, 99.5), (100.5, 99.5)])
    side = np.array([0, 0, 1, -1, 0, 1, 0])
    labels, end = meta_labels(side, *candles, 2, take_profit=2.0, stop=2.0, window=2)
    assert labels[2] == 1.0 and end[2] == 3, "the long reaches 102 on the next candle"
    assert np.isnan(labels[4]) and end[4] == -1, "no trade, no label"
    assert labels[3] == 0.0 and end[3] == 5, "the short times out: not a target hit"
    assert np.isnan(labels[5]), "no full horizon"


def test_a_short_whose_price_rises_hits_its_stop() -> None:
    candles = quiet_candles([(102.0, 99.5), (100.5, 90.0), (100.5, 99.5)])
    labels, end = meta_labels(np.array([0, 0, -1, 0, 0, 0]), *candles, 2, window=2)
    assert labels[2] == 0.0 and end[2] == 3


def test_label_settings_record_every_parameter_and_compute_the_labels() -> None:
    candles = random_candles(400, seed=5)
    label_settings = LabelSettings("triple_barrier", 8, {"scale": "sigma", "window": 20})
    recorded = label_settings.to_dict()
    assert recorded["parameters"]["take_profit"] == 2.0
    assert LabelSettings.from_dict(recorded).to_dict() == recorded
    labels, end = label_settings.compute(*candles)
    expected = triple_barrier_labels(*candles, 8, scale="sigma", window=20)
    np.testing.assert_array_equal(labels, expected[0])
    np.testing.assert_array_equal(end, expected[1])
    direction, direction_end = LabelSettings("direction", 8).compute(*candles)
    np.testing.assert_array_equal(direction_end, fixed_horizon_end(direction, 8))
    assert (direction_end[~np.isnan(direction)] == np.flatnonzero(~np.isnan(direction)) + 8).all()


def test_label_settings_reject_a_parameter_of_another_kind() -> None:
    with pytest.raises(UserInputError, match="take no parameter"):
        LabelSettings("direction", 8, {"take_profit": 2.0})
    with pytest.raises(UserInputError, match="horizon"):
        LabelSettings("direction", 0)


def test_labels_refuse_missing_or_mismatched_prices() -> None:
    open_, high, low, close = random_candles(50, seed=6)
    close[10] = np.nan
    with pytest.raises(UserInputError, match="finite"):
        direction_labels(close, 3)
    with pytest.raises(UserInputError, match="length"):
        triple_barrier_labels(open_, high[:-1], low, open_, 3)


def label_all(kind: str, candles: Candles) -> tuple[np.ndarray, ...]:
    """Return the arrays one labelling function (horizon 5) makes from ``candles``."""
    open_, high, low, close = candles
    if kind == "direction":
        return (direction_labels(close, 5, vol_window=10),)
    if kind == "forward_return":
        return (forward_returns(close, 5),)
    if kind == "triple_barrier_atr":
        return triple_barrier_labels(open_, high, low, close, 5, window=5)
    if kind == "triple_barrier_sigma_sign":
        return triple_barrier_labels(
            open_, high, low, close, 5, scale="sigma", window=5, on_time_limit="sign",
            time_limit_dead_zone=0.2,
        )  # fmt: skip
    side = np.resize([1.0, 0.0, -1.0], close.size)
    return meta_labels(side, open_, high, low, close, 5, window=5)


LABEL_KINDS = ["direction", "forward_return", "triple_barrier_atr", "triple_barrier_sigma_sign",
               "meta"]  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    t=st.integers(0, 60),
    labeller=st.sampled_from(LABEL_KINDS),
    deleted=st.booleans(),
)
def test_labels_at_t_never_change_when_data_after_t_plus_horizon_changes(
    seed: int, t: int, labeller: str, deleted: bool
) -> None:
    horizon, n = 5, 80
    candles = random_candles(n, seed)
    later = slice(t + horizon + 1, n)
    if deleted:
        o, h, lo, c = (a[: t + horizon + 1] for a in candles)
    else:
        other = random_candles(n, seed + 1, volatility=0.05)
        o, h, lo, c = (a.copy() for a in candles)
        scale = candles[3][t + horizon] / other[3][t + horizon]
        for array, replacement in zip((o, h, lo, c), other, strict=True):
            array[later] = replacement[later] * scale
    before = label_all(labeller, candles)
    after = label_all(labeller, (o, h, lo, c))
    for full, altered in zip(before, after, strict=True):
        np.testing.assert_array_equal(full[: t + 1], altered[: t + 1])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.integers(0, 70), window=st.integers(2, 12))
def test_the_volatility_scales_at_t_read_no_candle_after_t(seed: int, t: int, window: int) -> None:
    _, high, low, close = random_candles(80, seed)
    changed = [a.copy() for a in (high, low, close)]
    for array, other in zip(
        changed, random_candles(80, seed + 1, volatility=0.05)[1:], strict=True
    ):
        array[t + 1 :] = other[t + 1 :]
    changed_high, changed_low, changed_close = changed
    np.testing.assert_array_equal(
        rolling_sigma(close, window)[: t + 1], rolling_sigma(changed_close, window)[: t + 1]
    )
    np.testing.assert_array_equal(
        average_true_range(high, low, close, window)[: t + 1],
        average_true_range(changed_high, changed_low, changed_close, window)[: t + 1],
    )

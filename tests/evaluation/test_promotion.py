"""The promotion gate is a paired HAC test plus DSR and track limits; CUSUM catches a decay."""

from __future__ import annotations

import json
import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tradebrain.evaluation.promotion import (
    MIN_STD,
    CusumMonitor,
    GateSettings,
    _student_t_sf,
    cusum_average_run_length,
    default_lags,
    expected_profile,
    paired_test,
    promotion_verdict,
)
from tradebrain.evaluation.statistics import deflated_sharpe_ratio, sharpe_statistics
from tradebrain.exceptions import ConfigError, UserInputError


def ar1(n: int, phi: float, scale: float, seed: int) -> np.ndarray:
    """Return (n,) AR(1) noise ``x_t = phi x_{t-1} + e_t`` with N(0, scale²) innovations."""
    innovations = np.random.default_rng(seed).normal(0.0, scale, n)
    noise = np.empty(n)
    noise[0] = innovations[0] / math.sqrt(1.0 - phi * phi)  # start in the stationary law
    for t in range(1, n):
        noise[t] = phi * noise[t - 1] + innovations[t]
    return noise


def shadow_pair(n: int, edge: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (candidate, production) per-candle log returns with a planted mean ``edge``."""
    production = 0.0001 + ar1(n, 0.3, 0.005, seed)
    candidate = production + edge + ar1(n, 0.5, 0.002, seed + 1)
    return candidate, production


# --- the paired test ------------------------------------------------------------------------


def test_hac_t_matches_a_hand_computation_with_bartlett_weights() -> None:
    production = np.zeros(8)
    differences = [0.3, -0.1, 0.4, 0.2, -0.5, 0.6, 0.1, 0.0]
    candidate = np.array(differences)
    n, lags = 8, 2
    mean = sum(differences) / n
    deviations = [value - mean for value in differences]

    def autocovariance(lag: int) -> float:
        return sum(deviations[t] * deviations[t - lag] for t in range(lag, n)) / n

    long_run = autocovariance(0) + 2 * (2 / 3 * autocovariance(1) + 1 / 3 * autocovariance(2))
    expected_t = mean / math.sqrt(long_run * n / (n - 1) / n)

    test = paired_test(candidate, production, lags=lags)

    assert test.n == n and test.lags == lags
    assert test.mean_difference == pytest.approx(mean, rel=1e-12)
    assert test.t_stat == pytest.approx(expected_t, rel=1e-12)
    assert test.p_value == pytest.approx(stats.t.sf(expected_t, n - 1), rel=1e-9)


def test_zero_lags_give_the_ordinary_paired_t_and_its_one_sided_p() -> None:
    rng = np.random.default_rng(3)
    production = rng.normal(0.0, 0.01, 40)
    candidate = production + rng.normal(0.002, 0.01, 40)

    test = paired_test(candidate, production, lags=0)
    reference = stats.ttest_rel(candidate, production, alternative="greater")

    assert test.t_stat == pytest.approx(reference.statistic, rel=1e-12)
    assert test.p_value == pytest.approx(reference.pvalue, rel=1e-9)


def test_default_lags_follow_the_newey_west_rule_of_thumb() -> None:
    assert [default_lags(n) for n in (2, 100, 500, 3000)] == [1, 4, 5, 8]
    assert paired_test(*shadow_pair(500, 0.0)).lags == 5


def test_student_t_tail_matches_scipy_across_degrees_of_freedom() -> None:
    for df in (1, 3, 30, 499, 2999):
        for t in (-1e10, -12.0, -2.5, -0.3, 0.0, 0.01, 1.645, 4.0, 30.0, 1e10, 1e200):
            assert _student_t_sf(t, df) == pytest.approx(stats.t.sf(t, df), rel=1e-9, abs=1e-300)


def test_a_difference_that_never_varies_gives_t_zero_and_p_one_half() -> None:
    returns = np.linspace(-0.01, 0.01, 50)
    for candidate in (returns, returns + 0.001):
        test = paired_test(candidate, returns)
        assert (test.t_stat, test.p_value) == (0.0, 0.5)


def test_lags_beyond_the_record_are_refused_with_the_allowed_range() -> None:
    with pytest.raises(UserInputError, match=r"lags must be an integer in \[0, 9\]"):
        paired_test(np.ones(10), np.zeros(10), lags=10)


def test_unequal_lengths_are_refused_with_both_lengths() -> None:
    with pytest.raises(UserInputError, match="candidate has 5 candles but production has 4"):
        paired_test(np.zeros(5), np.zeros(4))


def test_a_non_finite_return_is_refused_naming_the_series_and_index() -> None:
    production = np.zeros(600)
    production[417] = np.nan
    with pytest.raises(UserInputError, match=r"production holds 1 non-finite .* at index 417"):
        promotion_verdict(np.zeros(600), production, n_trials=1, trials_sharpe_variance=0.0)


log_returns = st.floats(-0.05, 0.05, allow_nan=False, allow_subnormal=False)


@settings(max_examples=60)
@given(st.data())
def test_swapping_the_models_flips_the_t_stat_and_mirrors_the_p_value(data: st.DataObject) -> None:
    n = data.draw(st.integers(3, 60))
    candidate = data.draw(hnp.arrays(np.float64, n, elements=log_returns))
    production = data.draw(hnp.arrays(np.float64, n, elements=log_returns))

    forward = paired_test(candidate, production)
    backward = paired_test(production, candidate)

    assert backward.t_stat == pytest.approx(-forward.t_stat, rel=1e-12, abs=1e-12)
    assert backward.p_value == pytest.approx(1.0 - forward.p_value, abs=1e-9)


# Multiples of 2^-20 add without rounding, so (a + s) - (b + s) is exactly a - b.
dyadic = st.integers(-(2**14), 2**14).map(lambda k: k / 2**20)


@settings(max_examples=60)
@given(st.data())
def test_adding_the_same_series_to_both_models_leaves_the_paired_test_unchanged(
    data: st.DataObject,
) -> None:
    n = data.draw(st.integers(3, 60))
    candidate, production, market = (
        data.draw(hnp.arrays(np.float64, n, elements=dyadic)) for _ in range(3)
    )

    assert paired_test(candidate + market, production + market) == paired_test(
        candidate, production
    )


@settings(max_examples=80)
@given(
    production=hnp.arrays(
        np.float64, st.integers(20, 120), elements=st.floats(-0.02, 0.02, allow_subnormal=False)
    ),
    edge=st.floats(-0.002, 0.01),
    noise_scale=st.floats(0.0, 0.02),
    seed=st.integers(0, 2**16),
    n_trials=st.integers(1, 200),
    min_dsr=st.sampled_from([0.0, 0.5, 0.95]),
)
def test_the_gate_never_promotes_a_candidate_that_earned_less_than_production(
    production: np.ndarray,
    edge: float,
    noise_scale: float,
    seed: int,
    n_trials: int,
    min_dsr: float,
) -> None:
    noise = np.random.default_rng(seed).normal(0.0, noise_scale, production.size)
    candidate = production + edge + noise
    gate = GateSettings(min_track=20, max_track=200, min_active=5, min_dsr=min_dsr)

    verdict = promotion_verdict(
        candidate, production, n_trials=n_trials, trials_sharpe_variance=1e-4, settings=gate
    )

    if verdict.passed:
        assert candidate.sum() > production.sum()
        assert verdict.numbers["p_value"] < gate.alpha
        assert verdict.numbers["dsr"] >= min_dsr


# --- the verdict ----------------------------------------------------------------------------


def test_a_clearly_better_candidate_is_promoted_with_its_numbers() -> None:
    candidate, production = shadow_pair(1500, edge=0.0006)

    verdict = promotion_verdict(candidate, production, n_trials=50, trials_sharpe_variance=1e-4)

    assert verdict.decision == "promote" and verdict.passed
    assert verdict.numbers["t_stat"] > 3.0
    assert verdict.numbers["dsr"] >= 0.95
    assert verdict.numbers["n"] == 1500 and verdict.numbers["lags"] == default_lags(1500)
    assert any(
        reason.startswith("paired t ") and "beats alpha 0.05" in reason
        for reason in verdict.reasons
    )


def test_identical_models_wait_and_are_refused_at_max_track() -> None:
    production = 0.0001 + ar1(3000, 0.3, 0.005, seed=7)

    early = promotion_verdict(
        production[:1000], production[:1000], n_trials=1, trials_sharpe_variance=0.0
    )
    late = promotion_verdict(production, production.copy(), n_trials=1, trials_sharpe_variance=0.0)

    assert early.decision == "wait"
    assert "differ on only 0 of 1000 candles" in early.reasons[0]
    assert late.decision == "refuse"
    assert "3000 candles reach max_track 3000" in late.reasons[-1]


def test_a_worse_candidate_is_refused_before_max_track() -> None:
    candidate, production = shadow_pair(600, edge=-0.0006, seed=11)

    verdict = promotion_verdict(candidate, production, n_trials=1, trials_sharpe_variance=0.0)

    assert verdict.decision == "refuse"
    assert verdict.numbers["worse_p_value"] < 0.05
    assert "production is significantly better" in verdict.reasons[-1]


def test_a_short_track_waits_however_large_the_edge() -> None:
    candidate, production = shadow_pair(499, edge=0.01)

    verdict = promotion_verdict(candidate, production, n_trials=1, trials_sharpe_variance=0.0)

    assert verdict.decision == "wait"
    assert verdict.reasons == ("paired record of 499 candles is shorter than min_track 500",)
    assert verdict.numbers["t_stat"] > 10  # the numbers are reported all the same


def test_models_that_rarely_differ_wait_for_something_to_judge() -> None:
    production = 0.0001 + ar1(800, 0.3, 0.005, seed=5)
    candidate = production.copy()
    candidate[::40] += 0.01  # 20 differing candles, each a big win

    verdict = promotion_verdict(candidate, production, n_trials=1, trials_sharpe_variance=0.0)

    assert verdict.decision == "wait"
    assert "differ on only 20 of 800 candles, fewer than min_active 30" in verdict.reasons[0]


def test_many_trials_deflate_a_marginal_winner_that_one_trial_would_promote() -> None:
    market, spread = ar1(2000, 0.3, 0.005, seed=21), ar1(2000, 0.5, 0.002, seed=22)
    production = market - market.mean() - 0.0002  # a loser, so the candidate's edge is large
    candidate = production + 0.0006 + spread - spread.mean()  # but its own Sharpe is modest

    alone = promotion_verdict(candidate, production, n_trials=1, trials_sharpe_variance=4e-4)
    searched = promotion_verdict(candidate, production, n_trials=100, trials_sharpe_variance=4e-4)

    assert alone.decision == "promote"
    assert searched.decision == "wait"
    assert searched.numbers["p_value"] < 0.05  # the paired test passes all the same
    assert alone.numbers["dsr"] >= 0.95 > searched.numbers["dsr"]
    assert "best of 100 trials" in searched.reasons[3]
    assert "falls short of min_dsr 0.95" in searched.reasons[3]


def test_the_gate_uses_the_candidates_deflated_sharpe_ratio() -> None:
    candidate, production = shadow_pair(1500, edge=0.0006)
    moments = sharpe_statistics(candidate)

    verdict = promotion_verdict(candidate, production, n_trials=30, trials_sharpe_variance=4e-4)

    assert verdict.numbers["dsr"] == deflated_sharpe_ratio(
        moments.sharpe, 1500, 30, 4e-4, moments.skewness, moments.kurtosis
    )


def test_the_verdict_serializes_to_json_with_every_number() -> None:
    candidate, production = shadow_pair(700, edge=0.0006)

    verdict = promotion_verdict(candidate, production, n_trials=3, trials_sharpe_variance=1e-4)
    saved = json.loads(json.dumps(verdict.to_dict()))

    assert saved["decision"] == verdict.decision and saved["passed"] == verdict.passed
    assert saved["reasons"] == list(verdict.reasons)
    assert set(saved["numbers"]) >= {
        "n",
        "active",
        "mean_difference",
        "t_stat",
        "p_value",
        "candidate_log_return",
        "production_log_return",
        "candidate_sharpe",
        "production_sharpe",
        "dsr",
        "n_trials",
    }


@pytest.mark.parametrize(
    ("n_trials", "variance", "message"),
    [(0, 0.0, "n_trials must be an integer >= 1"), (5, -1e-4, "trials_sharpe_variance")],
)
def test_bad_trial_counts_are_refused(n_trials: int, variance: float, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        promotion_verdict(
            np.zeros(10), np.zeros(10), n_trials=n_trials, trials_sharpe_variance=variance
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min_track": 1}, "min_track must be >= 2"),
        ({"max_track": 100}, r"max_track \(100\) must be >= min_track \(500\)"),
        ({"alpha": 0.0}, "alpha must be in"),
        ({"min_dsr": 1.5}, "min_dsr is a probability"),
        ({"min_active": 0}, "min_active must be >= 1"),
    ],
)
def test_gate_settings_out_of_range_are_refused(changes: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GateSettings(**changes)  # type: ignore[arg-type]


# --- the CUSUM alarm ------------------------------------------------------------------------


def in_control(n: int, seed: int, mean: float = 0.0003, std: float = 0.004) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, std, n)


def test_in_control_returns_raise_no_alarm_over_a_few_hundred_candles() -> None:
    monitor = CusumMonitor(expected_mean=0.0003, expected_std=0.004)

    assert monitor.update_many(in_control(300, seed=1)) is False
    assert monitor.n == 300 and monitor.statistic <= monitor.h


def test_false_alarms_come_about_as_rarely_as_siegmunds_approximation_says() -> None:
    rng = np.random.default_rng(2)
    run_lengths = []
    for _ in range(150):
        monitor = CusumMonitor(expected_mean=0.0, expected_std=1.0)
        while not monitor.update(rng.normal()):
            pass
        run_lengths.append(monitor.n)

    assert np.mean(run_lengths) == pytest.approx(cusum_average_run_length(), rel=0.25)


def test_a_one_std_drop_is_caught_within_a_few_dozen_candles() -> None:
    expected_mean, expected_std = 0.0003, 0.004
    monitor = CusumMonitor(expected_mean, expected_std)
    monitor.update_many(in_control(300, seed=1))
    assert not monitor.alarmed

    assert monitor.update_many(in_control(300, seed=2, mean=expected_mean - expected_std))
    assert monitor.n - 300 <= 40


def test_the_mean_delay_to_catch_a_one_std_drop_is_about_ten_candles() -> None:
    delays = []
    for seed in range(200):
        monitor = CusumMonitor(expected_mean=0.0, expected_std=1.0)
        assert monitor.update_many(np.random.default_rng(seed).normal(-1.0, 1.0, 200))
        delays.append(monitor.n)

    assert np.mean(delays) == pytest.approx(cusum_average_run_length(shift=1.0), rel=0.2)


def test_the_alarm_latches_and_freezes_the_state_of_the_alarm() -> None:
    monitor = CusumMonitor(expected_mean=0.0, expected_std=1.0)
    monitor.update_many([-3.0, -3.0, -3.0])
    assert monitor.alarmed
    frozen = monitor.to_dict()

    assert monitor.update(5.0) is True
    assert monitor.update_many(np.full(100, 5.0)) is True
    assert monitor.to_dict() == frozen


def test_the_statistic_follows_pages_recursion() -> None:
    monitor = CusumMonitor(expected_mean=0.001, expected_std=0.002, k=0.5, h=5.0)
    statistic = 0.0
    for realised in (-0.002, 0.004, -0.001, -0.003, 0.0):
        statistic = max(0.0, statistic + (0.001 - realised) / 0.002 - 0.5)
        monitor.update(realised)
        assert monitor.statistic == pytest.approx(statistic)


def test_a_saved_monitor_round_trips_and_carries_on_identically() -> None:
    returns = in_control(120, seed=4, mean=-0.002)
    monitor = CusumMonitor(expected_mean=0.0003, expected_std=0.004)
    monitor.update_many(returns[:60])

    restored = CusumMonitor.from_dict(json.loads(json.dumps(monitor.to_dict())))
    assert restored == monitor
    assert restored.update_many(returns[60:]) == monitor.update_many(returns[60:])
    assert restored == monitor


def test_update_many_equals_updating_one_candle_at_a_time() -> None:
    returns = in_control(400, seed=6, mean=-0.001)
    one_by_one = CusumMonitor(expected_mean=0.0003, expected_std=0.004)
    for value in returns:
        if one_by_one.update(value):
            break
    batch = CusumMonitor(expected_mean=0.0003, expected_std=0.004)

    assert batch.update_many(returns) == one_by_one.alarmed
    assert batch == one_by_one


def test_the_reason_states_the_statistic_and_the_realised_and_expected_means() -> None:
    monitor = CusumMonitor(expected_mean=0.00031, expected_std=0.0001)
    monitor.update_many(np.full(12, -0.00012))

    assert monitor.alarmed
    assert monitor.reason().startswith(
        f"CUSUM {monitor.statistic:.1f} > 5.0 after {monitor.n} candles: realised mean -0.00012 "
        "vs expected 0.00031 per candle"
    )
    assert CusumMonitor(0.0, 1.0).reason().startswith("CUSUM 0.0 <= 5.0 after 0 candles")


@pytest.mark.parametrize("std", [0.0, -0.001, math.nan, math.inf])
def test_a_monitor_without_a_positive_std_is_refused(std: float) -> None:
    with pytest.raises(UserInputError, match=r"expected_std must be a finite .* > 0"):
        CusumMonitor(expected_mean=0.0, expected_std=std)


def test_a_saved_monitor_with_missing_or_unknown_fields_is_refused() -> None:
    with pytest.raises(UserInputError, match="needs \\['expected_std'\\]"):
        CusumMonitor.from_dict({"expected_mean": 0.0})
    with pytest.raises(UserInputError, match="unknown CUSUM field"):
        CusumMonitor.from_dict({"expected_mean": 0.0, "expected_std": 1.0, "drift": 1})


def test_a_non_finite_realised_return_is_refused() -> None:
    monitor = CusumMonitor(expected_mean=0.0, expected_std=1.0)
    with pytest.raises(UserInputError, match="at index 2"):
        monitor.update_many([0.0, 0.1, math.nan])


def test_the_expected_profile_is_the_mean_and_a_floored_std() -> None:
    returns = in_control(500, seed=8)

    mean, std = expected_profile(returns)

    assert mean == pytest.approx(returns.mean())
    assert std == pytest.approx(returns.std(ddof=1))
    assert expected_profile(np.zeros(100)) == (0.0, MIN_STD)

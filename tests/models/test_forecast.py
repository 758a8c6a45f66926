"""From probabilities to expected returns: scores, skill slopes, combined votes, money value."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtri

from tradebrain.models.forecast import (
    MIN_T,
    ForecastCalibration,
    Slope,
    combine_votes,
    evidence_weights,
    fit_slope,
    policy_value,
    probit_score,
    probit_scores,
    voter_weights,
)


@settings(max_examples=200)
@given(p_down=st.floats(0.0, 1.0), p_up=st.floats(0.0, 1.0))
def test_the_score_is_the_normal_quantile_of_the_up_share_clipped_to_three(
    p_down: float, p_up: float
) -> None:
    z = probit_score(p_down, p_up)
    if p_down + p_up == 0:
        assert z == 0.0
    else:
        share = min(1 - 1e-12, max(1e-12, p_up / (p_down + p_up)))
        assert z == pytest.approx(float(np.clip(ndtri(share), -3, 3)), abs=1e-12)
    assert probit_score(p_up, p_down) == pytest.approx(-z, abs=1e-12)


def test_scores_of_rows_match_the_single_score_and_unusable_rows_are_nan() -> None:
    proba = np.array([[0.2, 0.3, 0.5], [0.5, 0.0, 0.5], [np.nan, 0.2, 0.3], [0.0, 1.0, 0.0]])
    z = probit_scores(proba)
    assert z[0] == probit_score(0.2, 0.5) and z[1] == 0.0
    assert np.isnan(z[2]) and np.isnan(z[3])


def test_a_real_slope_is_found_and_kept_while_noise_is_no_skill() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1, 20_000)
    skilled = fit_slope(z, 0.3 * z + rng.normal(0, 1, z.size), horizon=1)
    assert skilled.slope == pytest.approx(0.3, abs=0.02)
    assert skilled.t_stat > MIN_T and 0 < skilled.beta < skilled.slope
    assert skilled.beta == pytest.approx(skilled.slope * (1 - (MIN_T / skilled.t_stat) ** 2))
    noise = fit_slope(z, rng.normal(0, 1, z.size), horizon=1)
    assert noise.beta == 0.0
    backwards = fit_slope(z, -0.3 * z + rng.normal(0, 1, z.size), horizon=1)
    assert backwards.slope < 0 and backwards.beta == 0.0


def test_overlapping_returns_need_more_evidence_to_count_as_skill() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(0, 1, 3_000)
    realized = 0.08 * z + rng.normal(0, 1, z.size)
    one, long = fit_slope(z, realized, horizon=1), fit_slope(z, realized, horizon=48)
    assert long.t_stat == pytest.approx(one.t_stat / math.sqrt(48))
    assert one.beta > 0 and long.beta == 0.0


def test_too_few_rows_or_no_spread_is_no_skill() -> None:
    assert fit_slope(np.ones(10), np.ones(10), 1).beta == 0.0
    assert fit_slope(np.zeros(100), np.ones(100), 1).beta == 0.0
    assert fit_slope(np.full(100, np.nan), np.ones(100), 1).rows == 0


def three_slopes() -> tuple[Slope, Slope, Slope]:
    """A strong, a weak (positive, not significant) and a backwards model's slope."""
    rng = np.random.default_rng(3)
    z = rng.normal(0, 1, 3_000)
    strong = fit_slope(z, 0.3 * z + rng.normal(0, 1, z.size), horizon=1)
    weak = fit_slope(z, 0.02 * z + rng.normal(0, 1, z.size), horizon=1)
    backwards = fit_slope(z, -0.1 * z + rng.normal(0, 1, z.size), horizon=1)
    return strong, weak, backwards


def test_only_models_with_significant_skill_vote_in_the_trading_forecast() -> None:
    strong, weak, backwards = three_slopes()
    assert strong.beta > 0 and 0 < weak.t_stat < MIN_T and backwards.slope < 0
    every = {"strong": strong, "weak": weak, "backwards": backwards}
    assert voter_weights(every) == {"strong": 1.0, "weak": 0.0, "backwards": 0.0}
    without_strong = {"weak": weak, "backwards": backwards}
    assert voter_weights(without_strong) == {"weak": 0.0, "backwards": 0.0}
    too_few = fit_slope(np.ones(10), np.ones(10), 1)
    assert voter_weights({"backwards": backwards, "short": too_few}) == {
        "backwards": 0.0, "short": 0.0,
    }  # fmt: skip


def test_evidence_weights_grow_with_the_t_statistic_up_to_one() -> None:
    strong, weak, backwards = three_slopes()
    weights = evidence_weights({"strong": strong, "weak": weak, "backwards": backwards})
    assert weights["strong"] == 1.0 and weights["backwards"] == 0.0
    assert weights["weak"] == pytest.approx(weak.t_stat / MIN_T) and 0 < weights["weak"] < 1


def test_combined_votes_leave_out_models_without_skill() -> None:
    sure = np.array([[0.1, 0.1, 0.8]])
    unsure = np.array([[0.4, 0.3, 0.3]])
    both = combine_votes({"a": sure, "b": unsure}, {"a": 1.0, "b": 1.0})
    only = combine_votes({"a": sure, "b": unsure}, {"a": 1.0, "b": 0.0})
    np.testing.assert_allclose(only, sure)
    assert both[0, 2] < sure[0, 2]  # the unsure model pulls the average, weighted by confidence
    assert np.isnan(combine_votes({"a": sure}, {"a": 0.0})).all()


def test_the_money_value_trades_the_edge_after_costs() -> None:
    returns = np.full(100, 0.002)
    expected = np.full(100, 0.01)
    value = policy_value(expected, returns, 0.001, 1.5, -0.5)
    assert value == pytest.approx(
        (math.log(1 - 0.001) + 100 * math.log(1 + math.expm1(0.002))) / 100
    )
    assert policy_value(np.full(100, 0.001), returns, 0.001, 1.5, -0.5) == 0.0  # under the bar
    short = policy_value(-expected, -returns, 0.001, 1.5, -0.5, long_short=True)
    assert short == pytest.approx(
        (math.log(1 - 0.001) + 100 * math.log(1 - math.expm1(-0.002))) / 100
    )
    assert policy_value(-expected, -returns, 0.001, 1.5, -0.5, long_short=False) == 0.0


def test_a_calibration_survives_a_round_trip_through_json_ready_dicts() -> None:
    calibration = ForecastCalibration(
        horizon=24, beta=0.7, slope=0.9, t_stat=3.1, rows=900, weights={"logistic": 1.0},
        skill={"logistic": {"slope": 0.9, "t_stat": 3.1, "beta": 0.7}},
        horizon_values={12: 1e-4, 24: 2e-4},
    )  # fmt: skip
    assert ForecastCalibration.from_dict(calibration.to_dict()) == calibration
    assert calibration.sigma(0.01) == pytest.approx(0.01 * math.sqrt(24))

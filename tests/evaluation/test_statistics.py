"""PSR, DSR, MinTRL and PBO against published values; the trial ledger counts every trial."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tradebrain.evaluation.statistics import (
    TrialLedger,
    _normal_cdf,
    _normal_quantile,
    _skewness_and_kurtosis,
    config_hash,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    minimum_track_record_length,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_statistics,
)
from tradebrain.exceptions import UserInputError


def test_psr_reproduces_the_published_example() -> None:
    # Bailey & López de Prado (2012): SR 0.1 per period, T = 730, skew -0.5, raw kurtosis 6.
    assert probabilistic_sharpe_ratio(0.1, 730, -0.5, 6.0) == pytest.approx(0.9956, abs=5e-5)


def test_min_track_record_length_reproduces_the_published_example() -> None:
    assert minimum_track_record_length(0.1, -0.5, 6.0, confidence=0.95) == pytest.approx(
        288.5, abs=0.05
    )


def test_psr_at_the_minimum_track_record_length_equals_the_confidence() -> None:
    length = minimum_track_record_length(0.08, 0.3, 4.5, benchmark=0.02, confidence=0.9)
    assert probabilistic_sharpe_ratio(0.08, length, 0.3, 4.5, 0.02) == pytest.approx(0.9)


def test_dsr_reproduces_the_published_example() -> None:
    # Bailey & López de Prado (2014): annual SR 2.5 over 5 years of daily returns (T = 1250),
    # N = 100 trials with annualized Sharpe variance 1/2, skew -3, raw kurtosis 10.
    daily_variance = 0.5 / 250
    assert expected_maximum_sharpe(100, daily_variance) == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(2.5 / math.sqrt(250), 1250, 100, daily_variance, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_a_single_trial_deflates_nothing() -> None:
    assert deflated_sharpe_ratio(0.05, 500, 1, 0.01) == probabilistic_sharpe_ratio(0.05, 500)


def test_more_trials_deflate_the_same_sharpe_ratio_further() -> None:
    values = [deflated_sharpe_ratio(0.1, 1000, n, 0.001) for n in (2, 10, 100, 1000)]
    assert values == sorted(values, reverse=True)


def test_a_sharpe_ratio_at_or_below_the_benchmark_never_reaches_any_track_record() -> None:
    assert minimum_track_record_length(0.05, benchmark=0.05) == math.inf


def test_sharpe_statistics_use_sample_moments_and_raw_kurtosis() -> None:
    returns = np.random.default_rng(0).standard_t(5, 5000) * 0.01 + 0.001
    result = sharpe_statistics(returns)
    assert result.sharpe == pytest.approx(returns.mean() / returns.std(ddof=1))
    assert result.n_observations == 5000
    assert result.kurtosis == pytest.approx(stats.kurtosis(returns) + 3.0)
    assert result.kurtosis > 3.5, "a t(5) distribution has fat tails"
    assert math.isnan(sharpe_statistics(np.ones(10)).sharpe)


def test_pbo_of_pure_noise_strategies_is_near_one_half() -> None:
    rng = np.random.default_rng(1)
    estimates = [
        probability_of_backtest_overfitting(rng.normal(0, 0.01, (480, 10)), 8).probability
        for _ in range(40)
    ]
    assert 0.4 < float(np.mean(estimates)) < 0.6


def test_pbo_is_near_zero_when_one_strategy_has_a_dominant_edge() -> None:
    rng = np.random.default_rng(2)
    returns = rng.normal(0, 0.01, (800, 10))
    returns[:, 4] += 0.004
    result = probability_of_backtest_overfitting(returns, 16)
    assert result.probability < 0.05
    assert result.logits.shape == (12_870,)


def test_pbo_matches_a_direct_computation_of_each_combination() -> None:
    returns = np.random.default_rng(3).normal(0.0005, 0.01, (40, 5))
    blocks = np.array_split(np.arange(40), 4)
    expected = []
    for chosen in itertools.combinations(range(4), 2):
        inside = np.concatenate([blocks[i] for i in chosen])
        outside = np.setdiff1d(np.arange(40), inside)
        sharpe_in = returns[inside].mean(0) / returns[inside].std(0, ddof=1)
        sharpe_out = returns[outside].mean(0) / returns[outside].std(0, ddof=1)
        rank = stats.rankdata(sharpe_out)[np.argmax(sharpe_in)]
        expected.append(math.log(rank / (6 - rank)))
    result = probability_of_backtest_overfitting(returns, 4)
    np.testing.assert_allclose(result.logits, expected, rtol=1e-9)
    assert result.probability == np.mean(np.array(expected) <= 0)


def test_pbo_refuses_an_odd_number_of_partitions() -> None:
    with pytest.raises(UserInputError, match="even"):
        probability_of_backtest_overfitting(np.zeros((100, 3)), 7)


def test_the_ledger_counts_distinct_configurations_as_trials(tmp_path: Path) -> None:
    ledger = TrialLedger(tmp_path / "trials.jsonl")
    assert ledger.n_trials == 0
    first = ledger.record({"model": "lightgbm", "depth": 4}, 0.05)
    ledger.record({"depth": 4, "model": "lightgbm"}, 0.07)  # same config, re-evaluated
    ledger.record({"model": "lightgbm", "depth": 6}, 0.02)
    assert first == config_hash({"depth": 4, "model": "lightgbm"})
    assert ledger.n_trials == 2
    assert len(ledger.entries()) == 3
    np.testing.assert_allclose(sorted(ledger.trial_metrics()), [0.02, 0.07])


def test_an_interrupted_append_still_counts_as_a_trial(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    ledger = TrialLedger(path)
    ledger.record({"model": "cnn"}, 0.01)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"config_hash": "abc", "con')  # a crash in the middle of a line
    ledger.record({"model": "tcn"}, 0.03)
    assert ledger.n_trials == 3
    assert [e["config"]["model"] for e in ledger.entries()] == ["cnn", "tcn"]
    assert path.read_text(encoding="utf-8").endswith("\n")


def test_the_normal_distribution_without_scipy_agrees_with_scipy() -> None:
    for z in (-30.0, -8.0, -1.0, -0.3, 0.0, 0.5, 0.7071, 2.0, 9.0):
        assert _normal_cdf(z) == pytest.approx(stats.norm.cdf(z), rel=1e-12, abs=0)
    for p in (1e-300, 1e-12, 0.01, 0.3, 0.5, 0.95, 1 - 1e-12):
        assert _normal_quantile(p) == pytest.approx(stats.norm.ppf(p), rel=1e-12)


def test_skewness_and_kurtosis_without_scipy_agree_with_scipy() -> None:
    returns = np.random.default_rng(3).lognormal(0.0, 0.5, 2000) - 1.0
    skewness, kurtosis = _skewness_and_kurtosis(returns)
    assert skewness == pytest.approx(stats.skew(returns), rel=1e-12)
    assert kurtosis == pytest.approx(stats.kurtosis(returns, fisher=False), rel=1e-12)

"""The proof that evaluation cannot fool its user.

- Planted world: the ensemble recovers most of the oracle's edge, and never beats the oracle.
- Null world and shuffled labels: accuracy stays at a coin flip.
- A feature that reads the future is caught by the oracle ceiling, loudly.
- Real data: the pipeline runs end to end and the report says whether anything beats the
  naive baselines.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from builders import real_file

from tradebrain.data.importing import read_market_file
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.evaluation.evaluate import EvaluationResult, evaluate
from tradebrain.evaluation.walk_forward import EvaluationSettings
from tradebrain.features import compute_features
from tradebrain.labels import LabelSettings

BARS = 30_000
SETS = ("atomic",)
FAST = {"logistic": {"max_iter": 500}, "lightgbm": {"n_estimators": 80, "n_jobs": 1}}


def _settings(**changes: Any) -> EvaluationSettings:
    base = EvaluationSettings(
        label=LabelSettings("direction", horizon=1, parameters={"dead_zone": 0.0}),
        models=("logistic", "lightgbm"),
        folds=4,
        model_params=FAST,
    )
    return EvaluationSettings(**{**base.__dict__, **changes})


def _world(signal: float, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    market = generate_market(SyntheticConfig(bars=BARS, seed=seed, signal=signal))
    return market.candles, compute_features(market.candles, SETS), market.oracle


@pytest.fixture(scope="module")
def planted() -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    return _world(0.3, seed=21)


@pytest.fixture(scope="module")
def null_world() -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    return _world(0.0, seed=22)


def _run(
    world: tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]], **changes: Any
) -> EvaluationResult:
    candles, features, oracle = world
    return evaluate(candles, _settings(**changes), features=features, oracle=oracle, source="test")


def test_in_a_planted_world_the_ensemble_recovers_most_of_the_oracle_edge(planted: Any) -> None:
    report = _run(planted).report
    ceiling = report["oracle"]["accuracy"]
    ensemble = report["models"]["ensemble"]
    recovered = report["oracle"]["models"]["ensemble"]["edge_recovered"]
    assert ceiling > 0.55
    assert recovered >= 0.60, f"ensemble {ensemble['sign_accuracy']:.4f} vs oracle {ceiling:.4f}"
    assert ensemble["sign_accuracy"] <= ceiling + 3 * ensemble["sign_accuracy_se"]
    assert report["warnings"] == []
    assert report["verdict"]["beats_baselines"]["ensemble"]


def test_in_a_null_world_accuracy_stays_at_a_coin_flip(null_world: Any) -> None:
    report = _run(null_world).report
    for name in ("logistic", "lightgbm", "ensemble"):
        assert abs(report["models"][name]["sign_accuracy"] - 0.5) <= 0.015, name
    assert not any(report["verdict"]["beats_baselines"].values())
    assert "No model beats the naive baselines" in report["verdict"]["summary"]


def test_with_shuffled_labels_skill_vanishes_even_where_a_signal_exists(planted: Any) -> None:
    report = _run(planted, placebo_seed=5, stacking=False).report
    for name in ("logistic", "lightgbm", "ensemble"):
        assert abs(report["models"][name]["sign_accuracy"] - 0.5) <= 0.015, name


def test_a_feature_that_reads_the_future_sets_off_the_leakage_alarm(null_world: Any) -> None:
    candles, features, oracle = null_world
    log_close = np.log(candles["close"].to_numpy())
    next_return = np.append(np.diff(log_close), np.nan)  # known only one candle later
    leaky = features.with_columns(pl.Series("peek_next_return", next_return))
    result = evaluate(candles, _settings(), features=leaky, oracle=oracle, source="leaky")
    assert any("LEAKAGE SUSPECTED" in w for w in result.report["warnings"])
    assert result.report["oracle"]["models"]["lightgbm"]["leakage_suspected"]


def test_predictions_have_one_row_per_timestamp_and_model_in_folds(planted: Any) -> None:
    result = _run(planted, folds=3, stacking=True)
    table = result.predictions
    assert table.columns == ["timestamp", "model", "fold", "p_down", "p_flat", "p_up"]
    assert table.select("timestamp", "model").is_duplicated().sum() == 0
    sums = table["p_down"] + table["p_flat"] + table["p_up"]
    assert ((sums - 1.0).abs() < 1e-9).all()
    assert {"ensemble", "stacking", "baseline_majority"} <= set(table["model"])
    # Stacking learns only from earlier folds, so the first fold has no stacking rows.
    assert table.filter(pl.col("model") == "stacking")["fold"].min() == 1


@pytest.mark.parametrize(
    ("name", "tail"),
    [("marketlab__BTC_USDT__1h.parquet", 12_556), ("marketlab__ETH_USDT__5m.parquet", 20_000)],
)
def test_real_candles_are_evaluated_end_to_end_with_a_plain_verdict(name: str, tail: int) -> None:
    read = read_market_file(real_file(name), "candles")
    candles = read.frame.drop("_row").tail(tail)
    result = evaluate(
        candles, _settings(folds=3), feature_sets=("atomic", "indicators"), source=name
    )
    verdict = result.report["verdict"]
    assert set(verdict["beats_baselines"]) >= {"logistic", "lightgbm", "ensemble"}
    won = [m for m, beat in verdict["beats_baselines"].items() if beat]
    if won:
        assert "beat" in verdict["summary"] and all(m in verdict["summary"] for m in won)
    else:
        assert verdict["summary"].startswith("No model beats the naive baselines")

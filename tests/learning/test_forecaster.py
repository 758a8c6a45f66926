"""One window's forecast: horizon, features and skill chosen on its own rows, purged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.evaluation.evaluate import first_complete_row
from tradebrain.evaluation.walk_forward import EvaluationSettings
from tradebrain.exceptions import UserInputError
from tradebrain.features import compute_features
from tradebrain.labels import LabelSettings
from tradebrain.learning.forecaster import _Window, train_forecaster
from tradebrain.models.bundle import ModelBundle
from tradebrain.models.forecast import MIN_T, ForecastSettings

SETTINGS = EvaluationSettings(
    label=LabelSettings("direction", 12, {"dead_zone": 0.0}),
    models=("logistic", "lightgbm"),
    model_params={"lightgbm": {"n_estimators": 40, "n_jobs": 1}},
)
FORECAST = ForecastSettings(horizons=(6, 12, 24), max_features=6)


def world(signal: float, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    config = SyntheticConfig(bars=4_000, seed=seed, signal=signal, edge="trend", half_life=24)
    candles = generate_market(config).candles
    return candles, compute_features(candles, ["atomic", "momentum"])


@pytest.fixture(scope="module")
def planted() -> tuple[pl.DataFrame, pl.DataFrame]:
    return world(0.25, seed=2)


def test_a_planted_trend_gives_a_calibrated_forecast_with_voters(
    planted: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    candles, features = planted
    bundle = train_forecaster(candles, features, SETTINGS, FORECAST, feature_sets=None, source="t")
    calibration = bundle.calibration
    assert calibration is not None
    assert calibration.horizon in FORECAST.horizons
    assert calibration.beta > 0 and calibration.t_stat > 2
    assert bundle.voters() and set(bundle.voters()) <= set(SETTINGS.models)
    assert set(calibration.horizon_values) <= set(FORECAST.horizons)
    assert len(bundle.feature_names) <= FORECAST.max_features
    kept = [row["feature"] for row in bundle.manifest["selection"]["kept"]]
    assert kept == list(bundle.feature_names)
    assert bundle.manifest["label"]["horizon"] == calibration.horizon
    inputs = bundle.forecast_inputs(features)
    assert (inputs[-1, 0], inputs[-1, 2]) == (calibration.beta, calibration.horizon)
    sigma = features["rv_std_60"][-1] * np.sqrt(calibration.horizon)
    assert inputs[-1, 1] == pytest.approx(sigma)


def test_a_world_without_an_edge_gives_no_significant_skill_and_no_expected_return() -> None:
    candles, features = world(0.0, seed=4)
    bundle = train_forecaster(candles, features, SETTINGS, FORECAST, feature_sets=None, source="t")
    calibration = bundle.calibration
    assert calibration is not None and calibration.beta == 0.0
    assert calibration.t_stat < MIN_T
    assert np.all(bundle.forecast_inputs(features)[:, 0] == 0.0)  # beta 0: nothing to trade


def test_only_the_models_with_significant_skill_vote() -> None:
    candles, features = world(0.0, seed=4)
    bundle = train_forecaster(candles, features, SETTINGS, FORECAST, feature_sets=None, source="t")
    assert bundle.calibration is not None
    skill = bundle.calibration.skill
    assert set(skill) == set(SETTINGS.models)
    assert set(bundle.voters()) == {m for m, s in skill.items() if s["beta"] > 0}


def test_every_scored_block_is_predicted_by_models_whose_labels_resolved_before_it(
    planted: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    candles, features = planted
    window = _Window.build(
        candles, features, first_complete_row(features), SETTINGS, FORECAST, horizon=24
    )
    assert len(window.blocks) == FORECAST.folds
    for fit, stopping, test in window.blocks:
        assert window.data.label_end[fit].max() < stopping[0] <= test[0]
        assert window.data.label_end[stopping].max() < test[0]
    assert window.scored.size == sum(test.size for _, _, test in window.blocks)


def test_the_calibration_is_saved_and_loaded_with_the_bundle(
    planted: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path
) -> None:
    candles, features = planted
    bundle = train_forecaster(
        candles, features, SETTINGS, FORECAST, feature_sets=["atomic", "momentum"], source="t"
    )
    loaded = ModelBundle.load(bundle.save(tmp_path / "bundle"))
    assert loaded.calibration == bundle.calibration
    assert loaded.voters() == bundle.voters()
    np.testing.assert_allclose(loaded.forecast_inputs(features), bundle.forecast_inputs(features))


def test_a_history_too_short_or_without_the_volatility_feature_is_refused(
    planted: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    candles, features = planted
    with pytest.raises(UserInputError, match="too few"):
        train_forecaster(candles.head(450), features.head(450), SETTINGS, FORECAST,
                         feature_sets=None, source="t")  # fmt: skip
    with pytest.raises(UserInputError, match="rv_std_60"):
        train_forecaster(candles, features.drop("rv_std_60"), SETTINGS, FORECAST,
                         feature_sets=None, source="t")  # fmt: skip

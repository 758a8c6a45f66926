"""Gradient boosting: planted rules, early stopping on a validation block, native files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradebrain.exceptions import UserInputError
from tradebrain.models.base import DOWN, FLAT, UP, load_model
from tradebrain.models.boosting import LightGBMModel, XGBoostModel

BOOSTERS = [LightGBMModel, XGBoostModel]
BoostingClass = type[LightGBMModel] | type[XGBoostModel]
# One thread: on tiny data a second thread only adds OpenMP spin-waits, which cost seconds when
# the machine is shared with other processes.
ONE = 1


def threshold_world(rows: int, seed: int, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Up above 0.5 on x0 when x1 > 0, down below -0.5, flat otherwise; x2..x5 are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 6))
    y = np.full(rows, FLAT)
    y[(X[:, 0] > 0.5) & (X[:, 1] > 0.0)] = UP
    y[X[:, 0] < -0.5] = DOWN
    flip = rng.random(rows) < noise
    y[flip] = rng.integers(0, 3, size=int(flip.sum()))
    return X, y


@pytest.mark.parametrize("model_class", BOOSTERS)
def test_boosting_learns_a_planted_nonlinear_rule(model_class: BoostingClass) -> None:
    X, y = threshold_world(3000, seed=0)
    X_test, y_test = threshold_world(1000, seed=1)
    model = model_class(n_estimators=100, learning_rate=0.2, n_jobs=ONE).fit(X, y)
    assert (model.predict(X_test) == y_test).mean() > 0.95


@pytest.mark.parametrize("model_class", BOOSTERS)
def test_early_stopping_keeps_only_the_best_rounds(
    model_class: BoostingClass, tmp_path: Path
) -> None:
    X, y = threshold_world(1500, seed=0, noise=0.5)
    X_val, y_val = threshold_world(500, seed=1, noise=0.5)
    params: dict[str, Any] = {
        "n_estimators": 300,
        "learning_rate": 0.3,
        "early_stopping_rounds": 10,
        "n_jobs": ONE,
    }
    stopped = model_class(**params).fit(X, y, info={"validation": (X_val, y_val)})
    assert 1 <= stopped.n_rounds_ < 300
    assert model_class(**params).fit(X, y).n_rounds_ == 300
    off = model_class(**{**params, "early_stopping_rounds": None})
    assert off.fit(X, y, info={"validation": (X_val, y_val)}).n_rounds_ == 300

    loaded = load_model(stopped.save(tmp_path))
    assert isinstance(loaded, model_class)
    assert loaded.n_rounds_ == stopped.n_rounds_
    np.testing.assert_array_equal(loaded.predict_proba(X_val), stopped.predict_proba(X_val))
    assert (tmp_path / model_class.MODEL_FILE).is_file()


@pytest.mark.parametrize("model_class", BOOSTERS)
def test_validation_rows_of_a_class_unseen_in_training_are_left_out(
    model_class: BoostingClass,
) -> None:
    X, y = threshold_world(600, seed=0)
    keep = y != FLAT
    X_val, y_val = threshold_world(200, seed=1)  # holds flat rows
    model = model_class(n_estimators=50, early_stopping_rounds=5, n_jobs=ONE)
    proba = model.fit(X[keep], y[keep], info={"validation": (X_val, y_val)}).predict_proba(X_val)
    np.testing.assert_array_equal(proba[:, FLAT], 0.0)
    with pytest.raises(UserInputError, match="no validation row"):
        model.fit(X[keep], y[keep], info={"validation": (X_val[:3], np.full(3, FLAT))})
    with pytest.raises(UserInputError, match="validation X has 2 features"):
        model.fit(X, y, info={"validation": (X_val[:, :2], y_val)})


@pytest.mark.parametrize("model_class", BOOSTERS)
def test_boosting_takes_nan_features_as_missing_values(model_class: BoostingClass) -> None:
    X, y = threshold_world(600, seed=0)
    X[::7, 3] = np.nan
    proba = model_class(n_estimators=20, n_jobs=ONE).fit(X, y).predict_proba(X)
    assert np.isfinite(proba).all()


@pytest.mark.parametrize("model_class", BOOSTERS)
def test_boosting_refuses_a_single_class(model_class: BoostingClass) -> None:
    X, _ = threshold_world(50, seed=0)
    with pytest.raises(UserInputError, match=r"at least two classes.*'up'"):
        model_class(n_jobs=ONE).fit(X, np.full(50, UP))


def test_thread_counts_reach_the_libraries(tmp_path: Path) -> None:
    X, y = threshold_world(300, seed=0)
    lightgbm = LightGBMModel(n_estimators=5, n_jobs=1).fit(X, y)
    assert "[num_threads: 1]" in lightgbm.booster_.model_to_string()
    xgboost = XGBoostModel(n_estimators=5, n_jobs=1).fit(X, y)
    config = json.loads(xgboost.booster_.save_config())
    assert config["learner"]["generic_param"]["nthread"] == "1"
    loaded = load_model(XGBoostModel(n_estimators=1, n_jobs=2).fit(X, y).save(tmp_path))
    assert isinstance(loaded, XGBoostModel)
    config = json.loads(loaded.booster_.save_config())
    assert config["learner"]["generic_param"]["nthread"] == "2"

"""A trained bundle saves, loads and predicts exactly as it did before saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.evaluation.walk_forward import EvaluationSettings
from tradebrain.exceptions import UserInputError
from tradebrain.features import compute_features
from tradebrain.labels import LabelSettings
from tradebrain.learning.bundle_training import train_bundle
from tradebrain.models.bundle import ModelBundle


def _settings() -> EvaluationSettings:
    return EvaluationSettings(
        label=LabelSettings("direction", horizon=2),
        models=("logistic", "lightgbm", "cnn"),
        window=8,
        model_params={
            "lightgbm": {"n_estimators": 30, "n_jobs": 1},
            "cnn": {"max_epochs": 2, "threads": 1},
        },
    )


def test_a_saved_bundle_predicts_the_same_probabilities_after_loading(tmp_path: Path) -> None:
    candles = generate_market(SyntheticConfig(bars=1_500, seed=3, signal=0.3)).candles
    features = compute_features(candles, ["atomic", "indicators"])
    bundle = train_bundle(candles, features, _settings(), feature_sets=["atomic"], source="t")
    before = bundle.predict_proba(features.tail(300))
    loaded = ModelBundle.load(bundle.save(tmp_path / "models"))
    after = loaded.predict_proba(features.tail(300))
    assert set(before) == {"logistic", "lightgbm", "cnn"}
    for name in before:
        assert np.array_equal(before[name], after[name], equal_nan=True), name
    assert np.isnan(after["cnn"][:7]).all()  # the first rows lack a full window
    finite = after["lightgbm"]
    assert np.allclose(finite.sum(axis=1), 1.0)
    assert loaded.manifest["label"]["horizon"] == 2


def test_a_bundle_refuses_a_feature_table_without_its_features(tmp_path: Path) -> None:
    candles = generate_market(SyntheticConfig(bars=800, seed=4)).candles
    features = compute_features(candles, ["atomic"])
    settings = EvaluationSettings(models=("logistic",), window=4)
    bundle = train_bundle(candles, features, settings, feature_sets=["atomic"], source="t")
    with pytest.raises(UserInputError, match="lacks"):
        bundle.predict_proba(features.drop("ret_1"))
    with pytest.raises(UserInputError, match="not a model folder"):
        ModelBundle.load(tmp_path)

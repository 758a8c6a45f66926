"""Walk-forward folds choose their features and their ensemble weights from the past only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl
import pytest
from scipy import stats

from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.evaluation.evaluate import evaluate, first_complete_row
from tradebrain.evaluation.walk_forward import (
    Dataset,
    EvaluationSettings,
    build_dataset,
    run_folds,
)
from tradebrain.features import compute_features
from tradebrain.labels import LabelSettings
from tradebrain.models.base import MODEL_CLASSES, Model
from tradebrain.models.baselines import LogisticModel

FAST = {"logistic": {"max_iter": 300}}


class CoinFlipModel(Model):
    """A model without skill: random probabilities, whatever the features say."""

    name = "coin"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        feature_names: tuple[str, ...] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Self:
        self.record_ = self._record(X, y, feature_names, info)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        raw = np.random.default_rng([self.seed, X.shape[0]]).dirichlet((5, 5, 5), X.shape[0])
        return np.asarray(raw, dtype=np.float64)

    def _save_state(self, folder: Path) -> None:  # pragma: no cover - never saved here
        pass

    def _load_state(self, folder: Path) -> None:  # pragma: no cover - never loaded here
        pass


class BackwardsModel(LogisticModel):
    """A model with skill the wrong way round: the logistic model with up and down swapped."""

    name = "backwards"

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(super().predict_proba(X), dtype=np.float64)[:, ::-1].copy()


@pytest.fixture
def coin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODEL_CLASSES, "coin", CoinFlipModel)
    monkeypatch.setitem(MODEL_CLASSES, "backwards", BackwardsModel)


def _world(signal: float, bars: int = 6_000, **changes: Any) -> tuple[pl.DataFrame, Any]:
    market = generate_market(SyntheticConfig(bars=bars, seed=21, signal=signal, **changes))
    return market.candles, market


def _dataset(candles: pl.DataFrame, settings: EvaluationSettings) -> Dataset:
    features = compute_features(candles, ["atomic"])
    return build_dataset(candles, features, first_complete_row(features), settings)


def _settings(**changes: Any) -> EvaluationSettings:
    base = EvaluationSettings(
        models=("logistic",), folds=3, max_features=4, stacking=False, model_params=FAST
    )
    return replace(base, **changes)


def test_each_fold_selects_its_features_from_its_training_rows_only() -> None:
    candles, _ = _world(0.3)
    settings = _settings()
    data = _dataset(candles, settings)
    folds = run_folds(data, settings)
    last = folds[-1].fold
    scrambled = data.X.copy()
    noise = np.random.default_rng(0).normal(size=scrambled[last.test_start :].shape)
    scrambled[last.test_start :] = noise  # rewrite the future of the last fold
    rerun = run_folds(replace(data, X=scrambled), settings)
    for before, after in zip(folds, rerun, strict=True):
        assert before.selection is not None and after.selection is not None
        assert before.selection == after.selection  # names, ICs, stability and clusters
        assert len(before.selection.names) <= 4
    for before, after in zip(folds[:-1], rerun[:-1], strict=True):
        np.testing.assert_array_equal(before.proba["logistic"], after.proba["logistic"])
    assert not np.array_equal(folds[-1].proba["logistic"], rerun[-1].proba["logistic"])


def test_a_model_without_skill_weighs_zero_and_the_ensemble_follows_the_others(coin: None) -> None:
    candles, market = _world(0.3)
    settings = _settings(models=("logistic", "backwards"))
    result = evaluate(candles, settings, feature_sets=["atomic"], oracle=market.oracle)
    weights = result.report["ensemble_weights"]
    assert weights["without_skill"] == ["backwards"]
    assert all(fold["weights"]["backwards"] == 0.0 for fold in weights["per_fold"])
    assert all(fold["weights"]["logistic"] > 0.0 for fold in weights["per_fold"])
    frame = result.predictions
    columns = ["p_down", "p_flat", "p_up"]
    ensemble = frame.filter(pl.col("model") == "ensemble").select(columns).to_numpy()
    logistic = frame.filter(pl.col("model") == "logistic").select(columns).to_numpy()
    np.testing.assert_allclose(ensemble, logistic, atol=1e-12)


def test_each_model_weighs_its_evidence_of_skill_and_nothing_without_a_positive_slope(
    coin: None,
) -> None:
    candles, _ = _world(0.0)
    settings = _settings(models=("logistic", "coin"))
    folds = run_folds(_dataset(candles, settings), settings)
    weights = [w for f in folds for w in f.weights.values()]
    assert 0.0 in weights and any(0.0 < w < 1.0 for w in weights)  # none and some evidence
    for fold in folds:
        for name, skill in fold.skill.items():
            evidence = min(1.0, skill["t_stat"] / 2.0) if skill["slope"] > 0 else 0.0
            assert fold.weights[name] == pytest.approx(evidence)


def test_when_no_model_has_skill_the_ensemble_abstains_without_a_directional_view(
    coin: None,
) -> None:
    candles, _ = _world(0.3)
    settings = _settings(models=("backwards",))
    result = evaluate(candles, settings, feature_sets=["atomic"])
    assert result.report["ensemble_weights"]["without_skill"] == ["backwards"]
    frame = result.predictions
    columns = ["p_down", "p_flat", "p_up"]
    ensemble = frame.filter(pl.col("model") == "ensemble").select(columns).to_numpy()
    prior = frame.filter(pl.col("model") == "baseline_majority").select(columns).to_numpy()
    np.testing.assert_array_equal(ensemble[:, 1], prior[:, 1])  # the flat share it knows
    np.testing.assert_allclose(ensemble[:, 0], (prior[:, 0] + prior[:, 2]) / 2, atol=1e-15)
    np.testing.assert_array_equal(ensemble[:, 0], ensemble[:, 2])  # no lean either way
    assert result.report["models"]["ensemble"]["sign_accuracy"] == 0.5


def test_equal_weights_are_kept_when_skill_weighting_is_switched_off(coin: None) -> None:
    candles, _ = _world(0.3, bars=4_000)
    settings = _settings(models=("logistic", "coin"), skill_weights=False, folds=2)
    data = _dataset(candles, settings)
    folds = run_folds(data, settings)
    assert all(f.weights == {"logistic": 1.0, "coin": 1.0} and not f.skill for f in folds)


def test_the_report_names_the_kept_features_with_their_clusters_and_calibration() -> None:
    candles, _ = _world(0.3)
    result = evaluate(candles, _settings(), feature_sets=["atomic"])
    selection = result.report["selection"]
    assert selection["offered"] == len(compute_features(candles.head(50), ["atomic"]).columns) - 1
    assert len(selection["per_fold"]) == 3
    top = selection["features"][0]
    assert top["folds"] == 3 and abs(top["ic"]) > 0.05  # the planted reversal is found
    assert {"feature", "folds", "ic", "stability", "cluster"} == set(top)
    bins = result.report["calibration"]["logistic"]
    assert sum(b["count"] for b in bins) == result.report["models"]["logistic"]["n"]


def test_every_feature_is_used_when_the_cap_is_off() -> None:
    candles, _ = _world(0.3, bars=4_000)
    settings = _settings(max_features=None, folds=2)
    data = _dataset(candles, settings)
    assert all(f.selection is None for f in run_folds(data, settings))


def test_on_a_persistent_world_the_report_compares_model_ic_with_the_known_drift() -> None:
    market = generate_market(
        SyntheticConfig(bars=8_000, seed=4, signal=0.4, edge="trend", half_life=48)
    )
    planted = market.regimes["oracle_expected_return"].to_numpy()
    settings = _settings(label=LabelSettings("direction", horizon=12))
    result = evaluate(market.candles, settings, feature_sets=["atomic"], planted=planted)
    drift = result.report["oracle"]["drift"]
    rows = result.predictions.filter(pl.col("model") == "ensemble")["timestamp"]
    close = market.candles["close"].to_numpy()
    stamps = market.candles["timestamp"]
    index = np.flatnonzero(stamps.is_in(rows.implode()).to_numpy())
    forward = np.log(close[index + 12] / close[index])
    expected = stats.spearmanr(planted[index], forward).statistic
    assert drift["drift_ic"] == pytest.approx(expected, abs=1e-12)
    assert drift["drift_ic"] > 0.1
    ensemble_ic = result.report["models"]["ensemble"]["information_coefficient"]
    assert drift["ic_kept"]["ensemble"] == pytest.approx(ensemble_ic / expected)


def test_stacking_is_the_meta_learner_or_a_copy_of_the_member_that_did_best_before(
    coin: None,
) -> None:
    candles, _ = _world(0.3)
    settings = _settings(models=("logistic", "coin"), stacking=True, folds=4)
    data = _dataset(candles, settings)
    folds = run_folds(data, settings)
    assert "stacking" not in folds[0].proba and folds[0].stacking_choice is None
    for result in folds[1:]:
        choice = result.stacking_choice
        assert choice in ("meta-learner", "logistic", "coin")
        if choice != "meta-learner":
            np.testing.assert_array_equal(result.proba["stacking"], result.proba[choice])
    assert all(r.stacking_choice != "coin" for r in folds[1:])  # never copies a coin flip

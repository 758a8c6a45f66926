"""Baselines: logistic regression and the momentum and candle-pattern rule models."""

from __future__ import annotations

import numpy as np
import pytest

from tradebrain.exceptions import UserInputError
from tradebrain.features import all_features
from tradebrain.models.base import DOWN, FLAT, UP
from tradebrain.models.baselines import LogisticModel, MomentumRuleModel, PatternRuleModel

PATTERN_NAMES = ("hammer", "bullish_engulfing", "shooting_star", "bearish_engulfing")


def linear_world(rows: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Three features on very different scales; the label follows the first one."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 3)) * np.array([1e-3, 50.0, 1.0]) + shift
    y = np.digitize(X[:, 0] - shift, [-4e-4, 4e-4])
    return X, y


def pattern_rows(flags: dict[str, float], rows: int = 1) -> np.ndarray:
    """Rows of the four pattern columns (in ``PATTERN_NAMES`` order) with the given flags."""
    X = np.zeros((rows, len(PATTERN_NAMES)))
    for name, value in flags.items():
        X[:, PATTERN_NAMES.index(name)] = value
    return X


def test_rule_models_default_columns_exist_in_the_feature_catalog() -> None:
    names = {feature.name for feature in all_features()}
    assert MomentumRuleModel().feature in names
    assert {*PatternRuleModel().bullish, *PatternRuleModel().bearish} <= names


def test_logistic_learns_a_planted_rule_whatever_the_feature_scales() -> None:
    X, y = linear_world(3000, seed=0)
    X_test, y_test = linear_world(1000, seed=1)
    model = LogisticModel(C=10.0).fit(X, y)
    assert (model.predict(X_test) == y_test).mean() > 0.9


def test_logistic_standardises_with_training_rows_only() -> None:
    X, y = linear_world(500, seed=0)
    model = LogisticModel().fit(X, y)
    np.testing.assert_allclose(model.mean_, X.mean(axis=0))
    np.testing.assert_allclose(model.scale_, X.std(axis=0))
    before = model.predict_proba(X[:5])
    model.predict_proba(linear_world(500, seed=1, shift=100.0)[0])  # far-off rows change nothing
    np.testing.assert_array_equal(model.predict_proba(X[:5]), before)


def test_logistic_refuses_nan_and_names_the_column() -> None:
    X, y = linear_world(100, seed=0)
    X[3, 1] = np.nan
    with pytest.raises(UserInputError, match=r"\['volume'\].*warm-up"):
        LogisticModel().fit(X, y, feature_names=("ret_1", "volume", "rsi_14"))


def test_logistic_trained_on_one_class_predicts_that_class() -> None:
    X, _ = linear_world(50, seed=0)
    proba = LogisticModel().fit(X, np.full(50, UP)).predict_proba(X[:4])
    np.testing.assert_array_equal(proba, np.tile([0.0, 0.0, 1.0], (4, 1)))


def test_predicting_with_the_wrong_number_of_features_is_refused() -> None:
    X, y = linear_world(100, seed=0)
    model = LogisticModel().fit(X, y)
    with pytest.raises(UserInputError, match="3 features; got \\(4, 2\\)"):
        model.predict_proba(np.zeros((4, 2)))


def test_momentum_pushes_probability_the_way_the_market_moved() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=400), rng.normal(scale=0.02, size=400)])
    y = rng.integers(0, 3, size=400)
    model = MomentumRuleModel(feature="ret_12").fit(X, y, feature_names=("rsi_14", "ret_12"))
    momentum = np.linspace(-0.06, 0.06, 9)
    proba = model.predict_proba(np.column_stack([np.zeros(9), momentum]))
    assert (np.diff(proba[:, UP]) > 0).all() and (np.diff(proba[:, DOWN]) < 0).all()
    assert proba[-1, UP] > 0.55 and proba[0, DOWN] > 0.55
    shares = np.bincount(y, minlength=3) / len(y)
    np.testing.assert_allclose(proba[:, FLAT], shares[FLAT])
    np.testing.assert_allclose(model.predict_proba(np.array([[0.0, np.nan]]))[0], shares)


def test_momentum_without_gain_gives_the_training_class_frequencies() -> None:
    X = np.array([[0.1], [-0.2], [0.3], [0.0]])
    y = np.array([UP, DOWN, UP, FLAT])
    proba = MomentumRuleModel(gain=0.0).fit(X, y, feature_names=("ret_12",)).predict_proba(X)
    np.testing.assert_allclose(proba, np.tile([0.25, 0.25, 0.5], (4, 1)))


def test_rule_models_name_the_column_they_miss() -> None:
    X, y = np.zeros((10, 2)), np.arange(10) % 3
    with pytest.raises(UserInputError, match=r"\['ret_12'\].*pass feature_names"):
        MomentumRuleModel().fit(X, y)
    with pytest.raises(UserInputError, match=r"\['hammer', 'bullish_engulfing'"):
        PatternRuleModel().fit(X, y, feature_names=("ret_12", "rsi_14"))


def test_patterns_without_evidence_follow_the_rule() -> None:
    X = np.zeros((300, 4))  # no pattern ever fired in training
    y = np.arange(300) % 3
    model = PatternRuleModel().fit(X, y, feature_names=PATTERN_NAMES)
    base = np.full(3, 1 / 3)
    np.testing.assert_allclose(model.predict_proba(pattern_rows({}))[0], base)
    for bullish in ("hammer", "bullish_engulfing"):
        p = model.predict_proba(pattern_rows({bullish: 1}))[0]
        assert p[UP] > base[UP] > p[DOWN]
    for bearish in ("shooting_star", "bearish_engulfing"):
        p = model.predict_proba(pattern_rows({bearish: 1}))[0]
        assert p[DOWN] > base[DOWN] > p[UP]
    both = model.predict_proba(pattern_rows({"hammer": 1, "shooting_star": 1}))[0]
    np.testing.assert_allclose(both, base)
    nan_flag = model.predict_proba(pattern_rows({"hammer": np.nan}))
    np.testing.assert_allclose(nan_flag[0], base)


def test_patterns_learn_from_counts_when_the_data_disagrees_with_the_rule() -> None:
    rng = np.random.default_rng(0)
    X = pattern_rows({}, rows=2000)
    hammer = rng.random(2000) < 0.2
    X[hammer, PATTERN_NAMES.index("hammer")] = 1.0
    y = np.where(hammer, DOWN, rng.integers(0, 3, size=2000))  # here hammers precede drops
    model = PatternRuleModel(prior_rows=20.0).fit(X, y, feature_names=PATTERN_NAMES)
    p = model.predict_proba(pattern_rows({"hammer": 1}))[0]
    assert p[DOWN] > 0.9

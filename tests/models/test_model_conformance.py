"""One conformance test that every registered model must pass, whoever wrote it.

The test is parametrised over ``MODEL_CLASSES`` after ``import tradebrain.models``, so a model
registered later is picked up without touching this file; so is the single-input contract
(``predict_proba_one`` gives the matching row of ``predict_proba``). To keep its case fast, give the
model class a ``fast_params()`` classmethod returning small hyper-parameters (the torch nets do
this), or add an entry to ``FAST_PARAMS`` below. Sequence models (``input_kind ==
"sequence"``) get windows built with :func:`make_windows`.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tradebrain.models  # noqa: F401 - registers every built-in model
from tradebrain.exceptions import UserInputError
from tradebrain.models.base import (
    FLAT,
    MODEL_CLASSES,
    Model,
    NotFittedError,
    load_model,
    make_windows,
)

FAST_PARAMS: dict[str, dict[str, Any]] = {
    "lightgbm": {"n_estimators": 20, "min_child_samples": 10, "n_jobs": 1},
    "xgboost": {"n_estimators": 20, "n_jobs": 1},
    "logistic": {"n_jobs": 1},
    "calibrated": {"model": "logistic", "model_params": {"n_jobs": 1}},
}
"""Small hyper-parameters by registry name, for models without a ``fast_params`` classmethod."""

FEATURE_NAMES = (
    "ret_12",
    "rv_std_20",
    "hammer",
    "shooting_star",
    "bullish_engulfing",
    "bearish_engulfing",
    "body_ratio",
    "volume_z_20",
)
PATTERN_COLUMNS = slice(2, 6)
WINDOW = 8
TRAIN_ROWS = 240
TEST_ROWS = 60


def fast_params(model_class: type[Model]) -> dict[str, Any]:
    """Return the small hyper-parameters a conformance case runs with."""
    hook = getattr(model_class, "fast_params", None)
    if callable(hook):
        return dict(hook())
    return dict(FAST_PARAMS.get(model_class.name, {}))


def dataset(
    model: Model, rows: int, seed: int, *, without_flat: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Return X shaped for ``model`` and labels with a learnable signal."""
    rng = np.random.default_rng(seed)
    n = rows + WINDOW - 1 if model.input_kind == "sequence" else rows
    X = rng.normal(size=(n, len(FEATURE_NAMES)))
    X[:, PATTERN_COLUMNS] = (rng.random((n, 4)) < 0.15).astype(np.float64)
    score = X[:, 0] + 0.5 * (X[:, 2] - X[:, 3]) + rng.normal(scale=0.8, size=n)
    y = np.where(score > 0, 2, 0) if without_flat else np.digitize(score, [-0.4, 0.4])
    if model.input_kind == "sequence":
        return make_windows(X, WINDOW), y[WINDOW - 1 :]
    return X, y


@pytest.mark.parametrize("name", sorted(MODEL_CLASSES))
def test_every_registered_model_follows_the_model_contract(name: str, tmp_path: Path) -> None:
    model_class = MODEL_CLASSES[name]
    params = fast_params(model_class)
    model = model_class(**params)
    if "seed" in model.get_params():
        model = model_class(**{**params, "seed": 7})
    X, y = dataset(model, TRAIN_ROWS, seed=1)
    X_test, _ = dataset(model, TEST_ROWS, seed=2)

    # Predicting or saving before fit says what to do.
    with pytest.raises(NotFittedError, match="call fit first"):
        model.predict_proba(X_test)
    with pytest.raises(NotFittedError, match="call fit first"):
        model.save(tmp_path / "unfitted")

    assert model.fit(X, y, feature_names=FEATURE_NAMES) is model
    assert model.record_.feature_names == FEATURE_NAMES
    assert model.record_.model == name
    proba = model.predict_proba(X_test)
    assert_probabilities(proba, len(X_test))
    np.testing.assert_array_equal(model.predict(X_test), np.argmax(proba, axis=1))

    # Save/load gives the very same predictions and the same training record.
    loaded = load_model(model.save(tmp_path / "saved"))
    assert type(loaded) is model_class
    assert loaded.record_ == model.record_
    assert_same(loaded.predict_proba(X_test), proba)

    # Same hyper-parameters (seed included) → same model; clone is untrained.
    twin = model.clone()
    assert not twin.is_fitted
    assert twin.get_params() == model.get_params()
    with pytest.raises(NotFittedError, match="call fit first"):
        twin.predict_proba(X_test)
    assert_same(twin.fit(X, y, feature_names=FEATURE_NAMES).predict_proba(X_test), proba)

    # Refitting forgets the previous fit.
    X_other, y_other = dataset(model, TRAIN_ROWS, seed=3)
    fresh = model_class(**model.get_params()).fit(X_other, y_other, feature_names=FEATURE_NAMES)
    model.fit(X_other, y_other, feature_names=FEATURE_NAMES)
    assert model.record_.rows == len(y_other)
    assert_same(model.predict_proba(X_test), fresh.predict_proba(X_test))

    # Other feature names are refused with a message that names the fix.
    model.check_features(FEATURE_NAMES)
    with pytest.raises(UserInputError, match=r"trained on 8 features.*retrain"):
        model.check_features((*FEATURE_NAMES[:-1], "funding_rate"))
    with pytest.raises(UserInputError, match="another order"):
        model.check_features(FEATURE_NAMES[::-1])

    # A class missing from training still gives three columns; the missing one gets 0.
    X_two, y_two = dataset(model, TRAIN_ROWS, seed=4, without_flat=True)
    assert FLAT not in set(y_two.tolist())
    two_class = model_class(**model.get_params()).fit(X_two, y_two, feature_names=FEATURE_NAMES)
    assert two_class.record_.class_counts[FLAT] == 0
    proba_two = two_class.predict_proba(X_test)
    assert_probabilities(proba_two, len(X_test))
    np.testing.assert_array_equal(proba_two[:, FLAT], 0.0)


@pytest.mark.parametrize("name", sorted(MODEL_CLASSES))
def test_every_registered_model_predicts_one_input_as_the_matching_row_of_a_batch(
    name: str,
) -> None:
    model_class = MODEL_CLASSES[name]
    model = model_class(**fast_params(model_class))
    X, y = dataset(model, TRAIN_ROWS, seed=1)
    X_test, _ = dataset(model, TEST_ROWS, seed=2)
    # A torch net computes in float32; a batch and a single window may round differently.
    tolerance = 1e-6 if model.input_kind == "sequence" else 1e-12

    with pytest.raises(NotFittedError, match="call fit first"):
        model.predict_proba_one(X_test[0])
    model.fit(X, y, feature_names=FEATURE_NAMES)
    one = model.predict_proba_one(X_test[0])
    assert one.shape == (3,) and one.dtype == np.float64
    assert_one_by_one(model, X_test, tolerance)

    # A refit is seen at once (no stale single-row route), as is a copy of the model.
    X_other, y_other = dataset(model, TRAIN_ROWS, seed=3)
    model.fit(X_other, y_other, feature_names=FEATURE_NAMES)
    assert_one_by_one(model, X_test, tolerance)
    assert_one_by_one(copy.deepcopy(model), X_test, tolerance)

    # Another thread gets the same numbers (each thread has its own route and buffers).
    answers: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: answers.append(model.predict_proba_one(X_test[1])))
    worker.start()
    worker.join()
    np.testing.assert_allclose(answers[0], model.predict_proba(X_test[1:2])[0], atol=tolerance)

    # A NaN input is treated as the batch treats it: refused by both, or the same numbers.
    holey = X_test[0].copy()
    holey[..., 0] = np.nan
    try:
        expected = model.predict_proba(holey[np.newaxis])[0]
    except UserInputError:
        with pytest.raises(UserInputError):
            model.predict_proba_one(holey)
    else:
        np.testing.assert_allclose(model.predict_proba_one(holey), expected, atol=tolerance)

    # One input of another shape is refused, a batch among them.
    with pytest.raises(UserInputError):
        model.predict_proba_one(X_test[:2])
    with pytest.raises(UserInputError):
        model.predict_proba_one(X_test[0][..., :-1])

    # A class missing from training gets 0 here too.
    X_two, y_two = dataset(model, TRAIN_ROWS, seed=4, without_flat=True)
    two_class = model_class(**model.get_params()).fit(X_two, y_two, feature_names=FEATURE_NAMES)
    assert_one_by_one(two_class, X_test, tolerance)
    assert two_class.predict_proba_one(X_test[0])[FLAT] == 0.0


def assert_one_by_one(model: Model, X: np.ndarray, tolerance: float) -> None:
    """``predict_proba_one`` on each input equals the batch's row, within ``tolerance``."""
    one_by_one = np.array([model.predict_proba_one(x) for x in X])
    assert_probabilities(one_by_one, len(X))
    np.testing.assert_allclose(one_by_one, model.predict_proba(X), rtol=0.0, atol=tolerance)


def assert_probabilities(proba: np.ndarray, rows: int) -> None:
    """(rows, 3) float probabilities: finite, within [0, 1], rows summing to 1 within 1e-9."""
    assert proba.shape == (rows, 3)
    assert proba.dtype == np.float64
    assert np.isfinite(proba).all()
    assert (proba >= 0.0).all() and (proba <= 1.0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0.0, atol=1e-9)


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Predictions equal up to 1e-12 (in practice, bit for bit)."""
    np.testing.assert_allclose(actual, expected, rtol=0.0, atol=1e-12)

"""Temperature scaling: fitted on a held-out block only, softens overconfidence, keeps argmax."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from tradebrain.exceptions import UserInputError
from tradebrain.models.base import DOWN, FLAT, MODEL_CLASSES, UP, InputKind, NotFittedError
from tradebrain.models.baselines import LogisticModel
from tradebrain.models.boosting import LightGBMModel
from tradebrain.models.calibration import CalibratedModel, TemperatureCalibrator

OVERFITTING_LIGHTGBM = {
    "n_estimators": 150,
    "learning_rate": 0.2,
    "num_leaves": 63,
    "min_child_samples": 5,
    "early_stopping_rounds": None,
    "n_jobs": 1,
}


def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.maximum(proba[np.arange(len(y)), y], 1e-15)).mean())


def softmax(logits: np.ndarray) -> np.ndarray:
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba: np.ndarray = weights / weights.sum(axis=1, keepdims=True)
    return proba


def sharpened_world(rows: int, sharpen: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from true probabilities; the 'model' reports them sharpened."""
    rng = np.random.default_rng(seed)
    truth = softmax(rng.normal(scale=1.0, size=(rows, 3)))
    y = (rng.random(rows)[:, None] > np.cumsum(truth, axis=1)).sum(axis=1)
    return softmax(sharpen * np.log(truth)), y


def noisy_world(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A weak signal in x0 under heavy label noise: easy to overfit."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 8))
    y = np.digitize(X[:, 0] + rng.normal(scale=2.0, size=rows), [-0.8, 0.8])
    return X, y


def test_temperature_softens_an_overconfident_model_on_held_out_rows() -> None:
    proba_fit, y_fit = sharpened_world(4000, sharpen=3.0, seed=0)
    proba_test, y_test = sharpened_world(4000, sharpen=3.0, seed=1)
    calibrator = TemperatureCalibrator().fit(proba_fit, y_fit)
    assert calibrator.temperature_ == pytest.approx(3.0, rel=0.1)
    calibrated = calibrator.transform(proba_test)
    assert log_loss(calibrated, y_test) < log_loss(proba_test, y_test) - 0.1
    np.testing.assert_array_equal(calibrated.argmax(axis=1), proba_test.argmax(axis=1))
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, rtol=0.0, atol=1e-12)


def test_temperature_sharpens_a_timid_model() -> None:
    proba, y = sharpened_world(4000, sharpen=0.5, seed=0)
    assert TemperatureCalibrator().fit(proba, y).temperature_ == pytest.approx(0.5, rel=0.1)


def test_a_class_with_probability_zero_stays_at_zero() -> None:
    proba = np.array([[0.7, 0.0, 0.3], [0.2, 0.0, 0.8], [0.9, 0.0, 0.1], [0.4, 0.0, 0.6]])
    y = np.array([UP, DOWN, FLAT, DOWN])
    calibrated = TemperatureCalibrator().fit(proba, y).transform(proba)
    np.testing.assert_array_equal(calibrated[:, FLAT], 0.0)
    assert np.isfinite(calibrated).all()


def test_calibrator_refuses_to_transform_before_fit() -> None:
    with pytest.raises(NotFittedError, match="call fit first"):
        TemperatureCalibrator().transform(np.full((1, 3), 1 / 3))


def test_calibrated_model_beats_its_overfit_base_on_unseen_rows(tmp_path: Path) -> None:
    X, y = noisy_world(3000, seed=0)
    X_test, y_test = noisy_world(2000, seed=1)
    model = CalibratedModel(
        model="lightgbm", model_params=OVERFITTING_LIGHTGBM, calibration_fraction=0.3, purge=5
    ).fit(X, y)
    raw, calibrated = model.model_.predict_proba(X_test), model.predict_proba(X_test)
    assert model.calibrator_.temperature_ > 1.5
    assert log_loss(calibrated, y_test) < log_loss(raw, y_test) - 0.05
    np.testing.assert_array_equal(calibrated.argmax(axis=1), raw.argmax(axis=1))
    loaded = CalibratedModel.load(model.save(tmp_path))
    np.testing.assert_array_equal(loaded.predict_proba(X_test), calibrated)


def test_calibrated_model_fits_the_temperature_on_the_last_block_only() -> None:
    X, y = noisy_world(400, seed=0)
    model = CalibratedModel(model="logistic", calibration_fraction=0.25, purge=10).fit(X, y)
    assert model.model_.record_.rows == 400 - 100 - 10
    assert model.record_.rows == 400
    expected = TemperatureCalibrator().fit(model.model_.predict_proba(X[-100:]), y[-100:])
    assert model.calibrator_.temperature_ == expected.temperature_
    X_later, _ = noisy_world(200, seed=1)
    model.predict_proba(X_later)  # predicting learns nothing
    assert model.calibrator_.temperature_ == expected.temperature_


def test_calibrated_model_takes_an_explicit_block_and_passes_validation_on() -> None:
    X, y = noisy_world(1000, seed=0)
    X_cal, y_cal = noisy_world(300, seed=1)
    X_val, y_val = noisy_world(300, seed=2)
    params = {**OVERFITTING_LIGHTGBM, "early_stopping_rounds": 5}
    model = CalibratedModel(model="lightgbm", model_params=params).fit(
        X, y, info={"calibration": (X_cal, y_cal), "validation": (X_val, y_val)}
    )
    assert model.model_.record_.rows == 1000
    assert isinstance(model.model_, LightGBMModel)
    assert model.model_.n_rounds_ < 150
    expected = TemperatureCalibrator().fit(model.model_.predict_proba(X_cal), y_cal)
    assert model.calibrator_.temperature_ == expected.temperature_


def test_calibration_fraction_zero_leaves_probabilities_unchanged() -> None:
    X, y = noisy_world(300, seed=0)
    model = CalibratedModel(model="logistic", calibration_fraction=0.0).fit(X, y)
    assert model.calibrator_.temperature_ == 1.0
    np.testing.assert_allclose(model.predict_proba(X), model.model_.predict_proba(X), atol=1e-15)


def test_calibrated_model_explains_bad_settings() -> None:
    X, y = noisy_world(20, seed=0)
    with pytest.raises(UserInputError, match=r"unknown model 'gbm'.*'lightgbm'"):
        CalibratedModel(model="gbm").fit(X, y)
    with pytest.raises(UserInputError, match="lower calibration_fraction"):
        CalibratedModel(model="logistic", calibration_fraction=0.5, purge=9).fit(X, y)


class _SequenceStub(LogisticModel):
    name = "sequence_stub"
    input_kind: ClassVar[InputKind] = "sequence"


def test_calibrated_model_takes_the_input_kind_of_what_it_wraps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(MODEL_CLASSES, _SequenceStub.name, _SequenceStub)
    assert CalibratedModel(model="sequence_stub").input_kind == "sequence"
    assert CalibratedModel(model="logistic").input_kind == "tabular"

"""Probability calibration by temperature scaling, fitted on a held-out block only.

Temperature scaling divides a model's log-probabilities by one number ``T > 0`` and renormalises:
``T > 1`` softens an overconfident model, ``T < 1`` sharpens a timid one. One parameter cannot
overfit much, and the ranking of the classes in every row (the argmax) never changes.

- :class:`TemperatureCalibrator` fits ``T`` on (probabilities, labels) of a held-out block; the
  evaluation and stacking code can use it directly.
- :class:`CalibratedModel` (``"calibrated"``) wraps any registered model: it trains the model on
  the start of its training window and the temperature on the last block, so that the saved
  model predicts calibrated probabilities everywhere it is loaded.

The calibration block must never hold test rows: the wrapper only ever sees what ``fit`` gets.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Self

import numpy as np

from tradebrain.core.atomic_write import write_text_atomic
from tradebrain.exceptions import UserInputError
from tradebrain.models._inputs import softmax, softmax_row
from tradebrain.models.base import (
    MODEL_CLASSES,
    InputKind,
    Model,
    NotFittedError,
    RowPredictor,
    check_training_data,
    load_model,
    register_model,
)

MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0
CALIBRATION_FILE = "calibration.json"
BASE_FOLDER = "base"
_LOG_FLOOR = 1e-15  # a class the model gives probability 0 costs -log(1e-15) in the loss


class TemperatureCalibrator:
    """Fit one temperature that minimises the log loss of held-out probabilities.

    Attributes
    ----------
    temperature_ : float
        The fitted temperature (1.0 leaves probabilities unchanged).
    """

    temperature_: float

    def fit(self, proba: np.ndarray, y: np.ndarray) -> Self:
        """Fit on probabilities ``proba`` (n, 3) and labels ``y`` (n,) of a held-out block."""
        from scipy.optimize import minimize_scalar

        proba = np.asarray(proba, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        if proba.ndim != 2 or proba.shape[0] != y.shape[0] or proba.shape[0] == 0:
            raise UserInputError(
                f"calibration needs (n, 3) probabilities and n labels, n > 0; got "
                f"{proba.shape} and {y.shape}"
            )
        log_proba = _log(proba)
        rows = np.arange(len(y))

        def loss(log_temperature: float) -> float:
            calibrated = softmax(log_proba / np.exp(log_temperature))
            return float(-np.log(np.maximum(calibrated[rows, y], _LOG_FLOOR)).mean())

        result = minimize_scalar(
            loss,
            bounds=(np.log(MIN_TEMPERATURE), np.log(MAX_TEMPERATURE)),
            method="bounded",
            options={"xatol": 1e-6},
        )
        self.temperature_ = float(np.exp(result.x))
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """Return calibrated (n, 3) probabilities; zero columns stay zero, argmax is kept."""
        if not hasattr(self, "temperature_"):
            raise NotFittedError("TemperatureCalibrator is not fitted yet; call fit first")
        return softmax(_log(np.asarray(proba, dtype=np.float64)) / self.temperature_)

    def transform_one(self, proba: np.ndarray) -> np.ndarray:
        """Return calibrated (3,) probabilities of one row, as :meth:`transform` does."""
        if not hasattr(self, "temperature_"):
            raise NotFittedError("TemperatureCalibrator is not fitted yet; call fit first")
        return np.array(temper_row(proba.tolist(), self.temperature_))

    def to_json(self) -> dict[str, float]:
        """Return the fitted state as JSON-able values."""
        return {"temperature": self.temperature_}

    @classmethod
    def from_json(cls, data: dict[str, float]) -> TemperatureCalibrator:
        """Rebuild a calibrator from :meth:`to_json`."""
        calibrator = cls()
        calibrator.temperature_ = float(data["temperature"])
        return calibrator


def temper_row(proba: list[float], temperature: float) -> list[float]:
    """Temperature-scale one row of probabilities: the arithmetic of :meth:`transform`.

    Python floats instead of a (1, 3) array: the live path calls it on every candle.
    """
    return softmax_row([_log_one(p) / temperature for p in proba])


def _log_one(p: float) -> float:
    """``np.log`` of one probability: -inf for 0 (a zero class stays zero), NaN for NaN."""
    return math.log(p) if p > 0.0 else -math.inf if p == 0.0 else math.nan


def _log(proba: np.ndarray) -> np.ndarray:
    """Log-probabilities with ``log 0 = -inf`` (so a zero column stays zero after softmax)."""
    with np.errstate(divide="ignore"):
        log_proba: np.ndarray = np.log(proba)
    return log_proba


@register_model
class CalibratedModel(Model):
    """Any registered model plus a temperature fitted on the last block of its training window.

    Parameters
    ----------
    model
        Registry name of the wrapped model (e.g. ``"lightgbm"``, ``"cnn"``).
    model_params
        Hyper-parameters of the wrapped model; None for its defaults.
    calibration_fraction
        Share of the training rows, the last ones in time order, held out to fit the temperature
        when ``info["calibration"]`` gives no explicit block; 0 skips calibration (T = 1).
    purge
        Rows dropped between the wrapped model's rows and the calibration block; set it to the
        label horizon so that no training label reads into the calibration rows.

    Notes
    -----
    ``fit(X, y, info={"calibration": (X_cal, y_cal)})`` trains the wrapped model on all of
    ``X`` and the temperature on the given block, which the caller takes from the end of the
    training window (purged), never from the test rows. Any other ``info`` keys (for example
    ``"validation"`` for early stopping) go on to the wrapped model. ``input_kind`` is the
    wrapped model's, so sequence models are wrapped the same way.
    """

    name = "calibrated"

    def __init__(
        self,
        model: str = "lightgbm",
        model_params: dict[str, Any] | None = None,
        calibration_fraction: float = 0.2,
        purge: int = 0,
    ):
        self.model = model
        self.model_params = model_params
        self.calibration_fraction = calibration_fraction
        self.purge = purge

    @property
    def input_kind(self) -> InputKind:  # type: ignore[override]  # the wrapped model's kind
        """The wrapped model's input kind: ``"tabular"`` or ``"sequence"``."""
        return self._model_class().input_kind

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        feature_names: tuple[str, ...] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Self:
        """Fit the wrapped model, then the temperature on the held-out calibration block."""
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        check_training_data(X, y, self.input_kind)
        inner_info = dict(info or {})
        block = inner_info.pop("calibration", None)
        if block is not None:
            X_fit, y_fit = X, y
            X_cal, y_cal = np.asarray(block[0], dtype=np.float64), np.asarray(block[1])
        else:
            X_fit, y_fit, X_cal, y_cal = self._split(X, y)
        inner = self._model_class()(**(self.model_params or {}))
        inner.fit(X_fit, y_fit, feature_names=feature_names, info=inner_info)
        calibrator = TemperatureCalibrator()
        if len(y_cal) > 0:
            calibrator.fit(inner.predict_proba(X_cal), y_cal)
        else:
            calibrator.temperature_ = 1.0
        self.model_ = inner
        self.calibrator_ = calibrator
        self.record_ = self._record(X, y, feature_names, info)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return the wrapped model's (n, 3) probabilities, calibrated."""
        self.check_fitted()
        return self.calibrator_.transform(self.model_.predict_proba(X))

    def _row_predictor(self) -> RowPredictor:
        """The wrapped model's own single-row route, then the temperature."""
        inner, temperature = self.model_, self.calibrator_.temperature_

        def predict(x: np.ndarray) -> np.ndarray:
            return np.array(temper_row(inner.predict_proba_one(x).tolist(), temperature))

        return predict

    def _split(
        self, X: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Split off the last ``calibration_fraction`` of rows, ``purge`` rows before it."""
        n = len(y)
        n_cal = round(n * self.calibration_fraction)
        fit_end = n - n_cal - (self.purge if n_cal > 0 else 0)
        if fit_end < 2:
            raise UserInputError(
                f"{n} rows leave {fit_end} to train on after holding out {n_cal} for "
                f"calibration and purging {self.purge}; give more rows or lower "
                "calibration_fraction"
            )
        return X[:fit_end], y[:fit_end], X[n - n_cal :], y[n - n_cal :]

    def _model_class(self) -> type[Model]:
        if self.model not in MODEL_CLASSES or MODEL_CLASSES[self.model] is CalibratedModel:
            known = sorted(n for n in MODEL_CLASSES if n != self.name)
            raise UserInputError(f"cannot calibrate unknown model {self.model!r}; known: {known}")
        return MODEL_CLASSES[self.model]

    def _save_state(self, folder: Path) -> None:
        self.model_.save(folder / BASE_FOLDER)
        text = json.dumps(self.calibrator_.to_json())
        write_text_atomic(text, folder / CALIBRATION_FILE)

    def _load_state(self, folder: Path) -> None:
        self.model_ = load_model(folder / BASE_FOLDER)
        data = json.loads((folder / CALIBRATION_FILE).read_text(encoding="utf-8"))
        self.calibrator_ = TemperatureCalibrator.from_json(data)

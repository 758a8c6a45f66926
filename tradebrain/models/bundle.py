"""A model bundle: the final models trained on all the data, saved together for trading.

``tradebrain train`` fits every chosen model on the whole history (early stopping and the
calibration temperature on the purged last block), and saves them in one folder with a
manifest of what they were trained on: feature sets and names, label settings, window, data
span and the median of each feature (used to fill a feature that is missing at prediction
time, exactly as in walk-forward evaluation). The backtest and the live engine load it back.

Layout::

    MODEL_DIR/manifest.json
    MODEL_DIR/<model name>/model.json + the model's own files
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradebrain.data.atomic_write import write_text_atomic
from tradebrain.exceptions import UserInputError
from tradebrain.models.base import MODEL_CLASSES, Model, load_model, make_windows
from tradebrain.models.calibration import TemperatureCalibrator
from tradebrain.models.forecast import ForecastCalibration

MANIFEST = "manifest.json"


@dataclass
class ModelBundle:
    """Fitted models plus what they need to predict: names, medians, temperatures.

    ``calibration`` (bundles trained as a forecast, see
    :func:`~tradebrain.learning.forecaster.train_forecaster`) turns the votes into expected
    returns and names the models that vote (those with out-of-sample skill).
    """

    models: dict[str, Model]
    temperatures: dict[str, float]
    feature_names: tuple[str, ...]
    sequence_names: tuple[str, ...]
    medians: dict[str, float]
    window: int
    manifest: dict[str, Any]
    calibration: ForecastCalibration | None = None

    def voters(self) -> tuple[str, ...]:
        """Return the models whose votes count: all, or those with skill when calibrated."""
        if self.calibration is None:
            return tuple(self.models)
        return tuple(m for m in self.models if self.calibration.weights.get(m, 0.0) > 0)

    def forecast_inputs(self, features: pl.DataFrame) -> np.ndarray:
        """Return (n, 3) ``beta, sigma_h, horizon`` per row (NaN without a calibration).

        ``sigma_h`` is the calibration's volatility feature times the square root of the
        horizon; the brain turns a vote into ``beta * z * sigma_h`` (see
        :mod:`tradebrain.models.forecast`).
        """
        out = np.full((features.height, 3), np.nan)
        calibration = self.calibration
        if calibration is None or calibration.volatility_feature not in features.columns:
            return out
        volatility = features[calibration.volatility_feature].cast(pl.Float64).to_numpy()
        out[:, 0] = calibration.beta
        out[:, 1] = np.where(volatility > 0, volatility, np.nan) * np.sqrt(calibration.horizon)
        out[:, 2] = calibration.horizon
        return out

    def predict_proba(self, features: pl.DataFrame) -> dict[str, np.ndarray]:
        """Return ``{model: (n, 3) probabilities}`` for every row of a feature table.

        Sequence models need ``window - 1`` earlier rows; rows without them get NaN.
        """
        missing = [n for n in self.feature_names if n not in features.columns]
        if missing:
            raise UserInputError(
                f"the feature table lacks {len(missing)} feature(s) the models were trained on "
                f"({missing[:5]}...); compute the feature sets {self.manifest['feature_sets']}"
            )
        out: dict[str, np.ndarray] = {}
        for name, model in self.models.items():
            if model.input_kind == "sequence":
                proba = self._sequence_proba(model, features)
            else:
                proba = model.predict_proba(self._matrix(features, self.feature_names))
            out[name] = _temper(proba, self.temperatures.get(name, 1.0))
        return out

    def save(self, directory: Path | str) -> Path:
        """Save every model and the manifest into ``directory``."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        for name, model in self.models.items():
            model.save(folder / name)
        manifest = {
            **self.manifest,
            "models": list(self.models),
            "temperatures": self.temperatures,
            "feature_names": list(self.feature_names),
            "sequence_names": list(self.sequence_names),
            "medians": self.medians,
            "window": self.window,
        }
        if self.calibration is not None:
            manifest["calibration"] = self.calibration.to_dict()
        write_text_atomic(json.dumps(manifest, indent=2), folder / MANIFEST)
        return folder

    @classmethod
    def load(cls, directory: Path | str) -> ModelBundle:
        """Load a bundle saved by :meth:`save`."""
        folder = Path(directory)
        path = folder / MANIFEST
        if not path.exists():
            raise UserInputError(
                f"{folder} is not a model folder ({MANIFEST} missing); create one with "
                "`tradebrain train --data ... --out MODEL_DIR`"
            )
        manifest = json.loads(path.read_text(encoding="utf-8"))
        models = {name: load_model(folder / name) for name in manifest["models"]}
        return cls(
            models=models,
            temperatures={k: float(v) for k, v in manifest["temperatures"].items()},
            feature_names=tuple(manifest["feature_names"]),
            sequence_names=tuple(manifest["sequence_names"]),
            medians={k: float(v) for k, v in manifest["medians"].items()},
            window=int(manifest["window"]),
            manifest=manifest,
            calibration=(
                ForecastCalibration.from_dict(manifest["calibration"])
                if "calibration" in manifest
                else None
            ),
        )

    def _matrix(self, features: pl.DataFrame, names: tuple[str, ...]) -> np.ndarray:
        matrix = features.select(names).to_numpy().astype(np.float64)
        medians = np.array([self.medians.get(n, 0.0) for n in names])
        return np.where(np.isnan(matrix), medians, matrix)

    def _sequence_proba(self, model: Model, features: pl.DataFrame) -> np.ndarray:
        out = np.full((features.height, 3), np.nan)
        if features.height < self.window:
            return out
        windows = make_windows(self._matrix(features, self.sequence_names), self.window)
        out[self.window - 1 :] = model.predict_proba(windows.astype(np.float32))
        return out


def train_bundle(
    candles: pl.DataFrame,
    features: pl.DataFrame,
    settings: Any,
    *,
    feature_sets: list[str] | None,
    source: str,
) -> ModelBundle:
    """Fit every model of ``settings`` (an ``EvaluationSettings``) on all labelled rows."""
    from tradebrain.evaluation.evaluate import first_complete_row
    from tradebrain.evaluation.walk_forward import build_dataset

    data = build_dataset(candles, features, first_complete_row(features), settings)
    n = data.y.size
    validation_rows = int(n * settings.validation_fraction)
    fit_end = n - validation_rows
    train = np.flatnonzero(data.label_end[:fit_end] < fit_end)  # purged against validation
    validation = np.arange(fit_end, n)
    medians = np.nanmedian(data.X, axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    median_map = dict(zip(data.feature_names, medians.tolist(), strict=True))
    X_tab = np.where(np.isnan(data.X), medians, data.X)
    windows: np.ndarray | None = None  # built once, and only when a sequence model needs it

    models: dict[str, Model] = {}
    temperatures: dict[str, float] = {}
    for name in settings.models:
        if name not in MODEL_CLASSES:
            raise UserInputError(f"unknown model {name!r}; available: {sorted(MODEL_CLASSES)}")
        model = MODEL_CLASSES[name](**settings.params_for(name))
        sequence = model.input_kind == "sequence"
        if sequence and windows is None:
            seq_medians = np.array([median_map.get(n_, 0.0) for n_ in data.sequence_names])
            rows = np.where(np.isnan(data.X_sequence), seq_medians, data.X_sequence)
            windows = make_windows(rows, data.window).astype(np.float32)
        X = windows if sequence and windows is not None else X_tab
        names = data.sequence_names if sequence else data.feature_names
        info: dict[str, Any] = {
            "label": settings.label.to_dict(),
            "data_start": str(data.timestamps[0]),
            "data_end": str(data.timestamps[-1]),
        }
        if validation.size:
            info["validation"] = (X[validation], data.y[validation])
        model.fit(X[train], data.y[train], feature_names=names, info=info)
        temperature = 1.0
        if settings.calibrate and validation.size >= 30:
            calibrator = TemperatureCalibrator().fit(
                model.predict_proba(X[validation]), data.y[validation]
            )
            temperature = float(calibrator.temperature_)
        models[name] = model
        temperatures[name] = temperature
    manifest = {
        "source": source,
        "feature_sets": feature_sets,
        "label": settings.label.to_dict(),
        "data_start": str(data.timestamps[0]),
        "data_end": str(data.timestamps[-1]),
        "rows": int(n),
    }
    return ModelBundle(
        models, temperatures, data.feature_names, data.sequence_names, median_map,
        data.window, manifest,
    )  # fmt: skip


def _temper(proba: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0:
        return proba
    calibrator = TemperatureCalibrator()
    calibrator.temperature_ = temperature
    return calibrator.transform(proba)

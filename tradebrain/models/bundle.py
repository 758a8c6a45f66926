"""A model bundle: the final models trained on all the data, saved together for trading.

The learning room trains it (:mod:`tradebrain.learning`: every chosen model fitted on the whole
history, early stopping and the calibration temperature on the purged last block) and saves
it in one folder with a manifest of what the models were trained on: feature sets and names,
label settings, window, data span and the median of each feature (used to fill a feature that
is missing at prediction time, exactly as in walk-forward evaluation). The backtest and the
live signals load it back: the backtest asks :meth:`ModelBundle.predict_proba` for a whole
feature table, the live signals ask each model's ``predict_proba_one`` for one row (or window)
per candle and temper it with :func:`~tradebrain.models.calibration.temper_row`.

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

from tradebrain.core.atomic_write import write_text_atomic
from tradebrain.exceptions import UserInputError
from tradebrain.models.base import Model, load_model, make_windows
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


def _temper(proba: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0:
        return proba
    calibrator = TemperatureCalibrator()
    calibrator.temperature_ = temperature
    return calibrator.transform(proba)

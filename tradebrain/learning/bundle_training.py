"""Train a plain model bundle: every chosen model fitted on all the labelled rows of a history.

:func:`train_bundle` is the uncalibrated sibling of
:func:`~tradebrain.learning.forecaster.train_forecaster`: no horizon search, no skill weights,
no forecast calibration, every model votes. Tests and benchmarks use it to get a
:class:`~tradebrain.models.bundle.ModelBundle` of given models quickly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from tradebrain.evaluation.evaluate import first_complete_row
from tradebrain.evaluation.walk_forward import EvaluationSettings, build_dataset
from tradebrain.exceptions import UserInputError
from tradebrain.models.base import MODEL_CLASSES, Model, make_windows
from tradebrain.models.bundle import ModelBundle
from tradebrain.models.calibration import TemperatureCalibrator


def train_bundle(
    candles: pl.DataFrame,
    features: pl.DataFrame,
    settings: EvaluationSettings,
    *,
    feature_sets: list[str] | None,
    source: str,
) -> ModelBundle:
    """Fit every model of ``settings`` on all labelled rows; return them as one bundle.

    The newest ``settings.validation_fraction`` of the rows (purged: no training label reaches
    into them) drive early stopping and, with ``settings.calibrate``, each model's temperature.
    Missing feature values are filled with the training medians, which the bundle keeps.
    """
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

"""``evaluate``: features, labels, walk-forward predictions and the report, in one call."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from tradebrain.evaluation.report import build_report
from tradebrain.evaluation.walk_forward import (
    EvaluationSettings,
    ProgressCallback,
    build_dataset,
    predictions_frame,
    run_folds,
)


@dataclass(frozen=True)
class EvaluationResult:
    """Out-of-sample predictions (one row per timestamp and model) and the report."""

    predictions: pl.DataFrame
    report: dict[str, Any]


def evaluate(
    candles: pl.DataFrame,
    settings: EvaluationSettings | None = None,
    *,
    feature_sets: Iterable[str] | None = None,
    features: pl.DataFrame | None = None,
    oracle: dict[str, Any] | None = None,
    planted: np.ndarray | None = None,
    source: str = "<frame>",
    progress: ProgressCallback | None = None,
) -> EvaluationResult:
    """Evaluate models walk-forward on one symbol's candles.

    Parameters
    ----------
    candles
        Candles oldest first (plus any per-candle order-flow columns the feature sets need).
    settings
        Label, models, folds and the rest; defaults to :class:`EvaluationSettings`.
    feature_sets
        Feature sets to compute; all that the data supports by default.
    features
        A precomputed feature table (``timestamp`` + one column per feature) to use instead.
    oracle
        The synthetic market's oracle (its ``.oracle.json``): enables the leakage alarm.
    planted
        A synthetic world's known expected return per candle (its ``.regimes.parquet``): the
        report then compares each model's IC with the known drift's IC at the same horizon.
    """
    from tradebrain.features import compute_features

    settings = settings or EvaluationSettings()
    if progress:
        progress("computing features")
    table = features if features is not None else compute_features(candles, feature_sets)
    data = build_dataset(candles, table, first_complete_row(table), settings, planted)
    folds = run_folds(data, settings, progress)
    report = build_report(data, folds, settings, source=source, oracle=oracle)
    return EvaluationResult(predictions_frame(data, folds), report)


def first_complete_row(features: pl.DataFrame) -> int:
    """Return the first row at which every feature has produced a value (its warm-up)."""
    firsts = features.select(pl.all().exclude("timestamp").is_not_null().arg_max()).row(0)
    return int(max(firsts, default=0))

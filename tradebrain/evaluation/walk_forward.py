"""Walk-forward evaluation: every prediction is made by a model that never saw its future.

For each fold of :class:`~tradebrain.evaluation.splits.WalkForwardSplitter` (purged and
embargoed):

1. **Features are selected** on the fold's training rows only (:mod:`tradebrain.models.selection`:
   single-feature rank IC, stability across blocks, clusters of correlated features, a cap of
   ``max_features``); the tabular models see the kept features, the sequence models their own
   compact windows.
2. Every model is trained on the training rows, early-stopped and calibrated on the purged
   validation tail at the end of the training window, and asked about the test rows. Missing
   feature values are filled with medians of the training rows only.
3. **Skill weights.** Each model's skill is the slope of realized returns (in units of
   volatility) on its forecast score (:func:`~tradebrain.models.forecast.fit_slope`,
   overlap-corrected t) over predictions it made out of sample before the fold: its own
   validation tail and the test rows of earlier folds whose labels resolved before this fold
   starts. A model weighs its evidence of skill: ``t / 2`` capped at 1 with a positive
   slope, 0 without one (:func:`~tradebrain.models.forecast.evidence_weights`; in the trading
   forecast only the significant models vote). The ensemble averages the models with weight
   (confidence weighted); when none has any, it abstains: the training rows' share of flat
   candles, and up and down equally likely (no directional view). See
   :mod:`tradebrain.evaluation._skill_ensemble`.

The stacking meta-learner of fold k learns only from out-of-fold predictions of earlier folds
whose labels resolved before fold k starts. The naive baselines (class prior of the training
rows; the latest label already known) are scored on the same rows, so the report can say
plainly whether anything beats them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from tradebrain.evaluation._skill_ensemble import no_view, skill_ensemble, skill_weights
from tradebrain.evaluation.splits import Fold, WalkForwardSplitter, reindex_label_end
from tradebrain.exceptions import UserInputError
from tradebrain.labels import LabelSettings, forward_returns
from tradebrain.models.base import MODEL_CLASSES, make_windows
from tradebrain.models.calibration import TemperatureCalibrator
from tradebrain.models.forecast import VOLATILITY_FEATURE
from tradebrain.models.selection import FeatureSelection, select_features

DEFAULT_MODELS = ("logistic", "lightgbm", "xgboost", "cnn")
#: Compact inputs for sequence models: their windows multiply memory by the window length.
SEQUENCE_FEATURE_SETS = ("atomic", "indicators")
#: Columns beside the base models' probabilities that the stacking meta-learner sees.
STACKING_ALPHAS = ("rv_std_20", "atr_pct_14", "logret_1", "adx_14")
BASELINES = ("baseline_majority", "baseline_persistence")

ProgressCallback = Callable[[str], None]

#: Walk-forward refits every model once per fold, so the nets get a shorter training budget
#: than their defaults; ``EvaluationSettings.model_params`` overrides any of these.
FOLD_TRAINING_BUDGET: dict[str, dict[str, Any]] = {
    name: {"max_epochs": 8, "patience": 2}
    for name in ("cnn", "tcn", "lstm", "transformer", "patchtst", "nhits")
}


@dataclass(frozen=True)
class EvaluationSettings:
    """What to evaluate and how.

    ``model_params`` maps a model name to keyword arguments for its constructor (tests pass
    small settings; users may tune).
    """

    label: LabelSettings = field(default_factory=lambda: LabelSettings("direction", horizon=1))
    models: tuple[str, ...] = DEFAULT_MODELS
    folds: int = 5
    mode: Literal["expanding", "rolling"] = "expanding"
    window: int = 32
    validation_fraction: float = 0.15
    calibrate: bool = True
    stacking: bool = True
    seed: int = 42
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    #: Features kept per fold for the tabular models (None keeps all; see the module docstring).
    max_features: int | None = 8
    cluster_corr: float = 0.9
    #: Weigh the ensemble's members by their out-of-sample skill before each fold (else equally).
    skill_weights: bool = True

    #: Placebo: shuffle the labels with this seed before anything learns from them. A model
    #: that still "works" on shuffled labels is finding structure that is not there.
    placebo_seed: int | None = None

    def params_for(self, name: str) -> dict[str, Any]:
        """Constructor arguments of model ``name``: the fold budget, then ``model_params``."""
        return {**FOLD_TRAINING_BUDGET.get(name, {}), **self.model_params.get(name, {})}


@dataclass(frozen=True)
class Dataset:
    """Features and labels on the rows every model can be evaluated on (contiguous, in time)."""

    timestamps: pl.Series  # (n,) candle open times; predictions are made at their close
    X: np.ndarray  # (n, f) float64, NaN where a feature is undefined
    feature_names: tuple[str, ...]
    X_sequence: np.ndarray  # (n + window - 1, g) rows feeding the sequence windows
    sequence_names: tuple[str, ...]
    y: np.ndarray  # (n,) int64 labels 0/1/2
    label_end: np.ndarray  # (n,) index (in these rows) where each label resolved
    forward_return: np.ndarray  # (n,) log return over the label horizon
    next_return: np.ndarray  # (n,) log return of the next candle (for oracle comparisons)
    window: int
    planted: np.ndarray | None = None  # (n,) a synthetic world's known expected next return


@dataclass
class FoldPredictions:
    """Probabilities of every model on one fold's test rows, and how the fold chose them.

    ``selection`` is the features the tabular models saw (None: all); ``weights`` each model's
    weight in the ensemble and ``skill`` the measurement behind it (slope, t, beta, rows);
    ``stacking_choice`` what the fold's stacking stood on (see :func:`_add_stacking`).
    """

    fold: Fold
    proba: dict[str, np.ndarray]
    seconds: dict[str, float]
    selection: FeatureSelection | None = None
    weights: dict[str, float] = field(default_factory=dict)
    skill: dict[str, dict[str, float]] = field(default_factory=dict)
    stacking_choice: str | None = None  # "meta-learner", or the member stacking copied


def build_dataset(
    candles: pl.DataFrame,
    features: pl.DataFrame,
    warmup: int,
    settings: EvaluationSettings,
    planted: np.ndarray | None = None,
) -> Dataset:
    """Line up features and labels, dropping warm-up rows and rows whose label is unknown.

    ``planted`` (one value per candle) is a synthetic world's known expected return, kept on
    the same rows so the report can compare the models' IC with the known drift's.
    """
    if features.height != candles.height:
        raise UserInputError("features must have one row per candle")
    prices = {c: candles[c].to_numpy().astype(np.float64) for c in ("open", "high", "low", "close")}
    labels, end = settings.label.compute(
        prices["open"], prices["high"], prices["low"], prices["close"]
    )
    names = tuple(features.columns[1:])
    matrix = features.select(names).to_numpy().astype(np.float64)
    sequence_names = _sequence_columns(names)
    sequence = features.select(sequence_names).to_numpy().astype(np.float64)
    first = warmup + settings.window - 1
    known = np.flatnonzero(~np.isnan(labels))
    rows = known[known >= first]
    if rows.size < 4 * (settings.folds + 1):
        raise UserInputError(
            f"only {rows.size} candles have features and labels after a warm-up of {first}; "
            f"walk-forward with {settings.folds} folds needs many more — use a longer history"
        )
    if np.any(np.diff(rows) != 1):
        raise UserInputError("labelled rows must be contiguous after the warm-up")
    close = prices["close"]
    y = labels[rows].astype(np.int64)
    if settings.placebo_seed is not None:
        y = np.random.default_rng(settings.placebo_seed).permutation(y)
    return Dataset(
        timestamps=candles["timestamp"][rows[0] : rows[-1] + 1],
        X=matrix[rows],
        feature_names=names,
        X_sequence=sequence[rows[0] - settings.window + 1 : rows[-1] + 1],
        sequence_names=sequence_names,
        y=y,
        label_end=reindex_label_end(end[rows], rows) if end is not None else rows,
        forward_return=forward_returns(close, settings.label.horizon)[rows],
        next_return=forward_returns(close, 1)[rows],
        window=settings.window,
        planted=None if planted is None else np.asarray(planted, dtype=np.float64)[rows],
    )


def run_folds(
    data: Dataset, settings: EvaluationSettings, progress: ProgressCallback | None = None
) -> list[FoldPredictions]:
    """Train and predict every model on every fold; return the test-row probabilities."""
    unknown = [name for name in settings.models if name not in MODEL_CLASSES]
    if unknown:
        raise UserInputError(f"unknown model(s) {unknown}; available: {sorted(MODEL_CLASSES)}")
    splitter = WalkForwardSplitter(
        n_folds=settings.folds,
        mode=settings.mode,
        horizon=settings.label.horizon,
        validation_size=settings.validation_fraction,
    )
    results: list[FoldPredictions] = []
    scale = _volatility_scale(data, settings.label.horizon)
    for fold in splitter.split(data.y.size, data.label_end):
        selection = _select(data, fold.train, settings, scale)  # training rows only
        columns = _columns(data, selection)
        probas: dict[str, np.ndarray] = {}
        validation: dict[str, np.ndarray] = {}
        seconds: dict[str, float] = {}
        for name in settings.models:
            if progress:
                progress(f"fold {fold.index + 1}/{settings.folds}: {name}")
            started = time.perf_counter()
            probas[name], validation[name] = _fit_predict(name, data, fold, settings, columns)
            seconds[name] = time.perf_counter() - started
        probas.update(_baselines(data, fold, settings.label.horizon))
        weights, skill = skill_weights(data, fold, settings, scale, validation, results)
        probas["ensemble"] = skill_ensemble(probas, weights, no_view(probas["baseline_majority"]))
        results.append(FoldPredictions(fold, probas, seconds, selection, weights, skill))
    if settings.stacking and len(settings.models) > 1:
        _add_stacking(data, results, settings)
    return results


def predictions_frame(data: Dataset, folds: list[FoldPredictions]) -> pl.DataFrame:
    """Return one row per (timestamp, model): fold and the three probabilities."""
    parts = []
    for result in folds:
        stamps = data.timestamps[result.fold.test]
        for model, proba in result.proba.items():
            parts.append(
                pl.DataFrame(
                    {
                        "timestamp": stamps,
                        "model": [model] * proba.shape[0],
                        "fold": [result.fold.index] * proba.shape[0],
                        "p_down": proba[:, 0],
                        "p_flat": proba[:, 1],
                        "p_up": proba[:, 2],
                    }
                )
            )
    return pl.concat(parts).sort("timestamp", "model", maintain_order=True)


def _fit_predict(
    name: str, data: Dataset, fold: Fold, settings: EvaluationSettings, columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the model's calibrated test probabilities and its raw validation probabilities."""
    model = MODEL_CLASSES[name](**settings.params_for(name))
    training = fold.training_rows
    if model.input_kind == "sequence":
        source = _impute(data.X_sequence, np.arange(training.min(), training.max() + data.window))
        windows = make_windows(source, data.window).astype(np.float32)
        X, names = windows, data.sequence_names
    else:
        X = _impute(data.X[:, columns], training)
        names = tuple(data.feature_names[j] for j in columns)
    info: dict[str, Any] = {"label": settings.label.to_dict()}
    if fold.validation.size:
        info["validation"] = (X[fold.validation], data.y[fold.validation])
    model.fit(X[fold.train], data.y[fold.train], feature_names=names, info=info)
    proba = model.predict_proba(X[fold.test])
    validation = (
        np.asarray(model.predict_proba(X[fold.validation]), dtype=np.float64)
        if fold.validation.size
        else np.empty((0, 3))
    )
    if settings.calibrate and fold.validation.size >= 30:
        calibrator = TemperatureCalibrator().fit(validation, data.y[fold.validation])
        proba = calibrator.transform(proba)
    return np.asarray(proba, dtype=np.float64), validation


def _volatility_scale(data: Dataset, horizon: int) -> np.ndarray:
    """Return (n,) the volatility of each row's forward return (NaN where unknown).

    The per-candle volatility feature times ``sqrt(horizon)``; without that feature, one
    constant (so returns are ranked and sloped as they are).
    """
    if VOLATILITY_FEATURE in data.feature_names:
        volatility = data.X[:, data.feature_names.index(VOLATILITY_FEATURE)]
        scaled: np.ndarray = np.where(volatility > 0, volatility, np.nan) * np.sqrt(horizon)
        return scaled
    spread = float(np.nanstd(data.forward_return)) or 1.0
    return np.full(data.forward_return.size, spread)


def select_on_rows(
    data: Dataset, rows: np.ndarray, settings: EvaluationSettings
) -> FeatureSelection | None:
    """Select features on ``rows`` only (target: forward return in units of volatility).

    Returns None when ``settings.max_features`` keeps every feature.
    """
    scale = _volatility_scale(data, settings.label.horizon)
    return _select(data, rows, settings, scale)


def _select(
    data: Dataset, rows: np.ndarray, settings: EvaluationSettings, scale: np.ndarray
) -> FeatureSelection | None:
    limit = settings.max_features
    if limit is None or limit >= len(data.feature_names):
        return None
    target = np.clip(data.forward_return[rows] / scale[rows], -4.0, 4.0)
    return select_features(
        _impute(data.X[rows], np.arange(rows.size)), target, data.feature_names,
        max_features=limit, cluster_corr=settings.cluster_corr,
    )  # fmt: skip


def _columns(data: Dataset, selection: FeatureSelection | None) -> np.ndarray:
    if selection is None:
        return np.arange(len(data.feature_names))
    index = {name: j for j, name in enumerate(data.feature_names)}
    return np.array([index[name] for name in selection.names], dtype=np.int64)


def _impute(matrix: np.ndarray, training: np.ndarray) -> np.ndarray:
    """Fill NaN with the medians of the training rows (never of test rows)."""
    medians = np.nanmedian(matrix[training], axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    return np.where(np.isnan(matrix), medians, matrix)


def _baselines(data: Dataset, fold: Fold, horizon: int) -> dict[str, np.ndarray]:
    prior = np.bincount(data.y[fold.training_rows], minlength=3) / fold.training_rows.size
    majority = np.tile(prior, (fold.test.size, 1))
    latest_known = fold.test - horizon  # its label resolved by the close of the test row
    known = latest_known >= 0
    persistence = np.tile(prior, (fold.test.size, 1))
    persistence[known] = np.eye(3)[data.y[latest_known[known]]]
    return {"baseline_majority": majority, "baseline_persistence": persistence}


#: L2 strength of the stacking meta-learner (scikit-learn's C; small is strong): a handful of
#: noisy probability columns need shrinking toward the plain average.
STACKING_C = 0.05


def _add_stacking(
    data: Dataset, folds: list[FoldPredictions], settings: EvaluationSettings
) -> None:
    """Fit fold k's meta-learner on out-of-fold predictions of folds before k only.

    Guard: the meta-learner is first fitted on the older two thirds of those rows and scored
    (log loss) on the newest third against every member. Only when it beats the best member
    there is it refitted on all of them and used; otherwise fold k's stacking is that best
    member's probabilities, so stacking never stands on a meta-learner that did worse out of
    sample than a member it could have copied. ``stacking_choice`` in the fold says which.
    """
    from tradebrain.evaluation.metrics import log_loss
    from tradebrain.models.baselines import LogisticModel

    alphas = [data.feature_names.index(a) for a in STACKING_ALPHAS if a in data.feature_names]
    for k, current in enumerate(folds):
        if k == 0:
            continue
        start = current.fold.test_start
        past_rows = np.concatenate([f.fold.test for f in folds[:k]])
        past_proba = np.vstack([_stack_inputs(f, settings.models) for f in folds[:k]])
        resolved = data.label_end[past_rows] < start  # labels known before fold k begins
        rows, proba = past_rows[resolved], past_proba[resolved]
        if rows.size < 50 or np.unique(data.y[rows]).size < 2:
            continue
        extra = _impute(data.X[:, alphas], rows) if alphas else None
        meta_X = _meta_inputs(proba, extra, rows)
        cut = rows.size * 2 // 3
        y = data.y[rows]
        meta = LogisticModel(C=STACKING_C, seed=settings.seed)
        checked = slice(cut, None)
        member_loss = {
            name: log_loss(proba[checked, 3 * i : 3 * i + 3], y[checked])
            for i, name in enumerate(settings.models)
        }
        best = min(member_loss, key=lambda name: member_loss[name])
        trusted = np.unique(y[:cut]).size >= 2 and (
            log_loss(
                meta.clone().fit(meta_X[:cut], y[:cut]).predict_proba(meta_X[checked]), y[checked]
            )
            < member_loss[best]
        )
        if trusted:
            test_X = _meta_inputs(_stack_inputs(current, settings.models), extra, current.fold.test)
            current.proba["stacking"] = meta.fit(meta_X, y).predict_proba(test_X)
            current.stacking_choice = "meta-learner"
        else:
            current.proba["stacking"] = current.proba[best].copy()
            current.stacking_choice = best


def _stack_inputs(result: FoldPredictions, models: tuple[str, ...]) -> np.ndarray:
    return np.hstack([result.proba[m] for m in models])


def _meta_inputs(proba: np.ndarray, extra: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    return proba if extra is None else np.hstack([proba, extra[rows]])


def _sequence_columns(names: tuple[str, ...]) -> tuple[str, ...]:
    from tradebrain.features import list_features

    wanted = {row["name"] for row in list_features(SEQUENCE_FEATURE_SETS)}
    chosen = tuple(n for n in names if n in wanted)
    return chosen or names


def model_names(folds: list[FoldPredictions]) -> list[str]:
    """Every model that predicted on any fold, in first-seen order."""
    seen: dict[str, None] = {}
    for result in folds:
        seen.update(dict.fromkeys(result.proba))
    return list(seen)

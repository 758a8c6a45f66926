"""Train one window's forecast: horizon, features, models, skill weights and calibration.

:func:`train_forecaster` is what the walk-forward hybrid backtest runs for each segment (and
``tradebrain train`` for the final models). Everything it decides, it decides on the window it
is given, whose newest ``validation_fraction`` of rows is held out (purged: no training label
reaches into it):

1. **Horizon.** For each candidate horizon ``h`` the features are selected on the training rows
   (:mod:`tradebrain.models.selection`), a logistic model is fitted and its forecast on the
   validation rows is calibrated and *traded* with the brain's entry and exit bars after costs
   (:func:`~tradebrain.models.forecast.policy_value`). The horizon whose forecast kept the
   most money is chosen: the holding period follows the horizon at which the forecast's
   after-cost value peaks.
2. **Models** (the configured ones) are trained at that horizon on the selected features, once
   per scored block (early stopping on the newest rows before it); the last block's models
   are kept.
3. **Skill.** Each model's validation slope (realized return on its forecast score) is its
   skill: a model votes only with positive, significant skill
   (:func:`~tradebrain.models.forecast.voter_weights`).
4. **Calibration** of the combined vote of the models that kept their weight gives ``beta``:
   how much return one unit of forecast score is worth, 0 unless the combined vote's slope is
   significant (t >= 2; nothing trades on less).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from tradebrain.exceptions import UserInputError
from tradebrain.labels import LabelSettings
from tradebrain.models.base import MODEL_CLASSES, Model, make_windows
from tradebrain.models.baselines import LogisticModel
from tradebrain.models.bundle import ModelBundle
from tradebrain.models.forecast import (
    ForecastCalibration,
    ForecastSettings,
    combine_votes,
    fit_slope,
    policy_value,
    probit_scores,
    voter_weights,
)
from tradebrain.models.selection import FeatureSelection, select_features


def train_forecaster(
    candles: pl.DataFrame,
    features: pl.DataFrame,
    settings: Any,
    forecast: ForecastSettings,
    *,
    feature_sets: list[str] | None,
    source: str,
) -> ModelBundle:
    """Train the models of ``settings`` (an ``EvaluationSettings``) as a calibrated forecast.

    Returns a :class:`ModelBundle` whose ``calibration`` turns its votes into expected returns
    and whose manifest says which features were kept and why.
    """
    from tradebrain.evaluation.evaluate import first_complete_row

    if forecast.volatility_feature not in features.columns:
        raise UserInputError(
            f"the forecast needs the volatility feature {forecast.volatility_feature!r}; "
            "add the 'atomic' feature set"
        )
    if not forecast.horizons:
        raise UserInputError("the forecast needs at least one horizon to try")
    warmup = first_complete_row(features)
    values: dict[int, float] = {}
    screened: dict[int, tuple[_Window, FeatureSelection, float]] = {}
    rows = candles.height - warmup
    horizons = [h for h in sorted(set(forecast.horizons)) if _enough(rows, h, forecast)]
    if not horizons:
        horizons = [min(forecast.horizons)]
    for horizon in horizons:
        window = _Window.build(candles, features, warmup, settings, forecast, horizon)
        selection = window.select()
        columns = window.columns(selection)
        proba, _ = window.out_of_fold(
            lambda: LogisticModel(seed=settings.seed), window.X[:, columns], None
        )
        z = probit_scores(proba)
        slope = fit_slope(z, window.realized[window.scored], horizon)
        values[horizon] = window.value(slope.beta * z)
        screened[horizon] = (window, selection, slope.t_stat)
    best = max(values, key=lambda h: (values[h], screened[h][2]))
    window, selection, _ = screened[best]
    return _train_at(window, selection, values, settings, feature_sets, source)


def _enough(rows: int, horizon: int, forecast: ForecastSettings) -> bool:
    """Whether the scored rows hold ``min_independent`` non-overlapping ``horizon`` returns."""
    return rows * forecast.validation_fraction / horizon >= forecast.min_independent


class _Window:
    """One training window at one horizon: its rows, purged folds and returns in sigma_h.

    The newest ``validation_fraction`` of the rows is cut into ``folds`` consecutive blocks;
    a model is trained once per block on the rows before it (purged: every training label
    resolved before the block starts; its newest 15 % for early stopping) and predicts the
    block. The blocks' predictions are out of sample: they measure skill, calibrate and value
    the forecast. The last block's model is the one kept for trading.
    """

    def __init__(
        self,
        data: Any,
        X: np.ndarray,
        medians: np.ndarray,
        blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
        realized: np.ndarray,
        sigma: np.ndarray,
        forecast: ForecastSettings,
        horizon: int,
    ) -> None:
        self.data, self.X, self.medians, self.blocks = data, X, medians, blocks
        self.scored = np.concatenate([test for _, _, test in blocks])
        self.realized, self.sigma = realized, sigma
        self.forecast, self.horizon = forecast, horizon

    @classmethod
    def build(
        cls,
        candles: pl.DataFrame,
        features: pl.DataFrame,
        warmup: int,
        settings: Any,
        forecast: ForecastSettings,
        horizon: int,
    ) -> _Window:
        from tradebrain.evaluation.walk_forward import build_dataset

        label = LabelSettings(settings.label.kind, horizon, dict(settings.label.parameters))
        data = build_dataset(candles, features, warmup, replace(settings, label=label))
        n = data.y.size
        first = n - int(n * forecast.validation_fraction)
        bounds = np.linspace(first, n, forecast.folds + 1).astype(int)
        blocks = []
        for start, stop in itertools.pairwise(bounds.tolist()):
            usable = np.flatnonzero(data.label_end[:start] < start)
            cut = int(usable.size * 0.85)
            fit, stopping = usable[:cut], usable[cut:]
            fit = fit[data.label_end[fit] < (stopping[0] if stopping.size else start)]
            if fit.size < 50 or stopping.size < 10 or stop - start < 10:
                raise UserInputError(
                    f"only {n} labelled candles at horizon {horizon}: too few to train and "
                    "validate walk-forward; give a longer history"
                )
            blocks.append((fit, stopping, np.arange(start, stop)))
        medians = np.nanmedian(data.X[: bounds[-2]], axis=0)
        medians = np.where(np.isnan(medians), 0.0, medians)
        X = np.where(np.isnan(data.X), medians, data.X)
        volatility = X[:, data.feature_names.index(forecast.volatility_feature)]
        sigma = np.where(volatility > 0, volatility, np.nan) * np.sqrt(horizon)
        realized = data.forward_return / sigma
        return cls(data, X, medians, blocks, realized, sigma, forecast, horizon)

    def select(self) -> FeatureSelection:
        """Select features on the rows before the first scored block."""
        names = self.data.feature_names
        limit = self.forecast.max_features
        if limit is None or limit >= len(names):
            return FeatureSelection(tuple(names), {}, {}, {}, len(names))
        fit, stopping, _ = self.blocks[0]
        rows = np.concatenate([fit, stopping])
        target = np.clip(self.realized[rows], -4.0, 4.0)
        return select_features(
            self.X[rows], target, names,
            max_features=limit, cluster_corr=self.forecast.cluster_corr,
        )  # fmt: skip

    def columns(self, selection: FeatureSelection) -> list[int]:
        index = {name: j for j, name in enumerate(self.data.feature_names)}
        return [index[name] for name in selection.names]

    def out_of_fold(
        self,
        make: Any,
        X: np.ndarray,
        describe: tuple[tuple[str, ...], dict[str, Any]] | None,
    ) -> tuple[np.ndarray, Model]:
        """Train ``make()`` once per block; return the blocks' (m, 3) probabilities, last model."""
        y = self.data.y
        parts = []
        model: Model | None = None
        for fit, stopping, test in self.blocks:
            model = make()
            info: dict[str, Any] = {"validation": (X[stopping], y[stopping])}
            names: tuple[str, ...] | None = None
            if describe is not None:
                names, extra = describe
                info.update(extra)
            model.fit(X[fit], y[fit], feature_names=names, info=info)
            parts.append(np.asarray(model.predict_proba(X[test]), dtype=np.float64))
        assert model is not None
        return np.vstack(parts), model

    def value(self, z_scaled: np.ndarray) -> float:
        """After-cost log growth per candle of trading ``beta * z`` on the scored rows."""
        rows = self.scored
        expected = z_scaled * self.sigma[rows]
        f = self.forecast
        return policy_value(
            expected, self.data.next_return[rows], f.cost_per_side,
            f.entry_cost_multiple, f.exit_cost_multiple,
        )  # fmt: skip


def _train_at(
    window: _Window,
    selection: FeatureSelection,
    values: dict[int, float],
    settings: Any,
    feature_sets: list[str] | None,
    source: str,
) -> ModelBundle:
    data = window.data
    columns = window.columns(selection)
    X_tab = window.X[:, columns]
    names = selection.names
    median_map = dict(zip(data.feature_names, window.medians.tolist(), strict=True))
    windows: np.ndarray | None = None
    models: dict[str, Model] = {}
    temperatures: dict[str, float] = {}
    scored_proba: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    label = replace(settings.label, horizon=window.horizon).to_dict()
    for name in settings.models:
        if name not in MODEL_CLASSES:
            raise UserInputError(f"unknown model {name!r}; available: {sorted(MODEL_CLASSES)}")
        started = time.perf_counter()
        sequence = MODEL_CLASSES[name].input_kind == "sequence"
        if sequence and windows is None:
            seq_medians = np.array([median_map.get(n_, 0.0) for n_ in data.sequence_names])
            rows = np.where(np.isnan(data.X_sequence), seq_medians, data.X_sequence)
            windows = make_windows(rows, data.window).astype(np.float32)
        X = windows if sequence and windows is not None else X_tab
        describe = (
            data.sequence_names if sequence else names,
            {"label": label, "data_start": str(data.timestamps[0]),
             "data_end": str(data.timestamps[-1])},
        )  # fmt: skip
        proba, model = window.out_of_fold(
            lambda name=name: MODEL_CLASSES[name](**settings.params_for(name)), X, describe
        )
        # No temperature: the forecast's calibration (beta, below) is fitted on all the scored
        # rows at once; a temperature fitted on the last block alone would rescale the votes
        # by the luck of that block (a block where the model happened to miss flattens them).
        models[name] = model
        temperatures[name] = 1.0
        scored_proba[name] = proba
        seconds[name] = time.perf_counter() - started
    realized = window.realized[window.scored]
    slopes = {
        name: fit_slope(probit_scores(proba), realized, window.horizon)
        for name, proba in scored_proba.items()
    }
    skill = {m: {"slope": s.slope, "t_stat": s.t_stat, "beta": s.beta} for m, s in slopes.items()}
    weights = voter_weights(slopes)
    combined = combine_votes(scored_proba, weights)
    total = fit_slope(probit_scores(combined), realized, window.horizon)
    calibration = ForecastCalibration(
        horizon=window.horizon,
        beta=total.beta,
        slope=total.slope,
        t_stat=total.t_stat,
        rows=total.rows,
        weights=weights,
        skill=skill,
        volatility_feature=window.forecast.volatility_feature,
        horizon_values=values,
    )
    manifest = {
        "source": source,
        "feature_sets": feature_sets,
        "label": label,
        "data_start": str(data.timestamps[0]),
        "data_end": str(data.timestamps[-1]),
        "rows": int(data.y.size),
        "selection": selection.to_dict(),
        "calibration": calibration.to_dict(),
        "training_seconds": seconds,
    }
    kept = set(names) | set(data.sequence_names) | {window.forecast.volatility_feature}
    return ModelBundle(
        models, temperatures, names, data.sequence_names,
        {k: v for k, v in median_map.items() if k in kept}, data.window, manifest,
        calibration=calibration,
    )  # fmt: skip

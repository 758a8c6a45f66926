"""The walk-forward ensemble: the fold's models weighted by the skill they showed out of sample.

Before each fold, every model's skill is the slope of realized returns (in units of volatility)
on its forecast score (:func:`~tradebrain.models.forecast.fit_slope`) over predictions it made
out of sample: its own validation tail and earlier folds' test rows whose labels resolved
before the fold starts. A model weighs its evidence of skill
(:func:`~tradebrain.models.forecast.evidence_weights`: ``t / 2`` capped at 1 with a positive
slope; 0 without one, and it is then named as such). The ensemble averages the models with
weight (confidence weighted) and abstains, with no directional view, where none is left.
:func:`tradebrain.evaluation.walk_forward.run_folds` calls these once per fold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tradebrain.models.forecast import (
    Slope,
    combine_votes,
    evidence_weights,
    fit_slope,
    probit_scores,
)

if TYPE_CHECKING:
    from tradebrain.evaluation.splits import Fold
    from tradebrain.evaluation.walk_forward import Dataset, EvaluationSettings, FoldPredictions


def skill_weights(
    data: Dataset,
    fold: Fold,
    settings: EvaluationSettings,
    scale: np.ndarray,
    validation: dict[str, np.ndarray],
    earlier: list[FoldPredictions],
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Weigh each model by the skill it showed out of sample before this fold starts.

    The rows: the fold's validation tail (predicted by this fold's model, which never trained
    on it) and earlier folds' test rows whose labels resolved before this fold's first test row.

    Parameters
    ----------
    scale
        (n,) the volatility of each row's forward return, which the returns are divided by.
    validation
        Model name -> (v, 3) its raw probabilities on the fold's validation rows.
    earlier
        The folds already predicted, oldest first.

    Returns
    -------
    tuple
        Model name -> weight (its evidence of skill in [0, 1]; all 1 when
        ``settings.skill_weights`` is off), and model name -> its slope, t statistic, beta and
        rows.
    """
    if not settings.skill_weights:
        return {name: 1.0 for name in settings.models}, {}
    start = fold.test_start
    past = [r for r in earlier if r.fold.test.size]
    slopes: dict[str, Slope] = {}
    skill: dict[str, dict[str, float]] = {}
    for name in settings.models:
        rows = [fold.validation]
        probas = [validation[name]]
        for result in past:
            resolved = data.label_end[result.fold.test] < start
            rows.append(result.fold.test[resolved])
            probas.append(result.proba[name][resolved])
        at = np.concatenate(rows)
        proba = np.vstack(probas)
        realized = data.forward_return[at] / scale[at]
        slope = fit_slope(probit_scores(proba), realized, settings.label.horizon)
        skill[name] = {
            "slope": slope.slope, "t_stat": slope.t_stat, "beta": slope.beta,
            "rows": float(slope.rows),
        }  # fmt: skip
        slopes[name] = slope
    return evidence_weights(slopes), skill


def no_view(prior: np.ndarray) -> np.ndarray:
    """Return the training class shares with up and down made equal: no directional view.

    An ensemble without a skilled member abstains with these probabilities: the flat share it
    knows, and no lean either way (``p_up - p_down = 0``), so an abstaining fold adds neither
    direction nor rank to the directional accuracy and the IC.
    """
    view = prior.copy()
    view[:, 0] = view[:, 2] = (prior[:, 0] + prior[:, 2]) / 2.0
    return view


def skill_ensemble(
    probas: dict[str, np.ndarray], weights: dict[str, float], abstain: np.ndarray
) -> np.ndarray:
    """Average the weighted models (confidence weighted); abstain where none has weight."""
    members = {name: probas[name] for name in weights}
    combined = combine_votes(members, weights)
    missing = ~np.isfinite(combined).all(axis=1)
    combined[missing] = abstain[missing]
    return combined

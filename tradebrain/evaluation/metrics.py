"""Classification metrics for three-class probabilities, and the naive baselines to beat.

Probabilities are (n, 3) float64 with columns (down, flat, up) and rows summing to 1; labels
are (n,) integers 0 down, 1 flat, 2 up. Every function returns plain floats. Where a metric is
undefined it is NaN, never a made-up number:

- no rows: every metric is NaN (counts are 0);
- a class absent from the labels: balanced accuracy averages the recall of the classes present;
  macro AUC averages the one-vs-rest AUC of the classes present with both positive and
  negative rows (NaN if none);
- no non-flat rows: directional accuracy and its standard error are NaN;
- the information coefficient is NaN without forward returns, with fewer than 3 finite rows,
  or when the score or the return is constant.
"""

from __future__ import annotations

import math

import numpy as np

from tradebrain.exceptions import UserInputError

LOG_LOSS_EPSILON = 1e-15
"""Probabilities are clipped to ``[eps, 1]`` before the log in :func:`log_loss`."""
_PROBABILITY_TOLERANCE = 1e-6


def accuracy(proba: np.ndarray, y: np.ndarray) -> float:
    """Return the share of rows whose most probable class is the label."""
    proba, y = _checked(proba, y)
    return float(np.mean(np.argmax(proba, axis=1) == y)) if y.size else math.nan


def balanced_accuracy(proba: np.ndarray, y: np.ndarray) -> float:
    """Return the mean recall over the classes present in ``y``."""
    proba, y = _checked(proba, y)
    predicted = np.argmax(proba, axis=1)
    recalls = [np.mean(predicted[y == k] == k) for k in range(3) if (y == k).any()]
    return float(np.mean(recalls)) if recalls else math.nan


def macro_auc(proba: np.ndarray, y: np.ndarray) -> float:
    """Return the mean one-vs-rest ROC AUC over the classes that can be scored (ties: 1/2)."""
    from scipy.stats import rankdata  # ~1 s to import: only when an AUC is asked for

    proba, y = _checked(proba, y)
    scores = []
    for k in range(3):
        positive = y == k
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = rankdata(proba[:, k])
        scores.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(scores)) if scores else math.nan


def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    """Return the mean negative log probability of the label (natural log, clipped)."""
    proba, y = _checked(proba, y)
    if not y.size:
        return math.nan
    chosen = np.clip(proba[np.arange(y.size), y], LOG_LOSS_EPSILON, 1.0)
    return float(-np.mean(np.log(chosen)))


def brier_score(proba: np.ndarray, y: np.ndarray) -> float:
    """Return the multi-class Brier score: mean of Σ_k (p_k - 1[y = k])², in [0, 2]."""
    proba, y = _checked(proba, y)
    if not y.size:
        return math.nan
    return float(np.mean(np.sum((proba - np.eye(3)[y]) ** 2, axis=1)))


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """Return the top-label ECE over ``n_bins`` equal-width confidence bins on [0, 1].

    ``ECE = Σ_b (n_b / n) |accuracy_b - mean confidence_b|``, where the confidence of a row is
    its largest probability and it is correct when that class is the label.
    """
    proba, y = _checked(proba, y)
    if not y.size:
        return math.nan
    _, sum_confidence, sum_correct = _confidence_bins(proba, y, n_bins)
    return float(np.sum(np.abs(sum_correct - sum_confidence)) / y.size)


def reliability_table(proba: np.ndarray, y: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Return the reliability diagram behind the ECE: one row per occupied confidence bin.

    Each row has the bin's mean ``confidence`` (largest probability), its ``accuracy`` (share
    of rows whose most probable class is the label) and ``count``. A calibrated model's rows
    lie on the diagonal.
    """
    proba, y = _checked(proba, y)
    counts, sum_confidence, sum_correct = _confidence_bins(proba, y, n_bins)
    return [
        {
            "confidence": float(sum_confidence[b] / counts[b]),
            "accuracy": float(sum_correct[b] / counts[b]),
            "count": float(counts[b]),
        }
        for b in np.flatnonzero(counts)
    ]


def _confidence_bins(
    proba: np.ndarray, y: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per equal-width confidence bin: rows, summed confidence and summed hits."""
    if n_bins < 1:
        raise UserInputError(f"n_bins must be >= 1; got {n_bins}")
    confidence = np.max(proba, axis=1)
    correct = (np.argmax(proba, axis=1) == y).astype(np.float64)
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    return (
        np.bincount(bins, minlength=n_bins),
        np.bincount(bins, confidence, minlength=n_bins),
        np.bincount(bins, correct, minlength=n_bins),
    )


def information_coefficient(proba: np.ndarray, forward_return: np.ndarray) -> float:
    """Return the Spearman correlation of ``p_up - p_down`` with the forward return.

    ``forward_return`` is (n,) float64; rows where it is NaN are left out.
    """
    proba = _checked_proba(proba)
    returns = np.asarray(forward_return, dtype=np.float64)
    if returns.shape != (proba.shape[0],):
        raise UserInputError(f"forward_return has shape {returns.shape}; expected ({len(proba)},)")
    return rank_ic(proba[:, 2] - proba[:, 0], returns)


def rank_ic(score: np.ndarray, forward_return: np.ndarray) -> float:
    """Return the Spearman correlation of a (n,) ``score`` with the (n,) forward return.

    Rows where either is NaN are left out; NaN when fewer than 3 rows or no spread remain.
    """
    score = np.asarray(score, dtype=np.float64)
    returns = np.asarray(forward_return, dtype=np.float64)
    known = np.isfinite(returns) & np.isfinite(score)
    score, returns = score[known], returns[known]
    if score.size < 3 or np.ptp(score) == 0 or np.ptp(returns) == 0:
        return math.nan
    from scipy import stats  # ~1 s to import: only when a correlation is asked for

    return float(stats.spearmanr(score, returns).statistic)


def directional_accuracy(proba: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Return the accuracy of the up/down call on rows labelled up or down, and its error.

    The call is up when ``p_up > p_down`` and down when ``p_up < p_down``; a tie scores 1/2
    (a coin flip's expectation). Flat rows are left out, so this is the figure comparable to
    an oracle that knows the sign of the planted drift.

    Returns
    -------
    dict
        ``directional_accuracy``, ``directional_accuracy_se`` (binomial standard error
        ``√(a (1 - a) / n)``) and ``n_directional`` (rows scored, as a float).
    """
    proba, y = _checked(proba, y)
    moving = y != 1
    n = int(moving.sum())
    if n == 0:
        return {
            "directional_accuracy": math.nan,
            "directional_accuracy_se": math.nan,
            "n_directional": 0.0,
        }
    lean = np.sign(proba[moving, 2] - proba[moving, 0])
    truth = np.where(y[moving] == 2, 1.0, -1.0)
    score = np.where(lean == 0, 0.5, (lean == truth).astype(np.float64))
    hit_rate = float(np.mean(score))
    return {
        "directional_accuracy": hit_rate,
        "directional_accuracy_se": math.sqrt(hit_rate * (1.0 - hit_rate) / n),
        "n_directional": float(n),
    }


def classification_report(
    proba: np.ndarray,
    y: np.ndarray,
    forward_return: np.ndarray | None = None,
    n_bins: int = 10,
) -> dict[str, float]:
    """Return every metric of this module for one set of predictions.

    Keys: ``n``, ``accuracy``, ``balanced_accuracy``, ``auc``, ``log_loss``, ``brier``,
    ``ece``, ``information_coefficient`` (NaN without ``forward_return``),
    ``directional_accuracy``, ``directional_accuracy_se``, ``n_directional``.
    """
    proba, y = _checked(proba, y)
    ic = math.nan if forward_return is None else information_coefficient(proba, forward_return)
    return {
        "n": float(y.size),
        "accuracy": accuracy(proba, y),
        "balanced_accuracy": balanced_accuracy(proba, y),
        "auc": macro_auc(proba, y),
        "log_loss": log_loss(proba, y),
        "brier": brier_score(proba, y),
        "ece": expected_calibration_error(proba, y, n_bins),
        "information_coefficient": ic,
        **directional_accuracy(proba, y),
    }


def naive_baselines(
    y_train: np.ndarray,
    y_test: np.ndarray,
    horizon: int,
    y_before_test: np.ndarray | None = None,
    forward_return: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Score the naive forecasts a model must beat on the test rows.

    - ``majority``: the training class frequencies as probabilities (so it always calls the
      training majority class, and its log loss is that of the prior);
    - ``persistence``: the latest label already known when the prediction is made, i.e. the
      label of the row ``horizon`` rows earlier (it resolved at the test row's close), as a
      hard one-hot forecast. The label of the previous row is *not* known yet and would leak.

    Parameters
    ----------
    y_train
        (m,) training labels (0, 1, 2).
    y_test
        (n,) test labels, contiguous rows in time order.
    horizon
        Candles each label looks ahead, ``h >= 1``.
    y_before_test
        The labels of the ``horizon`` rows just before the test fold, oldest first. Without
        them the first ``horizon`` test rows fall back to the majority class.
    forward_return
        (n,) forward returns of the test rows, for the information coefficient.

    Returns
    -------
    dict
        ``{"majority": report, "persistence": report}``, each as :func:`classification_report`.
    """
    y_train = _checked_labels(y_train)
    y_test = _checked_labels(y_test)
    if int(horizon) != horizon or horizon < 1:
        raise UserInputError(f"horizon must be a whole number >= 1; got {horizon}")
    if y_train.size == 0:
        raise UserInputError("naive baselines need at least one training label")
    prior = np.bincount(y_train, minlength=3) / y_train.size
    majority = np.tile(prior, (y_test.size, 1))
    head = np.full(horizon, int(np.argmax(prior)), dtype=np.int64)
    if y_before_test is not None:
        before = _checked_labels(y_before_test)
        if before.size != horizon:
            raise UserInputError(f"y_before_test must hold {horizon} labels; got {before.size}")
        head = before
    previous = np.concatenate([head, y_test])[: y_test.size]
    persistence = np.eye(3)[previous]
    return {
        "majority": classification_report(majority, y_test, forward_return),
        "persistence": classification_report(persistence, y_test, forward_return),
    }


def _checked(proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    proba = _checked_proba(proba)
    labels = _checked_labels(y)
    if labels.shape[0] != proba.shape[0]:
        raise UserInputError(f"{proba.shape[0]} probability rows but {labels.shape[0]} labels")
    return proba, labels


def _checked_proba(proba: np.ndarray) -> np.ndarray:
    values = np.asarray(proba, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != 3:
        raise UserInputError(f"probabilities must be (n, 3) (down, flat, up); got {values.shape}")
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise UserInputError("probabilities must be finite and within [0, 1]")
    if values.size and np.abs(values.sum(axis=1) - 1.0).max() > _PROBABILITY_TOLERANCE:
        raise UserInputError("probability rows must sum to 1")
    return values


def _checked_labels(y: np.ndarray) -> np.ndarray:
    values = np.asarray(y)
    if values.ndim != 1:
        raise UserInputError(f"labels must be a 1-D array; got shape {values.shape}")
    if np.issubdtype(values.dtype, np.floating) and np.isnan(values).any():
        raise UserInputError("labels hold NaN (missing labels); drop those rows first")
    if not np.isin(values, (0, 1, 2)).all():
        raise UserInputError("labels must be 0 (down), 1 (flat) or 2 (up)")
    return values.astype(np.int64)

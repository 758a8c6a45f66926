"""Baselines: logistic regression, and the rule models that stand in when nothing is trained.

- :class:`LogisticModel` (``"logistic"``): standardisation fitted on the training rows only, then
  a multinomial logistic regression.
- :class:`MomentumRuleModel` (``"momentum"``): a past-return column pushes probability towards up
  (positive) or down (negative).
- :class:`PatternRuleModel` (``"patterns"``): bullish candle patterns (hammer, bullish engulfing)
  favour up, bearish ones (shooting star, bearish engulfing) favour down.

The rule models read their columns by feature name (the names given to ``fit``), so they work on
any feature set that contains those columns. Their ``fit`` learns only class frequencies, a scale
and a few counts; they never need more data than a handful of rows.
"""

from __future__ import annotations

import json
import math
import warnings
from abc import abstractmethod
from pathlib import Path
from typing import Any, Self

import numpy as np
from scipy.special import expit

from tradebrain.core.atomic_write import write_text_atomic
from tradebrain.exceptions import UserInputError
from tradebrain.models._inputs import (
    full_row,
    prediction_array,
    refuse_row,
    require_finite,
    row_shape,
    softmax,
    softmax_row,
    split_labels,
    training_arrays,
)
from tradebrain.models.base import DOWN, FLAT, UP, Model, RowPredictor, full_proba, register_model

STATE_FILE = "state.npz"
RULE_STATE_FILE = "rule_state.json"
_MIN_SHARE = 1e-6  # keeps a logit finite when a direction never occurred in training


@register_model
class LogisticModel(Model):
    """Multinomial logistic regression on standardised features.

    Parameters
    ----------
    C
        Inverse L2 regularisation strength (scikit-learn's ``C``); smaller is stronger.
    max_iter
        Most L-BFGS iterations.
    seed
        Random seed (L-BFGS is deterministic; kept for the common model interface).
    n_jobs
        Threads for the linear algebra during ``fit``.

    Notes
    -----
    The means and standard deviations come from the training rows only; a constant column is
    left unscaled. NaN or infinite inputs are refused with the names of their columns.
    """

    name = "logistic"

    def __init__(self, C: float = 1.0, max_iter: int = 500, seed: int = 0, n_jobs: int = 2):
        self.C = C
        self.max_iter = max_iter
        self.seed = seed
        self.n_jobs = n_jobs

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        feature_names: tuple[str, ...] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Self:
        """Fit the scaler and the regression on ``X`` (n, features), ``y`` in {0, 1, 2}."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        X, y = training_arrays(X, y, self.input_kind)
        record = self._record(X, y, feature_names, info)
        require_finite(X, record.feature_names, self.name)
        classes, codes = split_labels(y)
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale == 0.0] = 1.0
        coef = np.zeros((1, X.shape[1]))
        intercept = np.zeros(1)
        self.converged_ = True
        if len(classes) > 1:
            regression = LogisticRegression(
                C=self.C, max_iter=self.max_iter, random_state=self.seed
            )
            with (
                threadpool_limits(limits=self.n_jobs),
                warnings.catch_warnings(record=True) as seen,
            ):
                warnings.simplefilter("always", ConvergenceWarning)
                regression.fit((X - mean) / scale, codes)
            # Many correlated features slow L-BFGS down; the last iterate is still a usable
            # fit, so say so in the model instead of printing a warning per fold.
            self.converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in seen)
            coef, intercept = regression.coef_, regression.intercept_
        self.classes_ = classes
        self.mean_, self.scale_ = mean, scale
        self.coef_, self.intercept_ = np.asarray(coef, float), np.asarray(intercept, float)
        self.record_ = record
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return (n, 3) probabilities (down, flat, up) for ``X`` (n, features)."""
        X = prediction_array(self, X)
        require_finite(X, self.record_.feature_names, self.name)
        logits = ((X - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_
        if len(self.classes_) == 2:  # scikit-learn's binary case: one logit, for classes_[1]
            logits = np.hstack([np.zeros_like(logits), logits])
        return full_proba(softmax(logits), self.classes_)

    def _row_predictor(self) -> RowPredictor:
        """One row: standardise in place, one (f,) @ (f, k) product, softmax of k floats."""
        mean, scale = np.asarray(self.mean_, float), np.asarray(self.scale_, float)
        coef_t = np.ascontiguousarray(np.asarray(self.coef_, dtype=np.float64).T)
        intercept = np.asarray(self.intercept_, dtype=np.float64)
        classes = [int(c) for c in self.classes_]
        shape, binary = row_shape(self), len(classes) == 2
        scaled, logits = np.zeros(mean.size), np.zeros(coef_t.shape[1])

        def predict(x: np.ndarray) -> np.ndarray:
            if x.shape != shape:
                raise refuse_row(self, x, shape)
            np.subtract(x, mean, out=scaled)
            np.divide(scaled, scale, out=scaled)
            np.matmul(scaled, coef_t, out=logits)
            np.add(logits, intercept, out=logits)
            values = logits.tolist()
            if not math.isfinite(sum(values)):  # a NaN or infinite input: refused by name
                require_finite(x[np.newaxis], self.record_.feature_names, self.name)
            if binary:  # scikit-learn's binary case: one logit, for classes_[1]
                values = [0.0, values[0]]
            return full_row(softmax_row(values), classes)

        return predict

    def _save_state(self, folder: Path) -> None:
        arrays = {
            "classes": self.classes_,
            "mean": self.mean_,
            "scale": self.scale_,
            "coef": self.coef_,
            "intercept": self.intercept_,
        }
        with (folder / STATE_FILE).open("wb") as handle:
            np.savez(handle, **arrays)

    def _load_state(self, folder: Path) -> None:
        with np.load(folder / STATE_FILE) as state:
            self.classes_ = state["classes"]
            self.mean_, self.scale_ = state["mean"], state["scale"]
            self.coef_, self.intercept_ = state["coef"], state["intercept"]


class _RuleModel(Model):
    """Shared parts of the rule models: column lookup, class frequencies, JSON state."""

    def _columns(self, wanted: list[str], feature_names: tuple[str, ...]) -> list[int]:
        missing = [name for name in wanted if name not in feature_names]
        if missing:
            raise UserInputError(
                f"model {self.name!r} reads the feature columns {missing}, which are not among "
                f"the {len(feature_names)} given ({list(feature_names[:10])}...); pass "
                "feature_names to fit, or set the model's column parameters to names you have"
            )
        return [feature_names.index(name) for name in wanted]

    def _restrict(self, proba: np.ndarray) -> np.ndarray:
        """Give classes never seen in training probability 0, as the contract asks."""
        seen = (np.asarray(self.record_.class_counts) > 0).astype(np.float64)
        proba = proba * seen
        total = proba.sum(axis=1, keepdims=True)
        return np.where(total > 0, proba / np.where(total > 0, total, 1.0), seen / seen.sum())

    def _save_state(self, folder: Path) -> None:
        write_text_atomic(json.dumps(self._state(), indent=2), folder / RULE_STATE_FILE)

    def _load_state(self, folder: Path) -> None:
        self._set_state(json.loads((folder / RULE_STATE_FILE).read_text(encoding="utf-8")))

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """Return the learned state as JSON-able values."""

    @abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore the learned state returned by :meth:`_state`."""


def _class_shares(y: np.ndarray) -> np.ndarray:
    """Return the (3,) class frequencies of ``y``."""
    counts = np.bincount(y, minlength=3)[:3].astype(np.float64)
    shares: np.ndarray = counts / counts.sum()
    return shares


@register_model
class MomentumRuleModel(_RuleModel):
    """Rule-based fallback: recent return up → up is likelier, down → down is likelier.

    Parameters
    ----------
    feature
        Name of the past-return column to read (default ``"ret_12"``, the 12-bar simple return
        of the ``atomic`` feature set; any ``ret_h`` / ``logret_h`` works).
    gain
        How hard one training standard deviation of momentum tilts the odds of up versus down
        (added to their log-odds). 0 gives the training class frequencies everywhere.

    Notes
    -----
    ``fit`` learns the class frequencies (``class_shares_``) and the standard deviation of the
    momentum column (``scale_``). The flat probability is its training frequency; the rest is
    split between down and up by ``sigmoid(logit(up share) + gain * momentum / scale_)``.
    A NaN momentum gives the training frequencies.
    """

    name = "momentum"

    def __init__(self, feature: str = "ret_12", gain: float = 1.0):
        self.feature = feature
        self.gain = gain

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        feature_names: tuple[str, ...] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Self:
        """Learn the class frequencies and the momentum scale from ``X`` (n, features)."""
        X, y = training_arrays(X, y, self.input_kind)
        record = self._record(X, y, feature_names, info)
        (column,) = self._columns([self.feature], record.feature_names)
        momentum = X[:, column]
        scale = float(np.nanstd(momentum)) if np.isfinite(momentum).any() else 0.0
        self.column_ = column
        self.scale_ = scale if np.isfinite(scale) and scale > 0.0 else 1.0
        self.class_shares_ = _class_shares(y)
        self.record_ = record
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return (n, 3) probabilities (down, flat, up) for ``X`` (n, features)."""
        X = prediction_array(self, X)
        momentum = np.nan_to_num(X[:, self.column_] / self.scale_, nan=0.0)
        shares = self.class_shares_
        moving = shares[DOWN] + shares[UP]
        up_share = np.clip(shares[UP] / moving if moving > 0 else 0.5, _MIN_SHARE, 1 - _MIN_SHARE)
        tilt = np.clip(np.log(up_share / (1.0 - up_share)) + self.gain * momentum, -50.0, 50.0)
        proba = np.empty((X.shape[0], 3))
        proba[:, FLAT] = shares[FLAT]
        proba[:, UP] = (1.0 - shares[FLAT]) * expit(tilt)
        proba[:, DOWN] = (1.0 - shares[FLAT]) * expit(-tilt)
        return self._restrict(proba)

    def _state(self) -> dict[str, Any]:
        return {
            "column": self.column_,
            "scale": self.scale_,
            "class_shares": self.class_shares_.tolist(),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.column_ = int(state["column"])
        self.scale_ = float(state["scale"])
        self.class_shares_ = np.asarray(state["class_shares"], dtype=np.float64)


@register_model
class PatternRuleModel(_RuleModel):
    """Rule-based fallback from candle patterns, tempered by how they did in training.

    Parameters
    ----------
    bullish
        Names of 0/1 pattern columns that favour up (default: ``hammer``, ``bullish_engulfing``
        of the ``patterns`` feature set).
    bearish
        Names of 0/1 pattern columns that favour down (default: ``shooting_star``,
        ``bearish_engulfing``).
    edge
        The rule's prior belief: a bullish pattern moves this fraction of the down probability
        to up (and a bearish one the reverse), starting from the training class frequencies.
    prior_rows
        Weight of the rule's prior in pseudo-rows: with fewer training rows than this showing a
        pattern, the rule dominates; with many more, the observed outcomes do.

    Notes
    -----
    ``fit`` counts the classes of the training rows where each pattern fired
    (``pattern_counts_``) and the class frequencies of all rows (``class_shares_``). A row's
    probabilities are the average over the patterns firing on it of ``(counts + prior_rows *
    rule prior) / (rows + prior_rows)``; with no pattern firing, the class frequencies. A flag
    counts as firing when it is above 0.5 (NaN does not fire).
    """

    name = "patterns"

    def __init__(
        self,
        bullish: tuple[str, ...] = ("hammer", "bullish_engulfing"),
        bearish: tuple[str, ...] = ("shooting_star", "bearish_engulfing"),
        edge: float = 0.2,
        prior_rows: float = 50.0,
    ):
        self.bullish = bullish
        self.bearish = bearish
        self.edge = edge
        self.prior_rows = prior_rows

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        feature_names: tuple[str, ...] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Self:
        """Learn the class frequencies and per-pattern class counts from ``X`` (n, features)."""
        X, y = training_arrays(X, y, self.input_kind)
        record = self._record(X, y, feature_names, info)
        names = [*self.bullish, *self.bearish]
        columns = self._columns(names, record.feature_names)
        fired = X[:, columns] > 0.5  # NaN compares False: not fired
        self.columns_ = columns
        self.signs_ = np.array([1] * len(self.bullish) + [-1] * len(self.bearish))
        self.class_shares_ = _class_shares(y)
        counts = [np.bincount(y[fired[:, j]], minlength=3)[:3] for j in range(len(names))]
        self.pattern_counts_ = np.array(counts, dtype=np.float64).reshape(len(names), 3)
        self.record_ = record
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return (n, 3) probabilities (down, flat, up) for ``X`` (n, features)."""
        X = prediction_array(self, X)
        fired = (X[:, self.columns_] > 0.5).astype(np.float64)  # (n, patterns)
        per_pattern = self._pattern_proba()  # (patterns, 3)
        n_fired = fired.sum(axis=1, keepdims=True)
        proba = np.where(
            n_fired > 0,
            fired @ per_pattern / np.maximum(n_fired, 1.0),
            self.class_shares_,
        )
        return self._restrict(proba)

    def _pattern_proba(self) -> np.ndarray:
        """Return (patterns, 3): the rule prior updated with the training counts."""
        base = self.class_shares_
        prior = np.tile(base, (len(self.signs_), 1))
        bull, bear = self.signs_ > 0, self.signs_ < 0
        prior[bull, UP] += self.edge * base[DOWN]
        prior[bull, DOWN] -= self.edge * base[DOWN]
        prior[bear, DOWN] += self.edge * base[UP]
        prior[bear, UP] -= self.edge * base[UP]
        rows = self.pattern_counts_.sum(axis=1, keepdims=True) + self.prior_rows
        posterior = self.pattern_counts_ + self.prior_rows * prior
        return np.where(rows > 0, posterior / np.where(rows > 0, rows, 1.0), prior)

    def _state(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns_),
            "signs": self.signs_.tolist(),
            "class_shares": self.class_shares_.tolist(),
            "pattern_counts": self.pattern_counts_.tolist(),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.columns_ = [int(c) for c in state["columns"]]
        self.signs_ = np.asarray(state["signs"], dtype=np.int64)
        self.class_shares_ = np.asarray(state["class_shares"], dtype=np.float64)
        self.pattern_counts_ = np.asarray(state["pattern_counts"], dtype=np.float64)

"""Input checks shared by the models in this package: arrays in, clear errors out."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from tradebrain.exceptions import UserInputError
from tradebrain.models.base import check_training_data

if TYPE_CHECKING:
    from tradebrain.models.base import InputKind, Model


def training_arrays(X: Any, y: Any, input_kind: InputKind) -> tuple[np.ndarray, np.ndarray]:
    """Return ``X`` as float64 and ``y`` as int64 after :func:`check_training_data`."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    check_training_data(X, y, input_kind)
    return X, y.astype(np.int64)


def prediction_array(model: Model, X: Any) -> np.ndarray:
    """Return ``X`` as float64 once ``model`` is fitted and ``X`` has the trained shape."""
    model.check_fitted()
    array: np.ndarray = np.asarray(X, dtype=np.float64)
    want = 3 if model.input_kind == "sequence" else 2
    n_features = len(model.record_.feature_names)
    if array.ndim != want or array.shape[-1] != n_features:
        shape = "(n, window, features)" if want == 3 else "(n, features)"
        raise UserInputError(
            f"model {model.name!r} takes X of shape {shape} with {n_features} features; "
            f"got {array.shape}"
        )
    return array


def require_finite(X: np.ndarray, feature_names: tuple[str, ...], model_name: str) -> None:
    """Raise :class:`UserInputError` naming the columns of ``X`` that hold NaN or inf."""
    finite = np.isfinite(X).reshape(-1, X.shape[-1]).all(axis=0)
    if finite.all():
        return
    bad = [name for name, ok in zip(feature_names, finite, strict=True) if not ok]
    raise UserInputError(
        f"model {model_name!r} cannot take NaN or infinite values; found them in {bad[:10]}"
        f"{'...' if len(bad) > 10 else ''}; drop the warm-up rows of those features first"
    )


def split_labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the classes present in ``y`` and ``y`` as indices into them (0 .. k - 1)."""
    classes = np.unique(y)
    return classes, np.searchsorted(classes, y)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, k) logits; ``-inf`` logits give probability 0."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    proba: np.ndarray = weights / weights.sum(axis=1, keepdims=True)
    return proba


def normalized(proba: np.ndarray) -> np.ndarray:
    """Return (n, k) probabilities as float64 rows that sum to 1 (repairs float32 rounding)."""
    proba = np.asarray(proba, dtype=np.float64)
    rows: np.ndarray = proba / proba.sum(axis=1, keepdims=True)
    return rows


# --- one input at a time (``predict_proba_one``): Python floats, no batch machinery ---------
def row_shape(model: Model) -> tuple[int, ...]:
    """Return the shape of one input of fitted ``model``: (features,) or (window, features)."""
    n_features = len(model.record_.feature_names)
    if model.input_kind == "sequence":
        return (int(model.record_.window or 0), n_features)
    return (n_features,)


def refuse_row(model: Model, x: Any, shape: tuple[int, ...]) -> UserInputError:
    """Return the error for an input ``x`` of another shape than ``shape``."""
    what = "one window" if model.input_kind == "sequence" else "one row"
    return UserInputError(
        f"model {model.name!r} predicts {what} of shape {shape} at a time; got "
        f"{np.shape(x)} (use predict_proba for a batch)"
    )


def softmax_row(logits: list[float]) -> list[float]:
    """Softmax of a few logits, as :func:`softmax` does for one row."""
    top = max(logits)
    weights = [math.exp(value - top) for value in logits]
    total = sum(weights)
    return [w / total for w in weights]


def normalized_row(proba: list[float]) -> list[float]:
    """Return probabilities that sum to 1, as :func:`normalized` does for one row."""
    total = sum(proba)
    return [p / total for p in proba]


def full_row(proba: list[float], classes: list[int]) -> np.ndarray:
    """Spread probabilities over ``classes`` onto (down, flat, up), as ``full_proba`` does."""
    full = [0.0, 0.0, 0.0]
    for klass, value in zip(classes, proba, strict=True):
        full[klass] = value
    return np.array(full)

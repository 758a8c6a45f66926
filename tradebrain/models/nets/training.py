"""One trainer for every net: scaling, seeding, threads, purged early stopping, batched predict.

The nets differ only in their ``nn.Module``; everything around it lives here so that every net
is seeded, standardised, early-stopped and predicted the same way:

- features are standardised with a mean and scale fitted on the training rows only
  (:class:`FeatureScaler`); non-finite inputs become 0 after scaling (the training mean);
- :func:`torch_session` seeds torch, turns on deterministic algorithms and sets the thread
  count, and restores all three afterwards, so a fit leaves no trace in the caller's process;
- :func:`train_network` runs AdamW on (optionally class-weighted) cross-entropy in a shuffled
  order drawn from a seeded generator, early-stops on a validation set and restores the weights
  of the best epoch;
- :func:`predict_probabilities` predicts in batches under ``torch.inference_mode``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from tradebrain.exceptions import UserInputError

PREDICT_BATCH = 1024


@dataclass(frozen=True)
class TrainingSettings:
    """The training hyper-parameters shared by every net (see :class:`NetModel`)."""

    learning_rate: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    validation_fraction: float
    purge: int
    class_weighting: bool
    max_grad_norm: float | None
    threads: int
    seed: int


@dataclass(frozen=True)
class FeatureScaler:
    """Per-feature standardisation fitted on training rows only.

    Attributes
    ----------
    mean, scale : np.ndarray
        Shape (features,), float64; a constant feature gets scale 1.
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> FeatureScaler:
        """Fit on windows ``X`` (n, window, features), reading each underlying row once.

        For windows made by :func:`make_windows` the first window plus the last step of every
        later window are exactly the distinct rows; for other windows they are a fair sample.
        """
        rows = np.concatenate([X[0], X[1:, -1, :]], axis=0).astype(np.float64)
        rows = np.where(np.isfinite(rows), rows, np.nan)
        with np.errstate(invalid="ignore"), _quiet_nan_warnings():
            mean = np.nanmean(rows, axis=0)
            scale = np.nanstd(rows, axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
        return cls(mean=mean, scale=scale)

    def transform(self, X: np.ndarray) -> torch.Tensor:
        """Return standardised windows as a float32 tensor (n, window, features)."""
        scaled = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        scaled = np.where(np.isfinite(scaled), scaled, 0.0)
        return torch.from_numpy(scaled.astype(np.float32))


@dataclass
class TrainingResult:
    """What a training run did: losses per epoch and the epoch whose weights were kept."""

    best_epoch: int
    train_losses: list[float] = field(default_factory=list)
    validation_losses: list[float] = field(default_factory=list)


def validation_split(n: int, validation_fraction: float, purge: int) -> tuple[int, int]:
    """Return ``(train_end, validation_start)`` for a purged validation tail of ``n`` rows.

    Rows ``[0, train_end)`` train, rows ``[validation_start, n)`` validate, and the ``purge``
    rows between them are dropped so that no training label overlaps a validation row's
    window. Returns ``(n, n)`` (no validation) when the tail or the training part would be too
    small to be useful (fewer than 2 rows).
    """
    if validation_fraction <= 0.0:
        return n, n
    n_validation = math.ceil(n * validation_fraction)
    train_end = n - n_validation - max(purge, 0)
    if n_validation < 2 or train_end < 2:
        return n, n
    return train_end, n - n_validation


@contextmanager
def torch_session(threads: int, seed: int | None = None) -> Iterator[None]:
    """Run a block with ``threads`` torch threads, deterministic algorithms and, if given, a
    seeded torch RNG; restore the caller's threads, determinism flags and RNG state after."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)
        torch.set_num_threads(previous_threads)


def class_weights(y: np.ndarray) -> torch.Tensor:
    """Return balanced weights ``n / (k * count)`` per class, 0 for absent classes: (3,)."""
    counts = np.bincount(y, minlength=3)[:3].astype(np.float64)
    seen = counts > 0
    weights = np.zeros(3)
    weights[seen] = counts.sum() / (seen.sum() * counts[seen])
    return torch.from_numpy(weights.astype(np.float32))


def train_network(
    network: nn.Module,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None,
    scaler: FeatureScaler,
    settings: TrainingSettings,
) -> TrainingResult:
    """Train ``network`` in place and return its losses; call inside :func:`torch_session`.

    Parameters
    ----------
    network : nn.Module
        Maps a float32 tensor (batch, window, features) to logits (batch, 3).
    train, validation : tuple of np.ndarray
        Windows (n, window, features) and labels (n,) in {0, 1, 2}. Without validation the
        net trains for ``max_epochs`` and keeps its last weights; with it, training stops after
        ``patience`` epochs without a lower validation log loss (unweighted cross-entropy) and
        the best epoch's weights are restored.
    """
    X, y = train
    labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
    weight = class_weights(labels.numpy()) if settings.class_weighting else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    order = torch.Generator().manual_seed(settings.seed)
    result = TrainingResult(best_epoch=0)
    best_loss, best_state = math.inf, _copy_state(network)
    for epoch in range(1, settings.max_epochs + 1):
        network.train()
        total = 0.0
        for rows in _batches(len(labels), settings.batch_size, order):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(network(scaler.transform(X[rows.numpy()])), labels[rows])
            loss.backward()
            if settings.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(network.parameters(), settings.max_grad_norm)
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        result.train_losses.append(total / len(labels))
        if validation is None:
            result.best_epoch = epoch
            continue
        validation_loss = _log_loss(network, validation, scaler, settings.batch_size)
        result.validation_losses.append(validation_loss)
        if validation_loss < best_loss:
            best_loss, best_state, result.best_epoch = validation_loss, _copy_state(network), epoch
        elif epoch - result.best_epoch >= settings.patience:
            break
    if validation is not None:
        network.load_state_dict(best_state)
    network.eval()
    return result


def predict_logits(
    network: nn.Module, X: np.ndarray, scaler: FeatureScaler, batch_size: int
) -> torch.Tensor:
    """Return the logits (n, 3) of ``network`` in eval mode, in batches, without autograd."""
    network.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, X.shape[0], batch_size):
            outputs.append(network(scaler.transform(X[start : start + batch_size])))
    if not outputs:
        return torch.zeros((0, 3))
    return torch.cat(outputs)


def probabilities(logits: torch.Tensor, classes: np.ndarray) -> np.ndarray:
    """Softmax over the classes seen in training; unseen classes get probability 0: (n, 3)."""
    allowed = np.zeros(3, dtype=bool)
    allowed[np.asarray(classes, dtype=np.int64)] = True
    masked = logits.double().masked_fill(~torch.from_numpy(allowed), -math.inf)
    proba = torch.softmax(masked, dim=1).numpy()
    return np.asarray(proba / proba.sum(axis=1, keepdims=True), dtype=np.float64)


def check_windows(X: np.ndarray, window: int, n_features: int, what: str) -> None:
    """Raise :class:`UserInputError` unless ``X`` is (n, window, n_features)."""
    if X.ndim != 3 or X.shape[1:] != (window, n_features):
        raise UserInputError(
            f"{what} must be windows of shape (n, {window}, {n_features}) like the training "
            f"windows; got {X.shape}"
        )


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled row batches; a last batch of one row joins the one before (batch norm)."""
    batches = list(torch.split(torch.randperm(n, generator=generator), max(1, batch_size)))
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _log_loss(
    network: nn.Module,
    data: tuple[np.ndarray, np.ndarray],
    scaler: FeatureScaler,
    batch_size: int,
) -> float:
    logits = predict_logits(network, data[0], scaler, max(batch_size, PREDICT_BATCH))
    labels = torch.from_numpy(np.asarray(data[1], dtype=np.int64))
    return float(nn.functional.cross_entropy(logits.double(), labels))


def _copy_state(network: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}


@contextmanager
def _quiet_nan_warnings() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield

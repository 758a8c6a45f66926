"""The sequence-model side of every net: fit, predict, save and load around one ``nn.Module``.

A net class only says how to build its module (:meth:`NetModel.build_network`); this base class
splits off the purged validation tail, trains through :mod:`tradebrain.models.nets.training`
and stores the learned state: the network, the feature scaler and the classes seen.

One window at a time (``predict_proba_one``, the newest window of a live run) skips the batch
machinery: the window is standardised into a preallocated (1, window, features) tensor and the
network, traced by TorchScript when that gives the very same logits, runs on it under
``torch.inference_mode``.
"""

from __future__ import annotations

import json
import warnings
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn

from tradebrain.core.atomic_write import write_text_atomic
from tradebrain.models._inputs import full_row, refuse_row, row_shape, softmax_row
from tradebrain.models.base import InputKind, Model, RowPredictor, check_training_data
from tradebrain.models.nets.training import (
    PREDICT_BATCH,
    FeatureScaler,
    TrainingResult,
    TrainingSettings,
    check_windows,
    predict_logits,
    probabilities,
    torch_session,
    train_network,
    validation_split,
)

NETWORK_FILE = "network.pt"
SCALER_MEAN_FILE = "scaler_mean.npy"
SCALER_SCALE_FILE = "scaler_scale.npy"
CLASSES_FILE = "classes.npy"
SHAPE_FILE = "net.json"


class NetModel(Model):
    """Base class of the torch nets: windows (n, window, features) in, (n, 3) probabilities out.

    Subclasses add their architecture hyper-parameters and repeat the training ones below in
    their own ``__init__`` signature (scikit-learn's ``get_params`` reads the signature).

    Parameters
    ----------
    learning_rate, weight_decay : float
        AdamW settings.
    batch_size : int
        Rows per optimiser step (also the prediction batch, at least 1024).
    max_epochs, patience : int
        Training stops after ``max_epochs`` or after ``patience`` epochs without a lower
        validation log loss; the best epoch's weights are kept.
    validation_fraction : float
        Share of the training rows, the last ones in time order, held out for early stopping
        when ``info["validation"]`` gives no explicit ``(X_val, y_val)``; 0 trains on every row
        for ``max_epochs``.
    purge : int
        Rows dropped between the training part and the validation tail; set it to the label
        horizon so that no training label reads into the validation rows.
    class_weighting : bool
        Weight the cross-entropy by inverse class frequency (balanced).
    max_grad_norm : float or None
        Gradient clipping norm.
    threads : int
        ``torch.set_num_threads`` during fit and predict (the caller's value is restored).
    seed : int
        Seeds weight initialisation, dropout and the shuffling order; same seed, same model.
    """

    takes_torch_threads = True

    input_kind: ClassVar[InputKind] = "sequence"

    network_: nn.Module
    scaler_: FeatureScaler
    classes_: np.ndarray
    window_: int
    n_features_: int
    best_epoch_: int
    train_losses_: list[float]
    validation_losses_: list[float]

    def __init__(
        self,
        *,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-2,
        batch_size: int = 256,
        max_epochs: int = 30,
        patience: int = 5,
        validation_fraction: float = 0.2,
        purge: int = 0,
        class_weighting: bool = True,
        max_grad_norm: float | None = 1.0,
        threads: int = 2,
        seed: int = 0,
    ) -> None:
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.purge = purge
        self.class_weighting = class_weighting
        self.max_grad_norm = max_grad_norm
        self.threads = threads
        self.seed = seed

    @abstractmethod
    def build_network(self, window: int, n_features: int) -> nn.Module:
        """Return a fresh module mapping (batch, window, n_features) to logits (batch, 3)."""

    @classmethod
    def fast_params(cls) -> dict[str, Any]:
        """Return hyper-parameters that make a tiny, seconds-long fit (for tests).

        One thread: tests run in parallel processes (pytest-xdist), and two processes of two
        busy-waiting torch threads each on two cores run many times slower than one each.
        """
        return {"max_epochs": 3, "patience": 2, "batch_size": 64, "threads": 1}

    def training_settings(self) -> TrainingSettings:
        """Return the training hyper-parameters as one frozen object."""
        return TrainingSettings(
            **{name: getattr(self, name) for name in TrainingSettings.__dataclass_fields__}
        )

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        feature_names: tuple[str, ...] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Self:
        """Train on windows ``X`` (n, window, features) and labels ``y`` (n,); return self.

        ``info["validation"] = (X_val, y_val)`` replaces the purged validation tail.
        """
        X = np.asarray(X)
        y = np.asarray(y, dtype=np.int64)
        check_training_data(X, y, self.input_kind)
        settings = self.training_settings()
        window, n_features = int(X.shape[1]), int(X.shape[2])
        given = (info or {}).get("validation")
        validation: tuple[np.ndarray, np.ndarray] | None
        if given is not None:
            X_val, y_val = np.asarray(given[0]), np.asarray(given[1], dtype=np.int64)
            check_windows(X_val, window, n_features, "info['validation'] X")
            train, validation = (X, y), (X_val, y_val)
        else:
            train_end, validation_start = validation_split(
                len(y), settings.validation_fraction, settings.purge
            )
            train = (X[:train_end], y[:train_end])
            has_tail = validation_start < len(y)
            validation = (X[validation_start:], y[validation_start:]) if has_tail else None
        scaler = FeatureScaler.fit(train[0])
        with torch_session(settings.threads, settings.seed):
            network = self.build_network(window, n_features)
            result = train_network(network, train, validation, scaler, settings)
        self._set_state(network, scaler, np.unique(train[1]), window, n_features, result)
        self.record_ = self._record(X, y, feature_names, info)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return probabilities (n, 3), columns (down, flat, up); unseen classes get 0."""
        self.check_fitted()
        X = np.asarray(X)
        check_windows(X, self.window_, self.n_features_, "X")
        batch = max(self.batch_size, PREDICT_BATCH)
        with torch_session(self.threads):
            logits = predict_logits(self.network_, X, self.scaler_, batch)
        return probabilities(logits, self.classes_)

    def _row_predictor(self) -> RowPredictor:
        return _WindowPredictor(self)

    def count_parameters(self) -> int:
        """Return the number of trainable parameters of the fitted network."""
        self.check_fitted()
        return sum(p.numel() for p in self.network_.parameters() if p.requires_grad)

    def _set_state(
        self,
        network: nn.Module,
        scaler: FeatureScaler,
        classes: np.ndarray,
        window: int,
        n_features: int,
        result: TrainingResult,
    ) -> None:
        network.eval()
        self.network_ = network
        self.scaler_ = scaler
        self.classes_ = np.asarray(classes, dtype=np.int64)
        self.window_ = window
        self.n_features_ = n_features
        self.best_epoch_ = result.best_epoch
        self.train_losses_ = list(result.train_losses)
        self.validation_losses_ = list(result.validation_losses)

    def _save_state(self, folder: Path) -> None:
        torch.save(self.network_.state_dict(), folder / NETWORK_FILE)
        np.save(folder / SCALER_MEAN_FILE, self.scaler_.mean)
        np.save(folder / SCALER_SCALE_FILE, self.scaler_.scale)
        np.save(folder / CLASSES_FILE, self.classes_)
        shape = {
            "window": self.window_,
            "n_features": self.n_features_,
            "best_epoch": self.best_epoch_,
            "train_losses": self.train_losses_,
            "validation_losses": self.validation_losses_,
        }
        write_text_atomic(json.dumps(shape, indent=2), folder / SHAPE_FILE)

    def _load_state(self, folder: Path) -> None:
        shape = json.loads((folder / SHAPE_FILE).read_text(encoding="utf-8"))
        with torch_session(self.threads, self.seed):
            network = self.build_network(int(shape["window"]), int(shape["n_features"]))
        network.load_state_dict(torch.load(folder / NETWORK_FILE, weights_only=True))
        scaler = FeatureScaler(
            mean=np.load(folder / SCALER_MEAN_FILE), scale=np.load(folder / SCALER_SCALE_FILE)
        )
        result = TrainingResult(
            best_epoch=int(shape["best_epoch"]),
            train_losses=[float(v) for v in shape["train_losses"]],
            validation_losses=[float(v) for v in shape["validation_losses"]],
        )
        classes = np.load(folder / CLASSES_FILE)
        self._set_state(network, scaler, classes, shape["window"], shape["n_features"], result)


class _WindowPredictor:
    """One window (window, features) through the network, with buffers prepared once.

    The same steps as :meth:`NetModel.predict_proba` on a batch of one: standardise in float64
    (non-finite -> 0), cast to float32, run the network, softmax over the classes seen. A live
    run asks for each newest window in turn, which is the last one shifted by one row: then
    only the new row is standardised (the others are, bit for bit, the ones already done).
    """

    def __init__(self, model: NetModel) -> None:
        self._model = model
        self._shape = row_shape(model)
        self._mean = np.asarray(model.scaler_.mean, dtype=np.float64)
        self._scale = np.asarray(model.scaler_.scale, dtype=np.float64)
        self._classes = [int(c) for c in model.classes_]
        self._input = torch.zeros((1, *self._shape), dtype=torch.float32)
        self._window = self._input.numpy()[0]  # shares memory with the tensor
        self._last = b""  # the raw bytes of the window standardised last
        self._last_dtype = np.dtype(np.float32)
        self._row_bytes = 0  # bytes of one row of that window; 0: none yet
        self._row = np.zeros(self._shape[1])  # the newest row, standardised (float64)
        self._unusable = np.zeros(self._shape[1], dtype=bool)
        model.network_.eval()
        self._forward = _traced(model.network_, self._input)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape != self._shape:
            raise refuse_row(self._model, x, self._shape)
        raw = x.tobytes()
        step = self._row_bytes
        if step and x.dtype == self._last_dtype and raw.startswith(memoryview(self._last)[step:]):
            window, row, unusable = self._window, self._row, self._unusable
            window[:-1] = window[1:]
            np.subtract(x[-1], self._mean, out=row)
            np.divide(row, self._scale, out=row)
            np.isfinite(row, out=unusable)
            np.logical_not(unusable, out=unusable)
            np.copyto(row, 0.0, where=unusable)
            window[-1] = row
        else:
            self._window[:] = self._standardised(x)
            self._last_dtype, self._row_bytes = x.dtype, x[-1].nbytes
        self._last = raw
        with torch.inference_mode():
            logits = self._forward(self._input)[0].tolist()
        return full_row(softmax_row([logits[c] for c in self._classes]), self._classes)

    def _standardised(self, rows: np.ndarray) -> np.ndarray:
        scaled: np.ndarray = (np.asarray(rows, dtype=np.float64) - self._mean) / self._scale
        scaled[~np.isfinite(scaled)] = 0.0
        return scaled


def _traced(network: nn.Module, example: torch.Tensor) -> nn.Module:
    """Return ``network`` traced by TorchScript when that computes the very same logits.

    A traced module runs the same kernels without the Python call of every submodule (about
    half of a small net's time on one window); a net whose trace differs (control flow that
    depends on the data) keeps its eager forward.
    """
    probe = torch.randn(*example.shape, generator=torch.Generator().manual_seed(0))
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(network, probe)  # type: ignore[no-untyped-call]
            # Three calls: the profiling executor optimises the graph on the first ones.
            same = all(torch.equal(traced(probe), network(probe)) for _ in range(3))
    except Exception:  # any tracing failure means: run it eagerly
        return network
    return traced if same else network

"""The one model interface: scikit-learn conventions, three classes, honest metadata.

Every model

- takes hyper-parameters as keyword arguments in ``__init__`` and stores them unchanged;
- learns with ``fit(X, y) -> self`` (fitting again forgets the last fit); learned state ends in
  ``_``;
- predicts ``predict_proba(X) -> (n, 3)`` with columns (down, flat, up) — always three columns,
  also when a class never occurred in training (its probability is then 0);
- predicts one input at a time with ``predict_proba_one(x) -> (3,)`` (river's contract), the
  same numbers as the matching row of ``predict_proba``: what a live strategy calls on every
  candle. A model with a faster single-row route than a batch of one builds it in
  :meth:`Model._row_predictor`, so that no caller ever needs to know the model's type;
- records what it was trained on in ``record_`` (:class:`TrainingRecord`);
- saves to and loads from a folder; a load checks the features it is asked to run on.

Tabular models take ``X`` of shape ``(n, features)``; sequence models (``input_kind ==
"sequence"``) take windows ``(n, window, features)`` built by :func:`make_windows`. "One input"
is one row ``(features,)`` for a tabular model and one window ``(window, features)``, oldest row
first, for a sequence model: the newest window, ``make_windows(X, window)[-1]``, gives the vote
for the newest row.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import platform
from abc import ABC, abstractmethod
from collections.abc import Callable, ItemsView, Iterator, KeysView, ValuesView
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from threading import get_ident
from typing import Any, ClassVar, Literal, Self

import numpy as np

from tradebrain.core.atomic_write import write_text_atomic
from tradebrain.exceptions import UserInputError

CLASS_NAMES = ("down", "flat", "up")
CLASSES = np.array([0, 1, 2], dtype=np.int64)
DOWN, FLAT, UP = 0, 1, 2
METADATA_FILE = "model.json"
_LIBRARIES = ("numpy", "polars", "scikit-learn", "lightgbm", "xgboost", "torch")

InputKind = Literal["tabular", "sequence"]
RowPredictor = Callable[[np.ndarray], np.ndarray]
"""One input in (a row, or a sequence model's window), its (3,) probabilities out."""


class NotFittedError(UserInputError):
    """A model was asked to predict or save before it was fitted."""


@dataclass(frozen=True)
class TrainingRecord:
    """What a model was trained on: enough to refuse running it on the wrong inputs."""

    model: str
    params: dict[str, Any]
    feature_names: tuple[str, ...]
    rows: int
    class_counts: tuple[int, int, int]
    data_start: str | None = None  # ISO timestamps of the first and last training candle
    data_end: str | None = None
    label: dict[str, Any] = field(default_factory=dict)
    window: int | None = None
    trained_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    library_versions: dict[str, str] = field(default_factory=lambda: library_versions())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingRecord:
        data = dict(data)
        data["feature_names"] = tuple(data["feature_names"])
        data["class_counts"] = tuple(data["class_counts"])
        return cls(**data)


def library_versions() -> dict[str, str]:
    """Return the versions of Python and of the libraries models depend on."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


class Model(ABC):
    """Base class of every tradebrain model (see the module docstring for the contract)."""

    #: Registry key, e.g. ``"lightgbm"``; used by ``--models`` and by :func:`load_model`.
    name: ClassVar[str]
    #: ``"tabular"``: X is (n, features); ``"sequence"``: X is (n, window, features).
    input_kind: ClassVar[InputKind] = "tabular"
    takes_torch_threads: ClassVar[bool] = False
    """Whether the constructor takes ``threads`` (``models.torch_threads``): the torch nets."""

    record_: TrainingRecord
    #: The fit it belongs to (``record_``), the thread it serves, the single-row route.
    _row_cache: tuple[TrainingRecord, int, RowPredictor] | None = None

    def get_params(self) -> dict[str, Any]:
        """Return the hyper-parameters given to ``__init__`` (by the signatures' names).

        A constructor that takes ``**kwargs`` forwards them to its parent's, so the parent's
        named parameters count too (the nets share their training settings this way).
        """
        import inspect

        names: list[str] = []
        for klass in type(self).__mro__:
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            forwards = False
            for parameter in inspect.signature(init).parameters.values():
                if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                    forwards = True
                elif parameter.name != "self" and parameter.name not in names:
                    names.append(parameter.name)
            if not forwards:
                break
        return {name: getattr(self, name) for name in names}

    def clone(self) -> Self:
        """Return a fresh, untrained copy with the same hyper-parameters."""
        return type(self)(**self.get_params())

    @abstractmethod
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        feature_names: tuple[str, ...] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Self:
        """Learn from ``X`` and labels ``y`` in {0: down, 1: flat, 2: up}; return self.

        ``info`` may carry ``data_start``, ``data_end`` and ``label`` for the record.
        """

    @abstractmethod
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return probabilities of shape (n, 3), columns (down, flat, up), rows summing to 1."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the most probable class per row (0 down, 1 flat, 2 up)."""
        return np.asarray(np.argmax(self.predict_proba(X), axis=1), dtype=np.int64)

    def predict_proba_one(self, x: np.ndarray) -> np.ndarray:
        """Return the probabilities (3,) (down, flat, up) of one input.

        Parameters
        ----------
        x
            Tabular models: one row, shape (features,). Sequence models: one window, shape
            (window, features), oldest row first; it gives the vote for its last row, as
            ``make_windows(X, window)[-1]`` does for the newest row of ``X``.

        Returns
        -------
        np.ndarray
            Shape (3,), float64: the same numbers as ``predict_proba(x[None])[0]`` (within
            floating-point rounding).

        Notes
        -----
        The single-row route (:meth:`_row_predictor`) is built on the first call after each
        fit or load and kept per thread: it may hold buffers that one call fills.
        """
        cached = self._row_cache
        record = getattr(self, "record_", None)
        thread = get_ident()
        if cached is not None and cached[0] is record and cached[1] == thread:
            return cached[2](x)
        if record is None:  # not fitted: predict_proba says so
            return self._batch_of_one(x)
        predictor = self._row_predictor()
        self._row_cache = (record, thread, predictor)
        return predictor(x)

    def _row_predictor(self) -> RowPredictor:
        """Return the function behind :meth:`predict_proba_one` for the current fit.

        The default runs :meth:`predict_proba` on a batch of one; a model overrides it with a
        faster route (prepared once: buffers, a native single-row predictor) that gives the
        same numbers. Called only on a fitted model.
        """
        return self._batch_of_one

    def _batch_of_one(self, x: np.ndarray) -> np.ndarray:
        proba: np.ndarray = self.predict_proba(np.asarray(x)[np.newaxis])[0]
        return proba

    def __getstate__(self) -> dict[str, Any]:
        # The single-row route may hold native handles; a copy rebuilds its own.
        state = self.__dict__.copy()
        state.pop("_row_cache", None)
        return state

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "record_")

    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless :meth:`fit` has run."""
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit first")

    def check_features(self, feature_names: tuple[str, ...] | list[str]) -> None:
        """Raise :class:`UserInputError` unless ``feature_names`` are the ones trained on."""
        self.check_fitted()
        trained = self.record_.feature_names
        given = tuple(feature_names)
        if given == trained:
            return
        missing = [n for n in trained if n not in given]
        extra = [n for n in given if n not in trained]
        detail = (
            f"missing {missing[:10]}{'...' if len(missing) > 10 else ''}; "
            f"new {extra[:10]}{'...' if len(extra) > 10 else ''}"
            if missing or extra
            else "same names in another order"
        )
        raise UserInputError(
            f"model {self.name!r} was trained on {len(trained)} features that differ from the "
            f"{len(given)} given ({detail}); retrain it with `tradebrain train`, or compute the "
            "features it was trained on"
        )

    def save(self, directory: Path | str) -> Path:
        """Save the fitted model to ``directory`` (created); return the folder."""
        self.check_fitted()
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        self._save_state(folder)
        metadata = {"model": self.name, "params": _jsonable(self.get_params()),
                    "record": self.record_.to_json()}  # fmt: skip
        write_text_atomic(json.dumps(metadata, indent=2, sort_keys=True), folder / METADATA_FILE)
        return folder

    @classmethod
    def load(cls, directory: Path | str) -> Model:
        """Load a model saved by :meth:`save` (any model class; see :func:`load_model`)."""
        return load_model(directory)

    @abstractmethod
    def _save_state(self, folder: Path) -> None:
        """Write the learned state (not the metadata) into ``folder``."""

    @abstractmethod
    def _load_state(self, folder: Path) -> None:
        """Read the learned state written by :meth:`_save_state`."""

    def _record(
        self,
        X: np.ndarray,
        y: np.ndarray,
        feature_names: tuple[str, ...] | None,
        info: dict[str, Any] | None,
    ) -> TrainingRecord:
        """Build the training record; call it at the end of ``fit``."""
        n_features = X.shape[-1]
        names = tuple(feature_names) if feature_names is not None else tuple(
            f"f{i}" for i in range(n_features)
        )  # fmt: skip
        if len(names) != n_features:
            raise UserInputError(f"{len(names)} feature names for {n_features} feature columns")
        counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=3)[:3]
        info = info or {}
        return TrainingRecord(
            model=self.name,
            params=_jsonable(self.get_params()),
            feature_names=names,
            rows=int(X.shape[0]),
            class_counts=(int(counts[0]), int(counts[1]), int(counts[2])),
            data_start=info.get("data_start"),
            data_end=info.get("data_end"),
            label=dict(info.get("label", {})),
            window=int(X.shape[1]) if X.ndim == 3 else None,
        )


class ModelRegistry(dict[str, type["Model"]]):
    """Model classes by registry name; some are *declared* and imported on first use.

    The torch nets are declared by :mod:`tradebrain.models` without importing them (torch takes
    seconds to import): ``"cnn" in MODEL_CLASSES`` is true at once, and ``MODEL_CLASSES["cnn"]``
    (or listing every model) imports the module that registers them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.declared: dict[str, str] = {}

    def declare(self, name: str, module: str) -> None:
        """Say that importing ``module`` registers the model ``name``."""
        if not dict.__contains__(self, name):
            self.declared[name] = module

    def __missing__(self, name: str) -> type[Model]:
        module = self.declared.get(name)
        if module is None:
            raise KeyError(name)
        importlib.import_module(module)
        self.declared.pop(name, None)
        if not dict.__contains__(self, name):
            raise KeyError(f"{module} was imported but registered no model {name!r}")
        return dict.__getitem__(self, name)

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or name in self.declared

    def load_all(self) -> None:
        """Import every declared model (listing them all needs their classes)."""
        for module in sorted(set(self.declared.values())):
            importlib.import_module(module)
        self.declared.clear()

    def __iter__(self) -> Iterator[str]:
        self.load_all()
        return super().__iter__()

    def __len__(self) -> int:
        self.load_all()
        return super().__len__()

    def keys(self) -> KeysView[str]:  # type: ignore[override]
        self.load_all()
        return super().keys()

    def values(self) -> ValuesView[type[Model]]:  # type: ignore[override]
        self.load_all()
        return super().values()

    def items(self) -> ItemsView[str, type[Model]]:  # type: ignore[override]
        self.load_all()
        return super().items()


MODEL_CLASSES = ModelRegistry()
"""Every model class by its registry name; filled by :func:`register_model` (and declared
models, imported on first use: see :class:`ModelRegistry`)."""


def register_model(model_class: type[Model]) -> type[Model]:
    """Class decorator: make a model available by its ``name``."""
    MODEL_CLASSES[model_class.name] = model_class
    MODEL_CLASSES.declared.pop(model_class.name, None)
    return model_class


def load_model(directory: Path | str) -> Model:
    """Load any saved model from ``directory``."""
    folder = Path(directory)
    path = folder / METADATA_FILE
    if not path.exists():
        raise UserInputError(f"{folder} holds no saved model ({METADATA_FILE} is missing)")
    metadata = json.loads(path.read_text(encoding="utf-8"))
    name = metadata["model"]
    if name not in MODEL_CLASSES:
        import tradebrain.models  # noqa: F401 - registers the built-in models

    if name not in MODEL_CLASSES:
        raise UserInputError(f"{folder}: unknown model {name!r}; known: {sorted(MODEL_CLASSES)}")
    model = MODEL_CLASSES[name](**metadata["params"])
    model._load_state(folder)
    model.record_ = TrainingRecord.from_json(metadata["record"])
    return model


def check_training_data(X: np.ndarray, y: np.ndarray, input_kind: InputKind) -> None:
    """Raise :class:`UserInputError` for shapes, labels or values a model cannot learn from."""
    want = 3 if input_kind == "sequence" else 2
    if X.ndim != want:
        shape = "(n, window, features)" if want == 3 else "(n, features)"
        raise UserInputError(f"{input_kind} models take X of shape {shape}; got {X.shape}")
    if X.shape[0] != y.shape[0]:
        raise UserInputError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels")
    if X.shape[0] < 2:
        raise UserInputError("need at least 2 training rows")
    if not np.isin(y, CLASSES).all():
        raise UserInputError("labels must be 0 (down), 1 (flat) or 2 (up)")


def full_proba(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Expand probabilities over ``classes`` seen in training to the three columns."""
    out = np.zeros((proba.shape[0], 3), dtype=np.float64)
    out[:, np.asarray(classes, dtype=np.int64)] = proba
    return out


def make_windows(X: np.ndarray, window: int) -> np.ndarray:
    """Return the past-only windows of a (n, features) matrix: (n - window + 1, window, f).

    Window ``i`` holds rows ``i .. i + window - 1`` and belongs to row ``i + window - 1``: it
    never reads a row after the one it predicts for. The result is a read-only view.
    """
    if window < 1 or window > X.shape[0]:
        raise UserInputError(f"window {window} must be between 1 and the {X.shape[0]} rows")
    view = np.lib.stride_tricks.sliding_window_view(X, window, axis=0)  # (n-w+1, f, w)
    return view.transpose(0, 2, 1)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value

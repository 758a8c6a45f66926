"""Live decision inputs: each new candle's feature row and every model's vote, incrementally.

:class:`LiveSignals` is what the hybrid strategy asks on every candle of a paper or live run
(it satisfies :class:`~tradebrain.strategies.hybrid.LiveInputs`). It folds the candle into a
:class:`~tradebrain.features.live.LiveFeatureEngine`, fills missing features with the bundle's
training medians, keeps the last ``window`` rows for the sequence models, and runs every model
of a :class:`~tradebrain.models.bundle.ModelBundle` on that ONE row (tabular) or ONE window
(sequence), calibrated by the bundle's temperatures.

The votes equal what ``bundle.predict_proba(compute_features(every candle so far))`` gives for
the newest row (a test proves it); only the route is shorter. Each known model kind has a
single-row path that skips the batch machinery (a polars frame per call, input checks, thread
pools sized for thousands of rows):

- logistic regression: the affine map and a softmax over three numbers;
- LightGBM: the C API's single-row predictor (``LGBM_BoosterPredictForMatSingleRowFast``), set up
  once, one thread;
- XGBoost: ``XGBoosterPredictFromDense`` on a preallocated row whose array interface and
  prediction config are encoded once, on a one-thread copy of the booster;
- torch nets: the network on a preallocated (1, window, features) tensor that is shifted by one
  scaled row per candle, under ``torch.inference_mode``.

Any other model runs through its own ``predict_proba`` on the one row or window. A model that
raises gives no vote on that candle and logs the error; the live loop goes on.

One instance serves one symbol from one thread.
"""

from __future__ import annotations

import ctypes
import logging
import math
import time
import weakref
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl

from tradebrain.brain.positioning import Forecast
from tradebrain.brain.regime import BRAIN_FEATURE_SETS
from tradebrain.core.events import CandleClosed
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.exceptions import DataFormatError, UserInputError
from tradebrain.features.live import LiveFeatureEngine
from tradebrain.strategies.hybrid import stands_aside

if TYPE_CHECKING:
    from tradebrain.models.base import Model
    from tradebrain.models.bundle import ModelBundle

log = logging.getLogger(__name__)

Vote = tuple[float, float, float]
_INPUTS = ("open", "high", "low", "close", "volume")


class LiveSignals:
    """Features and model votes of each new candle, one candle at a time.

    Parameters
    ----------
    bundle
        The trained models, with their feature names, medians, window and temperatures.
    timeframe
        Candle length (``"1h"``); a candle of another length is refused.
    feature_sets
        Feature sets to compute; by default the ones the bundle was trained on (its manifest).

    Raises
    ------
    UserInputError
        When the feature sets do not produce every feature the models were trained on.
    """

    def __init__(
        self, bundle: ModelBundle, timeframe: str, feature_sets: list[str] | None = None
    ) -> None:
        self.bundle = bundle
        self.timeframe = timeframe
        self._step = timedelta(seconds=timeframe_seconds(timeframe))
        sets = feature_sets if feature_sets is not None else bundle.manifest.get("feature_sets")
        # The brain reads regime features of its own, whatever the models were trained on.
        self.feature_sets: list[str] | None = (
            None if sets is None else list(dict.fromkeys([*sets, *BRAIN_FEATURE_SETS]))
        )
        engine = LiveFeatureEngine(self.feature_sets)
        self.feature_names: tuple[str, ...] = tuple(engine.feature_names)
        column = {name: index for index, name in enumerate(self.feature_names)}
        wanted = dict.fromkeys((*bundle.feature_names, *bundle.sequence_names))
        missing = [name for name in wanted if name not in column]
        if missing:
            raise UserInputError(
                f"the feature sets {self.feature_sets or 'by default'} lack {len(missing)} "
                f"feature(s) the models were trained on ({missing[:5]}...); pass the sets the "
                f"bundle was trained on: {bundle.manifest.get('feature_sets')}"
            )
        self._engine = engine
        self._medians = np.array([bundle.medians.get(name, 0.0) for name in self.feature_names])
        self._filled = np.zeros(len(self.feature_names))
        self._missing = np.zeros(len(self.feature_names), dtype=bool)
        tabular = np.array([column[name] for name in bundle.feature_names], dtype=np.intp)
        sequence = np.array([column[name] for name in bundle.sequence_names], dtype=np.intp)
        self._tabular_columns = None if _is_identity(tabular, column) else tabular
        self._sequence_columns = sequence
        self._tabular_row = np.zeros((1, tabular.size))
        self._sequence_row = np.zeros(sequence.size)
        self._runners: list[tuple[str, _Runner]] = [
            (name, _runner(model, bundle.temperatures.get(name, 1.0), bundle.window))
            for name, model in bundle.models.items()
        ]
        self._sequence_runners = [r for _, r in self._runners if r.sequence]
        self._voters = frozenset(bundle.voters())
        calibration = bundle.calibration
        # Trained without skill: no model votes, but the brain still decides on every candle
        # (expected return 0: it stands aside and says so), as in a backtest.
        self._stands_aside = calibration is not None and stands_aside(calibration.beta)
        self._volatility = (
            column.get(calibration.volatility_feature) if calibration is not None else None
        )
        self._rows = 0  # feature rows folded into the sequence windows
        self._timings: list[float] = [0.0] * (len(self._runners) + 1)

    # --- what the service reads -------------------------------------------------------------
    @property
    def candles_loaded(self) -> int:
        """Candles seen so far: the warm-up history plus every update."""
        return self._engine.bars_seen

    @property
    def sequence_length(self) -> int:
        """Feature rows a sequence model reads per vote (the bundle's window)."""
        return self.bundle.window

    @property
    def model_names(self) -> list[str]:
        """The models that vote, in the bundle's order."""
        return [name for name, _ in self._runners]

    @property
    def ready(self) -> bool:
        """Whether every model votes on the next candle (sequence models need a full window)."""
        return not self._sequence_runners or self._rows >= self.bundle.window

    @property
    def last_timings(self) -> dict[str, float]:
        """Seconds spent per stage of the last update: ``"features"``, then one per model."""
        names = ["features", *self.model_names]
        return dict(zip(names, self._timings, strict=True))

    # --- feeding ----------------------------------------------------------------------------
    def warm_up(self, history: pl.DataFrame) -> None:
        """Start over from ``history`` (candles, oldest first), so that models vote at once.

        The feature engine keeps the tail it needs; the last ``window`` candles are folded in
        one by one, which fills the sequence models' windows exactly as live updates would.

        Raises
        ------
        DataFormatError
            When a candle column is missing or the timestamps do not increase.
        """
        absent = [name for name in ("timestamp", *_INPUTS) if name not in history.columns]
        if absent:
            raise DataFormatError(
                f"warm-up history lacks the candle column(s) {absent}; found {history.columns}"
            )
        self._engine = LiveFeatureEngine(self.feature_sets)
        self._rows = 0
        for runner in self._sequence_runners:
            runner.reset()
        folded = min(history.height, self.bundle.window)
        self._engine.warm_up(history.head(history.height - folded))
        for candle in history.tail(folded).select("timestamp", *_INPUTS).iter_rows(named=True):
            self._fold(candle)

    def update(
        self, candle: CandleClosed
    ) -> tuple[dict[str, float], dict[str, Vote], Forecast | None] | None:
        """Fold ``candle`` in; return its feature row, the votes and their calibration.

        Parameters
        ----------
        candle
            The newest closed candle; it must follow the last one seen.

        Returns
        -------
        tuple or None
            Feature name -> value (NaN while a feature warms up or is undefined), model name
            -> (p_down, p_flat, p_up) of every model with skill (the bundle's voters), and the
            forecast calibration (None for a bundle without one); None while no model can vote
            yet. A sequence model votes once ``window`` feature rows are known. A bundle
            trained without skill (forecast beta 0) has no voters: every candle then gives its
            features, no vote and the calibration, and the brain stands aside.

        Raises
        ------
        DataFormatError
            When the candle is not newer than the last one, or spans another timeframe.
        """
        if candle.close_time - candle.open_time != self._step:
            raise DataFormatError(
                f"candle of {candle.symbol} at {candle.open_time} spans "
                f"{candle.close_time - candle.open_time}; these signals run on {self.timeframe}"
            )
        clock = time.perf_counter
        timings = self._timings
        started = clock()
        row = self._fold(
            {
                "timestamp": candle.open_time,
                "open": candle.open,
                "high": candle.high,
                "low": candle.low,
                "close": candle.close,
                "volume": candle.volume,
            }
        )
        features = dict(zip(self.feature_names, row.tolist(), strict=True))
        columns = self._tabular_columns
        if columns is None:
            self._tabular_row[0] = self._filled
        else:
            np.take(self._filled, columns, out=self._tabular_row[0])
        tabular = self._tabular_row
        full_window = self._rows >= self.bundle.window
        votes: dict[str, Vote] = {}
        finished = clock()
        timings[0] = finished - started
        for index, (name, runner) in enumerate(self._runners, start=1):
            started = finished
            if full_window or not runner.sequence:
                try:
                    vote = runner.vote(tabular)
                except Exception:
                    log.exception("model %r failed on the candle at %s", name, candle.open_time)
                    vote = None
                if vote is not None and name in self._voters:
                    votes[name] = vote
            finished = clock()
            timings[index] = finished - started
        if votes or self._stands_aside:
            return features, votes, self._forecast(row)
        return None

    def _forecast(self, row: np.ndarray) -> Forecast | None:
        calibration = self.bundle.calibration
        if calibration is None or self._volatility is None:
            return None
        volatility = float(row[self._volatility])
        return Forecast(
            calibration.beta, volatility * math.sqrt(calibration.horizon), calibration.horizon
        )

    def _fold(self, candle: dict[str, Any]) -> np.ndarray:
        """Add one candle to the features and the windows; return its raw feature row."""
        row = self._engine.update_row(candle)
        missing, filled = self._missing, self._filled
        np.isnan(row, out=missing)
        np.copyto(filled, row)
        np.copyto(filled, self._medians, where=missing)
        if self._sequence_runners:
            sequence = self._sequence_row
            np.take(filled, self._sequence_columns, out=sequence)
            for runner in self._sequence_runners:
                runner.push(sequence)
        self._rows += 1
        return row


def _is_identity(columns: np.ndarray, all_columns: dict[str, int]) -> bool:
    return columns.size == len(all_columns) and bool(np.all(columns == np.arange(columns.size)))


# --- one model, one row ---------------------------------------------------------------------
class _Runner(Protocol):
    sequence: bool

    def vote(self, row: np.ndarray) -> Vote | None:
        """Return the calibrated vote from the (1, features) tabular row (or own window)."""
        ...

    def push(self, row: np.ndarray) -> None:
        """Add a (sequence features,) median-filled row to the window (sequence models)."""
        ...

    def reset(self) -> None:
        """Forget the window (sequence models)."""
        ...


def _runner(model: Model, temperature: float, window: int) -> _Runner:
    """Return the fastest single-row path for ``model``."""
    from tradebrain.models.baselines import LogisticModel
    from tradebrain.models.boosting import LightGBMModel, XGBoostModel

    if model.input_kind == "sequence":
        from tradebrain.models.nets.net_model import NetModel

        if isinstance(model, NetModel):
            return _NetRunner(model, temperature, window)
        return _SequenceRunner(model, temperature, window)
    if isinstance(model, LogisticModel):
        return _LogisticRunner(model, temperature)
    if isinstance(model, LightGBMModel):
        return _LightGBMRunner(model, temperature)
    if isinstance(model, XGBoostModel):
        return _XGBoostRunner(model, temperature)
    return _TabularRunner(model, temperature)


def _finish(proba: list[float], classes: list[int], temperature: float) -> Vote | None:
    """Spread probabilities over ``classes`` onto (down, flat, up) and apply the temperature.

    The same arithmetic as ``full_proba`` then the bundle's temperature scaling, on three
    Python floats instead of small arrays; None when a value is not finite.
    """
    full = [0.0, 0.0, 0.0]
    for klass, value in zip(classes, proba, strict=True):
        full[klass] = value
    if temperature != 1.0:
        scaled = [math.log(p) / temperature if p > 0.0 else -math.inf for p in full]
        top = max(scaled)
        weights = [math.exp(s - top) for s in scaled]
        total = weights[0] + weights[1] + weights[2]
        full = [w / total for w in weights]
    down, flat, up = full
    if not (math.isfinite(down) and math.isfinite(flat) and math.isfinite(up)):
        return None
    return down, flat, up


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    weights = [math.exp(value - top) for value in logits]
    total = sum(weights)
    return [w / total for w in weights]


def _normalized(values: list[float]) -> list[float]:
    total = sum(values)
    return [v / total for v in values]


class _TabularRunner:
    """Any tabular model: its own ``predict_proba`` on the one row."""

    sequence = False

    def __init__(self, model: Model, temperature: float) -> None:
        self.model = model
        self.temperature = temperature

    def vote(self, row: np.ndarray) -> Vote | None:
        proba = self.model.predict_proba(row)[0].tolist()
        return _finish(proba, [0, 1, 2], self.temperature)

    def push(self, row: np.ndarray) -> None:  # pragma: no cover - tabular models have no window
        return None

    def reset(self) -> None:  # pragma: no cover - tabular models have no window
        return None


class _LogisticRunner(_TabularRunner):
    """Logistic regression: standardise, one (1, f) @ (f, k) product, softmax."""

    def __init__(self, model: Any, temperature: float) -> None:
        super().__init__(model, temperature)
        self.mean = np.asarray(model.mean_, dtype=np.float64)
        self.scale = np.asarray(model.scale_, dtype=np.float64)
        self.coef_t = np.ascontiguousarray(np.asarray(model.coef_, dtype=np.float64).T)
        self.intercept = np.asarray(model.intercept_, dtype=np.float64)
        self.classes = [int(c) for c in model.classes_]
        self.binary = len(self.classes) == 2
        self._scaled = np.zeros((1, self.mean.size))
        self._logits = np.zeros((1, self.coef_t.shape[1]))

    def vote(self, row: np.ndarray) -> Vote | None:
        scaled, logits = self._scaled, self._logits
        np.subtract(row, self.mean, out=scaled)
        np.divide(scaled, self.scale, out=scaled)
        np.matmul(scaled, self.coef_t, out=logits)
        np.add(logits, self.intercept, out=logits)
        values = logits[0].tolist()
        if self.binary:  # scikit-learn's binary case: one logit, for classes_[1]
            values = [0.0, values[0]]
        return _finish(_softmax(values), self.classes, self.temperature)


class _LightGBMRunner(_TabularRunner):
    """LightGBM through the C API's single-row predictor, prepared once, one thread."""

    def __init__(self, model: Any, temperature: float) -> None:
        from lightgbm.basic import _LIB, _safe_call  # type: ignore[attr-defined]

        super().__init__(model, temperature)
        booster = model.booster_
        self.classes = [int(c) for c in model.classes_]
        self._row = np.zeros(booster.num_feature(), dtype=np.float64)
        self._out = np.zeros(len(self.classes), dtype=np.float64)
        self._out_len = ctypes.c_int64(0)
        self._config = ctypes.c_void_p()
        _C_API_PREDICT_NORMAL, _C_API_DTYPE_FLOAT64 = 0, 1
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_C_API_PREDICT_NORMAL),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(booster.best_iteration),  # what Booster.predict uses; <= 0: all
                ctypes.c_int(_C_API_DTYPE_FLOAT64),
                ctypes.c_int32(self._row.size),
                b"num_threads=1",
                ctypes.byref(self._config),
            )
        )
        # Free the config before the booster it points into: the finalizer holds both.
        weakref.finalize(self, _free_fast_config, _LIB, self._config, booster)
        self._check = _safe_call
        self._predict = _LIB.LGBM_BoosterPredictForMatSingleRowFast
        self._row_pointer = self._row.ctypes.data_as(ctypes.c_void_p)
        self._out_pointer = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len_ref = ctypes.byref(self._out_len)

    def vote(self, row: np.ndarray) -> Vote | None:
        self._row[:] = row[0]
        self._check(
            self._predict(self._config, self._row_pointer, self._out_len_ref, self._out_pointer)
        )
        return _finish(_normalized(self._out.tolist()), self.classes, self.temperature)


def _free_fast_config(library: Any, config: ctypes.c_void_p, booster: object) -> None:
    library.LGBM_FastConfigFree(config)


class _XGBoostRunner(_TabularRunner):
    """XGBoost ``PredictFromDense`` on a preallocated row, on a one-thread copy of the booster."""

    def __init__(self, model: Any, temperature: float) -> None:
        from xgboost.core import (  # type: ignore[attr-defined]
            _LIB,
            _check_call,
            _ProxyDMatrix,
            array_interface,
            c_bst_ulong,
            make_jcargs,
        )

        super().__init__(model, temperature)
        booster = model.booster_.copy()
        booster.set_param({"nthread": 1})
        self._booster = booster
        self.classes = [int(c) for c in model.classes_]
        self._row = np.zeros((1, booster.num_features()), dtype=np.float64)
        self._interface = array_interface(self._row)  # holds the row's address: built once
        self._config = make_jcargs(
            type=0, training=False, iteration_begin=0, iteration_end=0, missing=np.nan,
            strict_shape=False, cache_id=0,
        )  # fmt: skip
        self._shape = ctypes.POINTER(c_bst_ulong)()
        self._dims = c_bst_ulong()
        self._preds = ctypes.POINTER(ctypes.c_float)()
        self._predict = _LIB.XGBoosterPredictFromDense
        self._refs = (
            ctypes.byref(self._shape),
            ctypes.byref(self._dims),
            ctypes.byref(self._preds),
        )
        # A proxy matrix kept across calls: without one, every call builds a fresh one, whose
        # set-up reads the cgroup CPU quota files (two file reads, about half the call's time).
        self._proxy = _ProxyDMatrix()
        self._proxy_handle = self._proxy.handle
        self._handle = booster.handle
        self._check = _check_call

    def vote(self, row: np.ndarray) -> Vote | None:
        self._row[0] = row[0]
        shape_ref, dims_ref, preds_ref = self._refs
        self._check(
            self._predict(
                self._handle, self._interface, self._config, self._proxy_handle,
                shape_ref, dims_ref, preds_ref,
            )
        )  # fmt: skip
        preds = self._preds
        proba = [float(preds[k]) for k in range(len(self.classes))]
        return _finish(_normalized(proba), self.classes, self.temperature)


class _SequenceRunner:
    """Any sequence model: its own ``predict_proba`` on the one window."""

    sequence = True

    def __init__(self, model: Model, temperature: float, window: int) -> None:
        self.model = model
        self.temperature = temperature
        self.window = window
        self._rows: np.ndarray | None = None

    def push(self, row: np.ndarray) -> None:
        if self._rows is None:
            self._rows = np.zeros((self.window, row.size))
        rows = self._rows
        rows[:-1] = rows[1:]
        rows[-1] = row

    def reset(self) -> None:
        self._rows = None

    def vote(self, row: np.ndarray) -> Vote | None:
        if self._rows is None:
            return None
        proba = self.model.predict_proba(self._rows[None].astype(np.float32))[0].tolist()
        return _finish(proba, [0, 1, 2], self.temperature)


class _NetRunner(_SequenceRunner):
    """A torch net: each row is scaled once as it arrives; the network runs on one window."""

    def __init__(self, model: Any, temperature: float, window: int) -> None:
        import torch

        super().__init__(model, temperature, window)
        self._torch = torch
        self.network = model.network_
        self.network.eval()
        self.mean = np.asarray(model.scaler_.mean, dtype=np.float64)
        self.scale = np.asarray(model.scaler_.scale, dtype=np.float64)
        self.classes = [int(c) for c in model.classes_]
        self._input = torch.zeros((1, window, self.mean.size), dtype=torch.float32)
        self._window = self._input.numpy()[0]  # shares memory with the tensor
        self._scaled = np.zeros(self.mean.size)
        self.forward = _traced(self.network, self._input)

    def push(self, row: np.ndarray) -> None:
        # The batch path casts the median-filled windows to float32, then standardises them
        # in float64 (non-finite -> 0) and casts back: the same steps, one row at a time.
        scaled = self._scaled
        np.subtract(row.astype(np.float32), self.mean, out=scaled)
        np.divide(scaled, self.scale, out=scaled)
        scaled[~np.isfinite(scaled)] = 0.0
        window = self._window
        window[:-1] = window[1:]
        window[-1] = scaled

    def reset(self) -> None:
        self._window[:] = 0.0

    def vote(self, row: np.ndarray) -> Vote | None:
        with self._torch.inference_mode():
            logits = self.forward(self._input)[0].tolist()
        allowed = [logits[c] for c in self.classes]
        return _finish(_softmax(allowed), self.classes, self.temperature)


def _traced(network: Any, example: Any) -> Any:
    """Return ``network`` traced by TorchScript when that computes the very same logits.

    A traced module runs the same kernels without the Python call of every submodule (about
    half of a small net's time on one window); a net whose trace differs (control flow that
    depends on the data) keeps its eager forward.
    """
    import warnings

    import torch

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

"""Live decision inputs: each new candle's feature row and every model's vote, incrementally.

:class:`LiveSignals` is what the hybrid strategy asks on every candle of a paper or live run
(it satisfies :class:`~tradebrain.strategies.hybrid.LiveInputs`). It folds the candle into a
:class:`~tradebrain.features.live.LiveFeatureEngine`, fills missing features with the bundle's
training medians, keeps the last ``window`` rows for the sequence models, and asks every model
of a :class:`~tradebrain.models.bundle.ModelBundle` for its vote on that ONE row (tabular) or
ONE window (sequence) through the model's public ``predict_proba_one``, calibrated by the
bundle's temperatures.

The votes equal what ``bundle.predict_proba(compute_features(every candle so far))`` gives for
the newest row (a test proves it); only the route is shorter. The single-row speed is each
model's own business (``Model.predict_proba_one``): this module never looks at a model's type.
A model that raises gives no vote on that candle and logs the error; the live loop goes on.

A bundle trained on order-flow or sentiment features reads each candle's order-flow inputs
from ``CandleClosed.flow`` (a websocket feed with ``--order-flow`` attaches them); a candle
without them (REST history, a backfill) has them missing, and missing features take the
bundle's training medians as always.

One instance serves one symbol from one thread.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from tradebrain.brain.positioning import Forecast
from tradebrain.brain.regime import BRAIN_FEATURE_SETS
from tradebrain.core.events import CandleClosed
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.exceptions import DataFormatError, UserInputError
from tradebrain.features.live import LiveFeatureEngine
from tradebrain.features.orderflow_inputs import ORDERFLOW_COLUMNS
from tradebrain.features.registry import CANDLE_INPUTS, select_groups
from tradebrain.models.calibration import temper_row
from tradebrain.strategies.hybrid import stands_aside

if TYPE_CHECKING:
    from tradebrain.models.bundle import ModelBundle

log = logging.getLogger(__name__)

Vote = tuple[float, float, float]
_INPUTS = ("open", "high", "low", "close", "volume")
_NO_FLOW = (math.nan,) * len(ORDERFLOW_COLUMNS)


def _reads_order_flow(sets: list[str] | None) -> bool:
    """Whether the feature ``sets`` read order-flow inputs (None: the candle-only default)."""
    if sets is None:
        return False
    groups = select_groups(sets, ["timestamp", *CANDLE_INPUTS, *ORDERFLOW_COLUMNS])
    return any(set(group.inputs) & set(ORDERFLOW_COLUMNS) for group in groups)


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
        self.reads_flow = _reads_order_flow(self.feature_sets)
        self._inputs = (*_INPUTS, *ORDERFLOW_COLUMNS) if self.reads_flow else _INPUTS
        engine = LiveFeatureEngine(self.feature_sets, inputs=self._inputs)
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
        self._tabular_row = np.zeros(tabular.size)
        self._sequence_row = np.zeros(sequence.size)
        # Per model: its name, its one-input prediction, its temperature, and whether it reads
        # the window (sequence) rather than the row (tabular).
        self._models = [
            (
                name,
                model.predict_proba_one,
                bundle.temperatures.get(name, 1.0),
                model.input_kind == "sequence",
            )
            for name, model in bundle.models.items()
        ]
        self._windowed = any(reads_window for *_, reads_window in self._models)
        # The median-filled rows of the sequence models, in float32 like the batch path's
        # windows, each written twice (at slot and slot + window): the newest ``window`` rows,
        # oldest first, are then always one contiguous slice, with no shifting per candle.
        self._ring = np.zeros((2 * bundle.window, sequence.size), dtype=np.float32)
        self._window = self._ring[: bundle.window]
        self._voters = frozenset(bundle.voters())
        self._muted: frozenset[str] = frozenset()
        calibration = bundle.calibration
        # Trained without skill: no model votes, but the brain still decides on every candle
        # (expected return 0: it stands aside and says so), as in a backtest.
        self._stands_aside = calibration is not None and stands_aside(calibration.beta)
        self._volatility = (
            column.get(calibration.volatility_feature) if calibration is not None else None
        )
        self._rows = 0  # feature rows folded into the sequence windows
        self._timings: list[float] = [0.0] * (len(self._models) + 1)
        self._prepare_models()

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
        return [name for name, *_ in self._models]

    @property
    def ready(self) -> bool:
        """Whether every model votes on the next candle (sequence models need a full window)."""
        return not self._windowed or self._rows >= self.bundle.window

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
        self._engine = LiveFeatureEngine(self.feature_sets, inputs=self._inputs)
        self._rows = 0
        self._ring[:] = 0.0
        self._window = self._ring[: self.bundle.window]
        if self.reads_flow:
            history = history.with_columns(
                pl.lit(math.nan, dtype=pl.Float64).alias(name)
                for name in ORDERFLOW_COLUMNS
                if name not in history.columns
            )
        folded = min(history.height, self.bundle.window)
        self._engine.warm_up(history.head(history.height - folded))
        tail = history.tail(folded).select("timestamp", *self._inputs)
        for candle in tail.iter_rows(named=True):
            self._fold(candle)
        self._prepare_models()

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
        inputs = {
            "timestamp": candle.open_time,
            "open": candle.open,
            "high": candle.high,
            "low": candle.low,
            "close": candle.close,
            "volume": candle.volume,
        }
        if self.reads_flow:
            inputs.update(zip(ORDERFLOW_COLUMNS, candle.flow or _NO_FLOW, strict=True))
        row = self._fold(inputs)
        features = dict(zip(self.feature_names, row.tolist(), strict=True))
        columns = self._tabular_columns
        tabular = self._filled
        if columns is not None:
            tabular = np.take(self._filled, columns, out=self._tabular_row)
        window = self._window
        full_window = self._rows >= self.bundle.window
        votes: dict[str, Vote] = {}
        finished = clock()
        timings[0] = finished - started
        for index, (name, predict_one, temperature, reads_window) in enumerate(
            self._models, start=1
        ):
            started = finished
            if full_window or not reads_window:
                try:
                    proba = predict_one(window if reads_window else tabular)
                    vote = _vote(proba.tolist(), temperature)
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

    def mute(self, models: frozenset[str]) -> None:
        """Weigh ``models``' votes to zero (the supervisor found them failing); an empty set
        gives every voter of the bundle its vote back. With every voter muted the signals
        stand aside, as a bundle trained without skill does."""
        voters = frozenset(self.bundle.voters())
        self._voters = voters - models
        self._muted = voters & models
        calibration = self.bundle.calibration
        trained_flat = calibration is not None and stands_aside(calibration.beta)
        self._stands_aside = trained_flat or (bool(voters) and not self._voters)

    @property
    def muted(self) -> frozenset[str]:
        """Return the voters whose votes are weighed to zero."""
        return self._muted

    def _forecast(self, row: np.ndarray) -> Forecast | None:
        calibration = self.bundle.calibration
        if calibration is None or self._volatility is None:
            return None
        volatility = float(row[self._volatility])
        beta = 0.0 if self._muted and not self._voters else calibration.beta
        return Forecast(beta, volatility * math.sqrt(calibration.horizon), calibration.horizon)

    def _prepare_models(self) -> None:
        """Have every model build its single-row route now, not on the first live candle.

        A model prepares it on its first ``predict_proba_one`` in each thread (a torch net's
        trace takes a tenth of a second); one vote on blank inputs, thrown away, does it.
        """
        row = np.zeros(self._tabular_row.size)
        window = np.zeros_like(self._window)
        for _, predict_one, _, reads_window in self._models:
            try:
                predict_one(window if reads_window else row)
            except Exception:  # a failing model is logged on the candles it fails on
                continue

    def _fold(self, candle: dict[str, Any]) -> np.ndarray:
        """Add one candle to the features and the windows; return its raw feature row."""
        row = self._engine.update_row(candle)
        missing, filled = self._missing, self._filled
        np.isnan(row, out=missing)
        np.copyto(filled, row)
        np.copyto(filled, self._medians, where=missing)
        if self._windowed:
            size, ring, sequence = self.bundle.window, self._ring, self._sequence_row
            slot = self._rows % size
            np.take(filled, self._sequence_columns, out=sequence)
            ring[slot] = sequence
            ring[slot + size] = sequence
            self._window = ring[slot + 1 : slot + 1 + size]
        self._rows += 1
        return row


def _is_identity(columns: np.ndarray, all_columns: dict[str, int]) -> bool:
    return columns.size == len(all_columns) and bool(np.all(columns == np.arange(columns.size)))


def _vote(proba: list[float], temperature: float) -> Vote | None:
    """Return (p_down, p_flat, p_up) scaled by ``temperature``; None unless all are finite.

    The bundle's temperature scaling (:meth:`~tradebrain.models.bundle.ModelBundle.predict_proba`)
    on one row of Python floats.
    """
    if temperature != 1.0:
        proba = temper_row(proba, temperature)
    down, flat, up = proba
    if math.isfinite(down) and math.isfinite(flat) and math.isfinite(up):
        return down, flat, up
    return None

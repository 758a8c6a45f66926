"""Live features: the newest row, from a rolling tail of history, with the batch definitions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import numpy as np
import polars as pl

from tradebrain.exceptions import DataFormatError
from tradebrain.features.compute import frame_to_bars, group_inputs
from tradebrain.features.registry import CANDLE_INPUTS, FeatureGroup, select_groups

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_micros(stamp: object) -> int:
    if isinstance(stamp, datetime):
        if stamp.tzinfo is None:
            raise DataFormatError(f"candle timestamp {stamp} has no time zone; pass it in UTC")
        delta = stamp - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(stamp, int | np.integer):
        return int(stamp)
    raise DataFormatError(
        f"candle timestamp {stamp!r} is neither a datetime (UTC) nor integer microseconds"
    )


class LiveFeatureEngine:
    """Compute the newest feature row each time a candle closes.

    The engine keeps the last ``tail_length`` candles (the largest warm-up of the chosen
    features plus a margin) and runs each feature group's batch function on the last
    ``warmup + 1`` of them, asking only for its newest row. Values therefore equal
    :func:`compute_features` on the whole history once a feature has warmed up; before that
    they are ``None``.

    Parameters
    ----------
    sets
        Feature sets to compute; by default every set that needs only ``inputs``.
    inputs
        Columns each candle carries besides ``timestamp``.
    margin
        Extra bars kept beyond the largest warm-up.
    """

    def __init__(
        self,
        sets: Iterable[str] | None = None,
        *,
        inputs: Iterable[str] = CANDLE_INPUTS,
        margin: int = 16,
    ) -> None:
        self.groups: list[FeatureGroup] = select_groups(sets, ["timestamp", *inputs])
        self.inputs = group_inputs(self.groups)
        self.tail_length = max((group.warmup for group in self.groups), default=0) + 1 + margin
        self.feature_names = [f.name for group in self.groups for f in group.features]
        self._lookbacks = [group.warmup + 1 for group in self.groups]
        self._capacity = 2 * self.tail_length + 64
        self._buffers = {
            name: np.zeros(self._capacity, dtype=np.int64 if name == "timestamp" else np.float64)
            for name in self.inputs
        }
        self._begin = 0
        self._end = 0
        self.bars_seen = 0
        columns = {name: index for index, name in enumerate(self.feature_names)}
        # Per group, what ``update_row`` needs on every candle, looked up once here.
        self._plan = [
            (
                group.compute,
                lookback,
                [(f.name, f.warmup, columns[f.name]) for f in group.features],
            )
            for group, lookback in zip(self.groups, self._lookbacks, strict=True)
        ]
        self._row = np.full(len(self.feature_names), np.nan)

    def warm_up(self, history: pl.DataFrame) -> None:
        """Load the tail of ``history`` (candles, oldest first) without computing features."""
        tail = history.tail(self.tail_length)
        bars = frame_to_bars(tail, self.inputs)
        count = tail.height
        for name, values in bars.items():
            self._buffers[name][:count] = values
        self._begin, self._end = 0, count
        self.bars_seen = history.height

    def _append(self, candle: Mapping[str, object]) -> None:
        if self._end == self._capacity:
            keep = self.tail_length - 1
            for buffer in self._buffers.values():
                buffer[:keep] = buffer[self._end - keep : self._end]
            self._begin, self._end = 0, keep
        stamp = _epoch_micros(candle["timestamp"])
        if self._end > self._begin and stamp <= self._buffers["timestamp"][self._end - 1]:
            raise DataFormatError(
                f"candle at {candle['timestamp']} is not newer than the last candle seen"
            )
        for name, buffer in self._buffers.items():
            buffer[self._end] = stamp if name == "timestamp" else candle[name]  # type: ignore[assignment]
        self._end += 1
        self._begin = max(self._begin, self._end - self.tail_length)
        self.bars_seen += 1

    def update(self, candle: Mapping[str, object]) -> dict[str, float | None]:
        """Add one closed candle and return the feature row for it.

        Parameters
        ----------
        candle
            ``timestamp`` (UTC datetime, or int microseconds since the epoch) and a float per
            input column (``open``, ``high``, ``low``, ``close``, ``volume``).

        Returns
        -------
        dict
            Feature name -> value, in output-column order; ``None`` before warm-up or where
            the value is undefined.
        """
        row = self.update_row(candle).tolist()
        return {
            name: None if value != value else value
            for name, value in zip(self.feature_names, row, strict=True)
        }

    def update_row(self, candle: Mapping[str, object]) -> np.ndarray:
        """Add one closed candle and return its feature row as an array (the fast path).

        Parameters
        ----------
        candle
            As for :meth:`update`.

        Returns
        -------
        np.ndarray
            (features,) float64 in :attr:`feature_names` order; NaN before warm-up or where the
            value is undefined. The engine reuses this array on the next call: copy it to keep.
        """
        self._append(candle)
        row_index = self.bars_seen - 1
        row = self._row
        end, oldest = self._end, self._begin
        buffers = self._buffers.items()
        for compute, lookback, outputs in self._plan:
            # A group's warm-up is, by definition, all the history its newest row depends on.
            begin = max(oldest, end - lookback)
            values = compute({name: buf[begin:end] for name, buf in buffers}, end - begin - 1)
            for name, warmup, column in outputs:
                row[column] = values[name][0] if row_index >= warmup else np.nan
        return row

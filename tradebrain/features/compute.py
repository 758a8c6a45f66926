"""Batch feature computation: a candle frame in, one float64 column per feature out."""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from tradebrain.data.schemas import TIMESTAMP
from tradebrain.exceptions import DataFormatError
from tradebrain.features._frame_block import FeatureBlock
from tradebrain.features.registry import FeatureGroup, select_groups


def frame_to_bars(frame: pl.DataFrame, inputs: Iterable[str]) -> dict[str, np.ndarray]:
    """Return the ``inputs`` columns of ``frame`` as numpy arrays (the compute functions' view).

    ``timestamp`` becomes int64 microseconds since the epoch; every other column float64.

    Raises
    ------
    DataFormatError
        When a column is missing, or the timestamps are not strictly increasing.
    """
    missing = [name for name in inputs if name not in frame.columns]
    if missing:
        raise DataFormatError(
            f"features need columns {sorted(set(inputs))}; missing {missing}; found {frame.columns}"
        )
    bars: dict[str, np.ndarray] = {}
    for name in inputs:
        column = frame.get_column(name)
        if name == "timestamp":
            stamps = column.cast(TIMESTAMP).dt.epoch("us").to_numpy()
            if stamps.shape[0] > 1 and not bool(np.all(np.diff(stamps) > 0)):
                raise DataFormatError(
                    "candle timestamps must be strictly increasing; sort the frame by "
                    "timestamp and drop duplicate candles first"
                )
            bars[name] = np.ascontiguousarray(stamps, dtype=np.int64)
        else:
            bars[name] = np.ascontiguousarray(
                column.cast(pl.Float64).fill_null(np.nan).to_numpy(), dtype=np.float64
            )
    return bars


def group_inputs(groups: Iterable[FeatureGroup]) -> list[str]:
    """Return the input columns the ``groups`` read, ``timestamp`` first."""
    names = {"timestamp"}
    for group in groups:
        names.update(group.inputs)
    return ["timestamp", *sorted(names - {"timestamp"})]


def compute_features(
    candles: pl.DataFrame,
    sets: Iterable[str] | None = None,
    *,
    threads: int | None = None,
) -> pl.DataFrame:
    """Compute features over a whole history of candles.

    Parameters
    ----------
    candles
        One symbol's candles, oldest first, stamped with their open time: ``timestamp``
        (Datetime UTC), ``open``, ``high``, ``low``, ``close``, ``volume``, plus any extra
        per-candle columns that a feature set reads.
    sets
        Feature sets to compute (``["atomic", "indicators"]``); by default every registered
        set whose inputs the frame has.
    threads
        Worker threads (the kernels release the GIL); by default the number of CPUs.

    Returns
    -------
    pl.DataFrame
        One row per candle: ``timestamp`` first, then one Float64 column per feature. A
        feature's first ``warmup`` rows are null; so is any value that is undefined (NaN).

    Raises
    ------
    DataFormatError
        When a needed column is missing or timestamps are not strictly increasing.
    UserInputError
        When a named set is unknown or needs columns the frame lacks.
    """
    groups = select_groups(sets, candles.columns)
    bars = frame_to_bars(candles, group_inputs(groups))
    workers = threads if threads is not None else min(8, os.cpu_count() or 1)
    names = [feature.name for group in groups for feature in group.features]
    block = FeatureBlock(names, candles.height)
    first_columns = np.cumsum([0, *(len(group.features) for group in groups)])

    def run(index: int) -> None:
        # Each worker stores its group's columns at once, so temporaries are freed early.
        group = groups[index]
        result = group.compute(bars, 0)
        for offset, feature in enumerate(group.features):
            values = np.asarray(result[feature.name], dtype=np.float64)
            block.store(int(first_columns[index]) + offset, values, feature.warmup)

    if workers > 1 and len(groups) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, range(len(groups))))
    else:
        for index in range(len(groups)):
            run(index)
    stamps = candles.get_column("timestamp").cast(TIMESTAMP)
    if not names:
        return pl.DataFrame([stamps])
    return block.to_frame().insert_column(0, stamps)

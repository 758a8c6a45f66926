"""Resample candles to a higher timeframe, emitting complete candles only.

A higher candle (``1h``) is built from the source candles (``5m``) that fall into its bucket:
open is the first open, high the highest high, low the lowest low, close the last close and
volume the sum. It is stamped with the bucket's open time. Buckets lie on the UTC epoch grid, so
``1d`` candles open at 00:00 UTC and ``4h`` candles at 00:00, 04:00, 08:00 ... UTC; buckets of a
whole number of weeks open on Monday 00:00 UTC, as exchanges' weekly candles do.

A bucket is emitted only when every one of its source candles is present. A bucket with a missing
source candle, and the still-forming last bucket, are dropped rather than reported with a partial
range: a wrong candle is worse than no candle. :func:`resample_with_report` says which.

Mark-price candles resample the same way (``kind="mark"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from tradebrain.data.schemas import Kind, Schema, conform, schema_for
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.exceptions import UserInputError

_MICROS = 1_000_000
_WEEK_SECONDS = 7 * 86_400
# 1970-01-01 was a Thursday; weekly buckets start on the following Monday, 1970-01-05.
_MONDAY_OFFSET_SECONDS = 4 * 86_400
_RESAMPLABLE = (Kind.CANDLES, Kind.MARK)


@dataclass(frozen=True)
class ResampleReport:
    """What one resampling did: how many buckets it emitted and which it dropped.

    Attributes
    ----------
    source, target
        The timeframes, e.g. ``"5m"`` and ``"1h"``.
    source_rows
        Source candles read.
    buckets_emitted
        Complete target candles returned.
    dropped
        Open times (UTC) of the buckets dropped as incomplete, oldest first; the last one is
        often the still-forming bucket.
    """

    source: str
    target: str
    source_rows: int
    buckets_emitted: int
    dropped: tuple[datetime, ...]

    @property
    def buckets_dropped(self) -> int:
        """Number of buckets dropped because a source candle was missing."""
        return len(self.dropped)


def resample_candles(
    candles: pl.DataFrame,
    source: str,
    target: str,
    *,
    kind: Kind | str = Kind.CANDLES,
) -> pl.DataFrame:
    """Return the complete ``target`` candles built from ``source`` candles.

    Parameters
    ----------
    candles
        Candles of timeframe ``source`` with the columns of ``kind`` (``timestamp, open, high,
        low, close, volume``), one row per candle, each stamped with its open time on the
        ``source`` grid. Any order; extra columns are ignored.
    source, target
        Timeframes such as ``"1m"`` and ``"15m"``; ``target`` must be a whole multiple of
        ``source`` and larger than it.
    kind
        ``"candles"`` (trade prices) or ``"mark"`` (mark-price candles).

    Returns
    -------
    pl.DataFrame
        One row per complete bucket, sorted by ``timestamp``, with exactly the schema of
        ``kind`` (UTC microsecond timestamps, float64 values).

    Raises
    ------
    UserInputError
        When ``target`` is not a larger whole multiple of ``source``, or a source timestamp is
        off the ``source`` grid or repeated, or a value is missing.
    """
    frame, _ = resample_with_report(candles, source, target, kind=kind)
    return frame


def resample_with_report(
    candles: pl.DataFrame,
    source: str,
    target: str,
    *,
    kind: Kind | str = Kind.CANDLES,
) -> tuple[pl.DataFrame, ResampleReport]:
    """Resample like :func:`resample_candles` and also report the buckets dropped."""
    schema = _resamplable_schema(kind)
    ratio = candles_per_bucket(source, target)
    source_us = timeframe_seconds(source) * _MICROS
    target_us = timeframe_seconds(target) * _MICROS
    origin_us = _grid_origin_seconds(timeframe_seconds(target)) * _MICROS
    if origin_us % source_us:
        raise UserInputError(
            f"cannot resample {source} candles to {target}: {target} candles open on Monday "
            f"00:00 UTC, which is not on the {source} grid; resample from 1d or a divisor of it"
        )

    frame = conform(candles, schema.kind).sort("timestamp")
    _check_source(frame, source, source_us)

    epoch_us = pl.col("timestamp").dt.epoch("us")
    buckets = (
        frame.with_columns(
            ((epoch_us - origin_us) // target_us * target_us + origin_us).alias("bucket")
        )
        .group_by("bucket", maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.len().alias("count"),
        )
        .with_columns(pl.col("bucket").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
    )
    complete = buckets.filter(pl.col("count") == ratio)
    dropped = buckets.filter(pl.col("count") != ratio)["bucket"].to_list()
    result = conform(complete.rename({"bucket": "timestamp"}), schema.kind)
    report = ResampleReport(
        source=source,
        target=target,
        source_rows=frame.height,
        buckets_emitted=result.height,
        dropped=tuple(dropped),
    )
    return result, report


def candles_per_bucket(source: str, target: str) -> int:
    """Return how many ``source`` candles make one ``target`` candle (``"5m", "1h"`` -> 12).

    Raises
    ------
    UserInputError
        When ``target`` is not larger than ``source`` or not a whole multiple of it.
    """
    source_seconds = timeframe_seconds(source)
    target_seconds = timeframe_seconds(target)
    if target_seconds <= source_seconds:
        raise UserInputError(
            f"cannot resample {source} candles to {target}: the target timeframe must be larger "
            f"than the source, for example {source} -> {_example_target(source_seconds)}"
        )
    if target_seconds % source_seconds:
        raise UserInputError(
            f"cannot resample {source} candles to {target}: {target} is not a whole multiple of "
            f"{source}; pick a target such as {_example_target(source_seconds)}, or resample "
            "from a finer source"
        )
    return target_seconds // source_seconds


def _resamplable_schema(kind: Kind | str) -> Schema:
    schema = schema_for(kind)
    if schema.kind not in _RESAMPLABLE:
        allowed = ", ".join(k.value for k in _RESAMPLABLE)
        raise UserInputError(f"cannot resample {schema.kind.value} data; only {allowed} resample")
    return schema


def _check_source(frame: pl.DataFrame, source: str, source_us: int) -> None:
    """Fail fast on candles that cannot be bucketed correctly."""
    nulls = {name: n for name, n in zip(frame.columns, frame.null_count().row(0), strict=True) if n}
    if nulls:
        raise UserInputError(
            f"cannot resample candles with missing values {nulls}; drop or repair those rows first"
        )
    epoch_us = pl.col("timestamp").dt.epoch("us")
    source_origin_us = _grid_origin_seconds(source_us // _MICROS) * _MICROS
    off_grid = frame.filter((epoch_us - source_origin_us) % source_us != 0)
    if off_grid.height:
        first = off_grid["timestamp"][0]
        raise UserInputError(
            f"{off_grid.height} candle(s) are off the {source} grid, first at {first}; "
            f"{source} candles must open at whole multiples of {source} since 1970-01-01 UTC — "
            "is the source timeframe right?"
        )
    repeated = frame.filter(pl.col("timestamp").is_duplicated())
    if repeated.height:
        first = repeated["timestamp"][0]
        raise UserInputError(
            f"{repeated.height} rows share a timestamp, first at {first}; keep one candle per "
            "timestamp (the store de-duplicates on write) before resampling"
        )


def _grid_origin_seconds(seconds: int) -> int:
    """Return where the grid of a timeframe of ``seconds`` starts, in seconds after the epoch."""
    return _MONDAY_OFFSET_SECONDS if seconds % _WEEK_SECONDS == 0 else 0


def _example_target(source_seconds: int) -> str:
    for multiple, unit in ((86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")):
        doubled = 2 * source_seconds
        if doubled % multiple == 0:
            return f"{doubled // multiple}{unit}"
    return f"{2 * source_seconds}s"


__all__ = [
    "ResampleReport",
    "candles_per_bucket",
    "resample_candles",
    "resample_with_report",
]

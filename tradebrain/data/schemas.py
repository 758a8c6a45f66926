"""Schemas of the market data tradebrain stores: one polars schema per kind.

Every frame has a ``timestamp`` column (UTC, microseconds). A candle is stamped with its
OPEN time and becomes known only when it closes, at ``timestamp + timeframe``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from tradebrain.exceptions import DataFormatError

TIMESTAMP = pl.Datetime("us", "UTC")


class Kind(StrEnum):
    """The kinds of market data; each has its own schema and de-duplication key."""

    CANDLES = "candles"
    MARK = "mark"
    TRADES = "trades"
    BOOK = "book"
    FUNDING = "funding"


@dataclass(frozen=True)
class Schema:
    """Columns of one kind of data, and the columns that identify a row."""

    kind: Kind
    columns: dict[str, pl.DataType]
    key: tuple[str, ...]
    has_timeframe: bool  # datasets are named by a timeframe (1h); False: by "tick"

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def empty(self) -> pl.DataFrame:
        """Return an empty frame with exactly this schema."""
        return pl.DataFrame(schema=self.columns)


_OHLCV: dict[str, pl.DataType] = {
    "timestamp": TIMESTAMP,
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}

SCHEMAS: dict[Kind, Schema] = {
    Kind.CANDLES: Schema(Kind.CANDLES, dict(_OHLCV), ("timestamp",), True),
    # Mark-price candles: the same columns; volume is 0 where the venue reports none.
    Kind.MARK: Schema(Kind.MARK, dict(_OHLCV), ("timestamp",), True),
    Kind.TRADES: Schema(
        Kind.TRADES,
        {
            "timestamp": TIMESTAMP,
            "id": pl.String(),
            "price": pl.Float64(),
            "amount": pl.Float64(),
            "side": pl.String(),  # the aggressor: "buy" or "sell"
        },
        ("id",),
        False,
    ),
    Kind.BOOK: Schema(
        Kind.BOOK,
        {
            "timestamp": TIMESTAMP,
            "side": pl.String(),  # "bid" or "ask"
            "price": pl.Float64(),
            "amount": pl.Float64(),  # 0 removes the level in an update
            "is_snapshot": pl.Boolean(),
            "update_id": pl.Int64(),  # venue sequence number; null where the venue has none
        },
        ("timestamp", "side", "price", "update_id"),
        False,
    ),
    Kind.FUNDING: Schema(
        Kind.FUNDING,
        {"timestamp": TIMESTAMP, "funding_rate": pl.Float64()},
        ("timestamp",),
        True,  # named by its settlement interval, e.g. 8h
    ),
}


def schema_for(kind: Kind | str) -> Schema:
    """Return the schema of ``kind`` (``"candles"``, ``"trades"``, ...)."""
    try:
        return SCHEMAS[Kind(kind)]
    except ValueError:
        allowed = ", ".join(k.value for k in Kind)
        raise DataFormatError(f"unknown data kind {kind!r}; use one of: {allowed}") from None


def conform(frame: pl.DataFrame, kind: Kind | str) -> pl.DataFrame:
    """Return ``frame`` with exactly the columns of ``kind``, in order, cast to their types.

    Raises :class:`DataFormatError` naming the missing columns; extra columns are dropped.
    """
    schema = schema_for(kind)
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise DataFormatError(
            f"{schema.kind.value} data needs columns {schema.names}; missing {missing}; "
            f"found {frame.columns}"
        )
    return frame.select(
        [pl.col(name).cast(dtype, strict=True) for name, dtype in schema.columns.items()]
    )

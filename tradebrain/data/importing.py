"""Read market data files of many shapes into tradebrain's schemas.

Formats: CSV (also ``.csv.gz``), Parquet, Arrow IPC / feather (freqtrade's ``.feather``), and
JSON: freqtrade's ``[[ms, open, high, low, close, volume], ...]`` candles, freqtrade's
``[[ms, id, type, side, price, amount, cost], ...]`` trades, or a list of records.

Column names match case-insensitively and through common aliases (``date``/``timestamp``/
``time``/``open_time``, ``qty``/``quantity``/``amount`` ...). Timestamps may be epoch seconds,
milliseconds, microseconds or nanoseconds (told apart by magnitude), ISO text with or without an
offset, or datetimes; naive values are taken as UTC. freqtrade stores funding rates as candles
with the rate in ``open``; that layout is recognised.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tradebrain.data.schemas import TIMESTAMP, Kind, schema_for
from tradebrain.data.store import DatasetKey, ParquetStore, WriteResult
from tradebrain.data.validation import ROW, ValidationReport, repair_frame, validate
from tradebrain.exceptions import DataFormatError, DataValidationError

TIME_ALIASES = (
    "timestamp", "date", "time", "open_time", "datetime", "ts",
    "trade_time_ms", "event_time_ms", "transact_time_ms",
)  # fmt: skip
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "open": ("open", "o", "open_price"),
    "high": ("high", "h", "high_price"),
    "low": ("low", "l", "low_price"),
    "close": ("close", "c", "close_price"),
    "volume": ("volume", "v", "vol", "base_volume"),
    "price": ("price", "px"),
    "amount": ("amount", "qty", "quantity", "size", "volume"),
    "id": ("id", "trade_id", "tid", "agg_trade_id"),
    "side": ("side", "taker_side"),
    "funding_rate": ("funding_rate", "fundingrate", "rate", "last_funding_rate"),
    "update_id": ("update_id", "last_update_id", "final_update_id", "sequence", "seq"),
    "is_snapshot": ("is_snapshot", "snapshot"),
}
_BUYER_MAKER = ("is_buyer_maker", "buyer_maker")
_TRADE_SIDES = {"buy": "buy", "b": "buy", "bid": "buy", "sell": "sell", "s": "sell", "ask": "sell"}
_BOOK_SIDES = {
    "bid": "bid", "bids": "bid", "b": "bid", "buy": "bid",
    "ask": "ask", "asks": "ask", "a": "ask", "sell": "ask",
}  # fmt: skip
_FREQTRADE_TRADE_COLUMNS = ("timestamp", "id", "type", "side", "price", "amount", "cost")
_OHLCV = ("timestamp", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class ReadResult:
    """A file read into one kind's schema, before validation."""

    frame: pl.DataFrame  # the kind's columns plus ``_row`` (position in the source)
    source: str
    file_format: str
    first_line: int | None  # line of data row 0 in a text file, else None
    notes: list[str]


def read_market_file(
    path: Path | str,
    kind: Kind | str = Kind.CANDLES,
    *,
    time_column: str | None = None,
    source_symbol: str | None = None,
    book_snapshot: bool = False,
) -> ReadResult:
    """Read ``path`` as ``kind`` data.

    Parameters
    ----------
    path
        A CSV, Parquet, feather/IPC or JSON file.
    kind
        What the file holds: candles, mark, trades, book or funding.
    time_column
        The timestamp column, when the aliases do not find it.
    source_symbol
        For files that hold several symbols in a ``symbol`` column: which one to keep.
    book_snapshot
        For order-book files without a snapshot marker: the rows are full snapshots.
    """
    path = Path(path)
    kind = Kind(kind)
    if not path.exists():
        raise DataFormatError(f"{path} does not exist")
    raw, file_format, first_line = _read_table(path, kind)
    notes: list[str] = []
    raw = raw.rename({c: str(c).strip().lower() for c in raw.columns})
    raw = _pick_symbol(raw, source_symbol, path, notes)
    raw = raw.with_row_index(ROW)
    frame = _to_schema(raw, kind, path, time_column, notes)
    if book_snapshot and kind is Kind.BOOK:
        frame = frame.with_columns(is_snapshot=pl.lit(True))
    return ReadResult(frame, str(path), file_format, first_line, notes)


def _read_table(path: Path, kind: Kind) -> tuple[pl.DataFrame, str, int | None]:
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if suffixes[-1:] == [".parquet"] or suffixes[-1:] == [".pq"]:
            return pl.read_parquet(path), "parquet", None
        if suffixes[-1:] in ([".feather"], [".arrow"], [".ipc"]):
            return pl.read_ipc(path), "feather", None
        if ".json" in suffixes:
            return _read_json(path, kind), "json", None
        if ".csv" in suffixes or suffixes[-1:] == [".txt"]:
            frame = pl.read_csv(path, infer_schema_length=10_000, try_parse_dates=False)
            return frame, "csv", 2
    except (pl.exceptions.PolarsError, OSError, ValueError) as error:
        raise DataFormatError(f"cannot read {path}: {error}") from None
    raise DataFormatError(
        f"{path}: unknown file type {''.join(suffixes) or '(no suffix)'}; "
        "use .csv, .csv.gz, .parquet, .feather or .json"
    )


def _read_json(path: Path, kind: Kind) -> pl.DataFrame:
    opener: Any = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        try:
            payload = json.load(handle)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(payload, list) or not payload:
        raise DataFormatError(f"{path}: expected a non-empty JSON list of rows")
    first = payload[0]
    if isinstance(first, dict):
        return pl.DataFrame(payload, infer_schema_length=None)
    if not isinstance(first, list):
        raise DataFormatError(
            f"{path}: rows must be lists or objects, found {type(first).__name__}"
        )
    if kind is Kind.TRADES and len(first) == len(_FREQTRADE_TRADE_COLUMNS):
        columns: tuple[str, ...] = _FREQTRADE_TRADE_COLUMNS
    elif len(first) >= len(_OHLCV):
        columns = _OHLCV + tuple(f"extra_{i}" for i in range(len(first) - len(_OHLCV)))
    else:
        raise DataFormatError(
            f"{path}: rows have {len(first)} fields; freqtrade candles need "
            "[timestamp_ms, open, high, low, close, volume]"
        )
    rows = [[None if v is None else str(v) if i == 1 and kind is Kind.TRADES else v
             for i, v in enumerate(row)] for row in payload]  # fmt: skip
    return pl.DataFrame(rows, schema=list(columns), orient="row", infer_schema_length=None)


def _pick_symbol(
    raw: pl.DataFrame, source_symbol: str | None, path: Path, notes: list[str]
) -> pl.DataFrame:
    if "symbol" not in raw.columns:
        if source_symbol is not None:
            raise DataFormatError(f"{path} has no 'symbol' column; drop --source-symbol")
        return raw
    symbols = raw.get_column("symbol").cast(pl.String).unique().drop_nulls().sort().to_list()
    if source_symbol is None:
        if len(symbols) > 1:
            raise DataFormatError(
                f"{path} holds {len(symbols)} symbols ({', '.join(symbols[:10])}); "
                "choose one with --source-symbol"
            )
        return raw
    wanted = [s for s in symbols if s.lower() == source_symbol.lower()]
    if not wanted:
        raise DataFormatError(
            f"{path}: symbol {source_symbol!r} not found; it holds {', '.join(symbols[:20])}"
        )
    picked = raw.filter(pl.col("symbol").cast(pl.String) == wanted[0])
    notes.append(f"kept {picked.height} of {raw.height} rows with symbol {wanted[0]}")
    return picked


def _to_schema(
    raw: pl.DataFrame, kind: Kind, path: Path, time_column: str | None, notes: list[str]
) -> pl.DataFrame:
    schema = schema_for(kind)
    time_name = _find_time_column(raw, path, time_column)
    columns: dict[str, pl.Expr] = {"timestamp": _parse_timestamps(raw, time_name, path, notes)}
    if kind is Kind.FUNDING:
        columns["funding_rate"] = _funding_rate(raw, path, notes)
    for name in schema.names:
        if name in columns:
            continue
        source = _find(raw, name)
        if source is not None:
            columns[name] = _convert(raw, kind, name, source)
        elif (fallback := _fallback(raw, kind, name, notes)) is not None:
            columns[name] = fallback
        else:
            wanted = ", ".join(COLUMN_ALIASES.get(name, (name,)))
            raise DataFormatError(
                f"{path}: column '{name}' for {kind.value} data is missing "
                f"(looked for: {wanted}); found: {', '.join(c for c in raw.columns if c != ROW)}. "
                "Column names are matched case-insensitively."
            )
    frame = raw.select(pl.col(ROW), *[expr.alias(name) for name, expr in columns.items()])
    if kind is Kind.TRADES and _find(raw, "id") is None:
        ordinal = pl.int_range(pl.len()).over("timestamp").cast(pl.String)
        frame = frame.with_columns(
            id=pl.col("timestamp").dt.epoch("us").cast(pl.String) + "-" + ordinal
        )
    return frame.select(*schema.names, ROW)


def _find_time_column(raw: pl.DataFrame, path: Path, time_column: str | None) -> str:
    if time_column is not None:
        if time_column.lower() not in raw.columns:
            raise DataFormatError(f"{path}: time column {time_column!r} not found in {raw.columns}")
        return time_column.lower()
    for alias in TIME_ALIASES:
        if alias in raw.columns:
            return alias
    raise DataFormatError(
        f"{path}: no timestamp column; looked for {', '.join(TIME_ALIASES)} (any case); "
        f"found: {', '.join(c for c in raw.columns if c != ROW)}. Name it with --time-column."
    )


def _parse_timestamps(raw: pl.DataFrame, name: str, path: Path, notes: list[str]) -> pl.Expr:
    column = raw.get_column(name)
    dtype = column.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            notes.append(f"'{name}' has no time zone; taken as UTC")
            return pl.col(name).dt.replace_time_zone("UTC").cast(TIMESTAMP)
        return pl.col(name).dt.convert_time_zone("UTC").cast(TIMESTAMP)
    if dtype.is_numeric():
        magnitude = column.drop_nulls().abs().median()
        if magnitude is None:
            raise DataFormatError(f"{path}: column '{name}' has no values")
        unit, factor = _epoch_unit(float(magnitude))  # type: ignore[arg-type]
        notes.append(f"'{name}' read as epoch {unit}")
        micros = (pl.col(name).cast(pl.Float64) * factor).round(0).cast(pl.Int64)
        return pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC")
    if dtype == pl.String:
        parsed = column.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
        failed = parsed.is_null() & column.is_not_null()
        if failed.any():
            first = int(failed.arg_max() or 0)
            raise DataFormatError(
                f"{path}: cannot read {column[first]!r} in column '{name}' (data row {first}) as a "
                "time; use ISO 8601 text such as 2024-01-31T13:00:00Z, or epoch numbers"
            )
        return pl.lit(parsed).cast(TIMESTAMP)
    raise DataFormatError(f"{path}: column '{name}' has type {dtype}, which is not a time")


def _epoch_unit(magnitude: float) -> tuple[str, float]:
    """Tell the epoch unit from a typical value; return it and the factor to microseconds."""
    if magnitude < 1e11:
        return "seconds", 1e6
    if magnitude < 1e14:
        return "milliseconds", 1e3
    if magnitude < 1e17:
        return "microseconds", 1.0
    return "nanoseconds", 1e-3


def _find(raw: pl.DataFrame, name: str) -> str | None:
    for alias in COLUMN_ALIASES.get(name, (name,)):
        if alias in raw.columns:
            return alias
    return None


def _convert(raw: pl.DataFrame, kind: Kind, name: str, source: str) -> pl.Expr:
    target = schema_for(kind).columns[name]
    if name == "side":
        side = pl.col(source).cast(pl.String).str.strip_chars().str.to_lowercase()
        sides = _BOOK_SIDES if kind is Kind.BOOK else _TRADE_SIDES
        return side.replace_strict(sides, default=side)
    if name == "is_snapshot":
        return pl.col(source).cast(pl.Boolean)
    if name == "id":
        return pl.col(source).cast(pl.String)
    if raw.get_column(source).dtype == pl.String and target == pl.Float64():
        return pl.col(source).str.strip_chars().cast(pl.Float64, strict=False)
    return pl.col(source).cast(target, strict=False)


def _fallback(raw: pl.DataFrame, kind: Kind, name: str, notes: list[str]) -> pl.Expr | None:
    """Derived columns for layouts that do not carry ``name`` directly."""
    if name == "side" and kind is Kind.TRADES:
        for column in _BUYER_MAKER:
            if column in raw.columns:
                notes.append(f"side derived from '{column}' (buyer is maker -> aggressor sold)")
                maker = pl.col(column).cast(pl.String).str.to_lowercase().is_in(["true", "1"])
                return pl.when(maker).then(pl.lit("sell")).otherwise(pl.lit("buy"))
    if name == "is_snapshot" and kind is Kind.BOOK:
        if "update_type" in raw.columns:
            kind_text = pl.col("update_type").cast(pl.String).str.to_lowercase()
            return kind_text.str.starts_with("snap")
        notes.append("no snapshot marker; rows are taken as incremental updates")
        return pl.lit(False)
    if name == "update_id" and kind is Kind.BOOK:
        return pl.lit(None, dtype=pl.Int64)
    if name == "volume" and kind is Kind.MARK:
        notes.append("mark-price candles without volume; volume set to 0")
        return pl.lit(0.0)
    return None


def _funding_rate(raw: pl.DataFrame, path: Path, notes: list[str]) -> pl.Expr:
    source = _find(raw, "funding_rate")
    if source is not None:
        return pl.col(source).cast(pl.Float64, strict=False)
    if "open" in raw.columns:
        notes.append("freqtrade funding layout: the rate is read from 'open'")
        return pl.col("open").cast(pl.Float64, strict=False)
    raise DataFormatError(
        f"{path}: no funding rate column (looked for {', '.join(COLUMN_ALIASES['funding_rate'])}, "
        "or freqtrade's layout with the rate in 'open')"
    )


@dataclass(frozen=True)
class ImportResult:
    """What one import did: the validation report, what was dropped and what was stored."""

    key: DatasetKey
    report: ValidationReport
    dropped: pl.DataFrame
    written: WriteResult | None
    notes: list[str]


def import_file(
    path: Path | str,
    store: ParquetStore,
    key: DatasetKey,
    *,
    repair: bool = False,
    allow_gaps: bool = False,
    time_column: str | None = None,
    source_symbol: str | None = None,
    book_snapshot: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Read, validate and store one file as the dataset ``key``.

    Nothing is written when the data breaks a rule, unless ``repair`` drops the offending rows
    (they are returned in ``dropped``). Raises :class:`DataValidationError` with the report.
    """
    read = read_market_file(
        path, key.kind, time_column=time_column, source_symbol=source_symbol,
        book_snapshot=book_snapshot,
    )  # fmt: skip
    timeframe = key.timeframe if key.kind in (Kind.CANDLES, Kind.MARK) else None
    frame, report = validate(
        read.frame, key.kind, timeframe, allow_gaps=allow_gaps,
        source=read.source, first_line=read.first_line,
    )  # fmt: skip
    dropped = frame.clear()
    if not report.ok:
        fixable = any(p.rule != "gap" for p in report.errors)
        if not repair or (not fixable and not allow_gaps):
            hint = " (or --repair to drop the bad rows)" if fixable and not repair else ""
            raise DataValidationError(
                f"{read.source} breaks {len(report.errors)} rule(s); nothing was written{hint}\n"
                + report.summary(),
                report,
            )
        frame, dropped = repair_frame(frame, key.kind, timeframe)
        _, after = validate(frame, key.kind, timeframe, allow_gaps=allow_gaps, source=read.source)
        if not after.ok:
            raise DataValidationError(
                f"{read.source}: still broken after dropping {dropped.height} row(s); "
                "nothing was written\n" + after.summary(),
                after,
            )
    written = None if dry_run else store.write(key, frame.drop(ROW))
    return ImportResult(key, report, dropped, written, read.notes)

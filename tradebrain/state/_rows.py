"""Records ⇄ table rows: timestamps as epoch microseconds, JSON documents as text."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from tradebrain.state.records import (
    CandleRecord,
    EquityPoint,
    FillRecord,
    OrderRecord,
    PositionRecord,
    TradeRecord,
    from_micros,
    to_micros,
)

Row = dict[str, Any]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    raise TypeError(
        f"cannot store a {type(value).__name__} in a JSON document; convert it to a number, "
        "text, list or dict first"
    )


def dump_json(document: Mapping[str, Any]) -> str:
    """Return ``document`` as JSON text (datetimes as ISO text, numpy scalars as numbers)."""
    return json.dumps(document, default=_json_default)


def load_json(text: str) -> dict[str, Any]:
    """Return the dict stored as ``text``."""
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def last_per_key(rows: Iterable[Row], key: tuple[str, ...]) -> list[Row]:
    """Return ``rows`` with one row per key, the last one written, in first-seen order."""
    kept: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        kept[tuple(row[name] for name in key)] = row
    return list(kept.values())


def first_per_key(rows: Iterable[Row], key: tuple[str, ...]) -> list[Row]:
    """Return ``rows`` with one row per key, the first one written."""
    kept: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        kept.setdefault(tuple(row[name] for name in key), row)
    return list(kept.values())


def decision_time(decision: Mapping[str, Any]) -> int:
    """Return the decision's ``timestamp`` (ISO text or datetime) in epoch microseconds.

    A timestamp without an offset is read as UTC, the project's only time zone.
    """
    raw = decision.get("timestamp")
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(
                f"decision timestamp {raw!r} is not ISO 8601 text such as "
                "'2024-01-01T00:00:00+00:00'"
            ) from None
    elif isinstance(raw, datetime):
        moment = raw
    else:
        raise ValueError(
            f"the decision has no usable 'timestamp' (found {raw!r}); the store keys decisions "
            "on (run, symbol, timestamp), so give it as ISO text"
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_micros(moment)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def decision_row(run: str, symbol: str, decision: Mapping[str, Any]) -> Row:
    """Return the table row of one decision dict."""
    regime = decision.get("regime")
    action = decision.get("action")
    return {
        "run": run,
        "symbol": str(decision.get("symbol") or symbol),
        "timestamp": decision_time(decision),
        "action": None if action is None else str(action),
        "confidence": _optional_float(decision.get("confidence")),
        "regime": None if regime is None else str(regime),
        "document": dump_json(decision),
    }


def candle_row(run: str, candle: CandleRecord) -> Row:
    return {
        "run": run,
        "symbol": candle.symbol,
        "timeframe": candle.timeframe,
        "open_time": to_micros(candle.open_time),
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
    }


def candle_record(row: Mapping[str, Any]) -> CandleRecord:
    return CandleRecord(
        symbol=row["symbol"],
        timeframe=row["timeframe"],
        open_time=from_micros(row["open_time"]),
        open=row["open"],
        high=row["high"],
        low=row["low"],
        close=row["close"],
        volume=row["volume"],
    )


_ORDER_TIMES = ("created_at", "updated_at")


def order_row(run: str, order: OrderRecord) -> Row:
    row = _fields(order)
    for name in _ORDER_TIMES:
        row[name] = to_micros(row[name])
    return {"run": run, **row}


def order_record(row: Mapping[str, Any]) -> OrderRecord:
    values = _without_run(row)
    for name in _ORDER_TIMES:
        values[name] = from_micros(values[name])
    values["confidence"] = _nan_if_none(values["confidence"])
    return OrderRecord(**values)


def fill_row(run: str, fill: FillRecord) -> Row:
    return {"run": run, **_fields(fill), "timestamp": to_micros(fill.timestamp)}


def fill_record(row: Mapping[str, Any]) -> FillRecord:
    values = _without_run(row)
    values["timestamp"] = from_micros(values["timestamp"])
    return FillRecord(**values)


def trade_row(run: str, trade: TradeRecord) -> Row:
    row = {"run": run, **_fields(trade)}
    row["entry_time"] = to_micros(trade.entry_time)
    row["exit_time"] = to_micros(trade.exit_time)
    return row


def trade_record(row: Mapping[str, Any]) -> TradeRecord:
    values = _without_run(row)
    values["entry_time"] = from_micros(values["entry_time"])
    values["exit_time"] = from_micros(values["exit_time"])
    values["r_multiple"] = _nan_if_none(values["r_multiple"])
    return TradeRecord(**values)


def position_row(run: str, position: PositionRecord) -> Row:
    return {"run": run, **_fields(position), "opened_at": to_micros(position.opened_at)}


def position_record(row: Mapping[str, Any]) -> PositionRecord:
    values = _without_run(row)
    values["opened_at"] = from_micros(values["opened_at"])
    return PositionRecord(**values)


def equity_row(run: str, point: EquityPoint) -> Row:
    return {"run": run, **_fields(point), "timestamp": to_micros(point.timestamp)}


def equity_record(row: Mapping[str, Any]) -> EquityPoint:
    values = _without_run(row)
    values["timestamp"] = from_micros(values["timestamp"])
    return EquityPoint(**values)


def _fields(record: Any) -> Row:
    # Shallow on purpose: dataclasses.asdict would deep-copy, and every field is a scalar.
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def _without_run(row: Mapping[str, Any]) -> Row:
    return {name: value for name, value in row.items() if name != "run"}


def _nan_if_none(value: float | None) -> float:
    # SQLite stores NaN as NULL; the records' non-optional floats come back as NaN.
    return math.nan if value is None else float(value)

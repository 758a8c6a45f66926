"""Closed candles from a venue's REST OHLCV endpoint, for :mod:`tradebrain.data.stream`.

One span of candles fetched page by page (and how far it is final: a candle is closed only
once the venue served a newer one, or once :data:`PUBLISH_GRACE_S` passed), the rows checked
into a candle frame, and each row made a :class:`~tradebrain.core.events.CandleClosed` event.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import ccxt
import polars as pl

from tradebrain.core.events import CandleClosed, make_candle, to_datetime
from tradebrain.data.exchanges import page_limit
from tradebrain.data.schemas import TIMESTAMP, Kind
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.data.validation import ROW, validate
from tradebrain.exceptions import DataValidationError

PUBLISH_GRACE_S = 60.0
"""A candle the venue has not served this long after its close, nor anything newer, is missing."""

Row = list[Any]
"""One ccxt OHLCV row: ``[open_ms, open, high, low, close, volume]``."""

_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


def closed_span(
    exchange: ccxt.Exchange,
    symbol: str,
    timeframe: str,
    start_ms: int,
    last_open_ms: int,
    now_ms: int,
) -> tuple[list[Row], int]:
    """Return closed candles opening in ``[start_ms, last_open_ms]`` and how far they are final.

    Parameters
    ----------
    exchange, symbol, timeframe
        The ccxt client (markets loaded), a symbol it lists and the candle length.
    start_ms, last_open_ms
        Open times of the first and the last candle wanted (epoch ms); ``last_open_ms`` is
        the newest candle closed at ``now_ms``.
    now_ms
        The clock (epoch ms).

    Returns
    -------
    tuple
        The rows in time order, and the open time through which they are final: through
        ``last_open_ms`` once the venue served a newer candle (the open one), or once
        ``PUBLISH_GRACE_S`` passed since the close; otherwise only through the candle before
        ``last_open_ms`` (or the newest served, if older).
    """
    step_ms = timeframe_seconds(timeframe) * 1000
    limit = page_limit(exchange, symbol)
    rows: list[Row] = []
    cursor_ms, newer = start_ms, False
    while cursor_ms <= last_open_ms:
        page = exchange.fetch_ohlcv(symbol, timeframe, since=cursor_ms, limit=limit)
        fresh = sorted((row for row in page if row[0] >= cursor_ms), key=lambda row: row[0])
        if fresh and fresh[0][0] > cursor_ms and limit is not None and 0 < len(page) < limit:
            # A venue that serves fewer rows than asked and answers the newest ones (OKX's
            # history endpoint) left a hole at the page's start: ask again for what it serves.
            limit = len(page)
            continue
        closed = [row for row in fresh if row[0] <= last_open_ms]
        newer = len(closed) < len(fresh)
        rows.extend(closed)
        if not closed or newer:
            break
        cursor_ms = closed[-1][0] + step_ms
    overdue = now_ms >= last_open_ms + step_ms + PUBLISH_GRACE_S * 1000
    # Only the venue's own newer candle (or the grace period) proves the last one closed:
    # a local clock running ahead must not make a still-forming candle final.
    if newer or overdue:
        return rows, last_open_ms
    # Unproven: final only through the candle before the newest one expected.
    return rows, min(cursor_ms, last_open_ms) - step_ms


def checked_frame(rows: list[Row], source: str, timeframe: str) -> pl.DataFrame:
    """Return ``rows`` as a frame in the candle schema, or raise if they break a data rule.

    Raises
    ------
    DataValidationError
        The venue (named by ``source`` in the message) sent broken candles (high below
        low...).
    """
    frame = pl.DataFrame(
        [row[:6] for row in rows], schema=list(_COLUMNS), orient="row", strict=False
    ).with_columns(
        pl.col("timestamp").cast(pl.Int64).cast(pl.Datetime("ms", "UTC")).cast(TIMESTAMP),
        pl.exclude("timestamp").cast(pl.Float64),
    )
    checked, report = validate(frame, Kind.CANDLES, timeframe, allow_gaps=True, source=source)
    if not report.ok:
        raise DataValidationError(
            f"{source}: the exchange sent candles that break {len(report.errors)} rule(s); "
            f"none of them was streamed\n{report.summary()}",
            report,
        )
    return checked.drop(ROW)


def candle_event(symbol: str, row: Row, step_ms: int) -> CandleClosed:
    """Return the event of one closed candle of ``symbol`` lasting ``step_ms``."""
    open_time = to_datetime(int(row[0]) * 1000)
    close_time = to_datetime((int(row[0]) + step_ms) * 1000)
    prices = (float(value) for value in row[1:6])
    return make_candle(symbol, open_time, close_time, *prices)


def describe_error(error: BaseException | None) -> str:
    """Return ``error`` as one line without URL query strings (they may carry signatures)."""
    if error is None:
        return "none"
    text = re.sub(r"(https?://[^\s?]+)\?\S*", r"\1", f"{type(error).__name__}: {error}")
    return " ".join(text.split())[:300]


def epoch_ms(moment: datetime) -> int:
    """Return ``moment`` in epoch milliseconds (naive means UTC)."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return int(aware.timestamp() * 1000)


def iso_of_ms(ms: int) -> str:
    """Return the ISO 8601 text of epoch milliseconds ``ms`` (UTC)."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()

"""The order flow a live stream saw: trades, book snapshots and funding, per symbol.

A :class:`FlowTape` takes what the websocket streams send (on their own thread) and hands two
readers the same rows:

- the live order-flow inputs of each candle, once the candle is **sealed** (the stream calls
  :meth:`FlowTape.seal` before it yields the candle): :meth:`FlowTape.window` returns the kept
  rows stamped before the seal;
- the Parquet store (:meth:`FlowTape.flush`): the sealed rows not written yet, in the
  ``trades``, ``book`` and ``funding`` schemas, for research and for proving that the live
  inputs equal the batch ones on the recorded stream.

So that both readers see the same tape, a row that arrives stamped before the seal of its
symbol (a straggler: the candle it belongs to was already decided on) is dropped and counted
(``late_trades``, ``late_books``); a trade id seen before is dropped and counted
(``duplicate_trades``). A funding settlement is stamped with its settlement time, or with the
seal when the stream told it only after the candle it settles in had closed: the tape records
when tradebrain could know it.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tradebrain.data.schemas import Kind, conform

BOOK_LEVELS = 20
"""Levels per side kept of each book snapshot (the deepest the order-flow inputs read)."""


@dataclass
class _SymbolTape:
    trades: deque[tuple[int, str, float, float, str]] = field(default_factory=deque)
    trade_ids: set[str] = field(default_factory=set)
    books: deque[tuple[int, int | None, list[tuple[str, float, float]]]] = field(
        default_factory=deque
    )
    funding: list[tuple[int, float]] = field(default_factory=list)
    rate: tuple[float, int] | None = None  # the latest rate and the settlement it is for
    sealed_ms: int = -(2**62)
    saved_trades_ms: int = -(2**62)
    saved_books_ms: int = -(2**62)
    saved_funding: int = 0
    unsaved_trades: list[tuple[int, str, float, float, str]] = field(default_factory=list)
    unsaved_books: list[tuple[int, int | None, list[tuple[str, float, float]]]] = field(
        default_factory=list
    )


class FlowTape:
    """Trades, book snapshots and funding settlements of ``symbols``, thread-safe.

    Parameters
    ----------
    symbols
        The symbols streamed (ccxt names).
    keep_ms
        How far back, from the newest seal, rows are kept in memory for :meth:`window` (the
        order-flow inputs' longest look back); rows not yet flushed are kept until
        :meth:`flush` takes them.
    """

    def __init__(self, symbols: Sequence[str], keep_ms: int) -> None:
        self.symbols = list(symbols)
        self.keep_ms = int(keep_ms)
        self._lock = threading.Lock()
        self._tapes = {symbol: _SymbolTape() for symbol in symbols}
        self._counts = dict.fromkeys(
            ("trades", "duplicate_trades", "late_trades", "books", "late_books", "funding"), 0
        )

    # --- the streams write -----------------------------------------------------------------
    def add_trades(self, symbol: str, trades: Iterable[Mapping[str, Any]]) -> None:
        """Add ccxt trade records (``id``, ``timestamp`` ms, ``price``, ``amount``, ``side``)."""
        with self._lock:
            tape = self._tapes[symbol]
            for trade in trades:
                trade_id = str(trade["id"])
                stamp = int(trade["timestamp"])
                if trade_id in tape.trade_ids:
                    self._counts["duplicate_trades"] += 1
                    continue
                if stamp < tape.sealed_ms:
                    self._counts["late_trades"] += 1
                    continue
                side = "buy" if trade.get("side") == "buy" else "sell"
                row = (stamp, trade_id, float(trade["price"]), float(trade["amount"]), side)
                tape.trade_ids.add(trade_id)
                _insert_sorted(tape.trades, row)
                tape.unsaved_trades.append(row)
                self._counts["trades"] += 1

    def add_book(
        self,
        symbol: str,
        stamp_ms: int,
        bids: Sequence[Sequence[float]],
        asks: Sequence[Sequence[float]],
        update_id: int | None = None,
    ) -> None:
        """Add a snapshot of the book's best :data:`BOOK_LEVELS` levels per side."""
        levels = [("bid", float(p), float(a)) for p, a, *_ in bids[:BOOK_LEVELS] if a > 0]
        levels += [("ask", float(p), float(a)) for p, a, *_ in asks[:BOOK_LEVELS] if a > 0]
        with self._lock:
            tape = self._tapes[symbol]
            if stamp_ms < tape.sealed_ms or (tape.books and stamp_ms <= tape.books[-1][0]):
                self._counts["late_books"] += 1
                return
            snapshot = (int(stamp_ms), None if update_id is None else int(update_id), levels)
            tape.books.append(snapshot)
            tape.unsaved_books.append(snapshot)
            self._counts["books"] += 1

    def add_funding(self, symbol: str, rate: float, settles_ms: int) -> None:
        """Note the rate the stream gives for the settlement at ``settles_ms``.

        When a newer settlement time appears, the rate last given for the older one has
        settled and is recorded.
        """
        if not math.isfinite(rate):
            return
        with self._lock:
            tape = self._tapes[symbol]
            if tape.rate is not None and settles_ms > tape.rate[1]:
                last_rate, settled_ms = tape.rate
                stamp = max(settled_ms, tape.sealed_ms)
                if not tape.funding or stamp > tape.funding[-1][0]:
                    tape.funding.append((stamp, last_rate))
                    self._counts["funding"] += 1
            if tape.rate is None or settles_ms >= tape.rate[1]:
                tape.rate = (float(rate), int(settles_ms))

    def last_book_ms(self, symbol: str) -> int:
        """The time of the newest snapshot of ``symbol`` (very early when none)."""
        with self._lock:
            books = self._tapes[symbol].books
            return books[-1][0] if books else -(2**62)

    # --- the stream seals, the features and the store read ---------------------------------
    def seal(self, symbol: str, close_ms: int) -> None:
        """Freeze everything of ``symbol`` stamped before ``close_ms`` (a candle's close)."""
        with self._lock:
            tape = self._tapes[symbol]
            tape.sealed_ms = max(tape.sealed_ms, int(close_ms))
            horizon = tape.sealed_ms - self.keep_ms
            while tape.trades and tape.trades[0][0] < horizon:
                tape.trade_ids.discard(tape.trades.popleft()[1])
            while tape.books and tape.books[0][0] < horizon and len(tape.books) > 1:
                tape.books.popleft()

    def window(self, symbol: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """The kept trades, book snapshots and funding of ``symbol`` stamped before its seal."""
        with self._lock:
            tape = self._tapes[symbol]
            sealed = tape.sealed_ms
            trades = [row for row in tape.trades if row[0] < sealed]
            books = [snap for snap in tape.books if snap[0] < sealed]
            funding = [row for row in tape.funding if row[0] <= sealed]
        return _trades_frame(trades), _book_frame(books), _funding_frame(funding)

    def flush(self) -> dict[str, dict[Kind, pl.DataFrame]]:
        """Take the sealed rows not written yet: symbol -> kind -> frame (kinds with rows)."""
        taken: dict[str, dict[Kind, pl.DataFrame]] = {}
        with self._lock:
            for symbol, tape in self._tapes.items():
                sealed = tape.sealed_ms
                trades = [row for row in tape.unsaved_trades if row[0] < sealed]
                tape.unsaved_trades = [row for row in tape.unsaved_trades if row[0] >= sealed]
                books = [snap for snap in tape.unsaved_books if snap[0] < sealed]
                tape.unsaved_books = [snap for snap in tape.unsaved_books if snap[0] >= sealed]
                funding = [row for row in tape.funding[tape.saved_funding :] if row[0] <= sealed]
                tape.saved_funding += len(funding)
                found = {
                    Kind.TRADES: _trades_frame(trades),
                    Kind.BOOK: _book_frame(books),
                    Kind.FUNDING: _funding_frame(funding),
                }
                kept = {kind: frame for kind, frame in found.items() if frame.height}
                if kept:
                    taken[symbol] = kept
        return taken

    def give_back(self, taken: Mapping[str, Mapping[Kind, pl.DataFrame]]) -> None:
        """Return rows :meth:`flush` took but could not write, to be written next time."""
        with self._lock:
            for symbol, kinds in taken.items():
                tape = self._tapes[symbol]
                if Kind.TRADES in kinds:
                    rows = kinds[Kind.TRADES].iter_rows()
                    back = [(_ms(t), i, p, a, s) for t, i, p, a, s in rows]
                    tape.unsaved_trades = back + tape.unsaved_trades
                if Kind.BOOK in kinds:
                    tape.unsaved_books = _snapshots(kinds[Kind.BOOK]) + tape.unsaved_books
                if Kind.FUNDING in kinds:
                    tape.saved_funding -= kinds[Kind.FUNDING].height

    def counts(self) -> dict[str, int]:
        """Rows taken, and rows dropped as copies or stragglers, since the start."""
        with self._lock:
            return dict(self._counts)


def _insert_sorted(
    rows: deque[tuple[int, str, float, float, str]], row: tuple[int, str, float, float, str]
) -> None:
    """Append ``row`` keeping time order (a trade may come a little out of order)."""
    if not rows or rows[-1][0] <= row[0]:
        rows.append(row)
        return
    index = len(rows)
    while index > 0 and rows[index - 1][0] > row[0]:
        index -= 1
    rows.insert(index, row)


def _ms(stamp: Any) -> int:
    return int(stamp.timestamp() * 1000)


def _trades_frame(rows: Sequence[tuple[int, str, float, float, str]]) -> pl.DataFrame:
    frame = pl.DataFrame(
        rows, schema=["timestamp", "id", "price", "amount", "side"], orient="row"
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("ms", "UTC")))
    return conform(frame, Kind.TRADES)


def _book_frame(
    snapshots: Sequence[tuple[int, int | None, list[tuple[str, float, float]]]],
) -> pl.DataFrame:
    rows = [
        (stamp, side, price, amount, True, update_id)
        for stamp, update_id, levels in snapshots
        for side, price, amount in levels
    ]
    frame = pl.DataFrame(
        rows,
        schema=[
            ("timestamp", pl.Int64),
            ("side", pl.String),
            ("price", pl.Float64),
            ("amount", pl.Float64),
            ("is_snapshot", pl.Boolean),
            ("update_id", pl.Int64),
        ],
        orient="row",
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("ms", "UTC")))
    return conform(frame, Kind.BOOK)


def _snapshots(
    frame: pl.DataFrame,
) -> list[tuple[int, int | None, list[tuple[str, float, float]]]]:
    found: dict[int, tuple[int | None, list[tuple[str, float, float]]]] = {}
    for stamp, side, price, amount, _, update_id in frame.iter_rows():
        entry = found.setdefault(_ms(stamp), (update_id, []))
        entry[1].append((side, price, amount))
    return [(stamp, update_id, levels) for stamp, (update_id, levels) in found.items()]


def _funding_frame(rows: Sequence[tuple[int, float]]) -> pl.DataFrame:
    frame = pl.DataFrame(
        rows, schema=[("timestamp", pl.Int64), ("funding_rate", pl.Float64)], orient="row"
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("ms", "UTC")))
    return conform(frame, Kind.FUNDING)

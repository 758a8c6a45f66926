"""Live closed candles, and the order flow around them, from a venue's websocket streams.

:class:`WebsocketCandleStream` runs ccxt.pro's clients (``watch_ohlcv``; with a
:class:`~tradebrain.data.flow_tape.FlowTape` also ``watch_trades``, ``watch_order_book`` and,
for perpetuals, funding) on an asyncio loop in a thread of its own, and yields
:class:`~tradebrain.core.events.CandleClosed` events on the caller's thread with the promise of
the REST stream: every closed candle of every symbol exactly once, in time order (symbols in
the given order at equal times), never an open one.

A candle is final when the venue says so: Binance's kline flag ``x`` and OKX's ``confirm``
(read from the raw message by a subclass of the venue's ccxt.pro client, since ccxt's parsed
rows drop it). Everything else goes through REST (:class:`~tradebrain.data.stream.
ExchangeCandleStream`):

- a **gap** (the venue confirms a candle after one the stream has not seen: a disconnect, a
  lost message) is backfilled over REST before the newer candle is yielded;
- a candle the websocket has **not confirmed** ``grace_s`` after its close (a venue without a
  flag, a dropped connection, a venue whose clock runs late) is fetched over REST;
- while the websocket is **down** the stream polls REST every ``poll_interval`` seconds after
  each close (mode ``"rest"``), and goes back to the websocket (mode ``"websocket"``) as soon as
  ccxt has reconnected and a message came through.

Copies and stragglers are harmless: a candle at or before the last one yielded is dropped and
counted (``duplicates``), candles that arrive out of order wait in a buffer keyed by open time.
A venue clock that runs ahead changes nothing: confirmations, not the local clock, make a
websocket candle final.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from functools import partial
from typing import Any

import ccxt

from tradebrain.core.events import CandleClosed
from tradebrain.data._rest_candles import Row, candle_event, describe_error, epoch_ms, iso_of_ms
from tradebrain.data.exchanges import RetryPolicy
from tradebrain.data.flow_tape import FlowTape
from tradebrain.data.stream import ExchangeCandleStream
from tradebrain.exceptions import DataValidationError, UserInputError

log = logging.getLogger(__name__)

ProFactory = Callable[[], Any]
"""Makes a ccxt.pro client (called on the stream's asyncio loop), e.g. ``make_pro_exchange``."""
KlineListener = Callable[[str, str, Row, bool], None]

_WAKE_S = 0.5  # the longest wait for a message, so `stop` is seen soon
_SKEW_NOTICE_MS = 1_000  # a confirmation this long before our clock's close: the venue runs ahead
_MAX_BACKOFF_EXPONENT = 16


class WebsocketCandleStream:
    """Closed candles of ``rest.symbols`` from ccxt.pro websockets, with REST to back them.

    Parameters
    ----------
    rest
        The REST stream of the same venue, symbols and timeframe: it loads and checks the
        markets, serves :meth:`history`, the backfills and the polling while the websocket is
        down.
    pro_factory
        Makes the ccxt.pro client; called on the stream's own asyncio loop. Use
        :func:`pro_client_factory` for a client whose venue flag is read (Binance, OKX).
    grace_s
        Seconds after a candle's close that the websocket has to confirm it before it is
        fetched over REST.
    reorder_s
        How long a newer candle waits for an older one that has not come yet (messages out
        of order) before the older one is fetched over REST.
    retry
        Backoff between websocket reconnection attempts (capped exponential, for ever).
    clock, stop, since
        As for :class:`~tradebrain.data.stream.ExchangeCandleStream`; ``stop`` should be the
        REST stream's too, so a backfill in progress also ends.
    tape
        Where trades, book snapshots and funding from the streams go; None streams candles
        only.
    book_every_s
        The least seconds between two book snapshots put on the tape.
    """

    def __init__(
        self,
        rest: ExchangeCandleStream,
        pro_factory: ProFactory,
        *,
        grace_s: float = 2.0,
        reorder_s: float = 0.25,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
        since: Mapping[str, datetime | None] | None = None,
        tape: FlowTape | None = None,
        book_every_s: float = 1.0,
    ) -> None:
        if grace_s <= 0:
            raise UserInputError(f"grace_s must be positive seconds, got {grace_s}")
        self.rest = rest
        self.symbols = list(rest.symbols)
        self.timeframe = rest.timeframe
        self.tape = tape
        self._factory = pro_factory
        self._grace_ms = round(grace_s * 1000)
        self._poll_ms = round(rest.poll_interval * 1000)
        self._retry = retry or RetryPolicy(base_delay_s=0.5, max_delay_s=15.0)
        self._clock = clock
        self._stop = stop if stop is not None else threading.Event()
        self._book_every_ms = round(book_every_s * 1000)
        self._step_ms = rest._step_ms
        self._resume_ms = {s: epoch_ms(m) for s, m in (since or {}).items() if m is not None}
        self._inbox: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._pending: dict[str, dict[int, Row]] = {s: {} for s in self.symbols}
        self._seen_ms: dict[str, int] = {}  # newest open time the websocket showed per symbol
        self._next_open_ms: dict[str, int] = {}
        self._rest_retry_ms: dict[str, int] = {}
        self._gap_since: dict[str, float] = {}  # monotonic time a gap was first seen
        self._reorder_s = min(reorder_s, grace_s)
        self._rest_failures = 0
        self._halt = threading.Event()  # ends the websocket loop (not the caller's `stop`)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._ws_up = False
        self._connecting = True  # no message and no failure yet
        self._counts = {
            "reconnects": 0,
            "fallbacks": 0,
            "duplicates": 0,
            "backfilled": 0,
            "websocket_candles": 0,
            "rest_candles": 0,
            "rejected": 0,
            "rest_failures": 0,
            "early_closes": 0,
        }
        self._last_error: str | None = None
        self._last_open_ms: dict[str, int] = {}
        self._down_since: float | None = None

    # --- what the feed calls ----------------------------------------------------------------
    def connect(self) -> None:
        """Load the markets over REST and check symbols and timeframe (see the REST stream)."""
        self.rest.connect()

    def history(self, symbol: str, bars: int, until: datetime | None = None) -> Any:
        """The last ``bars`` closed candles of ``symbol`` over REST (see the REST stream)."""
        return self.rest.history(symbol, bars, until)

    def close(self) -> None:
        """Ask the iteration to end; the websocket loop closes its client."""
        self._stop.set()

    def __iter__(self) -> Iterator[CandleClosed]:
        """Yield closed candles as the venue confirms them, until ``stop`` is set."""
        self.connect()
        now_ms = self._now_ms()
        open_now_ms = self._last_closed_open_ms(now_ms) + self._step_ms
        self._next_open_ms = {
            s: self._resume_ms[s] + self._step_ms if s in self._resume_ms else open_now_ms
            for s in self.symbols
        }
        self._start_websocket()
        try:
            while not self._stop.is_set():
                self._drain(self._wait_s())
                for event in self._ready():
                    if self._stop.is_set():
                        return
                    yield event
        finally:
            self._stop_websocket()

    def status(self) -> dict[str, Any]:
        """Return the stream's health for an operator (see :meth:`ExchangeCandleStream.status`).

        Besides ``connected``, ``reconnects``, ``last_error``, ``last_candle`` and ``lag_s``:
        ``mode`` (``"connecting"`` until the first message, ``"websocket"`` while the
        websocket delivers, ``"rest"`` while it is down and REST polls), ``fallbacks`` (times
        it fell back to REST), ``duplicates`` (candles received again and dropped),
        ``backfilled`` (candles fetched over REST after a gap or a missing confirmation),
        ``websocket_candles`` and ``rest_candles`` (yielded, by path), ``rejected``
        (websocket candles that broke a data rule and were fetched again over REST),
        ``rest_failures`` (REST requests that failed and are retried), ``early_closes``
        (candles the venue confirmed over a second before our clock closed them: its clock runs
        ahead) and, with a tape, its counts.
        """
        now_s = self._clock()
        with self._lock:
            last = dict(self._last_open_ms)
            newest_close_ms = max(last.values()) + self._step_ms if last else None
            found: dict[str, Any] = {
                "connected": self._ws_up,
                "mode": "connecting"
                if self._connecting
                else "websocket"
                if self._ws_up
                else "rest",
                **self._counts,
                "last_error": self._last_error,
                "last_candle": {s: iso_of_ms(last[s]) if s in last else None for s in self.symbols},
                "lag_s": None if newest_close_ms is None else now_s - newest_close_ms / 1000,
            }
        if self.tape is not None:
            found["flow"] = self.tape.counts()
        return found

    # --- the caller's thread: order, gaps, fallbacks -----------------------------------------
    def _drain(self, wait_s: float) -> None:
        """Take what the websocket loop sent, waiting up to ``wait_s`` for the first item."""
        try:
            item = self._inbox.get(timeout=max(wait_s, 0.0)) if wait_s > 0 else None
        except queue.Empty:
            return
        while item is not None:
            self._take(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                item = None

    def _take(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "candle":
            _, symbol, row, confirmed = item
            open_ms = int(row[0])
            self._seen_ms[symbol] = max(self._seen_ms.get(symbol, open_ms), open_ms)
            if not confirmed:
                return
            if open_ms < self._next_open_ms[symbol] or open_ms in self._pending[symbol]:
                with self._lock:
                    self._counts["duplicates"] += 1
                    copies = self._counts["duplicates"]
                if copies == 1 or copies % 100 == 0:
                    log.info(
                        "dropped a copy of the %s candle of %s at %s (%d copies so far)",
                        self.timeframe, symbol, iso_of_ms(open_ms), copies,
                    )  # fmt: skip
                return
            self._note_skew(open_ms + self._step_ms)
            self._pending[symbol][open_ms] = row
        elif kind == "up":
            with self._lock:
                if not self._ws_up and self._down_since is not None:
                    self._counts["reconnects"] += 1
                    log.info("websocket back after %.1f s", self._clock() - self._down_since)
                self._ws_up, self._down_since, self._connecting = True, None, False
        elif kind == "down":
            with self._lock:
                self._last_error = item[1]
                if self._ws_up or self._down_since is None:
                    self._counts["fallbacks"] += 1
                    log.warning("websocket down (%s); polling REST until it is back", item[1])
                    self._down_since = self._clock()
                self._ws_up = self._connecting = False

    def _note_skew(self, close_ms: int) -> None:
        """Count (and say, now and then) a venue that confirms candles before our clock closes
        them: its clock runs ahead. Nothing changes for the candles: the venue's word counts."""
        ahead_ms = close_ms - self._now_ms()
        if ahead_ms < _SKEW_NOTICE_MS:
            return
        with self._lock:
            self._counts["early_closes"] += 1
            early = self._counts["early_closes"]
        if early == 1 or early % 100 == 0:
            log.warning(
                "the venue closed a %s candle %.1f s before our clock did (%d times so far): "
                "its clock runs ahead of ours; candles follow the venue's word, check NTP here",
                self.timeframe, ahead_ms / 1000, early,
            )  # fmt: skip

    def _wait_s(self) -> float:
        """Seconds until the next candle's REST deadline, at most :data:`_WAKE_S`."""
        now_ms = self._now_ms()
        wake_ms = min(self._deadline_ms(s) for s in self.symbols)
        if all(self._next_open_ms[s] in self._pending[s] for s in self.symbols):
            return 0.0
        wait_s = min(_WAKE_S, max(0.0, (wake_ms - now_ms) / 1000))
        if self._gap_since:
            wait_s = min(wait_s, self._reorder_s / 2)
        return wait_s

    def _deadline_ms(self, symbol: str) -> int:
        """When the symbol's next candle is fetched over REST if the websocket has not sent it."""
        close_ms = self._next_open_ms[symbol] + self._step_ms
        patience = self._grace_ms if self._ws_up or self._connecting else self._poll_ms
        return max(close_ms + patience, self._rest_retry_ms.get(symbol, 0))

    def _ready(self) -> list[CandleClosed]:
        """Return the candles final in every symbol, in time order; fetch what REST must."""
        now_ms = self._now_ms()
        for symbol in self.symbols:
            self._fill_from_rest(symbol, now_ms)
        through = min(self._reach_ms(symbol) for symbol in self.symbols)
        batches: list[tuple[int, str, list[Row]]] = []
        for index, symbol in enumerate(self.symbols):
            opens = range(self._next_open_ms[symbol], through + 1, self._step_ms)
            rows = [self._pending[symbol][open_ms] for open_ms in opens]
            if not rows:
                continue
            try:
                self.rest.checked(symbol, rows)
            except DataValidationError as error:
                self._reject(symbol, rows, error)
                return []
            batches.append((index, symbol, rows))
        keyed = [
            (int(row[0]), index, symbol, row) for index, symbol, rows in batches for row in rows
        ]
        keyed.sort(key=lambda item: (item[0], item[1]))
        events = []
        for open_ms, _, symbol, row in keyed:
            del self._pending[symbol][open_ms]
            if self.tape is not None:
                self.tape.seal(symbol, open_ms + self._step_ms)
            self._next_open_ms[symbol] = open_ms + self._step_ms
            with self._lock:
                self._last_open_ms[symbol] = open_ms
                self._counts["rest_candles" if _from_rest(row) else "websocket_candles"] += 1
            events.append(candle_event(symbol, row, self._step_ms))
        return events

    def _reach_ms(self, symbol: str) -> int:
        """The open time through which the symbol's candles are final and waiting."""
        reach = self._next_open_ms[symbol] - self._step_ms
        while reach + self._step_ms in self._pending[symbol]:
            reach += self._step_ms
        return reach

    def _fill_from_rest(self, symbol: str, now_ms: int) -> None:
        """Fetch over REST what the websocket left out: a gap, or a candle overdue."""
        start_ms = self._next_open_ms[symbol]
        pending = self._pending[symbol]
        if start_ms in pending:
            self._gap_since.pop(symbol, None)
            return
        newer = [open_ms for open_ms in pending if open_ms > start_ms]
        gap = bool(newer) or self._seen_ms.get(symbol, start_ms) > start_ms
        if gap:
            # A newer candle came first: wait a moment for the older one (messages may come a
            # little out of order) before asking REST.
            noticed = self._gap_since.setdefault(symbol, time.monotonic())
            gap = time.monotonic() - noticed >= self._reorder_s
        if not gap and now_ms < self._deadline_ms(symbol):
            return
        if now_ms < self._rest_retry_ms.get(symbol, 0):
            return
        try:
            rows, final_ms = self.rest.closed_rows(symbol, start_ms, now_ms)
        except ccxt.OperationFailed as error:
            self._rest_failures += 1
            with self._lock:
                self._counts["rest_failures"] += 1
            exponent = min(self._rest_failures - 1, _MAX_BACKOFF_EXPONENT)
            delay_ms = round(self.rest.retry.delay_s(exponent) * 1000)
            self._rest_retry_ms[symbol] = now_ms + delay_ms
            with self._lock:
                self._last_error = describe_error(error)
            log.warning(
                "REST backfill of %s failed (%s); again in %.1f s",
                symbol, describe_error(error), delay_ms / 1000,
            )  # fmt: skip
            return
        except ccxt.BaseError as error:
            raise UserInputError(
                f"{self.rest.venue} refused to serve {self.timeframe} candles of "
                f"{symbol}: {describe_error(error)}; check the symbols and timeframe"
            ) from error
        self._rest_failures = 0
        # Asked: not again before a poll interval has passed (the candle may not be final yet).
        self._rest_retry_ms[symbol] = now_ms + self._poll_ms
        fetched = 0
        for row in rows:
            open_ms = int(row[0])
            if open_ms < start_ms or open_ms > final_ms or open_ms in pending:
                continue
            pending[open_ms] = [*row[:6], _REST]
            fetched += 1
        if fetched:
            with self._lock:
                self._counts["backfilled"] += fetched
            if gap or self._ws_up:
                log.info(
                    "fetched %d %s candle(s) of %s over REST from %s",
                    fetched, self.timeframe, symbol, iso_of_ms(start_ms),
                )  # fmt: skip

    def _reject(self, symbol: str, rows: list[Row], error: DataValidationError) -> None:
        """Candles broke a data rule: drop the websocket's and fetch them again over REST.

        Raises the error when the candles all came from REST: the venue serves broken data,
        and the stream stops as the REST stream does.
        """
        websocket_rows = [row for row in rows if not _from_rest(row)]
        if not websocket_rows:
            raise error
        with self._lock:
            self._counts["rejected"] += len(websocket_rows)
        log.warning(
            "%d websocket candle(s) of %s broke a data rule; fetching them over REST",
            len(websocket_rows), symbol,
        )  # fmt: skip
        for row in websocket_rows:
            del self._pending[symbol][int(row[0])]
        # A candle after the dropped ones has been seen: the next pass backfills the gap.
        self._seen_ms[symbol] = max(self._seen_ms.get(symbol, 0), int(rows[-1][0]) + 1)

    # --- the websocket loop (its own thread) ------------------------------------------------
    def _start_websocket(self) -> None:
        self._halt.clear()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_until_complete, args=(self._run(),), name="ws-stream", daemon=True
        )
        self._thread.start()

    def _stop_websocket(self) -> None:
        self._halt.set()
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            thread.join(timeout=5.0)

    async def _run(self) -> None:
        client = self._factory()
        if hasattr(client, "tb_on_kline"):
            client.tb_on_kline = self._on_kline
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._watch_until_stop(client, "load markets", client.load_markets, None)
            for symbol in self.symbols:
                tasks.append(asyncio.create_task(self._watch_candles(client, symbol)))
                if self.tape is not None:
                    tasks.extend(self._flow_tasks(client, symbol))
            while not self._ended():
                await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await client.close()
            except Exception:  # closing a broken connection may fail; nothing is left to do
                log.debug("closing the ccxt.pro client failed", exc_info=True)

    def _flow_tasks(self, client: Any, symbol: str) -> list[asyncio.Task[None]]:
        """Tasks that put the symbol's trades, book and funding on the tape."""
        tape = self.tape
        assert tape is not None
        plan: list[tuple[str, Callable[[], Any], Callable[[Any], None]]] = []
        has = client.has
        if has.get("watchTrades"):
            trades = _bind(client.watch_trades, symbol)
            plan.append(("trades", trades, partial(tape.add_trades, symbol)))
        if has.get("watchOrderBook"):
            book = _bind(client.watch_order_book, symbol)
            plan.append(("book", book, partial(self._on_book, symbol)))
        if ":" in symbol and (has.get("watchFundingRate") or has.get("watchMarkPrice")):
            method = (
                client.watch_funding_rate
                if has.get("watchFundingRate")
                else client.watch_mark_price
            )
            plan.append(("funding", _bind(method, symbol), partial(_on_funding, tape, symbol)))
        return [
            asyncio.create_task(self._watch_until_stop(client, f"{symbol} {what}", watch, handle))
            for what, watch, handle in plan
        ]

    async def _watch_candles(self, client: Any, symbol: str) -> None:
        reads_flag = hasattr(client, "tb_on_kline")

        def taken(rows: Any) -> None:
            self._inbox.put(("up",))
            if not reads_flag:
                for row in rows or []:  # no venue flag: a newer candle proves the older closed
                    self._inbox.put(("candle", symbol, list(row[:6]), False))

        watch = _bind(client.watch_ohlcv, symbol, self.timeframe)
        await self._watch_until_stop(client, f"{symbol} candles", watch, taken)

    async def _watch_until_stop(
        self,
        client: Any,
        what: str,
        watch: Callable[[], Any],
        handle: Callable[[Any], None] | None,
    ) -> None:
        """Call ``watch`` until ``stop``, handing results on, backing off after failures."""
        failures = 0
        while not self._ended():
            try:
                result = await watch()
            except asyncio.CancelledError:
                raise
            except ccxt.BaseError as error:
                failures += 1
                self._inbox.put(("down", f"{what}: {describe_error(error)}"))
                delay = self._retry.delay_s(min(failures - 1, _MAX_BACKOFF_EXPONENT))
                await asyncio.sleep(delay)
                continue
            except Exception as error:  # a bug in a handler must not end the stream silently
                failures += 1
                log.exception("websocket %s failed", what)
                self._inbox.put(("down", f"{what}: {describe_error(error)}"))
                await asyncio.sleep(self._retry.delay_s(min(failures - 1, 4)))
                continue
            failures = 0
            if handle is None:
                return
            handle(result)

    def _ended(self) -> bool:
        return self._stop.is_set() or self._halt.is_set()

    def _on_kline(self, symbol: str, timeframe: str, row: Row, confirmed: bool) -> None:
        """The venue's raw kline, flag included (called on the websocket loop)."""
        if timeframe == self.timeframe and symbol in self._pending:
            self._inbox.put(("candle", symbol, row, confirmed))

    def _on_book(self, symbol: str, book: Any) -> None:
        assert self.tape is not None
        stamp_ms = book.get("timestamp") or int(self._clock() * 1000)
        if stamp_ms - self.tape.last_book_ms(symbol) < self._book_every_ms:
            return
        self.tape.add_book(symbol, int(stamp_ms), book["bids"], book["asks"], book.get("nonce"))

    # --- time ---------------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _last_closed_open_ms(self, now_ms: int) -> int:
        return (now_ms // self._step_ms - 1) * self._step_ms


_REST = "rest"  # the 7th item of a row fetched over REST


def _from_rest(row: Row) -> bool:
    return len(row) > 6 and row[6] == _REST


def _bind(method: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: method(*args)


def _on_funding(tape: FlowTape, symbol: str, update: Any) -> None:
    """Put a funding update on the tape: ccxt's funding-rate record, or Binance's mark price."""
    rate = update.get("fundingRate")
    next_ms = update.get("fundingTimestamp")
    if rate is None:
        info = update.get("info") or {}
        rate, next_ms = info.get("r"), info.get("T")
    if rate in (None, "") or next_ms in (None, ""):
        return
    tape.add_funding(symbol, float(rate), int(next_ms))


# --- venue clients that report the venue's own "candle closed" flag ---------------------------


Kline = tuple[str, str, Row, bool]  # symbol, timeframe, [open_ms, o, h, l, c, v], closed


def _binance_klines(client: Any, connection: Any, message: Any) -> Iterable[Kline]:
    if not isinstance(message, dict) or message.get("e") != "kline":
        return ()
    kline = message.get("k") or {}
    market_type = "spot" if client.is_spot_url(connection) else "contract"
    symbol = client.safe_symbol(kline.get("s"), None, None, market_type)
    row: Row = [int(kline["t"]), *(float(kline[k]) for k in ("o", "h", "l", "c", "v"))]
    return ((symbol, client.find_timeframe(kline.get("i")), row, bool(kline.get("x"))),)


def _okx_klines(client: Any, connection: Any, message: Any) -> Iterable[Kline]:
    arg = (message.get("arg") if isinstance(message, dict) else None) or {}
    channel = arg.get("channel") or ""
    if not channel.startswith("candle"):
        return ()
    market = client.safe_market(arg.get("instId"))
    symbol = market["symbol"]
    timeframe = client.find_timeframe(channel.removeprefix("candle"))
    found = []
    for raw in message.get("data") or []:
        parsed = client.parse_ohlcv(raw, market)  # ccxt's volume: base units, spot and swap
        row: Row = [int(parsed[0]), *(float(value) for value in parsed[1:6])]
        found.append((symbol, timeframe, row, len(raw) > 8 and str(raw[8]) == "1"))
    return found


_KLINE_READERS: dict[str, Callable[[Any, Any, Any], Iterable[Kline]]] = {
    "binance": _binance_klines,
    "binanceusdm": _binance_klines,
    "okx": _okx_klines,
}
VENUES_WITH_CLOSED_FLAG = tuple(_KLINE_READERS)
"""Venues whose candle messages say when a candle closed; others wait for REST or a newer one."""


def confirming_client_class(name: str) -> type:
    """Return ccxt.pro's client class for ``name``, extended to report the venue's close flag.

    Instances get an attribute ``tb_on_kline``: when set to a callable, it is called as
    ``(symbol, timeframe, row, closed)`` for every candle message, after ccxt has handled it.
    Venues without such a flag get ccxt's own class back.
    """
    import ccxt.pro

    base = getattr(ccxt.pro, name)
    reader = _KLINE_READERS.get(name)
    if reader is None:
        return base  # type: ignore[no-any-return]

    def handle_ohlcv(self: Any, client: Any, message: Any) -> None:
        base.handle_ohlcv(self, client, message)
        listener = self.tb_on_kline
        if listener is None:
            return
        for symbol, timeframe, row, closed in reader(self, client, message):
            listener(symbol, timeframe, row, closed)

    members = {"tb_on_kline": None, "handle_ohlcv": handle_ohlcv}
    return type(f"Confirming{base.__name__}", (base,), members)

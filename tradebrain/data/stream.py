"""Live closed candles from an exchange, polled through ccxt's REST API, for ``serve``.

:class:`ExchangeCandleStream` wakes shortly after each candle closes, asks the venue for every
candle since the last one it delivered, and yields them as
:class:`~tradebrain.core.events.CandleClosed` events: every closed candle of every symbol
exactly once, in time order (symbols in the given order at equal times), never an open one.

When the venue fails (network error, HTTP 429 or 5xx) the stream backs off with its
:class:`~tradebrain.data.exchanges.RetryPolicy` (capped exponential, for as long as it takes),
rebuilds the ccxt client when it was given a factory, and then fetches everything that closed
in the meantime, so an outage delays candles but never drops or repeats one. Starting with
``since`` (the open time of the last candle a runner processed) backfills the candles missed
while it was down.

This is the REST path; :mod:`tradebrain.data.ws_stream` streams through the venue's websockets
and falls back on this class (backfills, and polling while the websockets are down).

The paging through the venue's OHLCV endpoint and the checks of what it sends are in
:mod:`tradebrain.data._rest_candles`; this module keeps the schedule, the retries and the order
of the events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import ccxt
import polars as pl

from tradebrain.core.events import CandleClosed
from tradebrain.data._rest_candles import (
    Row,
    candle_event,
    checked_frame,
    closed_span,
    describe_error,
    epoch_ms,
    iso_of_ms,
)
from tradebrain.data.exchanges import ExchangeLink, RetryPolicy, check_listing, listed_ms
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.exceptions import ExchangeUnavailableError, UserInputError

ExchangeFactory = Callable[[], ccxt.Exchange]
"""Makes a fresh ccxt client, for example ``lambda: make_exchange("binance")``."""

MODES = ("rest",)
_SLEEP_SLICE_S = 1.0  # the longest single sleep, so an injected sleep still sees `stop` soon
_MAX_BACKOFF_EXPONENT = 32
_MAX_EMPTY_REACHES = 8  # history: give up reaching back after this many empty spans
_T = TypeVar("_T")


class ExchangeCandleStream:
    """Closed candles of ``symbols`` from a ccxt exchange, as they close, by REST polling.

    Parameters
    ----------
    exchange
        A ccxt exchange, or a factory that makes one (preferred: after a broken connection the
        stream then rebuilds the client). Its markets are loaded on first use.
    symbols
        Symbols as ccxt names them (``"BTC/USDT"``); events for equal times follow this order.
    timeframe
        Candle timeframe the venue offers (``"1m"``, ``"1h"``...).
    retry
        Backoff between attempts after temporary errors. At start-up and in :meth:`history`
        the call fails after ``retry.retries`` retries; while streaming, the stream keeps
        trying with the capped delay until the venue answers or ``stop`` is set.
    poll_interval
        Seconds after a candle's close before it is asked for, and between asks while the
        venue has not served it yet.
    clock
        Returns the current time in epoch seconds; decides which candles have closed.
    sleep
        Waits a number of seconds; by default waits on ``stop``, so setting it wakes the
        stream at once. An injected sleep is called in slices of at most one second.
    stop
        Set it to end the iteration; by default an event of the stream's own (:meth:`close`).
    since
        Per symbol, the open time of the last candle already processed (naive means UTC):
        iteration starts with the candle after it, backfilling the gap. A symbol not named
        here (or named with None) starts with the candle open now, yielded when it closes.
    mode
        ``"rest"``, the only mode implemented.
    """

    def __init__(
        self,
        exchange: ccxt.Exchange | ExchangeFactory,
        symbols: Sequence[str],
        timeframe: str,
        *,
        retry: RetryPolicy,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
        stop: threading.Event | None = None,
        since: Mapping[str, datetime | None] | None = None,
        mode: str = "rest",
    ) -> None:
        if mode not in MODES:
            raise UserInputError(
                f"stream mode {mode!r} is not available; websocket streaming is not "
                "implemented, use mode='rest' (REST polling)"
            )
        if not symbols:
            raise UserInputError("name at least one symbol to stream, for example BTC/USDT")
        strangers = sorted(set(since or {}) - set(symbols))
        if strangers:
            raise UserInputError(
                f"since names {', '.join(strangers)}, which the stream does not carry; "
                f"it streams {', '.join(symbols)}"
            )
        if poll_interval <= 0:
            raise UserInputError(f"poll_interval must be positive seconds, got {poll_interval}")
        self.symbols = list(symbols)
        self.timeframe = timeframe
        self.retry = retry
        self.poll_interval = float(poll_interval)
        self._poll_ms = round(poll_interval * 1000)
        self._step_ms = timeframe_seconds(timeframe) * 1000
        is_client = isinstance(exchange, ccxt.Exchange)
        self._exchange: ccxt.Exchange | None = exchange if is_client else None
        self._factory: ExchangeFactory | None = None if is_client else exchange
        self._clock = clock
        self._stop = stop if stop is not None else threading.Event()
        self._sleep: Callable[[float], object] = sleep if sleep is not None else self._stop.wait
        self._resume_ms = {
            symbol: epoch_ms(moment)
            for symbol, moment in (since or {}).items()
            if moment is not None
        }
        self._next_open_ms: dict[str, int] = {}
        self._ready = False
        self._lock = threading.Lock()
        self._connected = False
        self._reconnects = 0
        self._last_error: str | None = None
        self._last_open_ms: dict[str, int] = {}

    def connect(self) -> None:
        """Load the venue's markets and check the symbols and timeframe; once only.

        :meth:`history` and iteration call it; call it yourself to fail before warm-up.

        Raises
        ------
        ExchangeUnavailableError
            The venue cannot be reached, or kept failing after every retry.
        UserInputError
            The venue lists no such symbol or offers no such timeframe.
        """
        if self._ready:
            return
        exchange = self._client()
        ExchangeLink(exchange, self.retry).call(
            "load markets", exchange.load_markets, first_contact=True
        )
        check_listing(exchange, self.symbols, [self.timeframe])
        self._ready = True
        with self._lock:
            self._connected = True

    def close(self) -> None:
        """Ask the iteration to end; it returns at its next check, within about a second."""
        self._stop.set()

    def history(self, symbol: str, bars: int, until: datetime | None = None) -> pl.DataFrame:
        """Return the last ``bars`` closed candles of ``symbol``, oldest first, through REST.

        Parameters
        ----------
        symbol
            A symbol the venue lists (not necessarily one of the streamed ones).
        bars
            How many candles to return.
        until
            The open time of the newest candle wanted (naive means UTC); None: the newest
            closed candle.

        Returns
        -------
        A frame in the candle schema: ``timestamp`` (open time, UTC) and ``open``, ``high``,
        ``low``, ``close``, ``volume`` (Float64); fewer than ``bars`` rows only where the venue
        has no more (a young listing, long gaps). For a streamed symbol asked before iteration
        starts, without ``since``, iteration then starts right after the last candle returned,
        so warm-up and stream join without a hole however long the warm-up takes.
        """
        if bars < 1:
            raise UserInputError(f"ask for at least one bar of history, not {bars}")
        self.connect()
        exchange = self._client()
        check_listing(exchange, [symbol], [self.timeframe])
        now_ms = self._now_ms()
        last_open_ms = self._last_closed_open_ms(now_ms)
        if until is not None:
            last_open_ms = min(last_open_ms, epoch_ms(until) // self._step_ms * self._step_ms)
        action = f"fetch {symbol} {self.timeframe} history"
        first_ms = listed_ms(exchange, symbol)
        rows: list[Row] = []
        stop_ms = last_open_ms + self._step_ms  # fetch spans [start, stop), newest first
        reach = bars
        empty_reaches = 0
        while len(rows) < bars and stop_ms > first_ms and empty_reaches < _MAX_EMPTY_REACHES:
            start_ms = max(first_ms, stop_ms - reach * self._step_ms)
            earlier, _ = self._with_retries(
                action, partial(self._span, symbol, start_ms, stop_ms - self._step_ms, now_ms)
            )
            rows = earlier + rows
            empty_reaches = 0 if earlier else empty_reaches + 1
            reach = (bars - len(rows)) * 2**empty_reaches  # gaps: reach further back
            stop_ms = start_ms
        frame = self._checked(symbol, rows[-bars:])
        if rows and symbol in self.symbols and not self._next_open_ms:
            self._resume_ms.setdefault(symbol, int(rows[-1][0]))
        return frame

    def __iter__(self) -> Iterator[CandleClosed]:
        """Yield closed candles as they close, blocking between them, until ``stop`` is set.

        Raises
        ------
        ExchangeUnavailableError, UserInputError
            At start, as :meth:`connect`; later, UserInputError where the venue refuses a
            request outright (a delisted symbol).
        DataValidationError
            The venue served broken candles (high below low...); none of them is yielded.
        """
        self.connect()
        if not self._next_open_ms:
            open_now_ms = self._last_closed_open_ms(self._now_ms()) + self._step_ms
            self._next_open_ms = {
                symbol: self._resume_ms[symbol] + self._step_ms
                if symbol in self._resume_ms
                else open_now_ms
                for symbol in self.symbols
            }
        failures = 0
        while not self._stop.is_set():
            now_ms = self._now_ms()
            try:
                if failures:
                    self._reconnect()
                events, through_ms = self._collect(now_ms)
            except ccxt.OperationFailed as error:
                failures += 1
                self._lost(error)
                self._pause(self.retry.delay_s(min(failures - 1, _MAX_BACKOFF_EXPONENT)))
                continue
            except ccxt.BaseError as error:
                raise UserInputError(
                    f"{self._client().id} refused to serve {self.timeframe} candles: "
                    f"{describe_error(error)}; check the symbols and timeframe"
                ) from error
            with self._lock:
                self._connected = True
                if failures:
                    self._reconnects += 1
            failures = 0
            for event in events:
                if self._stop.is_set():
                    return
                self._delivered(event)
                yield event
            for symbol in self.symbols:
                self._next_open_ms[symbol] = max(
                    self._next_open_ms[symbol], through_ms + self._step_ms
                )
            if through_ms >= self._last_closed_open_ms(now_ms):
                # Everything closed is out: sleep until the open candle has closed.
                self._pause_until_ms(through_ms + 2 * self._step_ms + self._poll_ms)
            else:
                self._pause(self.poll_interval)

    def status(self) -> dict[str, Any]:
        """Return the stream's health for an operator.

        Returns
        -------
        ``connected`` (bool), ``mode`` (``"rest"``), ``reconnects`` (outages recovered from),
        ``last_error`` (text without URL query strings, or None), ``last_candle`` (per symbol,
        the ISO open time of the last candle yielded, or None) and ``lag_s`` (seconds from the
        close of the newest candle yielded to now, or None).
        """
        now_s = self._clock()
        with self._lock:
            last = dict(self._last_open_ms)
            newest_close_ms = max(last.values()) + self._step_ms if last else None
            return {
                "connected": self._connected,
                "mode": "rest",
                "reconnects": self._reconnects,
                "last_error": self._last_error,
                "last_candle": {
                    symbol: iso_of_ms(last[symbol]) if symbol in last else None
                    for symbol in self.symbols
                },
                "lag_s": None if newest_close_ms is None else now_s - newest_close_ms / 1000,
            }

    def _collect(self, now_ms: int) -> tuple[list[CandleClosed], int]:
        """Fetch what closed since each symbol's last candle; return it and the bound.

        The bound is the open time through which every symbol is complete: a symbol whose
        newest candle the venue has not served yet holds the others back, so that events stay
        in time order. Candles after the bound are dropped and fetched again next time.
        """
        last_open_ms = self._last_closed_open_ms(now_ms)
        through_ms = last_open_ms
        fetched: dict[str, list[Row]] = {}
        for symbol in self.symbols:
            start_ms = self._next_open_ms[symbol]
            if start_ms > last_open_ms:
                continue
            rows, complete_ms = self._span(symbol, start_ms, last_open_ms, now_ms)
            fetched[symbol] = rows
            through_ms = min(through_ms, complete_ms)
        keyed: list[tuple[int, int, CandleClosed]] = []
        for index, symbol in enumerate(self.symbols):
            rows = [row for row in fetched.get(symbol, []) if row[0] <= through_ms]
            self._checked(symbol, rows)
            keyed.extend((row[0], index, candle_event(symbol, row, self._step_ms)) for row in rows)
        keyed.sort(key=lambda item: (item[0], item[1]))
        return [event for _, _, event in keyed], through_ms

    def _with_retries(self, action: str, fetch: Callable[[], _T]) -> _T:
        """Return ``fetch()``, retrying temporary errors ``retry.retries`` times."""
        last_error: ccxt.BaseError | None = None
        for attempt in range(self.retry.retries + 1):
            if attempt:
                self._pause(self.retry.delay_s(attempt - 1))
            if self._stop.is_set():
                raise ExchangeUnavailableError(f"stopped before managing to {action}")
            try:
                return fetch()
            except ccxt.OperationFailed as error:
                last_error = error
                self._lost(error)
            except ccxt.BaseError as error:
                raise UserInputError(
                    f"{self._client().id} refused to {action}: {describe_error(error)}; "
                    "check the symbol and timeframe"
                ) from error
        raise ExchangeUnavailableError(
            f"{self._client().id} kept failing to {action}; last error: "
            f"{describe_error(last_error)}; the exchange is down or limits requests, so wait a few "
            "minutes and start again"
        ) from last_error

    def _client(self) -> ccxt.Exchange:
        if self._exchange is None:
            assert self._factory is not None
            self._exchange = self._factory()
        return self._exchange

    def _reconnect(self) -> None:
        """Replace the client by a fresh one from the factory and load its markets."""
        if self._factory is None:
            return
        fresh = self._factory()
        fresh.load_markets()
        old, self._exchange = self._exchange, fresh
        session = getattr(old, "session", None)
        if session is not None:
            session.close()

    def _lost(self, error: BaseException) -> None:
        with self._lock:
            self._connected = False
            self._last_error = describe_error(error)

    def _delivered(self, event: CandleClosed) -> None:
        open_ms = int(event.open_time.timestamp() * 1000)
        self._next_open_ms[event.symbol] = open_ms + self._step_ms
        with self._lock:
            self._last_open_ms[event.symbol] = open_ms

    def closed_rows(self, symbol: str, start_ms: int, now_ms: int) -> tuple[list[Row], int]:
        """One attempt to fetch the closed candles of ``symbol`` from ``start_ms`` on.

        Returns the rows and the open time through which they are final (see
        :func:`~tradebrain.data._rest_candles.closed_span`); raises ccxt's errors as they come,
        for a caller that keeps its own schedule of retries (the websocket stream's backfill).
        """
        self.connect()
        return self._span(symbol, start_ms, self._last_closed_open_ms(now_ms), now_ms)

    @property
    def venue(self) -> str:
        """The ccxt id of the venue (``"binance"``)."""
        return str(self._client().id)

    def checked(self, symbol: str, rows: list[Row]) -> pl.DataFrame:
        """Return ``rows`` as a candle frame, or raise if they break a data rule."""
        return self._checked(symbol, rows)

    def _span(
        self, symbol: str, start_ms: int, last_open_ms: int, now_ms: int
    ) -> tuple[list[Row], int]:
        """Return the closed candles of ``[start_ms, last_open_ms]`` (see :func:`closed_span`)."""
        return closed_span(self._client(), symbol, self.timeframe, start_ms, last_open_ms, now_ms)

    def _checked(self, symbol: str, rows: list[Row]) -> pl.DataFrame:
        """Return ``rows`` as a candle frame, or raise if the venue sent broken candles."""
        return checked_frame(
            rows, f"{self._client().id} {symbol} {self.timeframe} candles", self.timeframe
        )

    def _pause(self, seconds: float) -> None:
        self._pause_until_ms(self._now_ms() + round(seconds * 1000))

    def _pause_until_ms(self, wake_ms: int) -> None:
        """Sleep until the clock reaches ``wake_ms`` (epoch ms), or until ``stop`` is set."""
        deadline_s = wake_ms / 1000
        while not self._stop.is_set():
            left_s = deadline_s - self._clock()
            if left_s <= 0:
                return
            self._sleep(min(left_s, _SLEEP_SLICE_S))

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _last_closed_open_ms(self, now_ms: int) -> int:
        """Return the open time of the newest candle closed at ``now_ms``."""
        return (now_ms // self._step_ms - 1) * self._step_ms

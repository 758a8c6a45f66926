"""``--feed exchange:NAME``: closed candles streamed from a venue through ccxt.

An adapter of the venue streams to the :class:`~tradebrain.service.feeds.LiveFeed` port: the
warm-up history comes through REST, and the stream starts right after the last candle the
service recorded, so candles missed while the service was down are backfilled.

``--stream websocket`` (the default for venues ccxt.pro streams) listens on the venue's
websockets (:class:`~tradebrain.data.ws_stream.WebsocketCandleStream`, with REST backfills
and REST polling while the websocket is down); ``--stream rest`` polls REST only
(:class:`~tradebrain.data.stream.ExchangeCandleStream`). With ``--order-flow`` the websocket
path also streams trades, the order book and funding: each candle then carries its order-flow
inputs (``CandleClosed.flow``, computed by the batch function on the streamed tape, see
:mod:`tradebrain.features.live_orderflow`), and the tape is written to the Parquet store
(``trades``, ``book``, ``funding`` under the venue's name) every ``flush_every_s`` seconds
by a thread of its own, never on the decision path.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from tradebrain.core.events import CandleClosed
from tradebrain.data.exchanges import RetryPolicy, make_exchange, make_pro_exchange
from tradebrain.data.flow_tape import FlowTape
from tradebrain.data.schemas import Kind
from tradebrain.data.store import DatasetKey, ParquetStore
from tradebrain.data.stream import ExchangeCandleStream
from tradebrain.data.ws_stream import WebsocketCandleStream, confirming_client_class
from tradebrain.features.live_orderflow import LiveOrderFlow
from tradebrain.service.options import ServeOptions

log = logging.getLogger(__name__)

FUNDING_TIMEFRAME = "8h"
"""The funding dataset's name part (Binance and OKX settle perpetuals every 8 hours)."""


class ExchangeFeed:
    """Candles of ``symbols`` from the venue ``exchange`` (a ccxt id), by websocket or REST.

    Parameters
    ----------
    exchange, symbols, timeframe
        The venue (ccxt id), its symbols (ccxt names) and the candle timeframe.
    api_url, ws_url
        Where REST requests and websockets go instead of the venue's hosts (a testnet, a
        proxy, a loopback server in tests); see :func:`~tradebrain.data.exchanges.
        make_pro_exchange` for how ``ws_url`` is rebased.
    stream
        ``"websocket"`` or ``"rest"``.
    order_flow
        Stream trades, book and funding too (websocket only), attach each candle's inputs and
        record the tape in ``store``.
    store
        Where the tape is written; None keeps it in memory only.
    grace_s
        Seconds the websocket has to confirm a closed candle before REST fetches it.
    """

    def __init__(
        self,
        exchange: str,
        symbols: tuple[str, ...],
        timeframe: str,
        *,
        api_url: str | None = None,
        ws_url: str | dict[str, Any] | None = None,
        stream: str = "rest",
        order_flow: bool = False,
        store: ParquetStore | None = None,
        poll_interval: float = 1.0,
        grace_s: float = 2.0,
        flush_every_s: float = 60.0,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = f"exchange:{exchange}"
        self.exchange = exchange
        self.symbols = symbols
        self.timeframe = timeframe
        self.stream_kind = stream
        self.order_flow = order_flow
        markets = sorted({"perp" if ":" in s else "spot" for s in symbols})
        self._factory = lambda: make_exchange(exchange, markets=markets, api_urls=api_url)
        client_class = confirming_client_class(exchange) if stream == "websocket" else None
        self._pro_factory = lambda: make_pro_exchange(
            exchange, markets=markets, api_urls=api_url, ws_urls=ws_url, client_class=client_class
        )
        self._retry = retry or RetryPolicy()
        self._poll = poll_interval
        self._grace_s = grace_s
        self._flush_every_s = flush_every_s
        self._clock = clock
        self._store = store
        self._reader = ExchangeCandleStream(
            self._factory, list(symbols), timeframe, retry=self._retry,
            poll_interval=poll_interval, clock=clock,
        )  # fmt: skip
        self._stream: ExchangeCandleStream | WebsocketCandleStream | None = None
        self._history_end: dict[str, datetime] = {}
        self._after: dict[str, datetime | None] = {}
        self._stop = threading.Event()
        self._flows = {symbol: LiveOrderFlow(timeframe) for symbol in symbols}
        self.tape: FlowTape | None = None
        self._flush_errors = 0
        self._flushed_rows = 0

    def history(self, symbol: str, bars: int, until: datetime | None) -> pl.DataFrame:
        """Return the newest ``bars`` closed candles (up to ``until`` after a restart)."""
        history = self._reader.history(symbol, bars, until)
        if history.height:
            self._history_end[symbol] = history["timestamp"][-1]
        return history

    def resume(self, after: Mapping[str, datetime | None], stop: threading.Event) -> ExchangeFeed:
        """Stream from after ``after[symbol]`` (backfilled) until ``stop``; return self."""
        self._after = dict(after)
        self._stop = stop
        return self

    def __iter__(self) -> Iterator[CandleClosed]:
        """Stream closed candles from the point :meth:`resume` set, until its ``stop``."""
        # A fresh run goes on right after its warm-up history: nothing that closed while the
        # models trained is skipped.
        after, stop = self._after, self._stop
        since = {s: after.get(s) or self._history_end.get(s) for s in self.symbols}
        rest = ExchangeCandleStream(
            self._factory, list(self.symbols), self.timeframe, retry=self._retry,
            poll_interval=self._poll, stop=stop, since=since, clock=self._clock,
        )  # fmt: skip
        if self.stream_kind != "websocket":
            self._stream = rest
            yield from rest
            return
        keep_ms = max(flow.keep_ms for flow in self._flows.values())
        self.tape = FlowTape(self.symbols, keep_ms) if self.order_flow else None
        stream = WebsocketCandleStream(
            rest, self._pro_factory, grace_s=self._grace_s, clock=self._clock, stop=stop,
            since=since, tape=self.tape,
        )  # fmt: skip
        self._stream = stream
        flusher = self._start_flusher(stop) if self.tape is not None else None
        try:
            for candle in stream:
                yield self._with_flow(candle) if self.tape is not None else candle
        finally:
            if flusher is not None:
                flusher.join(timeout=10.0)
            self.flush()

    def _with_flow(self, candle: CandleClosed) -> CandleClosed:
        """Return ``candle`` with its order-flow inputs from the tape."""
        assert self.tape is not None
        trades, book, funding = self.tape.window(candle.symbol)
        ohlcv = (candle.open, candle.high, candle.low, candle.close, candle.volume)
        flow = self._flows[candle.symbol].update(candle.open_time, ohlcv, trades, book, funding)
        return dataclasses.replace(candle, flow=flow)

    def flush(self) -> int:
        """Write the sealed tape to the store now; return the rows written (0 without one).

        A failed write (a full disk) keeps the rows for the next flush and is counted in
        ``status()["flow_flush_errors"]``; the candles go on.
        """
        if self.tape is None or self._store is None:
            return 0
        taken = self.tape.flush()
        written = 0
        try:
            for symbol, kinds in taken.items():
                for kind, frame in list(kinds.items()):
                    timeframe = FUNDING_TIMEFRAME if kind is Kind.FUNDING else None
                    key = DatasetKey.of(symbol, timeframe, kind, exchange=self.exchange)
                    self._store.write(key, frame)
                    written += frame.height
                    del kinds[kind]  # written: not given back
        except OSError as error:
            self._flush_errors += 1
            log.warning(
                "could not write the streamed order flow (%s); %d row(s) kept for the next try",
                error, sum(f.height for kinds in taken.values() for f in kinds.values()),
            )  # fmt: skip
            self.tape.give_back({s: k for s, k in taken.items() if k})
        self._flushed_rows += written
        return written

    def _start_flusher(self, stop: threading.Event) -> threading.Thread:
        def run() -> None:
            while not stop.wait(self._flush_every_s):
                self.flush()

        thread = threading.Thread(target=run, name="flow-flush", daemon=True)
        thread.start()
        return thread

    def status(self) -> dict[str, Any]:
        """The stream's status, with the feed's name and the path it streams by."""
        stream = self._stream or self._reader
        found = {"feed": self.name, "stream": self.stream_kind, **stream.status()}
        if self.tape is not None:
            found["flow_rows_written"] = self._flushed_rows
            found["flow_flush_errors"] = self._flush_errors
        return found


def exchange_feed(options: ServeOptions, home: Path | None = None) -> ExchangeFeed:
    """Return the exchange feed ``options`` names (its tape recorded under ``home/store``)."""
    store = ParquetStore(home / "store") if home is not None and options.order_flow else None
    return ExchangeFeed(
        options.feed_target, options.symbols, options.timeframe, api_url=options.api_url,
        ws_url=options.ws_url, stream=options.stream, order_flow=options.order_flow, store=store,
    )  # fmt: skip


def live_exchange(options: ServeOptions) -> Any:
    """Return the ccxt client that trades for ``serve --mode live``, keys from the environment.

    The keys are read here and handed to ccxt only; they are never logged or stored.
    """
    import os

    markets = sorted({"perp" if ":" in s else "spot" for s in options.symbols})
    exchange = make_exchange(options.feed_target, markets=markets, api_urls=options.api_url)
    exchange.apiKey = os.environ["TRADEBRAIN_EXCHANGE_API_KEY"]
    exchange.secret = os.environ["TRADEBRAIN_EXCHANGE_SECRET"]
    password = os.environ.get("TRADEBRAIN_EXCHANGE_PASSWORD")
    if password:
        exchange.password = password
    return exchange

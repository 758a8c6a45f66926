"""``--feed exchange:NAME``: closed candles streamed from a venue through ccxt.

A thin adapter of :class:`~tradebrain.data.stream.ExchangeCandleStream` to the
:class:`~tradebrain.service.feeds.LiveFeed` port: the warm-up history comes through REST, and
the stream starts right after the last candle the service recorded, so candles missed while
the service was down are backfilled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import polars as pl

from tradebrain.core.events import CandleClosed
from tradebrain.data.exchanges import RetryPolicy, make_exchange
from tradebrain.data.stream import ExchangeCandleStream
from tradebrain.service.options import ServeOptions


class ExchangeFeed:
    """Candles of ``symbols`` from the venue ``exchange`` (a ccxt id), by REST polling."""

    def __init__(
        self,
        exchange: str,
        symbols: tuple[str, ...],
        timeframe: str,
        *,
        api_url: str | None = None,
        poll_interval: float = 1.0,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = f"exchange:{exchange}"
        self.symbols = symbols
        self.timeframe = timeframe
        markets = sorted({"perp" if ":" in s else "spot" for s in symbols})
        self._factory = lambda: make_exchange(exchange, markets=markets, api_urls=api_url)
        self._retry = retry or RetryPolicy()
        self._poll = poll_interval
        self._clock = clock
        self._reader = ExchangeCandleStream(
            self._factory, list(symbols), timeframe, retry=self._retry,
            poll_interval=poll_interval, clock=clock,
        )  # fmt: skip
        self._stream: ExchangeCandleStream | None = None
        self._history_end: dict[str, datetime] = {}
        self._after: dict[str, datetime | None] = {}
        self._stop = threading.Event()

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
        self._stream = ExchangeCandleStream(
            self._factory, list(self.symbols), self.timeframe, retry=self._retry,
            poll_interval=self._poll, stop=stop, since=since, clock=self._clock,
        )  # fmt: skip
        yield from self._stream

    def status(self) -> dict[str, Any]:
        """The stream's status, with the feed's name."""
        stream = self._stream or self._reader
        return {"feed": self.name, **stream.status()}


def exchange_feed(options: ServeOptions) -> ExchangeFeed:
    """Return the exchange feed ``options`` names."""
    return ExchangeFeed(
        options.feed_target, options.symbols, options.timeframe, api_url=options.api_url
    )


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

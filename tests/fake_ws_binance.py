"""A fake Binance websocket market-data server on 127.0.0.1 for ccxt.pro's real ``binance`` client.

Tests run ccxt.pro's real client against it (no real exchange, no mocks of ccxt): the server
speaks Binance's raw-stream protocol (``SUBSCRIBE``/``UNSUBSCRIBE`` answered with
``{"result": null, "id": N}``), remembers each connection's streams and pushes to a connection
only the streams it subscribed to. Tests push the venue's events from synchronous code:

* :meth:`FakeBinanceWs.push_kline`: a ``kline`` event (``<id>@kline_<interval>``), with the
  venue's closed flag ``k.x``;
* :meth:`FakeBinanceWs.push_trade`: a ``trade`` event to ``<id>@trade`` (what ccxt's
  ``watch_trades`` subscribes to by default, spot and perp) and an ``aggTrade`` event to
  ``<id>@aggTrade`` (``params={"name": "aggTrade"}``);
* :meth:`FakeBinanceWs.set_book` / :meth:`FakeBinanceWs.update_book`: change the true book of a
  market (held by the REST fake, which serves it as the depth snapshot with its
  ``lastUpdateId``) and stream the ``depthUpdate`` diff with Binance's ``U``/``u`` (and ``pu``
  for perps) numbering, so ccxt's order-book sync succeeds;
* :meth:`FakeBinanceWs.push_mark_price`: a ``markPriceUpdate`` event (mark price ``p``, index
  ``i``, funding rate ``r``, next funding time ``T``) for perps; ccxt.pro has no
  ``watch_funding_rate`` for binance, the funding rides on ``watch_mark_price``'s ticker
  ``info``.

Symbols are ccxt's (``"BTC/USDT"`` is spot, ``"BTC/USDT:USDT"`` the USD-M perpetual) or
Binance ids (``"BTCUSDT"``, spot unless ``market="perp"``).

Use::

    with serve(FakeBinance()) as rest, serve_ws(rest) as ws:

        async def main() -> None:
            client = pro_client(rest, ws, "perp")
            try:
                task = asyncio.ensure_future(client.watch_ohlcv("BTC/USDT:USDT", "1m"))
                await ws.until_subscribed("btcusdt@kline_1m", market="perp")
                ws.push_kline("BTC/USDT:USDT", [open_ms, 1, 2, 0.5, 1.5, 10], closed=True)
                rows = await task
            finally:
                await client.close()

        asyncio.run(main())

Wait for the subscription before pushing (:meth:`FakeBinanceWs.until_subscribed` from the
client's own event loop, :meth:`FakeBinanceWs.wait_subscribed` from another thread): an event
pushed before the ``SUBSCRIBE`` reached the server goes to nobody, as on Binance.

Pointing a client here: replace these keys of ``client.urls['api']['ws']`` with the values of
:meth:`FakeBinanceWs.ws_urls` (merge the dict; :func:`pro_client` does it):

* ``'spot'`` (and ``'margin'``): spot streams, ``ws://127.0.0.1:PORT/stream/ws``; ccxt appends
  ``/<n>``, one socket per kind of watch. The URL must contain ``/stream``: ccxt tells spot from
  perp messages (``BTCUSDT`` is both) by ``'/stream' in client.url``;
* ``'linear'``: USD-M streams, ``ws://127.0.0.1:PORT/fstream/ws``; it must end in ``/ws`` (ccxt
  rewrites it to ``.../fstream/public/ws/<n>`` for depth and trades, ``.../fstream/market/ws/<n>``
  for klines and mark prices) and must not contain ``/stream``;
* the other keys (``inverse``, ``ws-api``, options, ...) point at paths this fake refuses, so
  nothing ever leaves 127.0.0.1.

Chaos knobs, each on or off at any time (:class:`Chaos` fields, and methods):

* :meth:`FakeBinanceWs.drop_connections`: abort every client socket now (no close frame);
  :meth:`FakeBinanceWs.drop_every` keeps doing it every N seconds;
* :meth:`FakeBinanceWs.go_down` / :meth:`FakeBinanceWs.come_up`: refuse new connections (HTTP
  503 on the websocket handshake), for a while or until told;
* ``chaos.duplicate``: send every event twice;
* ``chaos.swap_adjacent``: send every two events in swapped order (a lone event goes after
  ``chaos.hold_timeout_s``); ``chaos.delay_s``: send every event that many seconds late;
  :meth:`FakeBinanceWs.hold` / :meth:`FakeBinanceWs.release`: keep events back until released,
  in order or reversed;
* ``chaos.clock_ahead_ms``: stamp event times (``E``) with a clock that runs that far ahead;
* :attr:`FakeBinanceWs.sent` and ``on_send``: every message written to a socket, with the wall
  time (``time.time()``) at which it was handed to the socket (taken just before the write, so
  it never lies after the client's receipt), for latency measurements.

Chaos applies to stream events; answers to requests are never duplicated, delayed or swapped.

What ccxt.pro's binance (4.5.90) does, as the tests in ``tests/data/test_fake_ws_binance.py`` show:

* a ``watch_*`` call resolves on the next message of its stream and returns what is new since
  the caller's previous call (``newUpdates``): candles by open time (one row per candle, the
  cache's own list, updated in place later), trades one per message (no dedupe by id). A message
  that arrives while no call waits is kept, but returned only when the next message arrives;
* the closed flag ``k.x`` is not in the OHLCV rows: :class:`ClosedFlagBinance` keeps it;
* a dropped socket fails the pending watch with ``ccxt.NetworkError`` and forgets the socket;
  ccxt does not reconnect by itself: the next ``watch_*`` call dials again and resubscribes
  (nothing missed in between is replayed). A failed handshake delays the next dial (0.2 s,
  doubling up to 30 s);
* order books: a REST snapshot (limit 1000) after the subscription is acknowledged, diffs
  buffered until then; a gap in ``U``/``u`` (spot) or ``pu`` (perp) raises
  ``ccxt.ChecksumError`` (an ``InvalidNonce``, a ``NetworkError``) from the watch, drops the book
  and the subscription; the next watch subscribes again and takes a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ccxt.pro as ccxtpro
from aiohttp import WSMsgType, web
from fake_exchange import MARKETS, FakeBinance, FakeBook

from tradebrain.data.exchanges import _load_only, _point_at
from tradebrain.data.timeframes import timeframe_seconds

_T = TypeVar("_T")

# The paths served: spot /stream/ws[/<n>], USD-M /fstream[/public|/market]/ws[/<n>].
_PATHS = {
    "spot": re.compile(r"^(/stream|/stream\.binance\.com(:\d+)?)/ws(/\w+)?$"),
    "perp": re.compile(r"^(/fstream|/fstream\.binance\.com(:\d+)?)(/public|/market)?/ws(/\w+)?$"),
}
"""Also the paths of ``tradebrain serve --ws-url BASE``, which keeps Binance's host as the first
segment (``/stream.binance.com:9443/ws``, ``/fstream.binance.com/market/ws``)."""
_DEPTH_RATES = ("", "@0ms", "@100ms", "@250ms", "@500ms", "@1000ms")


@dataclass
class Chaos:
    """Faults applied to stream events; change the fields at any time, from any thread."""

    duplicate: bool = False  # send every event twice
    swap_adjacent: bool = False  # send every two events in swapped order
    hold_timeout_s: float = 0.2  # how long a lone event waits for a partner to swap with
    delay_s: float = 0.0  # send every event this many seconds late
    clock_ahead_ms: int = 0  # event times run this far ahead of the server's clock


@dataclass(frozen=True)
class Sent:
    """One message written to a client socket."""

    wall_time: float  # time.time() as the message was handed to the socket
    connection: int  # the connection's number, from 1
    market: str  # "spot" or "perp"
    stream: str | None  # the stream of an event; None for an answer to a request
    payload: Any  # the message, decoded


@dataclass(frozen=True)
class StreamRequest:
    """One request a client sent: its method and streams, on which connection and path."""

    connection: int
    market: str
    path: str
    method: str
    params: list[Any]
    id: Any


@dataclass
class _Outgoing:
    text: str
    stream: str | None
    payload: Any


@dataclass
class _Connection:
    id: int
    market: str
    path: str
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    streams: set[str] = field(default_factory=set)
    queue: asyncio.Queue[_Outgoing | None] = field(default_factory=asyncio.Queue)
    held: _Outgoing | None = None  # waiting for a partner to swap with
    held_timer: asyncio.TimerHandle | None = None
    parked: list[_Outgoing] = field(default_factory=list)  # kept back by hold()
    writer: asyncio.Task[None] | None = None


class FakeBinanceWs:
    """A fake Binance stream server on its own event loop in a daemon thread.

    Parameters
    ----------
    rest
        The REST fake whose order books are streamed (and served as depth snapshots); without
        it the server keeps books of its own that no REST endpoint serves.
    clock
        Epoch seconds that stamp the events' times; ``chaos.clock_ahead_ms`` is added.
    """

    def __init__(
        self, rest: FakeBinance | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.rest = rest
        self.clock = clock
        self.chaos = Chaos()
        self.on_send: Callable[[Sent], None] | None = None  # called on the server's thread
        self.port = 0
        self._lock = threading.Lock()
        self._sent: list[Sent] = []
        self._requests: list[StreamRequest] = []
        self._connections: dict[int, _Connection] = {}
        self._opened = 0
        self._ids = itertools.count(1)
        self._trade_ids: dict[tuple[str, str], Iterator[int]] = {}
        self._books: dict[tuple[str, str], FakeBook] = {}
        self._down_until = 0.0
        self._holding = False
        self._drop_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> FakeBinanceWs:
        """Start serving on a free port of 127.0.0.1; return self."""
        loop = asyncio.new_event_loop()
        started: list[BaseException | None] = []
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
                started.append(None)
            except BaseException as error:  # handed to the starting thread
                started.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="fake-binance-ws", daemon=True)
        self._thread.start()
        ready.wait(timeout=10)
        if not started or started[0] is not None:
            raise RuntimeError("the fake Binance websocket server did not start") from (
                started[0] if started else None
            )
        return self

    def stop(self) -> None:
        """Close every connection and stop the server."""
        if self._loop is None or self._thread is None:
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop = self._thread = None

    def __enter__(self) -> FakeBinanceWs:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The server's base URL, ``ws://127.0.0.1:PORT``."""
        return f"ws://127.0.0.1:{self.port}"

    def ws_urls(self) -> dict[str, Any]:
        """Return the entries to merge into a ccxt.pro binance client's ``urls['api']['ws']``.

        ``'spot'``, ``'margin'`` and ``'linear'`` are served; every other entry points at a
        path of this server that refuses the handshake (HTTP 404), so nothing leaves 127.0.0.1.
        """
        base = self.url
        return {
            "spot": f"{base}/stream/ws",
            "margin": f"{base}/stream/ws",
            "linear": f"{base}/fstream/ws",
            "inverse": f"{base}/unserved/dstream/ws",
            "stock": f"{base}/unserved/equity/ws",
            "option": f"{base}/unserved/option/public/ws",
            "optionMarket": f"{base}/unserved/option/market/ws",
            "optionPrivate": f"{base}/unserved/option/private/ws",
            "papi": f"{base}/unserved/pm/ws",
            "ws-api": {
                "spot": f"{base}/unserved/ws-api/v3",
                "linear": f"{base}/unserved/ws-fapi/v1",
                "inverse": f"{base}/unserved/ws-dapi/v1",
            },
        }

    # -- what the server saw and sent -------------------------------------------------------

    @property
    def sent(self) -> list[Sent]:
        """Every message written to a socket so far, oldest first (a copy)."""
        with self._lock:
            return list(self._sent)

    @property
    def requests(self) -> list[StreamRequest]:
        """Every request clients sent (``SUBSCRIBE``, ``UNSUBSCRIBE``, ...), oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def connections_opened(self) -> int:
        """How many websocket connections were accepted so far: reconnects add to it."""
        with self._lock:
            return self._opened

    def connection_count(self, market: str | None = None) -> int:
        """Return how many connections (of ``market``, or all) are open now."""
        with self._lock:
            return sum(1 for c in self._connections.values() if market in (None, c.market))

    def connection_paths(self, market: str | None = None) -> list[str]:
        """Return the paths of the open connections (of ``market``, or all)."""
        with self._lock:
            return [c.path for c in self._connections.values() if market in (None, c.market)]

    def subscriptions(self, market: str | None = None) -> set[str]:
        """Return the streams open connections (of ``market``, or all) are subscribed to."""
        with self._lock:
            return {
                stream
                for connection in self._connections.values()
                if market in (None, connection.market)
                for stream in connection.streams
            }

    def is_subscribed(self, stream: str, market: str = "spot") -> bool:
        """Tell whether an open connection of ``market`` is subscribed to ``stream``."""
        return stream in self.subscriptions(market)

    async def until_subscribed(
        self, stream: str, market: str = "spot", timeout_s: float = 5.0
    ) -> None:
        """Wait, without blocking the caller's event loop, until ``stream`` is subscribed.

        Use it from the event loop that runs the ccxt client; it yields to that loop at least
        once, so a watch started just before gets to send its request.
        """
        deadline = time.monotonic() + timeout_s
        await asyncio.sleep(0.01)
        while not self.is_subscribed(stream, market):
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody subscribed to {market} {stream} in {timeout_s} s")
            await asyncio.sleep(0.005)

    def wait_subscribed(self, stream: str, market: str = "spot", timeout_s: float = 5.0) -> None:
        """Block until ``stream`` is subscribed: for a client running in another thread."""
        deadline = time.monotonic() + timeout_s
        while not self.is_subscribed(stream, market):
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody subscribed to {market} {stream} in {timeout_s} s")
            time.sleep(0.005)

    def event_ms(self) -> int:
        """The time (ms) events are stamped with now: the clock plus ``chaos.clock_ahead_ms``."""
        return int(self.clock() * 1000) + self.chaos.clock_ahead_ms

    # -- pushing the venue's events ---------------------------------------------------------

    def push_kline(
        self,
        symbol: str,
        candle: Sequence[float],
        *,
        closed: bool,
        interval: str = "1m",
        market: str | None = None,
        event_ms: int | None = None,
    ) -> dict[str, Any]:
        """Push a ``kline`` event of ``candle``, ``[open_ms, open, high, low, close, volume]``.

        ``closed`` is the venue's flag ``k.x``: the candle is final. Returns the event.
        """
        venue, market = _resolve(symbol, market)
        open_ms, open_price, high, low, close_price, volume = candle[:6]
        open_ms = int(open_ms)
        event = {
            "e": "kline",
            "E": self.event_ms() if event_ms is None else event_ms,
            "s": venue,
            "k": {
                "t": open_ms,
                "T": open_ms + timeframe_seconds(interval) * 1000 - 1,
                "s": venue,
                "i": interval,
                "f": 100,
                "L": 200,
                "o": _decimal(open_price),
                "c": _decimal(close_price),
                "h": _decimal(high),
                "l": _decimal(low),
                "v": _decimal(volume),
                "n": 101,
                "x": closed,
                "q": _decimal(volume * close_price),
                "V": _decimal(volume / 2),
                "Q": _decimal(volume * close_price / 2),
                "B": "0",
            },
        }
        self._publish(market, {f"{venue.lower()}@kline_{interval}": event})
        return event

    def push_trade(
        self,
        symbol: str,
        price: float,
        amount: float,
        *,
        side: str = "buy",
        trade_id: int | None = None,
        time_ms: int | None = None,
        market: str | None = None,
    ) -> int:
        """Push one trade: ``trade`` to ``<id>@trade``, ``aggTrade`` to ``<id>@aggTrade``.

        ``side`` is the taker's (``"buy"``: the buyer took, ``m`` false). Ids count from 1 per
        market and symbol unless given; the trade time defaults to the event time. Returns the id.
        """
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")
        venue, market = _resolve(symbol, market)
        counter = self._trade_ids.setdefault((market, venue), itertools.count(1))
        number = next(counter) if trade_id is None else trade_id
        event_ms = self.event_ms()
        when = event_ms if time_ms is None else time_ms
        common = {"s": venue, "p": _decimal(price), "q": _decimal(amount), "T": when}
        trade = {"e": "trade", "E": event_ms, **common, "t": number, "m": side == "sell"}
        aggregate = {"e": "aggTrade", "E": event_ms, **common, "a": number, "f": number}
        aggregate |= {"l": number, "m": side == "sell"}
        if market == "spot":
            trade["M"] = aggregate["M"] = True
        self._publish(
            market, {f"{venue.lower()}@trade": trade, f"{venue.lower()}@aggTrade": aggregate}
        )
        return number

    def push_mark_price(
        self,
        symbol: str,
        mark_price: float,
        *,
        funding_rate: float,
        next_funding_ms: int,
        index_price: float | None = None,
        event_ms: int | None = None,
    ) -> dict[str, Any]:
        """Push a perp's ``markPriceUpdate``: mark ``p``, index ``i``, funding ``r``, next ``T``.

        Goes to ``<id>@markPrice``, ``<id>@markPrice@1s`` (what ccxt's ``watch_mark_price``
        subscribes to) and the all-market arrays ``!markPrice@arr[@1s]``. Returns the event.
        """
        venue, market = _resolve(symbol, "perp")
        index = mark_price if index_price is None else index_price
        event = {
            "e": "markPriceUpdate",
            "E": self.event_ms() if event_ms is None else event_ms,
            "s": venue,
            "p": _decimal(mark_price),
            "i": _decimal(index),
            "P": _decimal(mark_price),
            "r": _decimal(funding_rate),
            "T": next_funding_ms,
        }
        stream = f"{venue.lower()}@markPrice"
        self._publish(
            market,
            {
                stream: event,
                f"{stream}@1s": event,
                "!markPrice@arr": [event],
                "!markPrice@arr@1s": [event],
            },
        )
        return event

    def book(self, symbol: str, market: str | None = None) -> FakeBook:
        """Return the true order book of ``symbol`` (the REST fake's, when there is one)."""
        venue, market = _resolve(symbol, market)
        if self.rest is not None:
            return self.rest.book(venue, market)
        with self._lock:
            return self._books.setdefault((market, venue), FakeBook())

    def set_book(
        self,
        symbol: str,
        bids: Iterable[Sequence[float]],
        asks: Iterable[Sequence[float]],
        *,
        market: str | None = None,
    ) -> dict[str, Any] | None:
        """Make ``bids``/``asks`` (``(price, amount)`` levels) the whole book; stream the diff.

        Returns the ``depthUpdate`` event, or None when the book did not change.
        """
        return self._change_book(symbol, market, bids, asks, replace=True)

    def update_book(
        self,
        symbol: str,
        bids: Iterable[Sequence[float]] = (),
        asks: Iterable[Sequence[float]] = (),
        *,
        market: str | None = None,
    ) -> dict[str, Any] | None:
        """Change single levels of the book (amount 0 removes one); stream the diff."""
        return self._change_book(symbol, market, bids, asks, replace=False)

    def push_raw(self, stream: str, payload: Any, *, market: str = "spot") -> None:
        """Push any message to the subscribers of ``stream`` in ``market``."""
        self._publish(market, {stream: payload})

    # -- chaos --------------------------------------------------------------------------------

    def drop_connections(self) -> int:
        """Abort every client socket now, without a close frame; return how many there were."""
        return self._call(self._drop_all())

    def drop_every(self, seconds: float | None) -> None:
        """Drop every connection every ``seconds`` from now on; None stops it."""

        async def start() -> None:
            if self._drop_task is not None:
                self._drop_task.cancel()
                self._drop_task = None
            if seconds is not None:
                self._drop_task = asyncio.get_running_loop().create_task(self._drops(seconds))

        self._call(start())

    def go_down(self, for_s: float | None = None, *, drop: bool = True) -> None:
        """Refuse new connections (HTTP 503) for ``for_s`` seconds, or until :meth:`come_up`.

        With ``drop`` the open connections are aborted too: the venue is gone.
        """
        self._down_until = math.inf if for_s is None else time.monotonic() + for_s
        if drop:
            self.drop_connections()

    def come_up(self) -> None:
        """Accept connections again."""
        self._down_until = 0.0

    @property
    def is_down(self) -> bool:
        """Whether new connections are refused now."""
        return time.monotonic() < self._down_until

    def hold(self) -> None:
        """Keep every further event back (per connection) until :meth:`release`."""
        self._holding = True

    def release(self, *, reverse: bool = False) -> None:
        """Send the events kept back by :meth:`hold`, in order or ``reverse``d; stop holding."""

        async def flush() -> None:
            self._holding = False
            for connection in list(self._connections.values()):
                parked, connection.parked = connection.parked, []
                for message in reversed(parked) if reverse else parked:
                    self._route(connection, message)

        self._call(flush())

    # -- the server -------------------------------------------------------------------------

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def _shutdown(self) -> None:
        if self._drop_task is not None:
            self._drop_task.cancel()
        await self._drop_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        market = next((m for m, path in _PATHS.items() if path.match(request.path)), None)
        if market is None:
            return web.json_response({"code": -1, "msg": "the fake has no such stream"}, status=404)
        if self.is_down:
            return web.Response(status=503, text="<html><h1>503 Service Unavailable</h1></html>")
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        connection = _Connection(next(self._ids), market, request.path, ws, request.transport)
        connection.writer = asyncio.get_running_loop().create_task(self._write(connection))
        with self._lock:
            self._connections[connection.id] = connection
            self._opened += 1
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._answer(connection, message.data)
        finally:
            self._forget(connection)
        return ws

    def _answer(self, connection: _Connection, text: str) -> None:
        """Answer one request as Binance does, and record it."""
        try:
            request = json.loads(text)
        except ValueError:
            self._reply(connection, {"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})
            return
        if not isinstance(request, dict):
            self._reply(connection, {"error": {"code": 2, "msg": "Invalid request"}, "id": None})
            return
        method, params, number = request.get("method"), request.get("params", []), request.get("id")
        streams = params if isinstance(params, list) else [params]
        record = StreamRequest(
            connection.id, connection.market, connection.path, str(method), streams, number
        )
        with self._lock:
            self._requests.append(record)
        if method in ("SUBSCRIBE", "UNSUBSCRIBE") and all(isinstance(s, str) for s in streams):
            with self._lock:
                if method == "SUBSCRIBE":
                    connection.streams.update(streams)
                else:
                    connection.streams.difference_update(streams)
            self._reply(connection, {"result": None, "id": number})
        elif method == "LIST_SUBSCRIPTIONS":
            self._reply(connection, {"result": sorted(connection.streams), "id": number})
        elif method == "SET_PROPERTY":
            self._reply(connection, {"result": None, "id": number})
        elif method == "GET_PROPERTY":
            self._reply(connection, {"result": False, "id": number})
        else:
            error = {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}
            self._reply(connection, {"error": error, "id": number})

    def _reply(self, connection: _Connection, payload: dict[str, Any]) -> None:
        connection.queue.put_nowait(_Outgoing(json.dumps(payload), None, payload))

    async def _write(self, connection: _Connection) -> None:
        """Write the connection's queue to its socket in order; log each message written."""
        while (message := await connection.queue.get()) is not None:
            written_at = time.time()  # before the write: a client may read it before we go on
            try:
                await connection.ws.send_str(message.text)
            except Exception:  # the socket went away: nothing more to write
                return
            sent = Sent(
                written_at, connection.id, connection.market, message.stream, message.payload
            )
            with self._lock:
                self._sent.append(sent)
            if self.on_send is not None:
                self.on_send(sent)

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.pop(connection.id, None)
        if connection.held_timer is not None:
            connection.held_timer.cancel()
        connection.queue.put_nowait(None)

    async def _drop_all(self) -> int:
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            self._forget(connection)
            if connection.writer is not None:
                connection.writer.cancel()
            if connection.transport is not None:
                connection.transport.abort()
        return len(connections)

    async def _drops(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self._drop_all()

    # -- routing events -----------------------------------------------------------------------

    def _change_book(
        self,
        symbol: str,
        market: str | None,
        bids: Iterable[Sequence[float]],
        asks: Iterable[Sequence[float]],
        *,
        replace: bool,
    ) -> dict[str, Any] | None:
        venue, market = _resolve(symbol, market)
        book = self.book(venue, market)
        with book.lock:  # numbered and published in one go: diffs leave in id order
            change = book.change(bids, asks, replace=replace)
            if change is None:
                return None
            event_ms = self.event_ms()
            event: dict[str, Any] = {"e": "depthUpdate", "E": event_ms, "s": venue}
            if market == "perp":
                event["T"] = event_ms
            event |= {"U": change.first_id, "u": change.last_id}
            if market == "perp":
                event["pu"] = change.previous_id
            event["b"] = [[_decimal(p), _decimal(q)] for p, q in change.bids]
            event["a"] = [[_decimal(p), _decimal(q)] for p, q in change.asks]
            self._publish(market, {f"{venue.lower()}@depth{rate}": event for rate in _DEPTH_RATES})
        return event

    def _publish(self, market: str, events: dict[str, Any]) -> None:
        """Hand events (by stream) to the server's loop; pushes from one thread keep order."""
        if self._loop is None:
            raise RuntimeError("the fake Binance websocket server is not running")
        messages = [
            (stream, _Outgoing(json.dumps(payload), stream, payload))
            for stream, payload in events.items()
        ]
        self._loop.call_soon_threadsafe(self._dispatch, market, messages)

    def _dispatch(self, market: str, messages: list[tuple[str, _Outgoing]]) -> None:
        for connection in list(self._connections.values()):
            if connection.market != market:
                continue
            for stream, message in messages:
                if stream in connection.streams:
                    self._route(connection, message)

    def _route(self, connection: _Connection, message: _Outgoing) -> None:
        """Apply the chaos knobs to one event on its way to one connection."""
        if self._holding:
            connection.parked.append(message)
            return
        for _ in range(2 if self.chaos.duplicate else 1):
            if self.chaos.delay_s > 0:
                loop = asyncio.get_running_loop()
                loop.call_later(self.chaos.delay_s, self._swap_or_send, connection, message)
            else:
                self._swap_or_send(connection, message)

    def _swap_or_send(self, connection: _Connection, message: _Outgoing) -> None:
        if not self.chaos.swap_adjacent:
            self._send_held(connection)
            connection.queue.put_nowait(message)
        elif connection.held is None:
            connection.held = message
            loop = asyncio.get_running_loop()
            timeout = self.chaos.hold_timeout_s
            connection.held_timer = loop.call_later(timeout, self._send_held, connection)
        else:
            connection.queue.put_nowait(message)
            self._send_held(connection)

    def _send_held(self, connection: _Connection) -> None:
        if connection.held_timer is not None:
            connection.held_timer.cancel()
            connection.held_timer = None
        if connection.held is not None:
            connection.queue.put_nowait(connection.held)
            connection.held = None

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the server's loop and return its result (from another thread)."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the fake Binance websocket server is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)


@contextlib.contextmanager
def serve_ws(rest: FakeBinance | None = None) -> Iterator[FakeBinanceWs]:
    """Serve a :class:`FakeBinanceWs` streaming ``rest``'s books; stop it afterwards."""
    server = FakeBinanceWs(rest).start()
    try:
        yield server
    finally:
        server.stop()


class ClosedFlagBinance(ccxtpro.binance):  # type: ignore[misc]
    """ccxt.pro's binance that also keeps the venue's closed flag ``k.x`` of each kline.

    ccxt's parsed OHLCV rows drop the flag; this class reads it from the raw message before
    ccxt parses it. :meth:`is_closed` answers for any row ``watch_ohlcv`` returned.
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config or {})
        self.closed_flags: dict[tuple[str, str], dict[int, bool]] = {}

    def handle_ohlcv(self, client: Any, message: dict[str, Any]) -> None:
        kline = message.get("k")
        if message.get("e") == "kline" and isinstance(kline, dict):
            market_type = "spot" if self.is_spot_url(client) else "contract"
            symbol = self.safe_symbol(kline.get("s"), None, None, market_type)
            timeframe = self.find_timeframe(kline.get("i"))
            flags = self.closed_flags.setdefault((symbol, timeframe), {})
            flags[int(kline["t"])] = bool(kline.get("x"))
            while len(flags) > int(self.options.get("OHLCVLimit", 1000)):
                del flags[next(iter(flags))]  # the oldest: ccxt's cache dropped its row too
        super().handle_ohlcv(client, message)

    def is_closed(self, symbol: str, timeframe: str, open_ms: float) -> bool | None:
        """Return the venue's last word on whether a candle is final; None if never seen."""
        return self.closed_flags.get((symbol, timeframe), {}).get(int(open_ms))


def pro_client(
    rest: FakeBinance,
    ws: FakeBinanceWs,
    market: str | Iterable[str] = "spot",
    *,
    client_class: type[ccxtpro.binance] = ccxtpro.binance,
    **config: Any,
) -> ccxtpro.binance:
    """Build a real ccxt.pro binance client talking only to the fakes.

    REST URLs are rebased on ``rest.url`` (as ``make_exchange`` does), the stream URLs merged
    from ``ws.ws_urls()``, and ``load_markets`` fetches only the listings of ``market``
    (``"spot"``, ``"perp"`` or both). Build it inside the event loop that uses it; close it
    with ``await client.close()``.
    """
    markets = {market} if isinstance(market, str) else set(market)
    if not markets <= set(MARKETS):
        raise ValueError(f"markets must be among {MARKETS}, not {sorted(markets)}")
    client = client_class({"enableRateLimit": False, "timeout": 5_000, **config})
    if markets == {"perp"}:
        client.options["defaultType"] = "swap"
    _load_only(client, markets)
    _point_at(client, rest.url)  # rebases http(s) URLs only; the ws ones are wss://
    client.urls["api"]["ws"] = {**client.urls["api"]["ws"], **ws.ws_urls()}
    return client


def _resolve(symbol: str, market: str | None) -> tuple[str, str]:
    """Return the Binance id and market of a ccxt symbol or Binance id."""
    if "/" in symbol:
        base, _, rest = symbol.partition("/")
        quote, _, settle = rest.partition(":")
        named = "perp" if settle else "spot"
        if market is not None and market != named:
            raise ValueError(f"{symbol} is a {named} symbol, not {market}")
        return f"{base}{quote}".upper(), named
    market = market or "spot"
    if market not in MARKETS:
        raise ValueError(f"market must be one of {MARKETS}, not {market!r}")
    return symbol.upper(), market


def _decimal(value: float) -> str:
    """Return ``value`` as Binance writes numbers: a decimal string with 8 places."""
    return f"{value:.8f}"

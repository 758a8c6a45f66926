"""A fake OKX on 127.0.0.1: its public REST API and its public websocket, for ccxt and ccxt.pro.

No real exchange is ever touched, and nothing of ccxt is mocked: tests run ccxt's own ``okx``
(sync, REST) and ``ccxt.pro.okx`` (asyncio, websocket) classes against these servers.

REST (:class:`FakeOkx`, served by :func:`serve`)
    Answers what ``ccxt.okx`` calls for ``load_markets`` (``/api/v5/public/instruments`` for
    ``SPOT`` and ``SWAP``), ``fetch_ohlcv`` (``/api/v5/market/candles`` and
    ``history-candles``: rows ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``, newest
    first, ``after``/``before`` exclusive bounds, at most :attr:`FakeOkx.max_candles_per_page`
    rows, the candle still open at ``now`` with confirm ``"0"``), ``fetch_trades``,
    ``fetch_order_book``, ``fetch_funding_rate``, ``fetch_funding_rate_history`` and
    ``fetch_time``, from deterministic series tests can recompute (:meth:`FakeOkx.candles`,
    :meth:`FakeOkx.trades`, :meth:`FakeOkx.funding_rates`). It can answer chosen requests with
    an HTTP error (:meth:`FakeOkx.fail`, :meth:`FakeOkx.break_down`, :meth:`FakeOkx.throttle`)
    and records every request it got.

Websocket (:class:`FakeOkxWs`, served by :func:`serve_ws`)
    An aiohttp server on its own event loop in a daemon thread, with OKX's paths
    ``/ws/v5/public`` (trades, books, books5, funding-rate, mark-price) and ``/ws/v5/business``
    (candles). It answers ``{"op": "subscribe", "args": [...]}`` with one
    ``{"event": "subscribe", "arg": ...}`` per argument (or OKX's error 60018 for a channel on
    the wrong path or an unknown instrument), pushes only what a connection subscribed to,
    sends an order book snapshot on subscribe and then updates with ``seqId``/``prevSeqId``
    and OKX's CRC32 ``checksum``, and answers the text frame ``ping`` with ``pong``. Tests
    drive it from synchronous code (its methods are thread-safe): :meth:`FakeOkxWs.push_candle`,
    :meth:`~FakeOkxWs.push_trades`, :meth:`~FakeOkxWs.update_book`,
    :meth:`~FakeOkxWs.push_funding_rate`, :meth:`~FakeOkxWs.push_mark_price`. Chaos knobs,
    on and off at any time: :meth:`~FakeOkxWs.drop_all`, :meth:`~FakeOkxWs.drop_every`,
    :meth:`~FakeOkxWs.refuse_for`, and the attributes ``duplicate``, ``delay_s``,
    ``reorder`` and ``clock_ahead_ms``; every frame written is logged with its wall time in
    :attr:`FakeOkxWs.sent`.

Clients
    :func:`rest_client` is ``make_exchange("okx", markets=[market], api_urls=fake.url)``.
    :func:`pro_client` makes a ``ccxt.pro.okx`` whose ``urls['api']['rest']`` is the REST fake
    and whose ``urls['api']['ws']`` (one string, ``wss://ws.okx.com:443/ws/v5``: ccxt.pro
    appends ``/public``, ``/business`` or ``/private`` itself) is ``ws://127.0.0.1:PORT/ws/v5``.
    Those two keys are the only ones to replace.

What ccxt 4.5.90 does with it (and what product code must know)
    ``watch_ohlcv`` subscribes ``candle{bar}`` on ``/ws/v5/business``, everything else here on
    ``/ws/v5/public``. ``watch_*`` return only what changed since the previous call
    (``newUpdates``). OKX's confirm flag (index 8) is dropped from ccxt's rows. Books: ccxt
    checks ``prevSeqId`` against the last ``seqId`` (a gap raises ``InvalidNonce``, and the
    next watch unsubscribes and resubscribes for a fresh snapshot) but never the checksum. A
    closed connection fails pending watches with ``NetworkError``; ccxt does not reconnect by
    itself, the next ``watch_*`` call dials and subscribes again. ``fetch_ohlcv`` with
    ``since`` asks ``history-candles`` once ``since`` is more than 1439 bars before the real
    clock (always, for this fake's 2024 clock), with ``limit=300``,
    ``before=since-1`` and ``after=since+300 bars``.

Use::

    with serve(FakeOkx()) as fake, serve_ws(fake) as ws:
        async def scenario() -> None:
            client = pro_client(fake, ws, "spot")
            try:
                watch = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
                await ws.until_subscribed("trades", "BTC-USDT")
                ws.push_trades("BTC-USDT", [(100.5, 0.2, "buy")])
                trades = await asyncio.wait_for(watch, 5)
            finally:
                await client.close()

        asyncio.run(scenario())
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import socket
import threading
import time
import zlib
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import ccxt
import ccxt.pro
from aiohttp import WSMsgType, web
from fake_exchange import LISTED, NOW, _prices

from tradebrain.data.exchanges import make_exchange
from tradebrain.data.timeframes import timeframe_seconds

MAX_CANDLES_PER_PAGE = 300  # OKX's own cap for candles and history-candles (ccxt asks 300)
RECENT_CANDLES = 1440  # /market/candles serves only the newest 1440; older ones: history
TRADE_EVERY_MS = 45_000
FUNDING_EVERY_MS = 8 * 3_600_000
SWAP_BASIS = 0.5  # perpetual prices sit this far above spot, so mix-ups show
CHECKSUM_LEVELS = 25
CONTRACT_VALUES = {"BTC": 0.01, "ETH": 0.1}  # ctVal: base currency per contract, as on OKX
PUBLIC_CHANNELS = frozenset({"trades", "books", "books5", "funding-rate", "mark-price"})
WS_PATHS = ("/ws/v5/public", "/ws/v5/business")

_T = TypeVar("_T")
Level = tuple[float, float]
"""One order book level: ``(price, size)``; size 0 in an update removes the price."""


@dataclass(frozen=True)
class Request:
    """One request the fake received: its path and query parameters."""

    path: str
    params: dict[str, str]


@dataclass
class Book:
    """A true order book of one instrument: price to size per side, and OKX's sequence id."""

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    seq_id: int = 1000

    def levels(self, side: str, depth: int | None = None) -> list[Level]:
        """Return ``side`` (``"bids"`` best first: descending; ``"asks"`` ascending)."""
        prices = sorted(getattr(self, side), reverse=side == "bids")[:depth]
        return [(price, getattr(self, side)[price]) for price in prices]

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Set each level's size; size 0 removes the level. Numbers are kept as they travel
        (:func:`fmt`, 8 decimals), so the book equals what a client parses from the wire."""
        for side, levels in (("bids", bids), ("asks", asks)):
            book: dict[float, float] = getattr(self, side)
            for raw_price, raw_size in levels:
                price, size = float(fmt(raw_price)), float(fmt(raw_size))
                if size == 0:
                    book.pop(price, None)
                else:
                    book[price] = size

    def checksum(self) -> int:
        """Return OKX's checksum of this book (see :func:`okx_checksum`)."""
        return okx_checksum(
            self.levels("bids", CHECKSUM_LEVELS), self.levels("asks", CHECKSUM_LEVELS)
        )


def okx_checksum(bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]]) -> int:
    """Return OKX's order book checksum: signed CRC32 of ``bid:size:ask:size:...``.

    The best 25 bids and 25 asks are interleaved (bid 1, ask 1, bid 2, ask 2, ...; where one
    side runs out only the other continues), each as ``price:size`` in the strings OKX sent;
    here :func:`fmt` writes them, so the checksum of a ccxt book (floats) is comparable.
    """
    parts: list[str] = []
    for index in range(CHECKSUM_LEVELS):
        for side in (bids, asks):
            if index < len(side):
                parts.append(f"{fmt(side[index][0])}:{fmt(side[index][1])}")
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def fmt(value: float) -> str:
    """Write a number as OKX does: plain decimal, no exponent, no trailing zeros."""
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def okx_bar(timeframe: str) -> str:
    """Return OKX's bar name of a ccxt timeframe (``1m`` -> ``1m``, ``1h`` -> ``1H``)."""
    return timeframe if timeframe[-1] in "mM" else timeframe[:-1] + timeframe[-1].upper()


def _timeframe_of_bar(bar: str) -> str | None:
    bar = bar.removesuffix("utc")
    if not bar or bar[-1] == "M" or not bar[:-1].isdigit():
        return None  # months are not served
    return bar if bar[-1] == "m" else bar[:-1] + bar[-1].lower()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class FakeOkx:
    """State of the fake OKX: clock, listings, series, true books, planned failures, requests.

    Parameters
    ----------
    now
        The fake's clock for REST; the newest candle served is the one open at ``now``
        (confirm ``"0"``). The websocket side stamps pushes with wall time instead.
    bases
        Listed base currencies: each has a spot ``BASE-USDT`` and a perpetual
        ``BASE-USDT-SWAP`` (linear, settled in USDT, ``ctVal`` from :data:`CONTRACT_VALUES`).
    missing
        Open times (ms) of candles the fake does not have: gaps an exchange really has.
    inverted
        Open times (ms) of candles served with high and low swapped: broken data.
    max_candles_per_page
        The most candle rows one answer holds (OKX: 300); OKX answers the *newest* rows
        before ``after``. Below the 300 ccxt asks for, tradebrain's forward paging from
        ``since`` skips the oldest rows of each window.
    """

    now: datetime = NOW
    bases: tuple[str, ...] = ("BTC", "ETH")
    missing: set[int] = field(default_factory=set)
    inverted: set[int] = field(default_factory=set)
    max_candles_per_page: int = MAX_CANDLES_PER_PAGE
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    books: dict[str, Book] = field(default_factory=dict)
    _planned: dict[tuple[str, int], int] = field(default_factory=dict)
    _broken: dict[str, int] = field(default_factory=dict)
    _bursts: dict[str, int] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def now_ms(self) -> int:
        return _ms(self.now)

    @property
    def instruments(self) -> list[str]:
        """Every listed instrument id: spot ``BTC-USDT`` first, then ``BTC-USDT-SWAP``."""
        return [f"{base}-USDT" for base in self.bases] + [
            f"{base}-USDT-SWAP" for base in self.bases
        ]

    # -- planned failures -------------------------------------------------------------------

    def fail(self, path: str, status: int, *, on_request: int) -> None:
        """Answer the ``on_request``-th request (1-based) to ``path`` with HTTP ``status``."""
        with self._lock:
            self._planned[(path, on_request)] = status

    def break_down(self, path: str, status: int = 503) -> None:
        """Answer every further request to ``path`` with HTTP ``status`` until repaired."""
        with self._lock:
            self._broken[path] = status

    def repair(self, path: str) -> None:
        """Undo :meth:`break_down` and any 429 burst on ``path``."""
        with self._lock:
            self._broken.pop(path, None)
            self._bursts.pop(path, None)

    def throttle(self, path: str, requests: int) -> None:
        """Answer the next ``requests`` requests to ``path`` with 429 (OKX code 50011)."""
        with self._lock:
            self._bursts[path] = requests

    def requests_to(self, path: str) -> list[dict[str, str]]:
        """Return the query parameters of every request to ``path``, in order."""
        with self._lock:
            return [request.params for request in self.requests if request.path == path]

    # -- deterministic series ---------------------------------------------------------------

    def contract_value(self, inst_id: str) -> float | None:
        """Return ``ctVal`` (base per contract) of a perpetual, None for spot."""
        return CONTRACT_VALUES.get(inst_id.split("-")[0], 1.0) if is_swap(inst_id) else None

    def candle(self, inst_id: str, timeframe: str, index: int) -> list[float]:
        """Return ``[open, high, low, close, volume]`` of candle ``index`` after the listing.

        Volume is in the base currency, what ccxt's parsed row shows for spot and swap alike.
        """
        open_price, high, low, close_price, volume = _prices(inst_id, index)
        if is_swap(inst_id):
            open_price, high, low, close_price = (
                round(price + SWAP_BASIS, 2) for price in (open_price, high, low, close_price)
            )
        return [open_price, high, low, close_price, volume]

    def candles(self, inst_id: str, timeframe: str, start_ms: int = 0) -> list[list[float]]:
        """Return every candle served, ``[open_ms, open, high, low, close, volume]``, oldest
        first, the one open at ``now`` included (served with confirm ``"0"``)."""
        step_ms = timeframe_seconds(timeframe) * 1000
        listed_ms = _ms(LISTED)
        first = max(0, -(-(start_ms - listed_ms) // step_ms))
        series = []
        for index in range(first, (self.now_ms - listed_ms) // step_ms + 1):
            open_ms = listed_ms + index * step_ms
            if open_ms in self.missing:
                continue
            open_price, high, low, close_price, volume = self.candle(inst_id, timeframe, index)
            if open_ms in self.inverted:
                high, low = low, high
            series.append([open_ms, open_price, high, low, close_price, volume])
        return series

    def candle_row(self, inst_id: str, row: Sequence[float], confirmed: bool) -> list[str]:
        """Return OKX's wire row ``[ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm]`` of ``row``.

        ``vol`` is base volume for spot and contracts for swaps; ``volCcy`` is quote volume
        for spot and base volume for swaps; ``volCcyQuote`` is quote volume.
        """
        open_ms, open_price, high, low, close_price, volume = row
        quote_volume = volume * close_price
        contract_value = self.contract_value(inst_id)
        if contract_value is None:
            vol, vol_ccy = volume, quote_volume
        else:
            vol, vol_ccy = volume / contract_value, volume
        values = (open_price, high, low, close_price, vol, vol_ccy, quote_volume)
        return [str(int(open_ms)), *(fmt(value) for value in values), "1" if confirmed else "0"]

    def trades(self, inst_id: str, start_ms: int, end_ms: int) -> list[dict[str, str]]:
        """Return the trades with ``start_ms <= ts <= end_ms`` (and ``ts <= now``), oldest
        first, OKX-shaped; one every :data:`TRADE_EVERY_MS`, ``tradeId`` = its index."""
        listed_ms = _ms(LISTED)
        first = max(0, -(-(start_ms - listed_ms) // TRADE_EVERY_MS))
        last = (min(end_ms, self.now_ms) - listed_ms) // TRADE_EVERY_MS
        return [
            _trade(inst_id, index, listed_ms + index * TRADE_EVERY_MS)
            for index in range(first, last + 1)
        ]

    def funding_rates(self, inst_id: str, start_ms: int, end_ms: int) -> list[dict[str, str]]:
        """Return the funding rates settled in ``[start_ms, min(end_ms, now)]``, oldest first."""
        listed_ms = _ms(LISTED)
        first = max(0, -(-(start_ms - listed_ms) // FUNDING_EVERY_MS))
        last = (min(end_ms, self.now_ms) - listed_ms) // FUNDING_EVERY_MS
        return [
            {
                "instType": "SWAP",
                "instId": inst_id,
                "fundingRate": fmt(funding_rate(index)),
                "realizedRate": fmt(funding_rate(index)),
                "fundingTime": str(listed_ms + index * FUNDING_EVERY_MS),
                "method": "current_period",
                "formulaType": "noRate",
            }
            for index in range(first, last + 1)
        ]

    def book(self, inst_id: str) -> Book:
        """Return the true book of ``inst_id`` (made on first use: 10 levels a side)."""
        with self._lock:
            if inst_id not in self.books:
                mid = self.candle(inst_id, "1m", 0)[0]
                self.books[inst_id] = Book(
                    bids={
                        round(mid - 0.1 * (k + 1), 2): round(0.5 + 0.25 * k, 4) for k in range(10)
                    },
                    asks={
                        round(mid + 0.1 * (k + 1), 2): round(0.4 + 0.3 * k, 4) for k in range(10)
                    },
                )
            return self.books[inst_id]

    # -- answering --------------------------------------------------------------------------

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        """Return the HTTP status and body (JSON-able, or HTML text) of one request; record it."""
        with self._lock:
            self.requests.append(Request(path, params))
            count = sum(1 for request in self.requests if request.path == path)
            status = self._planned.pop((path, count), None) or self._broken.get(path)
            if status is None and self._bursts.get(path, 0) > 0:
                self._bursts[path] -= 1
                status = 429
        if status is not None:
            return status, _ERROR_BODIES.get(
                status, f"<html><h1>{status} Service Unavailable</h1></html>"
            )
        route = _ROUTES.get(path)
        if route is None:
            return 404, {"code": "50030", "msg": f"the fake has no {path}", "data": []}
        inst_id = params.get("instId")
        if inst_id is not None and inst_id not in self.instruments:
            return 400, {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
        try:
            data = route(self, path, params)
        except _ParameterError as error:
            return 400, {"code": "51000", "msg": f"Parameter {error} error", "data": []}
        return 200, {"code": "0", "msg": "", "data": data}


def is_swap(inst_id: str) -> bool:
    return inst_id.endswith("-SWAP")


def funding_rate(index: int) -> float:
    """Return the deterministic funding rate of settlement ``index`` after the listing."""
    return 0.0001 * (1 + index % 3)


# What OKX answers on overload and trouble; other statuses get a load balancer's HTML page.
_ERROR_BODIES: dict[int, Any] = {
    429: {"code": "50011", "msg": "Too Many Requests", "data": []},
    500: {"code": "50013", "msg": "Systems are busy. Please try again later.", "data": []},
}


class _ParameterError(ValueError):
    pass


def _trade(inst_id: str, index: int, time_ms: int) -> dict[str, str]:
    price = round(100 + math.sin(index / 11), 2) + (SWAP_BASIS if is_swap(inst_id) else 0.0)
    return {
        "instId": inst_id,
        "tradeId": str(index),
        "px": fmt(price),
        "sz": fmt(0.5 + index % 4),
        "side": "sell" if index % 2 == 0 else "buy",
        "source": "0",
        "ts": str(time_ms),
    }


def _instrument(fake: FakeOkx, inst_id: str) -> dict[str, str]:
    base = inst_id.split("-")[0]
    common = {
        "instId": inst_id,
        "listTime": str(_ms(LISTED)),
        "contTdSwTime": str(_ms(LISTED)),
        "expTime": "",
        "state": "live",
        "tickSz": "0.01",
        "optType": "",
        "stk": "",
        "alias": "",
        "category": "1",
        "ruleType": "normal",
        "maxLmtSz": "9999999999",
        "maxMktSz": "1000000",
    }
    if not is_swap(inst_id):
        return common | {
            "instType": "SPOT",
            "instFamily": "",
            "uly": "",
            "baseCcy": base,
            "quoteCcy": "USDT",
            "settleCcy": "",
            "ctVal": "",
            "ctMult": "",
            "ctValCcy": "",
            "ctType": "",
            "lever": "10",
            "lotSz": "0.00000001",
            "minSz": "0.00001",
        }
    return common | {
        "instType": "SWAP",
        "instFamily": f"{base}-USDT",
        "uly": f"{base}-USDT",
        "baseCcy": "",
        "quoteCcy": "",
        "settleCcy": "USDT",
        "ctVal": fmt(CONTRACT_VALUES.get(base, 1.0)),
        "ctMult": "1",
        "ctValCcy": base,
        "ctType": "linear",
        "lever": "100",
        "lotSz": "0.01",
        "minSz": "0.01",
    }


def _instruments(fake: FakeOkx, path: str, params: dict[str, str]) -> list[dict[str, str]]:
    kind = params.get("instType", "")
    listed = [
        inst_id
        for inst_id in fake.instruments
        if (kind == "SWAP") == is_swap(inst_id) and kind in ("SPOT", "SWAP")
    ]
    if "instId" in params:
        listed = [inst_id for inst_id in listed if inst_id == params["instId"]]
    return [_instrument(fake, inst_id) for inst_id in listed]


def _limit(params: dict[str, str], default: int, most: int) -> int:
    try:
        limit = int(params.get("limit", default))
    except ValueError as error:
        raise _ParameterError("limit") from error
    return max(1, min(limit, most))


def _newest_between(
    rows: list[_T], key: Callable[[_T], int], params: dict[str, str], limit: int
) -> list[_T]:
    """OKX paging: rows with ``before < key < after`` (both optional), the newest ``limit``,
    newest first. ``before`` alone also answers the newest rows, as OKX does."""
    after = int(params["after"]) if params.get("after") else None
    before = int(params["before"]) if params.get("before") else None
    kept = [
        row
        for row in rows
        if (after is None or key(row) < after) and (before is None or key(row) > before)
    ]
    kept.sort(key=key, reverse=True)
    return kept[:limit]


def _candles(fake: FakeOkx, path: str, params: dict[str, str]) -> list[list[str]]:
    timeframe = _timeframe_of_bar(params.get("bar", "1m"))
    if timeframe is None:
        raise _ParameterError("bar")
    limit = _limit(params, 100, fake.max_candles_per_page)
    series = fake.candles(params["instId"], timeframe)
    if path.endswith("/market/candles"):
        step_ms = timeframe_seconds(timeframe) * 1000
        oldest_ms = fake.now_ms - RECENT_CANDLES * step_ms
        series = [row for row in series if row[0] > oldest_ms]
    step_ms = timeframe_seconds(timeframe) * 1000
    page = _newest_between(series, lambda row: int(row[0]), params, limit)
    return [
        fake.candle_row(params["instId"], row, confirmed=row[0] + step_ms <= fake.now_ms)
        for row in page
    ]


def _market_trades(fake: FakeOkx, path: str, params: dict[str, str]) -> list[dict[str, str]]:
    limit = _limit(params, 100, 500)
    trades = fake.trades(params["instId"], fake.now_ms - 24 * 3_600_000, fake.now_ms)
    return _newest_between(trades, lambda trade: int(trade["tradeId"]), {}, limit)


def _history_trades(fake: FakeOkx, path: str, params: dict[str, str]) -> list[dict[str, str]]:
    limit = _limit(params, 100, 100)
    by_time = params.get("type") == "2"  # type 1 (default): after/before are trade ids
    trades = fake.trades(params["instId"], 0, fake.now_ms)
    field_name = "ts" if by_time else "tradeId"
    return _newest_between(trades, lambda trade: int(trade[field_name]), params, limit)


def _books(fake: FakeOkx, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    depth = _limit({"limit": params.get("sz", "1")}, 1, 5000)
    with fake._lock:
        book = fake.book(params["instId"])
        return [
            {
                "asks": [_level(level) for level in book.levels("asks", depth)],
                "bids": [_level(level) for level in book.levels("bids", depth)],
                "ts": str(fake.now_ms),
            }
        ]


def _level(level: Level) -> list[str]:
    return [fmt(level[0]), fmt(level[1]), "0", "1"]


def _funding_rate(fake: FakeOkx, path: str, params: dict[str, str]) -> list[dict[str, str]]:
    inst_id = params["instId"]
    if not is_swap(inst_id):
        raise _ParameterError("instId")
    listed_ms = _ms(LISTED)
    index = (fake.now_ms - listed_ms) // FUNDING_EVERY_MS + 1  # the next settlement
    funding_ms = listed_ms + index * FUNDING_EVERY_MS
    return [
        _funding_message(
            inst_id, funding_rate(index), funding_ms, funding_ms + FUNDING_EVERY_MS, fake.now_ms
        )
    ]


def _funding_message(
    inst_id: str,
    rate: float,
    funding_ms: int,
    next_funding_ms: int,
    ts_ms: int,
    next_rate: float | None = None,
) -> dict[str, str]:
    return {
        "instType": "SWAP",
        "instId": inst_id,
        "fundingRate": fmt(rate),
        "fundingTime": str(funding_ms),
        "nextFundingRate": "" if next_rate is None else fmt(next_rate),
        "nextFundingTime": str(next_funding_ms),
        "method": "current_period",
        "formulaType": "withRate",
        "maxFundingRate": "0.0075",
        "minFundingRate": "-0.0075",
        "premium": fmt(rate / 2),
        "settFundingRate": fmt(rate),
        "settState": "settled",
        "interestRate": "0.0001",
        "impactValue": "20000",
        "sprdThreshold": "",
        "ts": str(ts_ms),
    }


def _funding_history(fake: FakeOkx, path: str, params: dict[str, str]) -> list[dict[str, str]]:
    if not is_swap(params["instId"]):
        raise _ParameterError("instId")
    limit = _limit(params, 100, 400)
    rates = fake.funding_rates(params["instId"], 0, fake.now_ms)
    return _newest_between(rates, lambda rate: int(rate["fundingTime"]), params, limit)


def _server_time(fake: FakeOkx, path: str, params: dict[str, str]) -> list[dict[str, str]]:
    return [{"ts": str(fake.now_ms)}]


_ROUTES: dict[str, Callable[[FakeOkx, str, dict[str, str]], Any]] = {
    "/api/v5/public/instruments": _instruments,
    "/api/v5/public/time": _server_time,
    "/api/v5/market/candles": _candles,
    "/api/v5/market/history-candles": _candles,
    "/api/v5/market/trades": _market_trades,
    "/api/v5/market/history-trades": _history_trades,
    "/api/v5/market/books": _books,
    "/api/v5/market/books-full": _books,
    "/api/v5/public/funding-rate": _funding_rate,
    "/api/v5/public/funding-rate-history": _funding_history,
}


class _Handler(BaseHTTPRequestHandler):
    server: _FakeServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        status, body = self.server.fake.answer(parts.path, dict(parse_qsl(parts.query)))
        is_text = isinstance(body, str)
        payload = (body if is_text else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if is_text else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeOkx) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def serve(fake: FakeOkx) -> Iterator[FakeOkx]:
    """Serve ``fake``'s REST API on a free port of 127.0.0.1 in a thread; set ``fake.url``."""
    server = _FakeServer(fake)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-okx", daemon=True
    )
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- websocket ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One frame the websocket fake wrote, with the wall time (``time.time()``) the write began."""

    wall_s: float
    conn_id: int
    path: str
    text: str

    @property
    def message(self) -> Any:
        """The frame decoded from JSON, or its text (``"pong"``)."""
        return json.loads(self.text) if self.text.startswith("{") else self.text


@dataclass(frozen=True)
class Received:
    """One frame a client sent to the websocket fake, with the wall time it was read."""

    wall_s: float
    conn_id: int
    text: str


@dataclass(frozen=True)
class Subscription:
    """One subscribe op the websocket fake accepted."""

    conn_id: int
    path: str
    channel: str
    inst_id: str


@dataclass
class _Conn:
    conn_id: int
    path: str
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    queue: asyncio.Queue[tuple[float, str]] = field(default_factory=asyncio.Queue)
    subs: set[tuple[str, str]] = field(default_factory=set)
    held: str | None = None
    writer: asyncio.Task[None] | None = None


class FakeOkxWs:
    """OKX's public websocket on 127.0.0.1, driven from tests; see the module docstring.

    Chaos knobs (attributes, read at each push; set them from any thread):

    ``duplicate``
        Write every data frame (channel pushes and snapshots, not acks or pongs) twice.
    ``delay_s``
        Write every data frame this many seconds late (order kept).
    ``reorder``
        Hold each data frame back and write it after the next one (pairs swap); a frame
        nothing follows goes out after ``hold_s``.
    ``clock_ahead_ms``
        Stamp ``ts`` of pushes with a clock running this far ahead of wall time.
    ``answer_pings``
        Answer ``ping`` with ``pong`` (turn off to starve ccxt's keepalive).

    Records, readable from any thread (:meth:`sent_messages` returns a copy): ``sent`` (every
    frame written, with the wall time its write began), ``received`` (every frame clients
    sent), ``subscriptions`` (every subscribe accepted), ``pings``, ``accepted`` and
    ``refused`` (connections), and :meth:`active` (what open connections subscribe to now).
    """

    def __init__(self, fake: FakeOkx, clock: Callable[[], float] = time.time) -> None:
        self.fake = fake
        self.clock = clock
        self.url = ""
        self.duplicate = False
        self.delay_s = 0.0
        self.reorder = False
        self.hold_s = 0.5
        self.clock_ahead_ms = 0
        self.answer_pings = True
        self.sent: list[Sent] = []
        self.received: list[Received] = []
        self.subscriptions: list[Subscription] = []
        self.pings = 0
        self.accepted = 0
        self.refused = 0
        self._conns: dict[int, _Conn] = {}
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(10_000_000)
        self._refuse_until = 0.0
        self._dropper: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start serving on a free port of 127.0.0.1; sets ``url`` (``ws://127.0.0.1:PORT``)."""
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._startup())
            started.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="fake-okx-ws", daemon=True)
        self._thread.start()
        if not started.wait(timeout=10):
            raise RuntimeError("the fake OKX websocket did not start")

    def stop(self) -> None:
        """Close every connection and stop the server and its thread."""
        if self._loop is None or self._thread is None:
            return
        with suppress(Exception):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._loop = None

    async def _startup(self) -> None:
        app = web.Application()
        for path in WS_PATHS:
            app.router.add_get(path, self._handle)
            # tradebrain's ``--ws-url BASE`` keeps the venue's host as the first path segment
            app.router.add_get("/{venue_host}" + path, self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"ws://127.0.0.1:{sock.getsockname()[1]}"

    async def _shutdown(self) -> None:
        if self._dropper is not None:
            self._dropper.cancel()
        await self._drop(clean=False)
        if self._runner is not None:
            await self._runner.cleanup()

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the server's loop and return its result (thread-safe)."""
        assert self._loop is not None, "start the fake first (serve_ws)"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    # -- queries (any thread) ---------------------------------------------------------------

    def clock_ms(self) -> int:
        """The fake's stamping clock: wall time plus ``clock_ahead_ms``, in ms."""
        return int(self.clock() * 1000) + self.clock_ahead_ms

    def connections(self) -> int:
        """Return how many connections are open now."""
        with self._lock:
            return len(self._conns)

    def active(self) -> set[tuple[str, str]]:
        """Return the ``(channel, instId)`` pairs subscribed on open connections."""
        with self._lock:
            return {sub for conn in self._conns.values() for sub in conn.subs}

    def sent_messages(self, channel: str | None = None) -> list[Sent]:
        """Return the frames written so far (of ``channel`` only, if given), in order."""
        with self._lock:
            frames = list(self.sent)
        if channel is None:
            return frames
        return [
            frame
            for frame in frames
            if isinstance(frame.message, dict)
            and "data" in frame.message
            and frame.message.get("arg", {}).get("channel") == channel
        ]

    def wait_subscribed(self, channel: str, inst_id: str, timeout: float = 5.0) -> None:
        """Block until an open connection subscribed to ``channel`` of ``inst_id``.

        Not from a thread running the ccxt.pro client's loop: use :meth:`until_subscribed`.
        """
        deadline = time.monotonic() + timeout
        while (channel, inst_id) not in self.active():
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody subscribed to {channel} {inst_id}")
            time.sleep(0.005)

    async def until_subscribed(self, channel: str, inst_id: str, timeout: float = 5.0) -> None:
        """Wait (in the caller's event loop) until ``channel`` of ``inst_id`` is subscribed."""
        deadline = time.monotonic() + timeout
        while (channel, inst_id) not in self.active():
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody subscribed to {channel} {inst_id}")
            await asyncio.sleep(0.005)

    # -- pushes (any thread; each returns the number of connections it went to) -------------

    def push_candle(
        self,
        inst_id: str,
        timeframe: str,
        open_ms: int,
        ohlcv: Sequence[float] | None = None,
        *,
        confirm: bool = False,
    ) -> int:
        """Push one candle on ``candle{bar}``: ``ohlcv`` (open, high, low, close, base
        volume) or, if None, the fake's deterministic candle of ``open_ms``; ``confirm``
        sets OKX's index-8 flag (``"1"``: the candle is final)."""
        if ohlcv is None:
            step_ms = timeframe_seconds(timeframe) * 1000
            ohlcv = self.fake.candle(inst_id, timeframe, (open_ms - _ms(LISTED)) // step_ms)
        row = self.fake.candle_row(inst_id, [open_ms, *ohlcv], confirmed=confirm)
        return self._push(f"candle{okx_bar(timeframe)}", inst_id, {"data": [row]})

    def push_trades(
        self, inst_id: str, trades: Iterable[tuple[float, float, str]], ts_ms: int | None = None
    ) -> int:
        """Push ``(price, size, side)`` trades in one ``trades`` frame; ids count up."""
        stamp = str(self.clock_ms() if ts_ms is None else ts_ms)
        data = [
            {
                "instId": inst_id,
                "tradeId": str(next(self._trade_ids)),
                "px": fmt(price),
                "sz": fmt(size),
                "side": side,
                "count": "1",
                "source": "0",
                "ts": stamp,
            }
            for price, size, side in trades
        ]
        return self._push("trades", inst_id, {"data": data})

    def push_funding_rate(
        self,
        inst_id: str,
        rate: float,
        *,
        funding_ms: int | None = None,
        next_funding_ms: int | None = None,
        next_rate: float | None = None,
    ) -> int:
        """Push a ``funding-rate`` update of a perpetual; ``funding_ms`` defaults to the next
        8-hour settlement after the stamping clock, ``next_funding_ms`` to 8 hours later."""
        now_ms = self.clock_ms()
        if funding_ms is None:
            funding_ms = (now_ms // FUNDING_EVERY_MS + 1) * FUNDING_EVERY_MS
        if next_funding_ms is None:
            next_funding_ms = funding_ms + FUNDING_EVERY_MS
        message = _funding_message(inst_id, rate, funding_ms, next_funding_ms, now_ms, next_rate)
        return self._push("funding-rate", inst_id, {"data": [message]})

    def push_mark_price(self, inst_id: str, price: float) -> int:
        """Push a ``mark-price`` update (ccxt: ``watch_mark_price``)."""
        kind = "SWAP" if is_swap(inst_id) else "MARGIN"
        message = {"instType": kind, "instId": inst_id, "markPx": fmt(price)}
        return self._push("mark-price", inst_id, {"data": [message | {"ts": str(self.clock_ms())}]})

    def update_book(
        self,
        inst_id: str,
        bids: Iterable[Level] = (),
        asks: Iterable[Level] = (),
        *,
        prev_seq_id: int | None = None,
        checksum: int | None = None,
    ) -> int:
        """Change the true book (size 0 removes a level) and push the change.

        ``books`` subscribers get an ``update`` with the changed levels, ``seqId``, the
        previous ``seqId`` as ``prevSeqId`` and the new book's checksum; ``books5``
        subscribers get the new top five. ``prev_seq_id`` and ``checksum`` override what is
        sent (to break the sequence or the checksum on purpose).
        """
        return self._call(self._update_book(inst_id, list(bids), list(asks), prev_seq_id, checksum))

    def set_book(self, inst_id: str, bids: Iterable[Level], asks: Iterable[Level]) -> int:
        """Replace the true book; subscribers get the difference as one update."""
        bids, asks = list(bids), list(asks)
        with self.fake._lock:
            book = self.fake.book(inst_id)
            new_bids, new_asks = dict(bids), dict(asks)
            bid_changes = [(p, 0.0) for p in book.bids if p not in new_bids] + bids
            ask_changes = [(p, 0.0) for p in book.asks if p not in new_asks] + asks
        return self.update_book(inst_id, bid_changes, ask_changes)

    # -- chaos (any thread) -----------------------------------------------------------------

    def drop_all(self, *, clean: bool = False) -> int:
        """Close every connection now: abruptly (TCP abort, no close frame) unless ``clean``
        (a close frame, code 1001). Returns how many were closed."""
        return self._call(self._drop(clean=clean))

    def drop_every(self, seconds: float | None) -> None:
        """Drop every connection (abruptly) every ``seconds``; None stops it."""
        self._call(self._set_dropper(seconds))

    def refuse_for(self, seconds: float) -> None:
        """Refuse websocket handshakes (HTTP 503) for ``seconds``; 0 accepts again."""
        self._refuse_until = time.monotonic() + seconds

    def flush(self) -> None:
        """Write every frame ``reorder`` is holding back."""
        self._call(self._flush())

    # -- server internals (server loop) -----------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if time.monotonic() < self._refuse_until:
            with self._lock:
                self.refused += 1
            return web.Response(status=503, text="503 Service Temporarily Unavailable")
        transport = request.transport
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        path = request.path[request.path.index("/ws/v5/") :]
        conn = _Conn(next(self._ids), path, ws, transport)
        conn.writer = asyncio.ensure_future(self._write_loop(conn))
        with self._lock:
            self._conns[conn.conn_id] = conn
            self.accepted += 1
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    await self._on_text(conn, frame.data)
        finally:
            self._forget(conn)
        return ws

    def _forget(self, conn: _Conn) -> None:
        with self._lock:
            self._conns.pop(conn.conn_id, None)
        if conn.writer is not None:
            conn.writer.cancel()

    async def _on_text(self, conn: _Conn, text: str) -> None:
        with self._lock:
            self.received.append(Received(time.time(), conn.conn_id, text))
        if text == "ping":
            with self._lock:
                self.pings += 1
            if self.answer_pings:
                self._enqueue(conn, "pong")
            return
        try:
            request = json.loads(text)
            op, args = request["op"], list(request.get("args", []))
        except (ValueError, KeyError, TypeError):
            self._error(conn, "60012", f"Illegal request: {text}")
            return
        if op not in ("subscribe", "unsubscribe"):
            self._error(conn, "60012", f"Illegal request: {text}")
            return
        for arg in args:
            channel, inst_id = str(arg.get("channel", "")), str(arg.get("instId", ""))
            if not self._serves(conn.path, channel, inst_id):
                self._error(
                    conn,
                    "60018",
                    f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist. Please use "
                    "the correct URL, channel and parameters referring to API document.",
                )
                continue
            ack = {"event": op, "arg": {"channel": channel, "instId": inst_id}}
            if op == "unsubscribe":
                with self._lock:
                    conn.subs.discard((channel, inst_id))
                self._enqueue(conn, json.dumps(ack | {"connId": f"{conn.conn_id:08x}"}))
                continue
            with self._lock:
                conn.subs.add((channel, inst_id))
                self.subscriptions.append(Subscription(conn.conn_id, conn.path, channel, inst_id))
            self._enqueue(conn, json.dumps(ack | {"connId": f"{conn.conn_id:08x}"}))
            if channel in ("books", "books5"):
                self._send_data(conn, self._book_frame(channel, inst_id, snapshot=True))

    def _serves(self, path: str, channel: str, inst_id: str) -> bool:
        if inst_id not in self.fake.instruments:
            return False
        if channel.startswith("candle"):
            return path.endswith("/business") and _timeframe_of_bar(channel[6:]) is not None
        if channel == "funding-rate" and not is_swap(inst_id):
            return False
        return path.endswith("/public") and channel in PUBLIC_CHANNELS

    def _error(self, conn: _Conn, code: str, message: str) -> None:
        frame = {"event": "error", "code": code, "msg": message, "connId": f"{conn.conn_id:08x}"}
        self._enqueue(conn, json.dumps(frame))

    def _book_frame(self, channel: str, inst_id: str, *, snapshot: bool) -> dict[str, Any]:
        with self.fake._lock:
            book = self.fake.book(inst_id)
            depth = 5 if channel == "books5" else 400
            data: dict[str, Any] = {
                "asks": [_level(level) for level in book.levels("asks", depth)],
                "bids": [_level(level) for level in book.levels("bids", depth)],
                "ts": str(self.clock_ms()),
                "seqId": book.seq_id,
            }
        if channel == "books5":
            return {
                "arg": {"channel": channel, "instId": inst_id},
                "data": [data | {"instId": inst_id}],
            }
        data |= {"checksum": book.checksum(), "prevSeqId": -1}
        return {
            "arg": {"channel": channel, "instId": inst_id},
            "action": "snapshot" if snapshot else "update",
            "data": [data],
        }

    async def _update_book(
        self,
        inst_id: str,
        bids: list[Level],
        asks: list[Level],
        prev_seq_id: int | None,
        checksum: int | None,
    ) -> int:
        with self.fake._lock:
            book = self.fake.book(inst_id)
            previous = book.seq_id
            book.apply(bids, asks)
            book.seq_id += 1
            update = {
                "asks": [_level(level) for level in asks],
                "bids": [_level(level) for level in bids],
                "ts": str(self.clock_ms()),
                "checksum": book.checksum() if checksum is None else checksum,
                "prevSeqId": previous if prev_seq_id is None else prev_seq_id,
                "seqId": book.seq_id,
            }
        frame = {
            "arg": {"channel": "books", "instId": inst_id},
            "action": "update",
            "data": [update],
        }
        count = self._deliver("books", inst_id, frame)
        return count + self._deliver(
            "books5", inst_id, self._book_frame("books5", inst_id, snapshot=False)
        )

    def _push(self, channel: str, inst_id: str, body: dict[str, Any]) -> int:
        frame = {"arg": {"channel": channel, "instId": inst_id}} | body
        return self._call(self._deliver_async(channel, inst_id, frame))

    async def _deliver_async(self, channel: str, inst_id: str, frame: dict[str, Any]) -> int:
        return self._deliver(channel, inst_id, frame)

    def _deliver(self, channel: str, inst_id: str, frame: dict[str, Any]) -> int:
        with self._lock:
            targets = [conn for conn in self._conns.values() if (channel, inst_id) in conn.subs]
        for conn in targets:
            self._send_data(conn, frame)
        return len(targets)

    def _send_data(self, conn: _Conn, frame: dict[str, Any]) -> None:
        """Queue a data frame through the chaos knobs."""
        text = json.dumps(frame)
        for _ in range(2 if self.duplicate else 1):
            if not self.reorder:
                self._enqueue(conn, text, self.delay_s)
            elif conn.held is None:
                conn.held = text
                assert self._loop is not None
                self._loop.call_later(self.hold_s, self._release, conn, text)
            else:
                held, conn.held = conn.held, None
                self._enqueue(conn, text, self.delay_s)
                self._enqueue(conn, held, self.delay_s)

    def _release(self, conn: _Conn, text: str) -> None:
        if conn.held is text:
            conn.held = None
            self._enqueue(conn, text, self.delay_s)

    async def _flush(self) -> None:
        with self._lock:
            conns = list(self._conns.values())
        for conn in conns:
            if conn.held is not None:
                held, conn.held = conn.held, None
                self._enqueue(conn, held)

    def _enqueue(self, conn: _Conn, text: str, delay_s: float = 0.0) -> None:
        assert self._loop is not None
        conn.queue.put_nowait((self._loop.time() + delay_s, text))

    async def _write_loop(self, conn: _Conn) -> None:
        assert self._loop is not None
        while True:
            due, text = await conn.queue.get()
            wait = due - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if conn.ws.closed:
                return
            # Stamped as the write starts, so it never postdates the client's receipt.
            frame = Sent(time.time(), conn.conn_id, conn.path, text)
            with self._lock:
                self.sent.append(frame)
            try:
                await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                with self._lock:
                    self.sent.remove(frame)  # the connection is gone: the frame never left
                return

    async def _drop(self, *, clean: bool) -> int:
        with self._lock:
            conns = list(self._conns.values())
            self._conns.clear()
        for conn in conns:
            if conn.writer is not None:
                conn.writer.cancel()
            if clean:
                with suppress(Exception):
                    await conn.ws.close(code=1001, message=b"going away")
            elif conn.transport is not None:
                conn.transport.abort()
        return len(conns)

    async def _set_dropper(self, seconds: float | None) -> None:
        if self._dropper is not None:
            self._dropper.cancel()
            self._dropper = None
        if seconds is not None:
            self._dropper = asyncio.ensure_future(self._drop_periodically(seconds))

    async def _drop_periodically(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self._drop(clean=False)


@contextmanager
def serve_ws(fake: FakeOkx, clock: Callable[[], float] = time.time) -> Iterator[FakeOkxWs]:
    """Serve OKX's public websocket for ``fake`` on a free port of 127.0.0.1 in a thread."""
    server = FakeOkxWs(fake, clock)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- clients --------------------------------------------------------------------------------

_PRO_MARKET_TYPES = {"spot": "spot", "perp": "swap"}


def rest_client(fake: FakeOkx, market: str = "spot", **options: Any) -> ccxt.Exchange:
    """Return tradebrain's sync ccxt ``okx`` client for ``market`` pointed at ``fake``."""
    return make_exchange("okx", markets=[market], api_urls=fake.url, **options)


def pro_client(
    fake: FakeOkx,
    ws: FakeOkxWs,
    market: str | Sequence[str] = "spot",
    *,
    client_class: type[Any] = ccxt.pro.okx,
) -> Any:
    """Return a real ``ccxt.pro.okx`` (or ``client_class``) that loads the listings of
    ``market`` (``"spot"``, ``"perp"`` or both) from ``fake`` and streams from ``ws``.

    Call it inside the event loop that will use it, and ``await client.close()`` at the end.
    Two URL keys are replaced: ``urls['api']['rest']`` (REST, ``https://{hostname}`` on OKX)
    and ``urls['api']['ws']`` (one string, ``wss://ws.okx.com:443/ws/v5`` on OKX; ccxt.pro
    adds ``/public``, ``/business`` or ``/private`` to it).
    """
    markets = [market] if isinstance(market, str) else list(market)
    client = client_class({"enableRateLimit": True, "timeout": 5000})
    option = client.options.get("fetchMarkets")
    types = [_PRO_MARKET_TYPES[name] for name in markets]
    client.options["fetchMarkets"] = (
        {**option, "types": types} if isinstance(option, dict) else types
    )
    if markets == ["perp"]:
        client.options["defaultType"] = "swap"
    client.urls["api"] = {**client.urls["api"], "rest": fake.url, "ws": f"{ws.url}/ws/v5"}
    return client

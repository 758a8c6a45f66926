"""A fake Binance REST API on 127.0.0.1 for download tests: no real exchange is ever touched.

It answers the public endpoints ccxt's ``binance`` class calls to load spot and USD-M
perpetual markets and to fetch candles, aggregate trades and funding rates, from deterministic
series that tests can recompute (:meth:`FakeBinance.candles`, ...). It can answer chosen
requests with an HTTP error, and it records every request it got.

It also holds an order book per market (:meth:`FakeBinance.book`, a :class:`FakeBook`) and serves
it as the depth snapshot (``/api/v3/depth`` for spot, ``/fapi/v1/depth`` for USD-M perpetuals)
with its ``lastUpdateId``: the websocket fake (``tests/fake_ws_binance.py``) changes the same
books and streams the diffs, so ccxt.pro's order-book sync finds the two consistent.

Point ccxt at it with ``make_exchange("binance", api_urls=fake.url)``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tradebrain.data.timeframes import timeframe_seconds

LISTED = datetime(2024, 1, 1, tzinfo=UTC)
NOW = datetime(2024, 1, 1, 5, 30, 20, tzinfo=UTC)
MAX_CANDLES_PER_PAGE = 100  # real Binance allows 1000; fewer pages keep tests small
TRADE_EVERY_MS = 45_000
FUNDING_EVERY_MS = 8 * 3_600_000
FIRST_BOOK_UPDATE_ID = 1_000  # the lastUpdateId of a book nothing has changed yet
MARKETS = ("spot", "perp")  # the books' markets: spot and the USD-M perpetual of each symbol


@dataclass(frozen=True)
class Request:
    """One request the fake received: its path and query parameters."""

    path: str
    params: dict[str, str]


@dataclass(frozen=True)
class BookChange:
    """One change of a :class:`FakeBook`, numbered as Binance numbers its depth updates.

    ``first_id`` and ``last_id`` are a depth event's ``U`` and ``u``; ``previous_id`` is the
    ``u`` of the change before (the ``pu`` of USD-M futures). ``bids`` and ``asks`` hold the
    levels that changed, ``(price, amount)``, sorted by price; amount 0 removes a level.
    """

    first_id: int
    last_id: int
    previous_id: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


@dataclass
class FakeBook:
    """The true order book of one market: price -> amount per side, and its last update id.

    Thread-safe: the REST fake reads it from its request threads while a test changes it.
    """

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    last_update_id: int = FIRST_BOOK_UPDATE_ID
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def change(
        self,
        bids: Iterable[Sequence[float]] = (),
        asks: Iterable[Sequence[float]] = (),
        *,
        replace: bool = False,
    ) -> BookChange | None:
        """Apply levels ``(price, amount)`` and return the change, or None if nothing changed.

        With ``replace`` the levels are the whole new book (levels not named are removed);
        otherwise they change single levels and amount 0 removes one. Each changed level
        takes one update id, as on Binance.
        """
        with self.lock:
            bid_changes = _apply_levels(self.bids, bids, replace)
            ask_changes = _apply_levels(self.asks, asks, replace)
            count = len(bid_changes) + len(ask_changes)
            if count == 0:
                return None
            previous = self.last_update_id
            self.last_update_id = previous + count
            return BookChange(previous + 1, self.last_update_id, previous, bid_changes, ask_changes)

    def levels(self, limit: int | None = None) -> tuple[list[list[float]], list[list[float]]]:
        """Return ``(bids, asks)`` as ``[price, amount]`` rows, best first, as ccxt holds them."""
        with self.lock:
            bids = sorted(([p, q] for p, q in self.bids.items()), reverse=True)[:limit]
            asks = sorted([p, q] for p, q in self.asks.items())[:limit]
        return bids, asks

    def snapshot(self, limit: int | None = None) -> dict[str, Any]:
        """Return the book as Binance's REST depth answers it, with its ``lastUpdateId``."""
        with self.lock:
            bids, asks = self.levels(limit)
            return {
                "lastUpdateId": self.last_update_id,
                "bids": [[_decimal(p), _decimal(q)] for p, q in bids],
                "asks": [[_decimal(p), _decimal(q)] for p, q in asks],
            }


def _apply_levels(
    side: dict[float, float], levels: Iterable[Sequence[float]], replace: bool
) -> list[tuple[float, float]]:
    """Change ``side`` to ``levels`` and return the levels that changed, 0 for removed ones."""
    wanted = {float(price): float(amount) for price, amount in levels}
    changes = {price: amount for price, amount in wanted.items() if side.get(price, 0.0) != amount}
    if replace:
        changes |= {price: 0.0 for price in side if wanted.get(price, 0.0) == 0.0}
    for price, amount in changes.items():
        if amount == 0.0:
            side.pop(price, None)
        else:
            side[price] = amount
    return sorted(changes.items())


def _decimal(value: float) -> str:
    """Return ``value`` as Binance writes numbers: a decimal string with 8 places."""
    return f"{value:.8f}"


@dataclass
class FakeBinance:
    """State of the fake: its clock, listings, planned failures and the requests it got.

    Parameters
    ----------
    now
        The fake's clock; the newest candle it serves is the one still open at ``now``.
    symbols
        Binance ids of the listed spot markets (``BTCUSDT``); each is also a USD-M perpetual.
    missing
        Open times (ms) of candles the fake does not have: gaps an exchange really has.
    inverted
        Open times (ms) of candles served with high and low swapped: broken data.
    """

    now: datetime = NOW
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    missing: set[int] = field(default_factory=set)
    inverted: set[int] = field(default_factory=set)
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    _planned: dict[tuple[str, int], int] = field(default_factory=dict)
    _broken: dict[str, int] = field(default_factory=dict)
    _books: dict[tuple[str, str], FakeBook] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def now_ms(self) -> int:
        return int(self.now.timestamp() * 1000)

    def fail(self, path: str, status: int, *, on_request: int) -> None:
        """Answer the ``on_request``-th request (1-based) to ``path`` with HTTP ``status``."""
        self._planned[(path, on_request)] = status

    def break_down(self, path: str, status: int = 503) -> None:
        """Answer every further request to ``path`` with HTTP ``status``."""
        self._broken[path] = status

    def book(self, symbol: str, market: str = "spot") -> FakeBook:
        """Return the order book of ``symbol`` (a Binance id, ``BTCUSDT``) in ``market``.

        ``market`` is ``"spot"`` or ``"perp"``; a book nobody changed yet is empty.
        """
        if market not in MARKETS:
            raise ValueError(f"market must be one of {MARKETS}, not {market!r}")
        with self._lock:
            return self._books.setdefault((market, symbol), FakeBook())

    def requests_to(self, path: str) -> list[dict[str, str]]:
        """Return the query parameters of every request to ``path``, in order."""
        with self._lock:
            return [request.params for request in self.requests if request.path == path]

    def candles(self, symbol: str, timeframe: str, start_ms: int = 0) -> list[list[float]]:
        """Return every candle served, ``[open_ms, open, high, low, close, volume]``, open too."""
        step_ms = timeframe_seconds(timeframe) * 1000
        listed_ms = int(LISTED.timestamp() * 1000)
        first = max(0, -(-(start_ms - listed_ms) // step_ms))
        series = []
        for index in range(first, (self.now_ms - listed_ms) // step_ms + 1):
            open_ms = listed_ms + index * step_ms
            if open_ms in self.missing:
                continue
            open_price, high, low, close_price, volume = _prices(symbol, index)
            if open_ms in self.inverted:
                high, low = low, high
            series.append([open_ms, open_price, high, low, close_price, volume])
        return series

    def trades(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Return the aggregate trades with ``start_ms <= time <= end_ms``, Binance-shaped."""
        listed_ms = int(LISTED.timestamp() * 1000)
        first = max(0, -(-(start_ms - listed_ms) // TRADE_EVERY_MS))
        last = (min(end_ms, self.now_ms) - listed_ms) // TRADE_EVERY_MS
        return [
            _trade(index, listed_ms + index * TRADE_EVERY_MS) for index in range(first, last + 1)
        ]

    def funding_rates(self, symbol: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Return the funding rates settled in ``[start_ms, end_ms]``, Binance-shaped."""
        listed_ms = int(LISTED.timestamp() * 1000)
        first = max(0, -(-(start_ms - listed_ms) // FUNDING_EVERY_MS))
        last = (min(end_ms, self.now_ms) - listed_ms) // FUNDING_EVERY_MS
        return [
            {
                "symbol": symbol,
                "fundingTime": listed_ms + index * FUNDING_EVERY_MS,
                "fundingRate": f"{0.0001 * (1 + index % 3):.8f}",
                "markPrice": "100.00000000",
            }
            for index in range(first, last + 1)
        ]

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        """Return the HTTP status and body (JSON-able, or HTML text) of one request; record it."""
        with self._lock:
            self.requests.append(Request(path, params))
            count = sum(1 for request in self.requests if request.path == path)
        status = self._planned.pop((path, count), None) or self._broken.get(path)
        if status is not None:
            return status, _ERROR_BODIES.get(
                status, f"<html><h1>{status} Service Unavailable</h1></html>"
            )
        route = _ROUTES.get(path.replace("/fapi/v1/", "/api/v3/", 1))
        if route is None:
            return 404, {"code": -1, "msg": f"the fake has no {path}"}
        if "symbol" in params and params["symbol"] not in self.symbols:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        return 200, route(self, path, params)


# What Binance answers on overload; other statuses get the HTML page of its load balancer.
_ERROR_BODIES: dict[int, Any] = {
    429: {"code": -1003, "msg": "Too much request weight used; current limit is 6000 per minute."},
    500: {
        "code": -1001,
        "msg": "Internal error; unable to process your request. Please try again.",
    },
}


def _prices(symbol: str, index: int) -> list[float]:
    """Return deterministic ``open, high, low, close, volume`` of candle ``index``."""
    level = 100.0 if symbol.startswith("BTC") else 20.0
    open_price = round(level + 5 * math.sin(index / 7), 2)
    close_price = round(level + 5 * math.sin((index + 1) / 7), 2)
    high = round(max(open_price, close_price) + 0.25, 2)
    low = round(min(open_price, close_price) - 0.25, 2)
    return [open_price, high, low, close_price, float(1 + index % 13)]


def _trade(index: int, time_ms: int) -> dict[str, Any]:
    price = round(100 + math.sin(index / 11), 2)
    return {
        "a": index,
        "p": f"{price:.8f}",
        "q": f"{0.5 + index % 4:.8f}",
        "f": index,
        "l": index,
        "T": time_ms,
        "m": index % 2 == 0,  # the buyer made the market: a sell hit the bid
        "M": True,
    }


def _exchange_info(fake: FakeBinance, path: str, params: dict[str, str]) -> dict[str, Any]:
    perpetual = path.startswith("/fapi/")
    return {
        "timezone": "UTC",
        "serverTime": fake.now_ms,
        "symbols": [_listing(symbol, perpetual) for symbol in fake.symbols],
    }


def _listing(symbol: str, perpetual: bool) -> dict[str, Any]:
    base, quote = symbol.removesuffix("USDT"), "USDT"
    listing: dict[str, Any] = {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "quoteAsset": quote,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "0", "tickSize": "0.01"},
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00001",
                "maxQty": "9000",
                "stepSize": "0.00001",
            },
        ],
        "permissions": ["SPOT"],
    }
    if perpetual:
        listing |= {
            "contractType": "PERPETUAL",
            "marginAsset": quote,
            "pricePrecision": 2,
            "quantityPrecision": 3,
            "onboardDate": int(LISTED.timestamp() * 1000),
        }
    return listing


def _klines(fake: FakeBinance, path: str, params: dict[str, str]) -> list[list[Any]]:
    limit = min(int(params.get("limit", 500)), MAX_CANDLES_PER_PAGE)
    series = fake.candles(params["symbol"], params["interval"], int(params.get("startTime", 0)))
    if "endTime" in params:
        series = [row for row in series if row[0] <= int(params["endTime"])]
    page = series[:limit] if "startTime" in params else series[-limit:]
    step_ms = timeframe_seconds(params["interval"]) * 1000
    return [[row[0], *(f"{value:.8f}" for value in row[1:]), row[0] + step_ms - 1] for row in page]


def _agg_trades(fake: FakeBinance, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    limit = min(int(params.get("limit", 500)), 1000)
    start_ms = int(params.get("startTime", fake.now_ms - 3_600_000))
    end_ms = int(params.get("endTime", fake.now_ms))
    return fake.trades(start_ms, end_ms)[:limit]


def _funding_rate(fake: FakeBinance, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    limit = min(int(params.get("limit", 100)), 1000)
    start_ms = int(params.get("startTime", 0))
    end_ms = int(params.get("endTime", fake.now_ms))
    return fake.funding_rates(params["symbol"], start_ms, end_ms)[:limit]


def _server_time(fake: FakeBinance, path: str, params: dict[str, str]) -> dict[str, Any]:
    return {"serverTime": fake.now_ms}


def _depth(fake: FakeBinance, path: str, params: dict[str, str]) -> dict[str, Any]:
    perpetual = path.startswith("/fapi/")
    limit = min(int(params.get("limit", 100)), 5000)
    snapshot = fake.book(params["symbol"], "perp" if perpetual else "spot").snapshot(limit)
    if perpetual:  # USD-M answers with its message and transaction times; spot does not
        times = {"E": fake.now_ms, "T": fake.now_ms}
        return {"lastUpdateId": snapshot.pop("lastUpdateId"), **times, **snapshot}
    return snapshot


_ROUTES = {
    "/api/v3/exchangeInfo": _exchange_info,
    "/api/v3/klines": _klines,
    "/api/v3/aggTrades": _agg_trades,
    "/api/v3/fundingRate": _funding_rate,
    "/api/v3/time": _server_time,
    "/api/v3/depth": _depth,
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

    def __init__(self, fake: FakeBinance) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def serve(fake: FakeBinance) -> Iterator[FakeBinance]:
    """Serve ``fake`` on a free port of 127.0.0.1 in a background thread; set ``fake.url``."""
    server = _FakeServer(fake)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.01},
        name="fake-binance",
        daemon=True,
    )
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

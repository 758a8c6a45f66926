"""A fake Binance trading venue on 127.0.0.1 for exchange-broker tests: no real exchange is used.

It answers the signed endpoints ccxt's ``binance`` class calls to trade spot and USD-M
perpetuals: order create / query / cancel (``/api/v3/order``, ``/fapi/v1/order``, and the
conditional ``/fapi/v1/algoOrder`` that Binance requires for perp stop orders), open orders,
account trades, balances, leverage and position risk; plus exchangeInfo (with the order types
ccxt checks), time and tickers. It keeps balances, fills market orders at once at its current
price, rests limit and stop orders until :meth:`FakeVenue.set_price` crosses them, refuses what
the balance cannot cover and duplicate client order ids with Binance's error JSON, and checks
that a signature and an API key are present (and, when given ``api_key`` and ``secret``, that
they are this account's: the key matches and the HMAC-SHA256 signature verifies).

Fault injection: :meth:`FakeVenue.fail` answers the Nth request to a path with an HTTP error;
:meth:`FakeVenue.accept_then_drop` and :meth:`FakeVenue.accept_then_stall` process the Nth
request, then close the connection without an answer or answer only after a delay.

Point ccxt at it with ``make_exchange("binance", markets=("spot", "perp"), api_urls=fake.url)``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fake_exchange import _ERROR_BODIES, NOW, _listing

SPOT_ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]
PERP_ORDER_TYPES = [
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]
_CONDITIONAL = {"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
_PUBLIC = {"exchangeInfo", "time", "ticker/24hr", "ticker/price"}
INSUFFICIENT = {"code": -2010, "msg": "Account has insufficient balance for requested action."}
MARGIN_INSUFFICIENT = {"code": -2019, "msg": "Margin is insufficient."}
DUPLICATE = {"code": -2010, "msg": "Duplicate order sent."}
PERP_DUPLICATE = {"code": -4116, "msg": "ClientOrderId is duplicated."}
NOT_FOUND = {"code": -2013, "msg": "Order does not exist."}
UNKNOWN_ORDER = {"code": -2011, "msg": "Unknown order sent."}
REDUCE_ONLY_REJECTED = {"code": -2022, "msg": "ReduceOnly Order is rejected."}
BAD_SIGNATURE = {"code": -1022, "msg": "Signature for this request is not valid."}
ALGO_ONLY = {
    "code": -4120,
    "msg": "Order type not supported for this endpoint. Please use the Algo Order API endpoints "
    "instead.",
}


class VenueError(Exception):
    """Binance's answer to a refused request: HTTP status and error JSON."""

    def __init__(self, body: dict[str, Any], status: int = 400) -> None:
        super().__init__(body["msg"])
        self.body = body
        self.status = status


@dataclass(frozen=True)
class Request:
    """One request the venue received."""

    method: str
    path: str
    params: dict[str, str]


@dataclass
class FakeVenue:
    """State of the fake venue: prices, balances, orders, trades, planned faults, requests.

    Parameters
    ----------
    prices
        Current price per Binance symbol id (``BTCUSDT``): spot and perp trade at the same price.
    balances
        Spot free balances per asset.
    wallet
        USD-M futures wallet balance in USDT.
    spot_fee, perp_taker_fee, perp_maker_fee
        Commission rates; spot buys pay it in the base asset they receive, like Binance.
    market_fill_parts
        Split every market fill into this many trades (one order, several trade ids).
    api_key, secret
        This account's credentials; None: any key and signature are accepted.
    """

    prices: dict[str, float] = field(default_factory=lambda: {"BTCUSDT": 100.0, "ETHUSDT": 20.0})
    balances: dict[str, float] = field(default_factory=lambda: {"USDT": 10_000.0})
    wallet: float = 10_000.0
    spot_fee: float = 0.001
    perp_taker_fee: float = 0.0004
    perp_maker_fee: float = 0.0002
    maintenance_margin: float = 0.004
    market_fill_parts: int = 1
    api_key: str | None = None
    secret: str | None = None
    now_ms: int = int(NOW.timestamp() * 1000)
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    algo_orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    locked: dict[str, float] = field(default_factory=dict)
    positions: dict[str, list[float]] = field(default_factory=dict)  # symbol -> [qty, entry]
    leverage: dict[str, int] = field(default_factory=dict)
    _planned: dict[tuple[str, str, int], int | str | float] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1001))
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # --- what tests set and read ------------------------------------------------------------
    def fail(self, path: str, status: int, *, on_request: int, method: str = "POST") -> None:
        """Answer the ``on_request``-th (1-based) ``method`` request to ``path`` with ``status``."""
        self._planned[(method, path, on_request)] = status

    def accept_then_drop(self, path: str, *, on_request: int, method: str = "POST") -> None:
        """Process the ``on_request``-th request to ``path``, then close without answering."""
        self._planned[(method, path, on_request)] = "drop"

    def accept_then_stall(
        self, path: str, seconds: float, *, on_request: int, method: str = "POST"
    ) -> None:
        """Process the ``on_request``-th request to ``path``, then answer after ``seconds``."""
        self._planned[(method, path, on_request)] = float(seconds)

    def set_price(self, symbol: str, price: float, *, depth: float | None = None) -> None:
        """Move the price of ``symbol`` and execute the orders it crosses.

        ``depth`` caps the base quantity each crossed limit order fills now (a partial fill).
        """
        with self._lock:
            self.prices[symbol] = price
            for order in sorted(self.orders.values(), key=lambda order: order["orderId"]):
                if order["symbol"] == symbol and order["status"] in ("NEW", "PARTIALLY_FILLED"):
                    self._match(order, depth)
            for algo in list(self.algo_orders.values()):
                if algo["symbol"] == symbol and algo["algoStatus"] == "NEW":
                    self._trigger(algo)

    def requests_to(self, path: str, method: str | None = None) -> list[dict[str, str]]:
        """Return the parameters of every request to ``path`` (of ``method``), in order."""
        with self._lock:
            return [
                request.params
                for request in self.requests
                if request.path == path and method in (None, request.method)
            ]

    def accepted(self, path: str = "/api/v3/order") -> list[dict[str, Any]]:
        """Return the orders the venue accepted through ``path``."""
        market = "perp" if path.startswith("/fapi/") else "spot"
        book = self.algo_orders if path.endswith("algoOrder") else self.orders
        return [order for order in book.values() if order["_market"] == market]

    def order_by_client_id(self, client_id: str) -> dict[str, Any]:
        """Return the (algo) order with ``client_id``; KeyError when there is none."""
        for order in [*self.orders.values(), *self.algo_orders.values()]:
            if client_id in (order.get("clientOrderId"), order.get("clientAlgoId")):
                return order
        raise KeyError(client_id)

    def position(self, symbol: str) -> float:
        """Return the signed perp position in ``symbol`` (base units)."""
        return self.positions.get(symbol, [0.0, 0.0])[0]

    # --- the HTTP entry point ---------------------------------------------------------------
    def answer(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        api_key: str | None,
        signed_text: str = "",
    ) -> tuple[int, Any, int | str | float | None]:
        """Return the status, the body and the planned after-effect of one request
        (``signed_text``: the query and body as sent, which the signature covers)."""
        with self._lock:
            self.requests.append(Request(method, path, params))
            count = len(self.requests_to(path, method))
            planned = self._planned.pop((method, path, count), None)
            if isinstance(planned, int):
                body = _ERROR_BODIES.get(planned, f"<html><h1>{planned} Error</h1></html>")
                return planned, body, None
            endpoint = path.split("/", 3)[-1]
            signed = endpoint not in _PUBLIC and not path.startswith("/sapi/")
            if signed and ("signature" not in params or not api_key):
                return 401, BAD_SIGNATURE, None
            if signed and not self._genuine(api_key, signed_text, params["signature"]):
                return 401, BAD_SIGNATURE, None
            self.now_ms += 1
            try:
                return 200, self._route(method, path, params), planned
            except VenueError as error:
                return error.status, error.body, planned

    def _genuine(self, api_key: str | None, signed_text: str, signature: str) -> bool:
        """Whether a signed request carries this account's key and a valid HMAC."""
        if self.api_key is not None and api_key != self.api_key:
            return False
        if self.secret is None:
            return True
        payload = signed_text.replace(f"&signature={signature}", "").replace(
            f"signature={signature}", ""
        )
        digest = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(digest, signature)

    def _route(self, method: str, path: str, params: dict[str, str]) -> Any:
        market = "perp" if path.startswith("/fapi/") else "spot"
        endpoint = path.split("/", 3)[-1]
        if path.startswith("/sapi/"):
            return []
        if "symbol" in params and params["symbol"] not in self.prices:
            raise VenueError({"code": -1121, "msg": "Invalid symbol."})
        routes: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "exchangeInfo"): lambda: self._exchange_info(market),
            ("GET", "time"): lambda: {"serverTime": self.now_ms},
            ("GET", "ticker/24hr"): lambda: self._ticker(params["symbol"]),
            ("POST", "order"): lambda: self._create(market, params),
            ("GET", "order"): lambda: self._view(self._find(market, params)),
            ("DELETE", "order"): lambda: self._cancel(self._find(market, params, UNKNOWN_ORDER)),
            ("GET", "openOrders"): lambda: self._open_orders(market, params),
            ("GET", "myTrades"): lambda: self._trades("spot", params),
            ("GET", "userTrades"): lambda: self._trades("perp", params),
            ("GET", "account"): lambda: self._account(market),
            ("POST", "leverage"): lambda: self._set_leverage(params),
            ("GET", "leverageBracket"): lambda: self._brackets(),
            ("GET", "positionRisk"): lambda: self._position_risk(),
            ("POST", "algoOrder"): lambda: self._create_algo(params),
            ("GET", "algoOrder"): lambda: self._find_algo(params),
            ("DELETE", "algoOrder"): lambda: self._cancel_algo(self._find_algo(params)),
        }
        route = routes.get((method, endpoint))
        if route is None:
            raise VenueError({"code": -1, "msg": f"the fake venue has no {method} {path}"}, 404)
        return route()

    # --- market data --------------------------------------------------------------------------
    def _exchange_info(self, market: str) -> dict[str, Any]:
        types = PERP_ORDER_TYPES if market == "perp" else SPOT_ORDER_TYPES
        symbols = [
            _listing(symbol, market == "perp") | {"orderTypes": types} for symbol in self.prices
        ]
        return {"timezone": "UTC", "serverTime": self.now_ms, "symbols": symbols}

    def _ticker(self, symbol: str) -> dict[str, Any]:
        price = f"{self.prices[symbol]:.8f}"
        return {
            "symbol": symbol,
            "lastPrice": price,
            "bidPrice": price,
            "askPrice": price,
            "openPrice": price,
            "highPrice": price,
            "lowPrice": price,
            "volume": "0",
            "quoteVolume": "0",
            "closeTime": self.now_ms,
        }

    # --- orders -------------------------------------------------------------------------------
    def _create(self, market: str, params: dict[str, str]) -> dict[str, Any]:
        kind = params["type"]
        if market == "perp" and kind in _CONDITIONAL:
            raise VenueError(ALGO_ONLY)
        client_id = params.get("newClientOrderId") or f"fake-{next(self._ids)}"
        for order in self.orders.values():  # unique among OPEN orders, like Binance
            if (
                order["_market"] == market
                and order["clientOrderId"] == client_id
                and order["status"] in ("NEW", "PARTIALLY_FILLED")
            ):
                raise VenueError(PERP_DUPLICATE if market == "perp" else DUPLICATE)
        order = {
            "_market": market,
            "symbol": params["symbol"],
            "orderId": next(self._ids),
            "clientOrderId": client_id,
            "price": params.get("price", "0"),
            "origQty": params["quantity"],
            "executedQty": "0",
            "cumQuote": 0.0,
            "status": "NEW",
            "timeInForce": params.get("timeInForce", "GTC"),
            "type": kind,
            "side": params["side"],
            "stopPrice": params.get("stopPrice", "0"),
            "reduceOnly": params.get("reduceOnly") == "true",
            "time": self.now_ms,
            "updateTime": self.now_ms,
            "_fills": [],
        }
        self._reserve(order)
        self.orders[order["orderId"]] = order
        self._match(order, None)
        view = self._view(order)
        if market == "spot":
            view |= {"transactTime": self.now_ms, "fills": order.pop("_fills")}
        return view

    def _reserve(self, order: dict[str, Any]) -> None:
        """Refuse what the account cannot cover; lock what a resting spot order holds."""
        quantity = float(order["origQty"])
        symbol = order["symbol"]
        price = float(order["price"]) or self.prices[symbol]
        if order["_market"] == "perp":
            held = self.position(symbol)
            reducing = held * (1 if order["side"] == "SELL" else -1) > 0
            if order["reduceOnly"]:
                if not reducing and order["type"] == "MARKET":
                    raise VenueError(REDUCE_ONLY_REJECTED)
                return
            if not reducing and quantity * price / self.leverage.get(symbol, 20) > self._free():
                raise VenueError(MARGIN_INSUFFICIENT)
            return
        base = symbol.removesuffix("USDT")
        asset, need = ("USDT", quantity * price) if order["side"] == "BUY" else (base, quantity)
        if need > self.balances.get(asset, 0.0) + 1e-12:
            raise VenueError(INSUFFICIENT)
        if order["type"] != "MARKET":
            self.balances[asset] -= need
            self.locked[asset] = self.locked.get(asset, 0.0) + need
            order["_locked"] = (asset, need)

    def _unlock(self, order: dict[str, Any], share: float) -> None:
        locked = order.get("_locked")
        if locked is None:
            return
        asset, amount = locked
        self.locked[asset] -= amount * share
        self.balances[asset] = self.balances.get(asset, 0.0) + amount * share

    def _match(self, order: dict[str, Any], depth: float | None) -> None:
        price = self.prices[order["symbol"]]
        buy = order["side"] == "BUY"
        kind = order["type"]
        limit = float(order["price"])
        trigger = float(order["stopPrice"])
        if kind == "MARKET":
            self._execute(order, price, None, taker=True, parts=self.market_fill_parts)
        elif kind in ("LIMIT", "LIMIT_MAKER") and (price <= limit if buy else price >= limit):
            self._execute(order, limit, depth, taker=False, parts=1)
        elif kind in ("STOP_LOSS", "TAKE_PROFIT"):
            rising = kind == "STOP_LOSS" if buy else kind == "TAKE_PROFIT"
            if price >= trigger if rising else price <= trigger:
                self._execute(order, price, None, taker=True, parts=1)

    def _execute(
        self, order: dict[str, Any], price: float, depth: float | None, *, taker: bool, parts: int
    ) -> None:
        remaining = float(order["origQty"]) - float(order["executedQty"])
        if order["_market"] == "perp" and order["reduceOnly"]:
            held = self.position(order["symbol"])
            reducible = abs(held) if held * (1 if order["side"] == "SELL" else -1) > 0 else 0.0
            if reducible <= 0:
                order |= {"status": "EXPIRED", "updateTime": self.now_ms}
                return
            remaining = min(remaining, reducible)
        quantity = remaining if depth is None else min(remaining, depth)
        if quantity <= 0:
            return
        pieces = [round(quantity / parts, 8)] * (parts - 1)
        pieces.append(round(quantity - sum(pieces), 8))
        sign = 1 if order["side"] == "BUY" else -1
        for index, piece in enumerate(pieces):
            self._trade(order, price * (1 + 0.0001 * index * sign), piece, taker)
        executed = float(order["executedQty"]) + quantity
        order["executedQty"] = f"{executed:.8f}"
        full = executed >= float(order["origQty"]) - 1e-12
        reduce_capped = order["_market"] == "perp" and order["reduceOnly"] and not full
        order["status"] = "FILLED" if full else ("EXPIRED" if reduce_capped else "PARTIALLY_FILLED")
        order["updateTime"] = self.now_ms
        if full or reduce_capped:
            self._unlock(order, 1.0)  # what is left of the lock
            order.pop("_locked", None)

    def _trade(self, order: dict[str, Any], price: float, quantity: float, taker: bool) -> None:
        symbol = order["symbol"]
        base = symbol.removesuffix("USDT")
        buy = order["side"] == "BUY"
        quote = price * quantity
        self.now_ms += 1
        trade_id = next(self._ids)
        if order["_market"] == "spot":
            locked = order.get("_locked")
            if locked is not None:  # the lock covers this much of the order
                asset, amount = locked
                share = quantity / float(order["origQty"])
                self.locked[asset] -= amount * share
                self.balances[asset] += amount * share
                order["_locked"] = (asset, amount * (1 - share))
            commission = quantity * self.spot_fee if buy else quote * self.spot_fee
            fee_asset = base if buy else "USDT"
            if buy:
                self.balances["USDT"] -= quote
                self.balances[base] = self.balances.get(base, 0.0) + quantity - commission
            else:
                self.balances[base] -= quantity
                self.balances["USDT"] += quote - commission
            realized = 0.0
        else:
            commission = quote * (self.perp_taker_fee if taker else self.perp_maker_fee)
            fee_asset = "USDT"
            realized = self._move_position(symbol, quantity if buy else -quantity, price)
            self.wallet += realized - commission
        order["cumQuote"] += quote
        record = {
            "_market": order["_market"],
            "symbol": symbol,
            "id": trade_id,
            "orderId": order["orderId"],
            "price": f"{price:.8f}",
            "qty": f"{quantity:.8f}",
            "quoteQty": f"{quote:.8f}",
            "commission": f"{commission:.8f}",
            "commissionAsset": fee_asset,
            "time": self.now_ms,
        }
        if order["_market"] == "spot":  # the two APIs name the fields differently
            record |= {"isBuyer": buy, "isMaker": not taker, "isBestMatch": True, "orderListId": -1}
        else:
            record |= {
                "buyer": buy,
                "maker": not taker,
                "side": order["side"],
                "positionSide": "BOTH",
                "realizedPnl": f"{realized:.8f}",
            }
        self.trades.append(record)
        order.setdefault("_fills", []).append(
            {
                "price": record["price"],
                "qty": record["qty"],
                "commission": record["commission"],
                "commissionAsset": fee_asset,
                "tradeId": trade_id,
            }
        )

    def _move_position(self, symbol: str, signed: float, price: float) -> float:
        quantity, entry = self.positions.get(symbol, [0.0, 0.0])
        realized = 0.0
        if quantity * signed < 0:  # reducing
            closed = min(abs(signed), abs(quantity))
            realized = closed * (price - entry) * (1 if quantity > 0 else -1)
        new = quantity + signed
        if abs(new) < 1e-12:
            self.positions.pop(symbol, None)
            return realized
        if quantity * new <= 0:  # opened or flipped
            entry = price
        elif abs(new) > abs(quantity):
            entry = (entry * abs(quantity) + price * abs(signed)) / abs(new)
        self.positions[symbol] = [new, entry]
        return realized

    def _find(
        self, market: str, params: dict[str, str], missing: dict[str, Any] = NOT_FOUND
    ) -> dict[str, Any]:
        for order in reversed(list(self.orders.values())):  # the newest reuse of a client id
            if order["_market"] != market or order["symbol"] != params["symbol"]:
                continue
            if str(order["orderId"]) == params.get("orderId") or (
                order["clientOrderId"] == params.get("origClientOrderId")
            ):
                return order
        raise VenueError(missing)

    def _cancel(self, order: dict[str, Any]) -> dict[str, Any]:
        if order["status"] not in ("NEW", "PARTIALLY_FILLED"):
            raise VenueError(UNKNOWN_ORDER)
        order |= {"status": "CANCELED", "updateTime": self.now_ms}
        self._unlock(order, 1.0)
        order.pop("_locked", None)
        return self._view(order)

    def _view(self, order: dict[str, Any]) -> dict[str, Any]:
        executed = float(order["executedQty"])
        view = {key: value for key, value in order.items() if not key.startswith("_")}
        if order["_market"] == "spot":
            view["cummulativeQuoteQty"] = f"{view.pop('cumQuote'):.8f}"
            view.pop("reduceOnly")
        else:
            view |= {
                "cumQuote": f"{order['cumQuote']:.8f}",
                "avgPrice": f"{order['cumQuote'] / executed if executed else 0:.8f}",
                "positionSide": "BOTH",
                "origType": order["type"],
            }
        return view

    def _open_orders(self, market: str, params: dict[str, str]) -> list[dict[str, Any]]:
        return [
            self._view(order)
            for order in self.orders.values()
            if order["_market"] == market
            and order["status"] in ("NEW", "PARTIALLY_FILLED")
            and order["symbol"] == params.get("symbol", order["symbol"])
        ]

    def _trades(self, market: str, params: dict[str, str]) -> list[dict[str, Any]]:
        return [
            {key: value for key, value in trade.items() if not key.startswith("_")}
            for trade in self.trades
            if trade["_market"] == market
            and trade["symbol"] == params["symbol"]
            and str(trade["orderId"]) == params.get("orderId", str(trade["orderId"]))
        ]

    # --- conditional (algo) orders on perps ---------------------------------------------------
    def _create_algo(self, params: dict[str, str]) -> dict[str, Any]:
        client_id = params.get("clientAlgoId") or f"fake-{next(self._ids)}"
        if any(
            algo["clientAlgoId"] == client_id and algo["algoStatus"] == "NEW"
            for algo in self.algo_orders.values()
        ):
            raise VenueError(PERP_DUPLICATE)
        algo = {
            "_market": "perp",
            "algoId": next(self._ids),
            "clientAlgoId": client_id,
            "algoType": params.get("algoType", "CONDITIONAL"),
            "orderType": params["type"],
            "symbol": params["symbol"],
            "side": params["side"],
            "positionSide": "BOTH",
            "timeInForce": "GTC",
            "quantity": params["quantity"],
            "algoStatus": "NEW",
            "triggerPrice": params["triggerPrice"],
            "price": params.get("price", "0"),
            "reduceOnly": params.get("reduceOnly") == "true",
            "createTime": self.now_ms,
            "updateTime": self.now_ms,
            "triggerTime": 0,
            "actualOrderId": "",
            "actualPrice": "",
        }
        self.algo_orders[algo["algoId"]] = algo
        return self._algo_view(algo)

    def _trigger(self, algo: dict[str, Any]) -> None:
        price = self.prices[algo["symbol"]]
        trigger = float(algo["triggerPrice"])
        buy = algo["side"] == "BUY"
        if algo["orderType"] == "STOP_MARKET":
            crossed = price >= trigger if buy else price <= trigger
        else:  # TAKE_PROFIT_MARKET
            crossed = price <= trigger if buy else price >= trigger
        if not crossed:
            return
        order = {
            "_market": "perp",
            "symbol": algo["symbol"],
            "orderId": next(self._ids),
            "clientOrderId": f"autoclose-{algo['algoId']}",
            "price": "0",
            "origQty": algo["quantity"],
            "executedQty": "0",
            "cumQuote": 0.0,
            "status": "NEW",
            "timeInForce": "GTC",
            "type": "MARKET",
            "side": algo["side"],
            "stopPrice": "0",
            "reduceOnly": algo["reduceOnly"],
            "time": self.now_ms,
            "updateTime": self.now_ms,
            "_fills": [],
        }
        self.orders[order["orderId"]] = order
        self._execute(order, price, None, taker=True, parts=1)
        algo |= {
            "algoStatus": "FINISHED",
            "actualOrderId": str(order["orderId"]),
            "actualPrice": f"{price:.8f}",
            "triggerTime": self.now_ms,
            "updateTime": self.now_ms,
        }

    def _find_algo(self, params: dict[str, str]) -> dict[str, Any]:
        for algo in reversed(list(self.algo_orders.values())):
            if str(algo["algoId"]) == params.get("algoId") or (
                algo["clientAlgoId"] == params.get("clientAlgoId")
            ):
                return self._algo_view(algo)
        raise VenueError(NOT_FOUND)

    def _cancel_algo(self, view: dict[str, Any]) -> dict[str, Any]:
        algo = self.algo_orders[view["algoId"]]
        if algo["algoStatus"] != "NEW":
            raise VenueError(UNKNOWN_ORDER)
        algo |= {"algoStatus": "CANCELED", "updateTime": self.now_ms}
        return {
            "algoId": algo["algoId"],
            "clientAlgoId": algo["clientAlgoId"],
            "code": "200",
            "msg": "success",
        }

    @staticmethod
    def _algo_view(algo: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in algo.items() if not key.startswith("_")}

    # --- account ------------------------------------------------------------------------------
    def _unrealized(self) -> float:
        return sum(
            quantity * (self.prices[symbol] - entry)
            for symbol, (quantity, entry) in self.positions.items()
        )

    def _margin_used(self) -> float:
        return sum(
            abs(quantity) * self.prices[symbol] / self.leverage.get(symbol, 20)
            for symbol, (quantity, _) in self.positions.items()
        )

    def _free(self) -> float:
        return self.wallet + self._unrealized() - self._margin_used()

    def _account(self, market: str) -> dict[str, Any]:
        if market == "spot":
            assets = sorted(set(self.balances) | set(self.locked))
            balances = [
                {
                    "asset": asset,
                    "free": f"{self.balances.get(asset, 0.0):.8f}",
                    "locked": f"{self.locked.get(asset, 0.0):.8f}",
                }
                for asset in assets
            ]
            return {
                "accountType": "SPOT",
                "canTrade": True,
                "updateTime": self.now_ms,
                "balances": balances,
                "permissions": ["SPOT"],
            }
        unrealized = self._unrealized()
        usdt = {
            "asset": "USDT",
            "walletBalance": f"{self.wallet:.8f}",
            "unrealizedProfit": f"{unrealized:.8f}",
            "marginBalance": f"{self.wallet + unrealized:.8f}",
            "initialMargin": f"{self._margin_used():.8f}",
            "availableBalance": f"{self._free():.8f}",
            "updateTime": self.now_ms,
        }
        return {"totalWalletBalance": usdt["walletBalance"], "assets": [usdt], "positions": []}

    def _set_leverage(self, params: dict[str, str]) -> dict[str, Any]:
        self.leverage[params["symbol"]] = int(params["leverage"])
        return {
            "leverage": int(params["leverage"]),
            "maxNotionalValue": "1000000",
            "symbol": params["symbol"],
        }

    def _brackets(self) -> list[dict[str, Any]]:
        bracket = {
            "bracket": 1,
            "initialLeverage": 125,
            "notionalCap": 1_000_000,
            "notionalFloor": 0,
            "maintMarginRatio": self.maintenance_margin,
            "cum": 0,
        }
        return [{"symbol": symbol, "brackets": [bracket]} for symbol in self.prices]

    def _position_risk(self) -> list[dict[str, Any]]:
        rows = []
        for symbol, (quantity, entry) in self.positions.items():
            leverage = self.leverage.get(symbol, 20)
            side = 1 if quantity > 0 else -1
            liquidation = entry * (1 - side * (1 / leverage - self.maintenance_margin))
            mark = self.prices[symbol]
            rows.append(
                {
                    "symbol": symbol,
                    "positionSide": "BOTH",
                    "positionAmt": f"{quantity:.8f}",
                    "entryPrice": f"{entry:.8f}",
                    "breakEvenPrice": f"{entry:.8f}",
                    "markPrice": f"{mark:.8f}",
                    "unRealizedProfit": f"{quantity * (mark - entry):.8f}",
                    "liquidationPrice": f"{liquidation:.8f}",
                    "isolatedMargin": "0",
                    "notional": f"{quantity * mark:.8f}",
                    "marginAsset": "USDT",
                    "isolatedWallet": "0",
                    "initialMargin": f"{abs(quantity) * mark / leverage:.8f}",
                    "maintMargin": f"{abs(quantity) * mark * self.maintenance_margin:.8f}",
                    "adl": 0,
                    "updateTime": self.now_ms,
                }
            )
        return rows


class _Handler(BaseHTTPRequestHandler):
    server: _VenueServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate small writes; with Nagle's algorithm on, a kept-alive
    # connection then waits for the client's delayed ACK (~40 ms) on every answer.
    disable_nagle_algorithm = True

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query))
        length = int(self.headers.get("Content-Length") or 0)
        text = self.rfile.read(length).decode() if length else ""
        params |= dict(parse_qsl(text))
        api_key = self.headers.get("X-MBX-APIKEY")
        signed_text = "&".join(part for part in (parts.query, text) if part)
        status, body, after = self.server.venue.answer(
            self.command, parts.path, params, api_key, signed_text
        )
        if after == "drop":
            self.close_connection = True
            return
        if isinstance(after, float):
            time.sleep(after)
        is_text = isinstance(body, str)
        payload = (body if is_text else json.dumps(body)).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if is_text else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up waiting (a stalled answer)
            self.close_connection = True

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _VenueServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, venue: FakeVenue) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.venue = venue


@contextmanager
def serve(venue: FakeVenue) -> Iterator[FakeVenue]:
    """Serve ``venue`` on a free port of 127.0.0.1 in a background thread; set ``venue.url``."""
    server = _VenueServer(venue)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-venue", daemon=True
    )
    thread.start()
    venue.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield venue
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

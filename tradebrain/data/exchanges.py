"""Talking to exchanges through ccxt: set-up, URL overrides, and retries with backoff.

:func:`make_exchange` builds a rate-limited ccxt client that loads only the markets a job needs
and can be pointed at another host (a testnet, a proxy, or a fake exchange on 127.0.0.1 in
tests). :class:`ExchangeLink` calls into it, retrying temporary trouble (network errors, HTTP 429,
5xx) with exponential backoff and turning ccxt's errors into tradebrain's.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import ccxt
import requests

from tradebrain.exceptions import ExchangeUnavailableError, UserInputError

_CCXT_MARKET_TYPES = {"spot": ("spot",), "perp": ("swap", "linear")}
_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently temporary exchange errors are retried.

    The wait before retry ``n`` (0-based) is ``min(max_delay_s, base_delay_s * 2**n)``.
    """

    retries: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0

    def delay_s(self, retry: int) -> float:
        """Return the seconds to wait before retry number ``retry`` (0-based)."""
        return float(min(self.max_delay_s, self.base_delay_s * 2**retry))


def make_exchange(
    name: str,
    *,
    markets: Iterable[str] = ("spot",),
    api_urls: dict[str, Any] | str | None = None,
    timeout_s: float = 10.0,
    rate_limit_ms: float | None = None,
) -> ccxt.Exchange:
    """Create a rate-limited ccxt exchange that loads only the listings of ``markets``.

    Parameters
    ----------
    name
        A ccxt exchange id (``"binance"``, ``"okx"``, ...).
    markets
        Markets the downloads will touch (``"spot"``, ``"perp"``); other listings are skipped.
    api_urls
        Where to send requests instead of the exchange's own hosts: a base URL such as
        ``"http://127.0.0.1:8080"`` replaces the scheme and host of every API URL (paths are
        kept), a dict replaces single entries of ``exchange.urls['api']``.
    timeout_s
        Seconds to wait for one HTTP answer.
    rate_limit_ms
        Minimum milliseconds between requests; None keeps the exchange's own limit.
    """
    exchange_class = getattr(ccxt, name.lower(), None)
    if name.lower() not in ccxt.exchanges or exchange_class is None:
        close = difflib.get_close_matches(name.lower(), ccxt.exchanges, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UserInputError(
            f"ccxt knows no exchange {name!r}; {hint}see ccxt.exchanges for the full list"
        )
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout_s * 1000)}
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    exchange: ccxt.Exchange = exchange_class(config)
    if not exchange.has.get("fetchOHLCV"):
        raise UserInputError(f"{exchange.id} offers no candle history (fetchOHLCV) through ccxt")
    wanted = set(markets)
    if "perp" in wanted and "spot" not in wanted:
        exchange.options["defaultType"] = "swap"
    _load_only(exchange, wanted)
    if api_urls is not None:
        _point_at(exchange, api_urls)
    return exchange


class ExchangeLink:
    """Calls into a ccxt exchange with retries and tradebrain's error messages."""

    def __init__(self, exchange: ccxt.Exchange, retry: RetryPolicy) -> None:
        self.exchange = exchange
        self.retry = retry

    def call(self, action: str, fetch: Callable[[], _T], *, first_contact: bool = False) -> _T:
        """Return ``fetch()``, retrying temporary errors with exponential backoff."""
        last_error: ccxt.BaseError | None = None
        for attempt in range(self.retry.retries + 1):
            if attempt > 0:
                time.sleep(self.retry.delay_s(attempt - 1))
            try:
                return fetch()
            except ccxt.OperationFailed as error:
                if first_contact and _is_unreachable(error):
                    raise ExchangeUnavailableError(self._unreachable(error)) from error
                last_error = error
            except ccxt.BaseError as error:
                raise UserInputError(
                    f"{self.exchange.id} refused to {action}: {_describe(error)}; "
                    "check the symbol, timeframe, market and dates"
                ) from error
        raise ExchangeUnavailableError(
            f"{self.exchange.id} kept failing to {action} after {self.retry.retries + 1} "
            f"attempts; last error: {_describe(last_error)}; the exchange is down or limits "
            "requests, so wait a few minutes and run the same download again"
        ) from last_error

    def _unreachable(self, error: ccxt.BaseError) -> str:
        url = re.search(r"https?://\S+", str(error))
        where = url.group(0) if url else str(self.exchange.urls.get("api"))
        return (
            f"cannot reach {self.exchange.id} at {where}: {_root_cause(error)}; "
            "check your network or proxy; nothing was written"
        )


def _load_only(exchange: ccxt.Exchange, markets: set[str]) -> None:
    """Restrict ccxt's ``fetchMarkets`` types to those of ``markets`` where it has the option."""
    wanted = {kind for market in markets for kind in _CCXT_MARKET_TYPES[market]}
    option = exchange.options.get("fetchMarkets")
    types = option.get("types") if isinstance(option, dict) else option
    if not isinstance(types, list):
        return
    kept = [kind for kind in types if kind in wanted]
    if kept:
        exchange.options["fetchMarkets"] = (
            {**option, "types": kept} if isinstance(option, dict) else kept
        )


def _point_at(exchange: ccxt.Exchange, api_urls: dict[str, Any] | str) -> None:
    """Send every request of ``exchange`` to ``api_urls`` (see :func:`make_exchange`)."""
    if isinstance(api_urls, dict):
        current = exchange.urls["api"]
        exchange.urls["api"] = {**current, **api_urls} if isinstance(current, dict) else api_urls
        return
    base = api_urls.rstrip("/")

    def rebase(value: Any) -> Any:
        if isinstance(value, dict):
            return {name: rebase(inner) for name, inner in value.items()}
        return re.sub(r"^https?://[^/]+", base, value) if isinstance(value, str) else value

    exchange.urls["api"] = rebase(exchange.urls["api"])


def page_limit(exchange: ccxt.Exchange, symbol: str) -> int | None:
    """Return the most candles one request may ask for, from ccxt's ``features``."""
    market = exchange.markets[symbol]
    features = (exchange.features or {}).get(market["type"]) or {}
    if market.get("subType") in features:
        features = features[market["subType"]] or {}
    limit = (features.get("fetchOHLCV") or {}).get("limit")
    return int(limit) if limit else None


def listed_ms(exchange: ccxt.Exchange, symbol: str) -> int:
    """Return when ``symbol`` was listed, in ms, or 0 where the exchange does not say.

    Starting there matters for exchanges that answer a time window per request (OKX): a window
    before the listing comes back empty, which would end the download.
    """
    listed = exchange.markets[symbol].get("created")
    return int(listed) if listed else 0


def _is_unreachable(error: ccxt.BaseError) -> bool:
    """Tell whether ``error`` means no connection could be opened at all."""
    cause = error.__cause__
    return isinstance(cause, requests.exceptions.ConnectTimeout) or (
        isinstance(cause, requests.exceptions.ConnectionError)
        and "Connection aborted" not in str(cause)
    )


def _root_cause(error: BaseException) -> str:
    text = str(error.__cause__ or error)
    errno = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    return errno.group(0).strip() if errno else text


def _describe(error: BaseException | None) -> str:
    return f"{type(error).__name__}: {error}"[:500] if error is not None else "none"


def check_listing(
    exchange: ccxt.Exchange, symbols: Iterable[str], timeframes: Iterable[str]
) -> None:
    """Raise :class:`UserInputError` for symbols or timeframes ``exchange`` does not list."""
    for symbol in symbols:
        if symbol not in exchange.markets:
            close = difflib.get_close_matches(symbol, list(exchange.markets), n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise UserInputError(
                f"{exchange.id} lists no market {symbol}; {hint}"
                "write symbols as BASE/QUOTE as ccxt names them, for example BTC/USDT"
            )
    offered = exchange.timeframes or {}
    for timeframe in timeframes:
        if offered and timeframe not in offered:
            raise UserInputError(
                f"{exchange.id} offers no {timeframe} candles; pick one of {', '.join(offered)}"
            )


def make_pro_exchange(
    name: str,
    *,
    markets: Iterable[str] = ("spot",),
    api_urls: dict[str, Any] | str | None = None,
    ws_urls: dict[str, Any] | str | None = None,
    timeout_s: float = 10.0,
    client_class: type | None = None,
) -> Any:
    """Create a ccxt.pro client (websocket streams) set up as :func:`make_exchange` sets up REST.

    Build it inside the asyncio loop that will use it: its HTTP and websocket sessions belong
    to that loop.

    Parameters
    ----------
    name, markets, api_urls, timeout_s
        As for :func:`make_exchange` (the client loads its markets over REST).
    ws_urls
        Where to open the websockets instead of the venue's own hosts: a dict replaces single
        entries of ``exchange.urls['api']['ws']``; a base URL such as ``"ws://127.0.0.1:9000"``
        keeps each venue URL's host as the first path segment
        (``wss://stream.binance.com:9443/ws`` -> ``ws://127.0.0.1:9000/stream.binance.com:9443/ws``),
        so one proxy or loopback server can tell the venue's hosts apart.
    client_class
        A subclass of the venue's ccxt.pro class to build instead (one that reads the venue's
        "candle closed" flag, :func:`~tradebrain.data.ws_stream.confirming_client_class`).
    """
    import ccxt.pro

    exchange_class = getattr(ccxt.pro, name.lower(), None)
    if exchange_class is None or name.lower() not in ccxt.pro.exchanges:
        raise UserInputError(
            f"ccxt.pro has no websocket client for {name!r}; stream it with --stream rest "
            f"(REST polling) or pick one of: {', '.join(sorted(ccxt.pro.exchanges)[:12])}, ..."
        )
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout_s * 1000)}
    exchange = (client_class or exchange_class)(config)
    wanted = set(markets)
    if "perp" in wanted and "spot" not in wanted:
        exchange.options["defaultType"] = "swap"
    _load_only(exchange, wanted)
    if api_urls is not None:
        ws = exchange.urls["api"].get("ws")
        _point_at(exchange, api_urls)
        if ws is not None:  # a REST base URL must not rebase the websockets as well
            exchange.urls["api"]["ws"] = ws
    if ws_urls is not None:
        _point_ws_at(exchange, ws_urls)
    return exchange


def _point_ws_at(exchange: Any, ws_urls: dict[str, Any] | str) -> None:
    """Open every websocket of ``exchange`` at ``ws_urls`` (see :func:`make_pro_exchange`)."""
    current = exchange.urls["api"]["ws"]
    if isinstance(ws_urls, dict):
        merged = {**current, **ws_urls} if isinstance(current, dict) else ws_urls
        exchange.urls["api"]["ws"] = merged
        return
    base = ws_urls.rstrip("/")

    def rebase(value: Any) -> Any:
        if isinstance(value, dict):
            return {name: rebase(inner) for name, inner in value.items()}
        if isinstance(value, str):
            return re.sub(r"^wss?://", base + "/", value)
        return value

    exchange.urls["api"]["ws"] = rebase(current)

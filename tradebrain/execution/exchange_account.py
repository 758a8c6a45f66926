"""The exchange broker's view of the venue account: balances, positions, prices and sizing.

Spot: equity is the quote balance plus every coin with a ``COIN/QUOTE`` market valued at the
last price (the last candle close, else the venue's ticker). Perp (USDT-margined): equity is
the margin balance (wallet + unrealized PnL) and positions come from the venue's position risk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

import ccxt

from tradebrain.core.market import MarketType
from tradebrain.core.orders import OrderIntent
from tradebrain.execution.account import AccountSnapshot, Position
from tradebrain.execution.exchange_orders import VenueCalls, VenueRefusal

_EPSILON = 1e-12


class VenueAccount:
    """Reads the account from the venue and sizes orders against it.

    Parameters
    ----------
    exchange
        The ccxt exchange.
    calls
        Retrying, scrubbing calls into ``exchange``.
    market
        Spot or perp.
    leverage
        Notional / margin on perps (1 on spot); entries sized by ``equity_fraction`` use it.
    quote
        The quote (and, on perps, settlement) currency.
    """

    def __init__(
        self,
        exchange: ccxt.Exchange,
        calls: VenueCalls,
        market: MarketType,
        leverage: int,
        quote: str = "USDT",
    ) -> None:
        self.exchange = exchange
        self.calls = calls
        self.market = market
        self.leverage = leverage
        self.quote = quote
        self.prices: dict[str, float] = {}
        self._peak = 0.0
        self._day: tuple[date, float] | None = None

    def watermarks(self) -> dict[str, Any]:
        """Return the peak equity and the day's starting equity (for a restart to restore)."""
        day = None if self._day is None else [self._day[0].isoformat(), self._day[1]]
        return {"peak": self._peak, "day": day}

    def restore_watermarks(self, saved: dict[str, Any]) -> None:
        """Put back what :meth:`watermarks` returned, so drawdown limits survive a restart."""
        self._peak = max(self._peak, float(saved.get("peak") or 0.0))
        day = saved.get("day")
        if day:
            self._day = (date.fromisoformat(day[0]), float(day[1]))

    def load_markets(self) -> None:
        """Load the venue's markets once (precision, limits, fees)."""
        if not self.exchange.markets:
            self.calls.call("load the markets", self.exchange.load_markets)

    def venue_symbol(self, symbol: str) -> str:
        """Return ccxt's name of ``symbol``: ``BTC/USDT`` is ``BTC/USDT:USDT`` on perps."""
        if self.market is MarketType.PERP and ":" not in symbol:
            return f"{symbol}:{symbol.split('/')[-1]}"
        return symbol

    def snapshot(
        self, timestamp: datetime, stops: Mapping[str, float], targets: Mapping[str, float]
    ) -> AccountSnapshot:
        """Return the account at ``timestamp``; ``stops``/``targets`` by venue symbol."""
        self.load_markets()
        balance = self.balance()
        quote = self.quote
        equity = cash = float(balance.get(quote, {}).get("total") or 0.0)
        held: list[tuple[str, float, float]] = []  # symbol, signed quantity, entry price
        if self.market is MarketType.PERP:
            rows = self.calls.call("fetch positions", lambda: self.exchange.fetch_positions())
            for row in rows:
                contracts = float(row.get("contracts") or 0.0)
                if contracts:
                    cash -= float(row.get("unrealizedPnl") or 0.0)  # total is the margin balance
                    signed = contracts if row.get("side") == "long" else -contracts
                    held.append((str(row["symbol"]), signed, float(row["entryPrice"])))
        else:
            for asset, amounts in balance.items():
                total = float(amounts.get("total") or 0.0) if isinstance(amounts, dict) else 0.0
                symbol = f"{asset}/{quote}"
                if asset != quote and total > 0 and symbol in self.exchange.markets:
                    price = self.price(symbol)  # spot has no entry price: the last price
                    equity += total * price
                    held.append((symbol, total, price))
        positions: dict[str, Position] = {}
        for venue_symbol, signed, entry in held:
            symbol = venue_symbol.split(":")[0]
            positions[symbol] = Position(
                symbol,
                signed,
                entry,
                timestamp,
                stop_price=stops.get(venue_symbol),
                target_price=targets.get(venue_symbol),
                leverage=float(self.leverage),
            )
        self._peak = max(self._peak, equity)
        if self._day is None or self._day[0] != timestamp.date():
            self._day = (timestamp.date(), equity)
        return AccountSnapshot(timestamp, equity, cash, self._peak, self._day[1], positions)

    def liquidation_price(self, symbol: str) -> float | None:
        """Return the venue's liquidation price of the perp position in ``symbol``, if any."""
        if self.market is not MarketType.PERP:
            return None
        venue_symbol = self.venue_symbol(symbol)
        rows = self.calls.call(
            "fetch positions", lambda: self.exchange.fetch_positions([venue_symbol])
        )
        for row in rows:
            if row.get("symbol") == venue_symbol and float(row.get("contracts") or 0.0):
                price = row.get("liquidationPrice")
                return float(price) if price else None
        return None

    def size(self, intent: OrderIntent, venue_symbol: str, equity: Callable[[], float]) -> float:
        """Return the base quantity to send for ``intent``, rounded to the market's precision.

        Exits (``reduce_only``) with quantity 0 close what the venue holds; spot exits never
        sell more than is held. Entries with quantity 0 spend ``equity_fraction`` of
        ``equity()`` times the leverage at the last price, net of the taker fee (spot: at most
        the free quote balance).
        """
        if intent.reduce_only:
            held = abs(self.held(venue_symbol))
            if held <= _EPSILON:
                raise VenueRefusal("reduce-only: nothing to reduce")
            wanted = intent.quantity if intent.quantity > 0 else held
            spot = self.market is MarketType.SPOT
            return self.precise(venue_symbol, min(wanted, held) if spot else wanted)
        if intent.quantity > 0:
            return self.precise(venue_symbol, intent.quantity)
        if intent.equity_fraction <= 0:
            raise VenueRefusal("entry has no size: set quantity or equity_fraction")
        price = intent.limit_price or self.price(venue_symbol)
        taker = float(self.exchange.market(venue_symbol).get("taker") or 0.0)
        budget = intent.equity_fraction * equity() * self.leverage
        if self.market is MarketType.SPOT:
            free = float(self.balance().get(self.quote, {}).get("free") or 0.0)
            budget = min(budget, free)
        return self.precise(venue_symbol, budget / (price * (1.0 + taker)))

    def precise(self, venue_symbol: str, quantity: float) -> float:
        """Return ``quantity`` truncated to the market's amount precision."""
        try:
            return float(self.exchange.amount_to_precision(venue_symbol, quantity))
        except ccxt.BaseError as error:
            raise VenueRefusal(
                f"size {quantity:.10g} is below what {venue_symbol} accepts: {error}"
            ) from None

    def held(self, venue_symbol: str) -> float:
        """Return the signed base quantity held in ``venue_symbol`` on the venue."""
        if self.market is MarketType.PERP:
            rows = self.calls.call(
                "fetch positions", lambda: self.exchange.fetch_positions([venue_symbol])
            )
            for row in rows:
                if row.get("symbol") == venue_symbol:
                    contracts = float(row.get("contracts") or 0.0)
                    return contracts if row.get("side") == "long" else -contracts
            return 0.0
        base = self.exchange.market(venue_symbol)["base"]
        return float(self.balance().get(base, {}).get("total") or 0.0)

    def balance(self) -> dict[str, Any]:
        """Return ccxt's balance of the spot or the USD-M futures account."""
        params = {"type": "swap"} if self.market is MarketType.PERP else {}
        return self.calls.call("fetch the balance", lambda: self.exchange.fetch_balance(params))

    def price(self, venue_symbol: str) -> float:
        """Return the last candle close of ``venue_symbol``, else the venue's last trade."""
        if venue_symbol not in self.prices:
            ticker = self.calls.call(
                "fetch a ticker", lambda: self.exchange.fetch_ticker(venue_symbol)
            )
            self.prices[venue_symbol] = float(ticker["last"])
        return self.prices[venue_symbol]

"""The simulated broker: a venue that matches orders against candles, with costs.

Matching rules, on each closed candle, in this order:

1. Market orders submitted before the candle fill at its open (the first price after the
   decision), through the cost model (taker).
2. Protective levels of open positions (see :mod:`tradebrain.execution.monitor`) and, on perps,
   the liquidation price: an adverse level the open gapped through fills at the open; otherwise
   the stop (or liquidation) triggers when the low (long) or the high (short) touches it. When
   one candle touches both the stop and the target, the STOP counts first. Targets and partial
   exits are limit orders: they fill only when the price trades through them.
3. Resting limit orders fill only when the price trades through the limit (at the open when
   it gapped through); stop orders trigger on a touch and fill at the stop or the worse open.
4. Positions opened by step 3 get their protection checked on the same candle; reduce-only
   orders of a flat symbol are cancelled, and so are resting orders whose ``expires_at`` has
   come by the candle's close ("expired unfilled").

Quantities are in base units, prices and cash in quote currency.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from tradebrain.core.events import (
    CandleClosed,
    Event,
    FundingSettled,
    OrderCancelled,
    OrderDenied,
    OrderFilled,
)
from tradebrain.core.market import MarketSource, MarketType
from tradebrain.core.orders import Fill, Liquidity, OrderIntent, OrderType, Side
from tradebrain.execution.account import AccountSnapshot, Position
from tradebrain.execution.costs import CostModel, FlatCosts, fee_rate
from tradebrain.execution.monitor import MonitorRules, PositionMonitor, Protection
from tradebrain.execution.portfolio import Portfolio
from tradebrain.execution.snapshot import broker_state


class SimulatedBroker:
    """Matches orders against candles and keeps the account, like a venue would.

    Parameters
    ----------
    cash
        Starting balance in quote currency.
    costs
        Fees and slippage (:class:`~tradebrain.execution.costs.CostModel`).
    market
        Spot (no shorts, no leverage) or perp (leverage, funding, liquidation).
    leverage
        Notional / margin on perps; entries sized by ``equity_fraction`` use it.
    maintenance_margin
        Maintenance margin rate for the liquidation price (perps).
    monitor
        The position monitor; None keeps only the stop and target an entry came with.
    """

    def __init__(
        self,
        cash: float = 10_000.0,
        costs: CostModel | None = None,
        market: MarketType = MarketType.SPOT,
        leverage: float = 1.0,
        maintenance_margin: float = 0.005,
        monitor: PositionMonitor | None = None,
    ) -> None:
        self.costs: CostModel = costs or FlatCosts()
        self.market = MarketType(market)
        self.leverage = leverage if self.market is MarketType.PERP else 1.0
        self.maintenance_margin = maintenance_margin
        self.monitor = monitor or PositionMonitor(MonitorRules.off())
        self.portfolio = Portfolio(cash=cash, market=self.market)
        self.prices: dict[str, float] = {}
        self._market: MarketSource | None = None  # the source handed with the candle
        self._pending: list[tuple[str, OrderIntent]] = []
        self._resting: list[tuple[str, OrderIntent]] = []
        self._protection: dict[str, Protection] = {}
        self.id_prefix = "sim"
        self.next_order_number = 1
        self._taker_rate = fee_rate(self.costs, Liquidity.TAKER)

    def _new_id(self) -> str:
        """Return the next order id (``sim-1``, ``sim-2``, ...; restored after a restart)."""
        number = self.next_order_number
        self.next_order_number = number + 1
        return f"{self.id_prefix}-{number}"

    # --- the Broker port ------------------------------------------------------------------
    def submit(self, intent: OrderIntent) -> str:
        """Accept an approved order; it executes from the next candle on. Return its id."""
        order_id = self._new_id()
        if intent.order_type is OrderType.MARKET:
            self._pending.append((order_id, intent))
        else:
            self._resting.append((order_id, intent))
        return order_id

    def cancel(self, order_id: str, timestamp: datetime) -> list[Event]:
        """Cancel a resting or pending order; return the ``OrderCancelled`` event (if any)."""
        for book in (self._pending, self._resting):
            for index, (known, intent) in enumerate(book):
                if known == order_id:
                    del book[index]
                    return [OrderCancelled(timestamp, order_id, intent, "cancelled on request")]
        return []

    def account(self, timestamp: datetime) -> AccountSnapshot:
        """Return the account marked at the last known prices."""
        return self.portfolio.snapshot(timestamp, self.prices)

    def equity(self) -> float:
        """Return the equity marked at the last known prices."""
        return self.portfolio.equity(self.prices)

    def open_orders(self) -> list[tuple[str, OrderIntent]]:
        """Return the orders not yet executed: (order id, intent), pending first."""
        return [*self._pending, *self._resting]

    def protection(self, symbol: str) -> Protection | None:
        """Return the protective levels of the open position in ``symbol``, if any."""
        return self._protection.get(symbol)

    def on_funding(self, event: FundingSettled) -> list[Event]:
        """Settle funding on the open position (perps only), as the cost model computes it."""
        if self.market is MarketType.PERP:
            price = (
                event.mark_price if event.mark_price is not None else self.prices.get(event.symbol)
            )
            holding = self.portfolio.holdings.get(event.symbol)
            if price is not None and holding is not None:
                position = Position(
                    event.symbol, holding.quantity, holding.entry_price, holding.opened_at
                )
                paid = self.costs.funding(position, event.funding_rate, price)
                self.portfolio.apply_funding(event.symbol, paid)
        return []

    def poll(self) -> list[Event]:
        """Return no events: a simulated venue reports everything from :meth:`on_candle`."""
        return []

    def snapshot(self) -> dict[str, Any]:
        """Return the account and orders as JSON-ready data, to restore after a restart."""
        return broker_state(self)

    def on_candle(self, candle: CandleClosed, market: MarketSource | None = None) -> list[Event]:
        """Match everything that can execute during ``candle``; return the order events.

        ``market`` returns the market as of the previous close, for the cost model; it is
        called only when an order fills (None: no market known, costs assume the worst).
        """
        self._market = market
        symbol = candle.symbol
        events: list[Event] = []
        prices = self.prices
        prices[symbol] = candle.open
        if self._pending:
            pending, self._pending = self._pending, []
            for order_id, intent in pending:
                if intent.symbol == symbol:
                    events.append(self._fill_market(order_id, intent, candle))
                else:
                    self._pending.append((order_id, intent))
        if symbol in self._protection:
            events.extend(self._check_protection(symbol, candle))
        if self._resting:
            opened = self._match_resting(candle, events)
            for opened_symbol in opened:
                events.extend(self._check_protection(opened_symbol, candle))
            events.extend(self._cancel_orphans(candle))
        prices[symbol] = candle.close
        self.portfolio.mark(candle.close_time, prices)
        high = candle.high
        low = candle.low
        monitor = self.monitor
        monitor.on_candle(symbol, high, low, candle.close)
        protection = self._protection.get(symbol)
        if protection is not None:
            self._protection[symbol] = monitor.after_candle(symbol, protection, high, low)
        return events

    # --- fills ----------------------------------------------------------------------------
    def _fill_market(self, order_id: str, intent: OrderIntent, candle: CandleClosed) -> Event:
        return self._execute(order_id, intent, candle.open, Liquidity.TAKER, candle.open_time)

    def _execute(
        self,
        order_id: str,
        intent: OrderIntent,
        reference: float,
        liquidity: Liquidity,
        timestamp: datetime,
        tag: str | None = None,
    ) -> Event:
        symbol = intent.symbol
        held = self.portfolio.quantity(symbol)
        market = self._market() if self._market is not None else None
        side = intent.side
        if intent.reduce_only:
            if held == 0.0 or held * side.sign > 0:
                return OrderCancelled(timestamp, order_id, intent, "reduce-only: nothing to reduce")
            quantity = abs(held) if intent.quantity <= 0 else min(intent.quantity, abs(held))
        elif intent.quantity > 0:
            quantity = intent.quantity
        elif intent.equity_fraction > 0:
            price = self.costs.fill_price(side, reference, 0.0, market, liquidity)
            budget = intent.equity_fraction * self.portfolio.equity(self.prices) * self.leverage
            quantity = budget / (price * (1.0 + self._taker_rate))
        else:
            return OrderDenied(
                timestamp, intent, "entry has no size: set quantity or equity_fraction", "size",
                order_id,
            )  # fmt: skip
        if self.market is MarketType.SPOT and not intent.reduce_only:
            if side is Side.SELL and quantity > max(held, 0.0) * (1 + 1e-12):
                return OrderDenied(
                    timestamp, intent, "spot market: cannot sell short", "spot_short", order_id
                )
            if side is Side.BUY:
                price = self.costs.fill_price(side, reference, quantity, market, liquidity)
                affordable = self.portfolio.cash / (price * (1.0 + self._taker_rate))
                quantity = min(quantity, affordable)
        elif not intent.reduce_only:  # perp: initial margin plus the fee must fit (MARGIN)
            price = self.costs.fill_price(side, reference, quantity, market, liquidity)
            free = self.portfolio.equity(self.prices) - self._margin_used()
            affordable = max(free, 0.0) / (price * (1.0 / self.leverage + self._taker_rate))
            quantity = min(quantity, affordable)
        if quantity <= 0:
            return OrderDenied(
                timestamp, intent, "not enough cash for any quantity", "size", order_id
            )
        price = self.costs.fill_price(side, reference, quantity, market, liquidity)
        fee = self.costs.fee(quantity * price, liquidity)
        fill = Fill(
            timestamp=timestamp,
            order_id=order_id,
            symbol=symbol,
            side=side,
            quantity=quantity,
            price=price,
            fee=fee,
            liquidity=liquidity,
            tag=tag or intent.tag,
            slippage=abs(price - reference) * quantity,
            reasons=intent.reasons,
        )
        was_flat = held == 0.0
        self.portfolio.apply_fill(
            fill, stop_price=intent.stop_price, target_price=intent.target_price
        )
        now = self.portfolio.quantity(symbol)
        if now == 0.0:
            self._protection.pop(symbol, None)
        elif was_flat or held * now < 0:
            holding = self.portfolio.holdings[symbol]
            self._protection[symbol] = self.monitor.open(
                1 if now > 0 else -1,
                holding.entry_price,
                abs(now),
                intent.stop_price,
                intent.target_price,
            )
        elif symbol in self._protection:
            self._shrink_partial(symbol, abs(now))
        return OrderFilled(fill)

    def _exit(
        self,
        symbol: str,
        quantity: float,
        reference: float,
        liquidity: Liquidity,
        tag: str,
        timestamp: datetime,
    ) -> Event:
        held = self.portfolio.quantity(symbol)
        side = Side.SELL if held > 0 else Side.BUY
        intent = OrderIntent(timestamp, symbol, side, quantity, reduce_only=True, tag=tag)
        return self._execute(self._new_id(), intent, reference, liquidity, timestamp, tag)

    def _shrink_partial(self, symbol: str, open_quantity: float) -> None:
        protection = self._protection[symbol]
        if protection.partial_quantity > open_quantity:
            self._protection[symbol] = replace(protection, partial_quantity=open_quantity)

    # --- protection -----------------------------------------------------------------------
    def _margin_used(self) -> float:
        """Initial margin of the open perp positions, at their entry prices."""
        return (
            sum(abs(h.quantity) * h.entry_price for h in self.portfolio.holdings.values())
            / self.leverage
        )

    def liquidation_price(self, symbol: str) -> float | None:
        """Return the price at which the open perp position in ``symbol`` is liquidated."""
        holding = self.portfolio.holdings.get(symbol)
        if holding is None or self.market is not MarketType.PERP:
            return None
        side = 1 if holding.quantity > 0 else -1
        return holding.entry_price * (1.0 - side * (1.0 / self.leverage - self.maintenance_margin))

    def _check_protection(self, symbol: str, candle: CandleClosed) -> list[Event]:
        protection = self._protection.get(symbol)
        if protection is None:
            return []
        side = protection.side
        adverse, reason, liquidity = protection.stop_price, protection.stop_reason, Liquidity.TAKER
        liquidation = self.liquidation_price(symbol)
        if liquidation is not None and (adverse is None or side * (liquidation - adverse) > 0):
            adverse, reason = liquidation, "liquidation"
        held = abs(self.portfolio.quantity(symbol))
        when = candle.open_time
        worst = candle.low if side > 0 else candle.high
        best = candle.high if side > 0 else candle.low
        if adverse is not None and side * (candle.open - adverse) <= 0:
            return [self._exit(symbol, held, candle.open, liquidity, reason, when)]
        target = protection.target_price
        if target is not None and side * (candle.open - target) > 0:
            return [self._exit(symbol, held, candle.open, Liquidity.MAKER, "target", when)]
        if adverse is not None and side * (worst - adverse) <= 0:  # stop first
            return [self._exit(symbol, held, adverse, liquidity, reason, when)]
        events: list[Event] = []
        partial = protection.partial_price
        if partial is not None and protection.partial_quantity > 0 and side * (best - partial) > 0:
            price = candle.open if side * (candle.open - partial) > 0 else partial
            quantity = min(protection.partial_quantity, held)
            events.append(self._exit(symbol, quantity, price, Liquidity.MAKER, "partial", when))
            if symbol in self._protection:
                self._protection[symbol] = replace(
                    self._protection[symbol], partial_price=None, partial_quantity=0.0
                )
        if target is not None and side * (best - target) > 0 and symbol in self._protection:
            rest = abs(self.portfolio.quantity(symbol))
            events.append(self._exit(symbol, rest, target, Liquidity.MAKER, "target", when))
        return events

    # --- resting orders -------------------------------------------------------------------
    def _match_resting(self, candle: CandleClosed, events: list[Event]) -> list[str]:
        opened: list[str] = []
        still: list[tuple[str, OrderIntent]] = []
        for order_id, intent in self._resting:
            if intent.symbol != candle.symbol:
                still.append((order_id, intent))
                continue
            reference, liquidity = self._touch(intent, candle)
            if reference is None:
                still.append((order_id, intent))
                continue
            was_flat = self.portfolio.quantity(intent.symbol) == 0.0
            events.append(self._execute(order_id, intent, reference, liquidity, candle.open_time))
            if was_flat and self.portfolio.quantity(intent.symbol) != 0.0:
                opened.append(intent.symbol)
        self._resting = still
        return opened

    @staticmethod
    def _touch(intent: OrderIntent, candle: CandleClosed) -> tuple[float | None, Liquidity]:
        sign = intent.side.sign
        if intent.order_type is OrderType.LIMIT and intent.limit_price is not None:
            limit = intent.limit_price
            if sign * (limit - candle.open) >= 0:  # the open is already at or past the limit
                return candle.open, Liquidity.MAKER
            through = candle.low < limit if sign > 0 else candle.high > limit
            return (limit if through else None), Liquidity.MAKER
        if intent.order_type is OrderType.STOP and intent.trigger_price is not None:
            trigger = intent.trigger_price
            if sign * (candle.open - trigger) >= 0:  # gapped through the stop
                return candle.open, Liquidity.TAKER
            touched = candle.high >= trigger if sign > 0 else candle.low <= trigger
            return (trigger if touched else None), Liquidity.TAKER
        return None, Liquidity.TAKER

    def _cancel_orphans(self, candle: CandleClosed) -> list[Event]:
        events: list[Event] = []
        still: list[tuple[str, OrderIntent]] = []
        for order_id, intent in self._resting:
            if intent.reduce_only and self.portfolio.quantity(intent.symbol) == 0.0:
                events.append(
                    OrderCancelled(candle.close_time, order_id, intent, "position closed")
                )
            elif (
                intent.expires_at is not None
                and intent.symbol == candle.symbol
                and intent.expires_at <= candle.close_time
            ):
                events.append(
                    OrderCancelled(candle.close_time, order_id, intent, "expired unfilled")
                )
            else:
                still.append((order_id, intent))
        self._resting = still
        return events

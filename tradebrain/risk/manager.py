"""The risk gate: every order passes :meth:`RiskManager.review` before it reaches a broker.

An entry comes back sized, with a stop and a target, or is denied with the rule and the
numbers. The checks run in this order; the first that fails denies:

1. the order and the market data belong together (same symbol, quantity finite and >= 0);
2. exits (``reduce_only``) pass whenever a position exists, clipped so they never grow or flip
   it — whatever the mode, even after an emergency stop;
3. emergency stop latch; policy mode CRITICAL (see :mod:`tradebrain.risk.policy`); a finite
   positive entry price; symbol paused after a losing run;
4. confidence at least the mode's minimum (``defensive_min_confidence`` in DEFENSIVE, 0 by
   default);
5. no shorts on spot; no entry against an open position (exit it first);
6. the stop is on the loss side of the entry (the strategy's, else ``6 × ATR``) and the
   target, if any, on the profit side (the strategy's; with ``take_profit`` set, else
   ``reward_risk`` stop-distances, ×1.5 in trends and ×0.75 in ranges);
7. Kelly, only with ``kelly_from_trades`` set: with 20+ closed trades the risk is half Kelly,
   capped at the fixed fraction; a non-positive edge means no trade;
8. the size fits risk, margin, leverage and cash (see :mod:`tradebrain.risk.sizing`) and the
   venue's minimum notional.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime

from tradebrain.config import RiskSettings
from tradebrain.core.market import MarketState, MarketType
from tradebrain.core.orders import OrderIntent, OrderType, Side
from tradebrain.execution.account import AccountSnapshot, Position
from tradebrain.risk.policy import PolicyAssessment, PolicyRules, RiskPolicy, close_all_intents
from tradebrain.risk.sizing import SizingRules, kelly_estimate, size_entry
from tradebrain.risk.stops import protective_levels
from tradebrain.risk.verdicts import Denial, PolicyMode, RiskEvent, RiskRule, deny

DUST_NOTIONAL = 1e-8
"""Orders below this notional (quote currency) are dust: denied like a venue minimum."""


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _entry_price(intent: OrderIntent, market: MarketState) -> float:
    """Return the price the entry is expected at: its limit, its trigger, else the market."""
    if intent.order_type is OrderType.LIMIT and intent.limit_price is not None:
        return intent.limit_price
    if intent.order_type is OrderType.STOP and intent.trigger_price is not None:
        return intent.trigger_price
    return market.price


class RiskManager:
    """The last word on every order: sizes entries, clips exits, denies with reasons.

    Parameters
    ----------
    settings
        The ``risk`` section of the settings; defaults when None.
    sizing, policy
        Full rule sets, overriding what ``settings`` implies (e.g. trend/range target factors).
    """

    def __init__(
        self,
        settings: RiskSettings | None = None,
        *,
        sizing: SizingRules | None = None,
        policy: PolicyRules | None = None,
    ) -> None:
        settings = settings or RiskSettings()
        self.sizing = sizing or SizingRules.from_settings(settings)
        self.policy = RiskPolicy(policy or PolicyRules.from_settings(settings))

    @property
    def mode(self) -> PolicyMode:
        """The policy mode as of the last review or observation."""
        return self.policy.mode

    @property
    def emergency(self) -> bool:
        """Whether the emergency stop is latched."""
        return self.policy.emergency

    def observe(self, account: AccountSnapshot, market: MarketState | None = None) -> PolicyMode:
        """Update the policy mode without an order (call once per bar to record changes early)."""
        return self.policy.observe(account, market).mode

    def emergency_stop(
        self, reason: str = "emergency stop pulled", timestamp: datetime | None = None
    ) -> None:
        """Latch the emergency stop: deny every new trade until released."""
        self.policy.emergency_stop(reason, timestamp)

    def release_emergency_stop(
        self, reason: str = "released by operator", timestamp: datetime | None = None
    ) -> None:
        """Release the emergency stop latch."""
        self.policy.release_emergency_stop(reason, timestamp)

    def close_all_intents(self, account: AccountSnapshot) -> list[OrderIntent]:
        """Return reduce-only exits that flatten every open position."""
        reason = self.policy.emergency_reason or "close all positions"
        return close_all_intents(account, reason=reason)

    def drain_events(self) -> list[RiskEvent]:
        """Return the policy records (mode changes, pauses, emergency) since the last call."""
        return self.policy.drain_events()

    def review(
        self, intent: OrderIntent, account: AccountSnapshot, market: MarketState
    ) -> OrderIntent | Denial:
        """Return ``intent`` approved (sized, with stop and target) or a :class:`Denial`."""
        if intent.symbol != market.symbol:
            return deny(
                intent,
                RiskRule.INVALID_MARKET,
                f"order for {intent.symbol} reviewed against market data of {market.symbol}",
            )
        if not (math.isfinite(intent.quantity) and intent.quantity >= 0):
            return deny(
                intent,
                RiskRule.INVALID_ORDER,
                f"quantity {intent.quantity} must be a finite number >= 0 (0 lets risk size it)",
            )
        position = account.positions.get(intent.symbol)
        if intent.reduce_only:
            self.policy.observe(account, market)
            return self._review_exit(intent, position)
        assessment = self.policy.observe(account, market)
        return self._review_entry(intent, account, market, position, assessment)

    def _review_exit(self, intent: OrderIntent, position: Position | None) -> OrderIntent | Denial:
        if position is None or position.quantity == 0:
            return deny(intent, RiskRule.REDUCE_ONLY, f"no open {intent.symbol} position to reduce")
        if intent.side.sign == position.side:
            held = "long" if position.side > 0 else "short"
            return deny(
                intent,
                RiskRule.REDUCE_ONLY,
                f"a reduce-only {intent.side.value} would grow the {held} "
                f"{abs(position.quantity):g} {intent.symbol}",
            )
        held_quantity = abs(position.quantity)
        quantity = held_quantity if intent.quantity == 0 else min(intent.quantity, held_quantity)
        return dataclasses.replace(intent, quantity=quantity)

    def _review_entry(
        self,
        intent: OrderIntent,
        account: AccountSnapshot,
        market: MarketState,
        position: Position | None,
        assessment: PolicyAssessment,
    ) -> OrderIntent | Denial:
        side = intent.side.sign
        entry = _entry_price(intent, market)
        if self.policy.emergency:
            return deny(
                intent,
                RiskRule.EMERGENCY_STOP,
                f"emergency stop latched ({self.policy.emergency_reason}); no new trades",
            )
        mode = assessment.mode
        if mode is PolicyMode.CRITICAL:
            why = "; ".join(assessment.reasons)
            return deny(intent, RiskRule.POLICY_MODE, f"{why}; mode CRITICAL")
        if not (_positive(entry) and _positive(account.equity)):
            return deny(
                intent,
                RiskRule.INVALID_MARKET,
                f"entry price {entry} and equity {account.equity} must be positive numbers",
            )
        verdict = self.policy.symbol_verdict(intent.symbol, account)
        if verdict.is_paused(account.timestamp):
            return deny(intent, RiskRule.SYMBOL_PAUSED, verdict.reasons[-1])
        min_confidence = self.policy.rules.min_confidence(mode)
        if intent.confidence < min_confidence:
            return deny(
                intent,
                RiskRule.MIN_CONFIDENCE,
                f"confidence {intent.confidence:.2f} is below the {min_confidence:.2f} "
                f"minimum of mode {mode.name}",
            )
        if market.market_type is MarketType.SPOT and intent.side is Side.SELL:
            return deny(
                intent,
                RiskRule.SPOT_SHORT,
                f"{intent.symbol} is a spot market: no shorts (send a reduce-only exit to sell)",
            )
        if position is not None and position.side == -side:
            held = "long" if position.side > 0 else "short"
            return deny(
                intent,
                RiskRule.OPPOSITE_POSITION,
                f"{intent.symbol} holds a {held} of {abs(position.quantity):g}; "
                "close it with a reduce-only exit before opening the other side",
            )
        levels = protective_levels(intent, market, entry, self.sizing)
        if isinstance(levels, Denial):
            return levels
        stop, target, level_reasons = levels

        risk_fraction = self.sizing.risk_per_trade
        reasons = [*level_reasons]
        kelly = kelly_estimate(account.closed_trades, self.sizing)
        if kelly is not None:
            if kelly.risk_fraction <= 0:
                return deny(intent, RiskRule.KELLY, f"{kelly.describe()}: no edge, no trade")
            risk_fraction = kelly.risk_fraction
            reasons.append(kelly.describe())
        if 0 < intent.risk_fraction < risk_fraction:
            reasons.append(
                f"the strategy suggests risking {intent.risk_fraction:.2%} "
                f"(below the limit {risk_fraction:.2%})"
            )
            risk_fraction = intent.risk_fraction
        factor = self.policy.rules.size_factor(mode) * verdict.size_factor
        if mode is PolicyMode.DEFENSIVE:
            reasons.append(
                f"mode DEFENSIVE ({'; '.join(assessment.reasons)}): size "
                f"x{self.policy.rules.size_factor(mode):g}"
            )
        reasons.extend(verdict.reasons)
        return self._sized(
            intent, account, market, position, entry, stop, target, risk_fraction * factor, reasons
        )

    def _sized(
        self,
        intent: OrderIntent,
        account: AccountSnapshot,
        market: MarketState,
        position: Position | None,
        entry: float,
        stop: float,
        target: float | None,
        risk_fraction: float,
        reasons: list[str],
    ) -> OrderIntent | Denial:
        spot = market.market_type is MarketType.SPOT
        leverage = 1.0 if spot else min(max(market.leverage, 1.0), self.sizing.leverage_cap)
        requested = intent.quantity
        if requested == 0 and intent.equity_fraction > 0:
            requested = intent.equity_fraction * account.equity * leverage / entry
        symbol_margin = 0.0 if position is None else position.notional / max(position.leverage, 1)
        size = size_entry(
            equity=account.equity,
            entry_price=entry,
            stop_price=stop,
            risk_fraction=risk_fraction,
            rules=self.sizing,
            leverage=leverage,
            symbol_margin=symbol_margin,
            gross_notional=sum(p.notional for p in account.positions.values()),
            cash=account.cash if spot else None,
            requested_quantity=requested,
            volume=market.volume,
        )
        if size.quantity <= 0:
            return deny(
                intent,
                RiskRule.SIZE,
                f"no room under the {size.binding}: it allows {size.limits[size.binding]:.6g} "
                f"{intent.symbol} at equity {account.equity:.2f}",
            )
        if size.notional < max(market.min_notional, DUST_NOTIONAL):
            return deny(
                intent,
                RiskRule.MIN_NOTIONAL,
                f"size {size.notional:.2f} (set by the {size.binding}) is below the venue "
                f"minimum of {max(market.min_notional, DUST_NOTIONAL):.2g}",
            )
        reasons.append(
            f"size {size.quantity:.6g} {intent.symbol} (notional {size.notional:.2f}) set by the "
            f"{size.binding}: risks {size.risk_amount:.2f} = "
            f"{size.risk_amount / account.equity:.2%} of equity"
        )
        return dataclasses.replace(
            intent,
            quantity=size.quantity,
            stop_price=stop,
            target_price=target,
            reasons=(*intent.reasons, *reasons),
        )

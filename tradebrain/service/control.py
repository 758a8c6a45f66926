"""The operator's switch in front of risk: running, paused or emergency-stopped.

A pause denies new positions (exits, stops and targets still work, so a pause never traps a
position); an emergency stop also makes the runner close everything. In live mode a candle
that closed long ago (a backfill after an outage) opens no position either.
"""

from __future__ import annotations

from tradebrain.core.events import OrderDenied
from tradebrain.core.market import MarketState
from tradebrain.core.orders import OrderIntent
from tradebrain.engine.ports import RiskDenial
from tradebrain.execution.account import AccountSnapshot
from tradebrain.risk.manager import RiskManager

RUNNING, PAUSED, EMERGENCY = "running", "paused", "emergency_stop"


class ControlGate:
    """Risk, behind the operator's switch: while paused or stopped, no new position opens.

    Exits (reduce-only orders, stops, targets) always pass to risk: a pause never traps a
    position.
    """

    def __init__(self, risk: RiskManager) -> None:
        self.risk = risk
        self.state = RUNNING
        self.stale = ""  # why the candle in hand is too old to open a position on, if it is

    def review(
        self, intent: OrderIntent, account: AccountSnapshot, market: MarketState
    ) -> OrderIntent | RiskDenial:
        """Deny entries while not running or on a stale candle; otherwise let risk decide."""
        if not intent.reduce_only:
            if self.state != RUNNING:
                why = "paused" if self.state == PAUSED else "emergency-stopped"
                return OrderDenied(
                    market.timestamp, intent, f"trading is {why} by the operator", "control"
                )
            if self.stale:
                return OrderDenied(market.timestamp, intent, self.stale, "stale_candle")
        return self.risk.review(intent, account, market)

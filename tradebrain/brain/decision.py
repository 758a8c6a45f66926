"""The Decision: what the brain concluded on one event, and why.

It is what the API shows, what the logs store and what the learning loop learns from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    BUY = "buy"  # open or add to a long
    SELL = "sell"  # open or add to a short
    HOLD = "hold"  # do nothing
    EXIT = "exit"  # close what is open


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision with everything needed to understand it later.

    Attributes
    ----------
    confidence
        In [0, 1]: the fused probability of the chosen direction after every filter.
    size
        Fraction of equity the move risks at its stop (risk has the last word and may cut it);
        0 for a move that opens or grows nothing.
    stop, target
        Suggested protective levels (quote currency), or None for hold.
    votes
        Model name -> (p_down, p_flat, p_up) it gave.
    filters
        Names of the filters that fired (``"chop"``, ``"kalman"``, ``"panic_exit"``, ...).
    reasons
        Plain-language sentences, one per thing that shaped the decision.
    maker
        True to post a passive (maker) order, False to take liquidity (taker).
    proba
        The fused (p_down, p_flat, p_up) after smoothing, summing to 1.
    family_weights
        Model family -> weight it had in the fusion (sums to 1 over the families that voted).
    target_position
        The exposure to hold after this decision: signed notional over equity (+1 all in
        long, -0.5 half the equity short, 0 flat).
    expected_return
        The forecast's expected log return over ``horizon`` candles (0 without a forecast).
    horizon
        Candles the forecast looks ahead (0 without a forecast).
    """

    timestamp: datetime
    symbol: str
    action: Action
    confidence: float
    size: float = 0.0
    stop: float | None = None
    target: float | None = None
    regime: str = "unknown"
    votes: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    filters: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    maker: bool = False  # prefer a passive (maker) order
    proba: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    family_weights: dict[str, float] = field(default_factory=dict)
    target_position: float = 0.0
    expected_return: float = 0.0
    horizon: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (timestamp as ISO text)."""
        data = asdict(self)
        data["timestamp"] = self.timestamp.isoformat()
        data["action"] = self.action.value
        data["votes"] = {k: list(v) for k, v in self.votes.items()}
        data["proba"] = list(self.proba)
        return data

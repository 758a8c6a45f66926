"""The port an RL agent plugs into: it sees the brain's decision and scales or vetoes its target.

An agent never invents a trade. After the :class:`~tradebrain.brain.brain.Brain` has decided on
a candle, :class:`AgentView` shows the agent what the brain wants (its target position, the edge
it expects over the costs, its confidence, the regime) and what the account holds (exposure,
drawdown from the equity peak); :meth:`PositionAgent.adjust` answers a multiplier of the target:
``0`` vetoes (no new exposure; an open position is left as the brain would), ``1`` keeps the
brain's target, ``1.5`` sizes it up (still capped by ``brain.max_position`` and by risk).
Agents live in :mod:`tradebrain.rl`; the hybrid strategy asks the one it is given on every
decision, in backtests, paper and live trading alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from tradebrain.brain.decision import Action, Decision

REGIMES = ("trending_up", "trending_down", "ranging", "high_volatility", "breakout", "unknown")
"""The regimes an agent's view tells apart (index = :attr:`AgentView.regime_index`)."""


@dataclass(frozen=True, slots=True)
class AgentView:
    """What an agent knows of one decision, all at the candle's close.

    Attributes
    ----------
    target
        The brain's target position (signed exposure, notional over equity).
    exposure
        The exposure held now.
    edge
        The brain's expected log return over its horizon, in round trips of cost (0 without
        a forecast).
    confidence
        The brain's confidence in [0, 1].
    drawdown
        How far equity is below its peak so far, in [0, 1].
    regime_index
        The regime's index in :data:`REGIMES`.
    entering
        Whether the brain's target opens exposure from flat or adds to it.
    """

    target: float
    exposure: float
    edge: float
    confidence: float
    drawdown: float
    regime_index: int
    entering: bool

    @classmethod
    def of(
        cls, decision: Decision, exposure: float, drawdown: float, round_trip_cost: float
    ) -> AgentView:
        """Build the view of ``decision`` for an account at ``exposure`` and ``drawdown``."""
        target = decision.target_position if decision.action is not Action.EXIT else 0.0
        edge = decision.expected_return / round_trip_cost if round_trip_cost > 0 else 0.0
        regime = REGIMES.index(decision.regime) if decision.regime in REGIMES else len(REGIMES) - 1
        adds = abs(target) > abs(exposure) + 1e-9 or (target * exposure < 0 and target != 0)
        return cls(
            target=target,
            exposure=exposure,
            edge=edge if math.isfinite(edge) else 0.0,
            confidence=decision.confidence,
            drawdown=min(max(drawdown, 0.0), 1.0),
            regime_index=regime,
            entering=adds and decision.action is not Action.HOLD,
        )

    def features(self) -> tuple[float, ...]:
        """The view as the numbers an agent's network reads (the regime one-hot)."""
        regime = tuple(1.0 if i == self.regime_index else 0.0 for i in range(len(REGIMES)))
        return (
            self.target, self.exposure, max(-10.0, min(10.0, self.edge)), self.confidence,
            self.drawdown, 1.0 if self.entering else 0.0, *regime,
        )  # fmt: skip


VIEW_SIZE = 6 + len(REGIMES)
"""How many numbers :meth:`AgentView.features` returns."""


class PositionAgent(Protocol):
    """An agent that scales or vetoes the brain's target (see the module)."""

    name: str

    def adjust(self, view: AgentView) -> float:
        """Return the multiplier of the brain's target: 0 (veto) up to the agent's maximum."""
        ...


def adjusted_target(view: AgentView, multiplier: float, max_position: float) -> float:
    """The target after the agent: only new exposure is scaled; a veto keeps what is held.

    A multiplier scales the exposure the brain adds beyond what is held (an agent cannot
    make the brain hold more than it would on its own side, only less or up to
    ``max_position``); reductions and exits are the brain's and pass unchanged.
    """
    if not view.entering or not math.isfinite(multiplier):
        return view.target
    multiplier = max(0.0, multiplier)
    held = view.exposure if view.exposure * view.target > 0 else 0.0
    scaled = held + (view.target - held) * multiplier
    return max(-max_position, min(max_position, scaled))

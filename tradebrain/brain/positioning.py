"""From an expected return to a target position, traded only when the edge beats the costs.

The brain's size is a *target position*: the signed fraction of equity to hold (notional over
equity; +1 all in long, -0.5 half the equity short). It comes from the forecast:

- **expected return** over the horizon: ``E[r_h] = beta * z * sigma_h`` (see
  :mod:`tradebrain.models.forecast`), ``z`` the score of the fused vote;
- **target** ``= kelly_fraction * E[r_h] / sigma_h**2`` — the growth-optimal bet scaled down
  (½-Kelly by default: the forecast is estimated with error, and overbetting costs far more
  than underbetting) — capped at ``±max_position``, and scaled by the brain's filters and
  guards (volatility cut, gap-safe mode).

Costs change the policy, not only the P&L (Davis & Norman 1990; Gârleanu & Pedersen 2013), so
:func:`step` moves the position toward the target only when that earns more than it costs:

- **enter** only when the expected return over the horizon beats ``entry_cost_multiple`` round
  trips (fee + slippage, both ways), a bar the chop and volatility filters may raise;
- **hold** while the expected return on the position's side stays above
  ``exit_cost_multiple`` round trips (a negative multiple holds through small wobbles of the
  forecast), then **exit**, or **flip** when the other side clears the entry bar;
- **resize** only when the target has moved more than ``rebalance_band`` away, and then move
  ``trade_rate`` of the way (1: all of it): inside the band, trading costs more than the
  better size is worth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLAT = 1e-9
"""An exposure smaller than this (in fractions of equity) is no position."""


@dataclass(frozen=True, slots=True)
class Forecast:
    """How this candle's votes become an expected return (from the models' calibration).

    Attributes
    ----------
    beta
        Expected return, in units of ``sigma``, per unit of forecast score; 0 = no skill.
    sigma
        Volatility of the log return over the horizon (e.g. 0.03 = 3 %).
    horizon
        Candles the forecast looks ahead.
    """

    beta: float
    sigma: float
    horizon: int

    @property
    def usable(self) -> bool:
        """Whether the numbers can make an expected return (finite, beta >= 0, sigma > 0)."""
        return (
            math.isfinite(self.beta)
            and self.beta >= 0
            and math.isfinite(self.sigma)
            and self.sigma > 0
            and self.horizon >= 1
        )


@dataclass(frozen=True, slots=True)
class PositionRules:
    """The numbers of the target and the no-trade band (see the module docstring).

    Attributes
    ----------
    cost_per_side
        Fee plus slippage on each unit of equity traded (0.0011 = 0.11 %).
    """

    kelly_fraction: float = 0.5
    max_position: float = 1.0
    entry_cost_multiple: float = 1.5
    exit_cost_multiple: float = -0.5
    rebalance_band: float = 0.25
    trade_rate: float = 1.0
    cost_per_side: float = 0.0011

    @property
    def round_trip(self) -> float:
        """Cost of opening and closing one unit of equity."""
        return 2.0 * self.cost_per_side


@dataclass(frozen=True, slots=True)
class Plan:
    """What the brain wants on this candle, before looking at the position.

    Attributes
    ----------
    expected
        Expected log return over the horizon (0 without a usable forecast).
    target
        Signed target exposure after filters and caps.
    entry_bar, exit_bar
        Expected return needed to open a position, and below which (on the position's side)
        one is closed; return units.
    hold_only
        No trade at all on this candle (the risk block).
    no_new_long
        No long may open or grow (the funding-flip cool-down).
    horizon
        Candles the forecast looks ahead (0 without a forecast).
    """

    expected: float
    target: float
    entry_bar: float
    exit_bar: float
    hold_only: bool = False
    no_new_long: bool = False
    horizon: int = 0


def kelly_target(expected: float, sigma: float, rules: PositionRules) -> float:
    """Return ``kelly_fraction * expected / sigma**2`` capped at ``±max_position``."""
    if not (sigma > 0 and math.isfinite(expected)):
        return 0.0
    raw = rules.kelly_fraction * expected / (sigma * sigma)
    return min(rules.max_position, max(-rules.max_position, raw))


def step(plan: Plan, exposure: float, rules: PositionRules, shorts: bool) -> tuple[float, str]:
    """Return the exposure to hold after this candle, and why.

    Parameters
    ----------
    plan
        The brain's wish for this candle.
    exposure
        Signed exposure held now (notional / equity).
    rules
        Band, rate and caps.
    shorts
        Whether shorts are allowed (perpetuals); on spot a short target means flat.
    """
    m = plan.expected
    target = plan.target if shorts else max(plan.target, 0.0)
    if plan.no_new_long:
        target = min(target, max(exposure, 0.0))
    if plan.hold_only:
        return exposure, "no trade: the risk block holds the position as it is"
    if abs(exposure) < FLAT:
        if m >= plan.entry_bar and target > FLAT:
            return target, (
                f"enter long: expected {m:+.2%} beats the entry bar {plan.entry_bar:.2%}"
            )
        if shorts and m <= -plan.entry_bar and target < -FLAT:
            return target, (
                f"enter short: expected {m:+.2%} beats the entry bar -{plan.entry_bar:.2%}"
            )
        return 0.0, f"stay flat: expected {m:+.2%} is inside the entry bar ±{plan.entry_bar:.2%}"
    side = 1.0 if exposure > 0 else -1.0
    held = "long" if side > 0 else "short"
    if side * m < plan.exit_bar:
        if shorts and -side * m >= plan.entry_bar and target * side < -FLAT:
            return target, (
                f"flip the {held}: expected {m:+.2%} crossed the other side's entry bar"
            )
        return 0.0, (
            f"exit the {held}: expected {m:+.2%} on its side fell below the exit bar "
            f"{plan.exit_bar:+.2%}"
        )
    if target * side <= FLAT or abs(target - exposure) <= rules.rebalance_band:
        return exposure, (
            f"hold the {held} ({exposure:+.2f}): expected {m:+.2%} stays above the exit bar; "
            f"target {target:+.2f} within the band ±{rules.rebalance_band:g}"
        )
    new = exposure + rules.trade_rate * (target - exposure)
    return new, f"resize the {held} {exposure:+.2f} -> {new:+.2f} toward the target {target:+.2f}"

"""Risk guards of the meta-reasoner: block, damp or neutralize in dangerous markets.

These act before the decision filters, on the market itself rather than on the votes:

- **danger** in [0, 1] grows with volatility (ATR ratio above 1.2, full at 2.5) and with the
  spread against its own history (above 1.5x its rolling median, full at 4x); it sets the
  weight of the risk family's flat vote in the fusion.
- **risk block**: no new trade when the ATR ratio is >= 2.5 or the spread is >= 4x its median
  (the synthetic flash crashes widen it 4x) — markets where a stop cannot be trusted to fill.
- **volatility cut**: above an ATR ratio of 1.5, confidence is multiplied by ``1.5 / ratio``
  (never below 0.5): a forecast is worth less when the noise is larger.
- **liquidation guard**: an open position whose liquidation price is closer than
  ``max(3 ATR, 2 %)`` is closed (EXIT): one ordinary adverse move would liquidate it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GuardThresholds:
    """The numbers the risk guards compare against (see the module docstring)."""

    danger_atr_start: float = 1.2
    danger_atr_full: float = 2.5
    danger_spread_start: float = 1.5
    danger_spread_full: float = 4.0
    block_atr_ratio: float = 2.5
    block_spread_ratio: float = 4.0
    cut_atr_ratio: float = 1.5
    cut_floor: float = 0.5
    liquidation_atr_multiple: float = 3.0
    liquidation_min_distance: float = 0.02


def _ramp(value: float, start: float, full: float) -> float:
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, (value - start) / (full - start)))


def danger_level(
    atr_ratio: float, spread_ratio: float, thresholds: GuardThresholds | None = None
) -> float:
    """Return the danger in [0, 1]: the larger of the volatility and spread ramps.

    Parameters
    ----------
    atr_ratio
        Mean true range of 14 candles over that of 96 (NaN when unknown: no danger from it).
    spread_ratio
        Spread over its rolling median (NaN when unknown).
    """
    t = thresholds or GuardThresholds()
    return max(
        _ramp(atr_ratio, t.danger_atr_start, t.danger_atr_full),
        _ramp(spread_ratio, t.danger_spread_start, t.danger_spread_full),
    )


def risk_block(
    atr_ratio: float, spread_ratio: float, thresholds: GuardThresholds | None = None
) -> str | None:
    """Return why no new trade may open, or None when the market is tradable."""
    t = thresholds or GuardThresholds()
    if atr_ratio >= t.block_atr_ratio:
        return (
            f"risk block: ATR ratio {atr_ratio:.2f} >= {t.block_atr_ratio:g}; "
            "no new trade while volatility is this extreme"
        )
    if spread_ratio >= t.block_spread_ratio:
        return (
            f"risk block: spread {spread_ratio:.1f}x its median (>= {t.block_spread_ratio:g}x); "
            "no new trade while liquidity is gone"
        )
    return None


def volatility_cut(
    atr_ratio: float, thresholds: GuardThresholds | None = None
) -> tuple[float, str | None]:
    """Return the confidence multiplier for this volatility, and the reason when it cuts."""
    t = thresholds or GuardThresholds()
    if math.isnan(atr_ratio) or atr_ratio <= t.cut_atr_ratio:
        return 1.0, None
    factor = max(t.cut_floor, t.cut_atr_ratio / atr_ratio)
    return factor, (
        f"volatility cut: ATR ratio {atr_ratio:.2f} > {t.cut_atr_ratio:g}, confidence x{factor:.2f}"
    )


def liquidation_guard(
    distance: float | None, atr_pct: float, thresholds: GuardThresholds | None = None
) -> str | None:
    """Return why an open position must be neutralized, or None when liquidation is far.

    Parameters
    ----------
    distance
        Distance from the price to the position's liquidation price, as a fraction of the
        price (0.05 = 5 %); None when no leveraged position is open.
    atr_pct
        ATR(14) as a fraction of the close (NaN when unknown: only the 2 % floor applies).
    """
    if distance is None or math.isnan(distance):
        return None
    t = thresholds or GuardThresholds()
    atr_room = 0.0 if math.isnan(atr_pct) else t.liquidation_atr_multiple * atr_pct
    room = max(atr_room, t.liquidation_min_distance)
    if distance >= room:
        return None
    return (
        f"liquidation guard: liquidation {distance:.1%} away, closer than "
        f"max({t.liquidation_atr_multiple:g} ATR, {t.liquidation_min_distance:.0%}) = {room:.1%}; "
        "neutralize the position"
    )

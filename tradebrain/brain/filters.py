"""Decision filters: smoothing, entry bars, cool-downs and the choice of order type.

Each filter is small and pure, or keeps just the state it needs across candles, and says in
words what it did. The brain applies them in this order: Kalman smoothing, volatility-adaptive
threshold, chop filter (skipped in a deep trend), funding-flip cool-down, gap-safe sizing,
maker/taker choice.

Thresholds and why
------------------
- **Kalman** (process variance 0.002, measurement variance 0.02): a steady-state gain of about
  0.27, i.e. a memory of roughly 4 candles. An edge that alternates +-0.3 every candle is
  smoothed to about +-0.05, below any entry bar, while a persistent edge comes through within a
  few candles.
- **Volatility-adaptive entry bar**: the expected return needed to open a position (in round
  trips of the costs) rises by 100 % per unit of ATR ratio above 1.2, at most doubling: louder
  markets need a clearer forecast.
- **Chop filter**: ATR ratio <= 0.9 (quieter than usual) and no dominant cycle (< 18 % of the
  spectral power) -> the entry bar doubles. Small moves with no rhythm pay fees and little else.
- **Trend depth**: ADX >= 35 with EMAs stacked (and a 20-candle efficiency >= 0.3 when known)
  is a deep trend: it bypasses the chop filter and takes liquidity (taker) on trades with the
  trend, so a running move is not missed waiting for a passive fill.
- **Funding flip**: when the funding rate changes sign, new longs cool down for 8 candles (one
  8-hour funding interval on 1h candles). Direction, both ways: positive -> negative means the
  crowd just turned bearish (perpetuals below spot, shorts paying), so a long fights fresh
  selling; negative -> positive means longs just became the crowded side that pays, the set-up
  of a long squeeze. Shorts are not cooled: neither flip makes a fresh short the crowded bet.
- **Gap-safe mode**: after a data gap, size is halved for 24 candles (a day of 1h candles):
  features computed across a gap are stale, and the Kalman state's uncertainty grows with each
  missed candle.
- **Spread regime**: a spread >= 1.5x its rolling median (200 candles) is wide, and a passive
  (maker) order saves the wide half-spread; otherwise take liquidity (taker): the half-spread is
  small and the fill certain.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class FilterThresholds:
    """The numbers the decision filters compare against (see the module docstring)."""

    kalman_process_variance: float = 0.002
    kalman_measurement_variance: float = 0.02
    volatility_start: float = 1.2
    volatility_slope: float = 1.0
    volatility_max_raise: float = 1.0
    chop_atr_ratio: float = 0.9
    chop_cycle_power: float = 0.18
    chop_raise: float = 1.0
    deep_trend_adx: float = 35.0
    deep_trend_alignment: float = 0.99
    deep_trend_efficiency: float = 0.3
    funding_cooldown_bars: int = 8
    gap_safe_bars: int = 24
    gap_size_factor: float = 0.5
    wide_spread_ratio: float = 1.5
    spread_window: int = 200
    spread_min_history: int = 20


class KalmanSmoother:
    """A one-dimensional random-walk Kalman filter for the fused up-minus-down edge.

    The hidden edge follows a random walk (variance ``process_variance`` per candle); each
    candle's fused edge observes it with noise (variance ``measurement_variance``). The state
    (``level``, ``variance``) persists across candles.
    """

    def __init__(self, process_variance: float = 0.002, measurement_variance: float = 0.02) -> None:
        self.process_variance = process_variance
        self.measurement_variance = measurement_variance
        self.level: float | None = None
        self.variance = measurement_variance

    def update(self, observed: float) -> float:
        """Fold in this candle's observed edge and return the smoothed edge."""
        if self.level is None:
            self.level, self.variance = observed, self.measurement_variance
            return observed
        predicted = self.variance + self.process_variance
        gain = predicted / (predicted + self.measurement_variance)
        self.level += gain * (observed - self.level)
        self.variance = (1.0 - gain) * predicted
        return self.level

    def skip(self, candles: int) -> None:
        """Widen the uncertainty for ``candles`` candles that were never observed (a data gap)."""
        self.variance += self.process_variance * max(0, candles)


def smooth_proba(
    proba: tuple[float, float, float], smoothed_edge: float
) -> tuple[float, float, float]:
    """Return ``proba`` with its up-minus-down edge replaced by ``smoothed_edge``.

    ``p_flat`` is kept; the edge is clipped to what the remaining mass allows, so the result
    still sums to 1 with every probability in [0, 1].
    """
    flat = proba[1]
    room = 1.0 - flat
    edge = min(room, max(-room, smoothed_edge))
    return ((room - edge) / 2.0, flat, (room + edge) / 2.0)


def volatility_threshold(
    atr_ratio: float, thresholds: FilterThresholds | None = None
) -> tuple[float, str | None]:
    """Return how much to raise the entry bar (a share of it) for this volatility, and why."""
    t = thresholds or FilterThresholds()
    if math.isnan(atr_ratio) or atr_ratio <= t.volatility_start:
        return 0.0, None
    raise_by = min(t.volatility_max_raise, t.volatility_slope * (atr_ratio - t.volatility_start))
    return raise_by, (
        f"volatility threshold: ATR ratio {atr_ratio:.2f} > {t.volatility_start:g}, "
        f"entry bar raised by {raise_by:.0%}"
    )


def chop_filter(
    atr_ratio: float, cycle_power: float, thresholds: FilterThresholds | None = None
) -> tuple[float, str | None]:
    """Return how much to raise the bar in a quiet market with no rhythm, and why."""
    t = thresholds or FilterThresholds()
    if math.isnan(atr_ratio) or atr_ratio > t.chop_atr_ratio or cycle_power >= t.chop_cycle_power:
        return 0.0, None
    return t.chop_raise, (
        f"chop filter: ATR ratio {atr_ratio:.2f} <= {t.chop_atr_ratio:g} and no dominant cycle "
        f"({cycle_power:.0%} < {t.chop_cycle_power:.0%}), entry bar raised by {t.chop_raise:.0%}"
    )


def trend_depth(
    adx: float, alignment: float, efficiency: float, thresholds: FilterThresholds | None = None
) -> str | None:
    """Return why the trend is deep (bypass chop, take liquidity), or None when it is not."""
    t = thresholds or FilterThresholds()
    if math.isnan(adx) or adx < t.deep_trend_adx or abs(alignment) < t.deep_trend_alignment:
        return None
    if not math.isnan(efficiency) and efficiency < t.deep_trend_efficiency:
        return None
    side = "up" if alignment > 0 else "down"
    efficiency_words = "" if math.isnan(efficiency) else f", efficiency {efficiency:.2f}"
    return (
        f"trend depth: ADX {adx:.0f} >= {t.deep_trend_adx:g} with EMAs stacked {side}"
        f"{efficiency_words}; chop filter bypassed, taker fills with the trend"
    )


class FundingFlipGuard:
    """Cool down new longs for ``cooldown_bars`` candles after the funding rate changes sign."""

    def __init__(self, cooldown_bars: int = 8) -> None:
        self.cooldown_bars = cooldown_bars
        self.last_sign = 0
        self.remaining = 0
        self.last_flip = ""

    def update(self, funding_rate_bps: float) -> int:
        """Fold in this candle's funding rate; return the candles of cool-down left (0 = none).

        A zero or missing rate keeps the last sign; the candle of the flip counts as the first
        candle of the cool-down.
        """
        self.remaining = max(0, self.remaining - 1)
        if math.isnan(funding_rate_bps) or funding_rate_bps == 0:
            return self.remaining
        sign = 1 if funding_rate_bps > 0 else -1
        if self.last_sign and sign != self.last_sign:
            self.remaining = self.cooldown_bars
            turned = "positive to negative" if sign < 0 else "negative to positive"
            self.last_flip = f"funding turned {turned} ({funding_rate_bps:+.2f} bps)"
        self.last_sign = sign
        return self.remaining

    def reason(self) -> str:
        """Return the plain-language reason for the cool-down now in force."""
        return (
            f"funding flip: {self.last_flip}; new longs cool down, "
            f"{self.remaining} of {self.cooldown_bars} candles left"
        )


class GapSafeMode:
    """Cut size for ``bars`` candles after a data gap."""

    def __init__(self, bars: int = 24, size_factor: float = 0.5) -> None:
        self.bars = bars
        self.size_factor = size_factor
        self.remaining = 0
        self.last_gap = 0

    def update(self, gap_candles: int) -> tuple[float, str | None]:
        """Fold in the candles missing before this one; return the size factor and why."""
        if gap_candles > 0:
            self.remaining, self.last_gap = self.bars, gap_candles
        elif self.remaining:
            self.remaining -= 1
        if not self.remaining:
            return 1.0, None
        return self.size_factor, (
            f"gap-safe mode: {self.last_gap} candle(s) missing; size x{self.size_factor:g} "
            f"for {self.remaining} more candle(s)"
        )


class SpreadRegime:
    """Read the spread against its own rolling history (past candles only)."""

    def __init__(self, window: int = 200, min_history: int = 20) -> None:
        self.min_history = min_history
        self.history: deque[float] = deque(maxlen=window)

    def update(self, spread_bps: float) -> float:
        """Return this spread over the median of the past ones (NaN until enough history)."""
        median = float(np.median(self.history)) if len(self.history) >= self.min_history else 0.0
        ratio = spread_bps / median if median > 0 and math.isfinite(spread_bps) else math.nan
        if math.isfinite(spread_bps):
            self.history.append(spread_bps)
        return ratio


def order_type(
    spread_ratio: float, deep_trend_with_trade: bool, thresholds: FilterThresholds | None = None
) -> tuple[bool, str]:
    """Return whether to post a maker order, and why.

    Parameters
    ----------
    spread_ratio
        Spread over its rolling median (NaN when unknown: taker).
    deep_trend_with_trade
        True when a deep trend runs the same way as the trade: always taker.
    """
    t = thresholds or FilterThresholds()
    if deep_trend_with_trade:
        return False, "order type: taker, a deep trend is running the trade's way"
    if spread_ratio >= t.wide_spread_ratio:
        return True, (
            f"order type: maker, spread {spread_ratio:.1f}x its median "
            f"(>= {t.wide_spread_ratio:g}x) is wide; post and save the half-spread"
        )
    words = "unknown" if math.isnan(spread_ratio) else f"{spread_ratio:.1f}x its median"
    return False, f"order type: taker, spread {words} is not wide; take the certain fill"

"""The regime detector: what kind of market this candle closed in, and why.

It reads one feature row (feature name -> value) and checks the rules below in order; the
first that holds names the regime. Every rule states its numbers in words, so a reader of the
Decision sees e.g. ``"ADX 31 > 25 and EMAs stacked up (alignment +1.00)"``.

1. **breakout** — volatility expanding (short ATR >= 1.3x long ATR), EMAs fully stacked one
   way, ADX still below the trend bar (the move is new) and the last 20 candles span most
   (>= 80 %) of the 60-candle range (price has left its old box).
2. **trending up / down** — ADX >= 25 and EMAs fully stacked in that direction.
3. **high volatility** — short ATR >= 1.5x long ATR.
4. **low volatility** — short ATR <= 0.7x long ATR.
5. **ranging** — no trend (ADX < 25) and either a dominant cycle (its share of spectral
   power >= 0.18) or a tight 20-candle box (range <= 3.5 ATR): price swings back and forth.
6. **choppy** — none of the above: no trend, no cycle, no box; noise.

Thresholds and why. ADX 25 is the textbook trend line. The volatility bars sit near the 90th
and 12th percentiles of the 14/96 ATR ratio on the synthetic market (median 0.95). White-noise
returns give the strongest of 32 frequencies about 12 % of the power (median 0.119 on the
synthetic market, 95th percentile 0.185), so 0.18 means a cycle stands out from noise. A random
walk's 20-candle range is about 4.2 ATR (synthetic median), so 3.5 ATR is a box.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

ADX = "adx_14"
ATR_RATIO = "atr_ratio_14_96"
EMA_ALIGNMENT = "ema_alignment"
RANGE_WIDTH_SHORT = "range_width_20"
RANGE_WIDTH_LONG = "range_width_60"
CYCLE_POWER = "cycle_power_64"
CYCLE_PERIOD = "cycle_period_64"
ATR_PCT = "atr_pct_14"
REQUIRED_FEATURES = (ADX, ATR_RATIO, EMA_ALIGNMENT)
"""Without these three the regime is ``unknown``."""
BRAIN_FEATURE_SETS = ("indicators", "regime")
"""Feature sets the brain reads itself (regime, trend depth, chop), whatever the models use."""


class Regime(StrEnum):
    TRENDING_UP = "trending_up"
    TRENDING_DOWN = "trending_down"
    RANGING = "ranging"
    CHOPPY = "choppy"
    BREAKOUT = "breakout"
    HIGH_VOLATILITY = "high_volatility"
    LOW_VOLATILITY = "low_volatility"
    UNKNOWN = "unknown"

    @property
    def is_trend(self) -> bool:
        """Whether this is a trending regime (up or down)."""
        return self in (Regime.TRENDING_UP, Regime.TRENDING_DOWN)


@dataclass(frozen=True, slots=True)
class RegimeThresholds:
    """The numbers the regime rules compare against (see the module docstring)."""

    trend_adx: float = 25.0
    stacked_alignment: float = 0.99  # ema_alignment is a mean of three signs: +-1 when stacked
    breakout_atr_ratio: float = 1.3
    breakout_range_share: float = 0.8
    high_volatility_atr_ratio: float = 1.5
    low_volatility_atr_ratio: float = 0.7
    dominant_cycle_power: float = 0.18
    box_range_atr: float = 3.5


@dataclass(frozen=True, slots=True)
class RegimeReading:
    """The regime of one candle, the reasons, and the numbers the filters reuse.

    Attributes
    ----------
    regime
        The regime named by the first rule that held.
    reasons
        Plain-language sentences with the numbers behind the call.
    adx
        ADX(14), 0-100 (NaN when missing).
    atr_ratio
        Mean true range of 14 candles over that of 96 (NaN when missing).
    alignment
        EMA alignment in [-1, 1]: +1 stacked up, -1 stacked down (0 when missing).
    cycle_power
        Share of spectral power in the strongest cycle, in [0, 1] (0 when missing).
    """

    regime: Regime
    reasons: tuple[str, ...]
    adx: float = math.nan
    atr_ratio: float = math.nan
    alignment: float = 0.0
    cycle_power: float = 0.0

    @property
    def direction(self) -> int:
        """+1 when EMAs lean up, -1 when they lean down, 0 when flat or unknown."""
        return int(math.copysign(1, self.alignment)) if self.alignment else 0


def feature(row: Mapping[str, float], name: str) -> float:
    """Return ``row[name]`` as a float, or NaN when it is missing or not a number."""
    value = row.get(name)
    if value is None:
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def detect_regime(
    row: Mapping[str, float], thresholds: RegimeThresholds | None = None
) -> RegimeReading:
    """Name the regime of one candle from its features.

    Parameters
    ----------
    row
        Feature name -> value for one candle; reads ``adx_14``, ``atr_ratio_14_96``,
        ``ema_alignment`` (required) and ``range_width_20``, ``range_width_60``,
        ``cycle_power_64``, ``cycle_period_64``, ``atr_pct_14`` (optional).
    thresholds
        The rule thresholds; the defaults documented in the module docstring when None.

    Returns
    -------
    RegimeReading
        ``unknown`` with the missing feature names when a required feature is missing.
    """
    t = thresholds or RegimeThresholds()
    missing = [name for name in REQUIRED_FEATURES if math.isnan(feature(row, name))]
    if missing:
        return RegimeReading(
            Regime.UNKNOWN, (f"regime unknown: {', '.join(missing)} missing (still warming up?)",)
        )
    adx, atr_ratio, alignment = (feature(row, name) for name in REQUIRED_FEATURES)
    power = feature(row, CYCLE_POWER)
    power = 0.0 if math.isnan(power) else power
    regime, reason = _classify(row, t, adx, atr_ratio, alignment, power)
    return RegimeReading(
        regime, (f"regime {regime.value}: {reason}",), adx, atr_ratio, alignment, power
    )


def _classify(
    row: Mapping[str, float],
    t: RegimeThresholds,
    adx: float,
    atr_ratio: float,
    alignment: float,
    power: float,
) -> tuple[Regime, str]:
    stacked = abs(alignment) >= t.stacked_alignment
    side = "up" if alignment > 0 else "down"
    align_words = f"EMAs stacked {side} (alignment {alignment:+.2f})"
    short_range, long_range = feature(row, RANGE_WIDTH_SHORT), feature(row, RANGE_WIDTH_LONG)
    range_share = short_range / long_range if long_range > 0 else math.nan
    if (
        atr_ratio >= t.breakout_atr_ratio
        and stacked
        and adx < t.trend_adx
        and range_share >= t.breakout_range_share
    ):
        return Regime.BREAKOUT, (
            f"ATR ratio {atr_ratio:.2f} >= {t.breakout_atr_ratio:g} (volatility expanding), "
            f"{align_words}, ADX {adx:.0f} < {t.trend_adx:g} (a new move) and the last 20 "
            f"candles span {range_share:.0%} of the 60-candle range"
        )
    if adx >= t.trend_adx and stacked:
        regime = Regime.TRENDING_UP if alignment > 0 else Regime.TRENDING_DOWN
        return regime, f"ADX {adx:.0f} >= {t.trend_adx:g} and {align_words}"
    if atr_ratio >= t.high_volatility_atr_ratio:
        return Regime.HIGH_VOLATILITY, (
            f"ATR ratio {atr_ratio:.2f} >= {t.high_volatility_atr_ratio:g}: the last 14 candles "
            "move far more than usual"
        )
    if atr_ratio <= t.low_volatility_atr_ratio:
        return Regime.LOW_VOLATILITY, (
            f"ATR ratio {atr_ratio:.2f} <= {t.low_volatility_atr_ratio:g}: the last 14 candles "
            "barely move"
        )
    trend_words = (
        f"ADX {adx:.0f} < {t.trend_adx:g}"
        if adx < t.trend_adx
        else f"ADX {adx:.0f} but EMAs mixed (alignment {alignment:+.2f})"
    )
    atr_pct = feature(row, ATR_PCT)
    box_atr = short_range / atr_pct if atr_pct > 0 else math.nan
    if adx < t.trend_adx and power >= t.dominant_cycle_power:
        period = feature(row, CYCLE_PERIOD)
        period_words = f" of {period:.0f} candles" if not math.isnan(period) else ""
        return Regime.RANGING, (
            f"{trend_words} and a dominant cycle{period_words} holds {power:.0%} of the power "
            f"(>= {t.dominant_cycle_power:.0%})"
        )
    if adx < t.trend_adx and box_atr <= t.box_range_atr:
        return Regime.RANGING, (
            f"{trend_words} and price boxed in a 20-candle range of {box_atr:.1f} ATR "
            f"(<= {t.box_range_atr:g})"
        )
    return Regime.CHOPPY, (
        f"{trend_words}, no dominant cycle ({power:.0%} of the power < "
        f"{t.dominant_cycle_power:.0%}) and no tight box: noise"
    )

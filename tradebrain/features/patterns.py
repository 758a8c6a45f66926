"""Candle patterns: engulfing, doji, hammer, shooting star, inside/outside bars; wick ratios.

Pattern flags are 1.0 where the pattern is present and 0.0 where not.
"""

from __future__ import annotations

import numpy as np

from tradebrain.core.market import true_range
from tradebrain.features.registry import Bars, feature_group
from tradebrain.features.rolling import lagged
from tradebrain.features.smoothing import wilder, wilder_warmup

SET = "patterns"
DOJI_BODY = 0.1
"""A doji's body is at most this fraction of its range."""
ATR_PERIOD = 14
TREND_BARS = 5


@feature_group(
    SET,
    ("open", "high", "low", "close"),
    {
        "body_ratio": (0, "signed body (close - open) over the bar's range"),
        "upper_wick_ratio": (0, "upper wick over the bar's range"),
        "lower_wick_ratio": (0, "lower wick over the bar's range"),
        "body_to_atr": (
            1 + wilder_warmup(ATR_PERIOD),
            "absolute body over Wilder ATR(14): how big the bar is for this market",
        ),
        "doji": (0, "doji: body at most 10% of the range"),
        "hammer": (
            TREND_BARS,
            "hammer: after a 5-bar decline, lower wick >= 2x body, upper wick <= body",
        ),
        "shooting_star": (
            TREND_BARS,
            "shooting star: after a 5-bar rise, upper wick >= 2x body, lower wick <= body",
        ),
        "bullish_engulfing": (1, "bullish engulfing: an up body that covers the last down body"),
        "bearish_engulfing": (1, "bearish engulfing: a down body that covers the last up body"),
        "inside_bar": (1, "inside bar: range within the previous bar's range"),
        "outside_bar": (1, "outside bar: range beyond both ends of the previous bar's range"),
    },
)
def _candle_patterns(bars: Bars, start: int) -> dict[str, np.ndarray]:
    open_all, high_all, low_all, close_all = (bars[k] for k in ("open", "high", "low", "close"))
    open_, high, low, close = (a[start:] for a in (open_all, high_all, low_all, close_all))
    span = high - low
    safe_span = np.where(span > 0.0, span, np.inf)
    body = np.abs(close - open_)
    upper = high - np.maximum(open_, close)
    lower = np.minimum(open_, close) - low
    atr = wilder(true_range(high_all, low_all, close_all), ATR_PERIOD, start)

    prev_open = lagged(open_all, 1, start)
    prev_close = lagged(close_all, 1, start)
    prev_high = lagged(high_all, 1, start)
    prev_low = lagged(low_all, 1, start)
    trend = close - lagged(close_all, TREND_BARS, start)
    known = ~np.isnan(trend)
    known_prev = ~np.isnan(prev_close)

    def flag(condition: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return np.where(valid, condition.astype(np.float64), np.nan)

    up, down = close > open_, close < open_
    prev_up, prev_down = prev_close > prev_open, prev_close < prev_open
    return {
        "body_ratio": (close - open_) / safe_span,
        "upper_wick_ratio": upper / safe_span,
        "lower_wick_ratio": lower / safe_span,
        "body_to_atr": body / atr,
        "doji": (body <= DOJI_BODY * span).astype(np.float64),
        "hammer": flag((trend < 0.0) & (lower >= 2.0 * body) & (upper <= body) & (span > 0), known),
        "shooting_star": flag(
            (trend > 0.0) & (upper >= 2.0 * body) & (lower <= body) & (span > 0), known
        ),
        "bullish_engulfing": flag(
            up & prev_down & (close >= prev_open) & (open_ <= prev_close), known_prev
        ),
        "bearish_engulfing": flag(
            down & prev_up & (open_ >= prev_close) & (close <= prev_open), known_prev
        ),
        "inside_bar": flag((high <= prev_high) & (low >= prev_low), known_prev),
        "outside_bar": flag((high > prev_high) & (low < prev_low), known_prev),
    }

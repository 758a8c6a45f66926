"""Order-flow features: volume delta, decayed pressure, large trades, book shape, spoofing, VPIN.

They read the per-candle columns that :func:`~tradebrain.features.orderflow_inputs.
orderflow_columns` aggregates from trades and order-book snapshots. Where an input is NaN
(its source was not given, or it is still warming up) the feature is NaN, so null in the output.

Warm-ups count the feature's own windows plus the inputs' fixed warm-ups: the large-trade
threshold needs :data:`SIZE_WINDOW` candles; book changes, iceberg fills and price-moving
volume one (when the first snapshot and trade fall in the first candle; later, the inputs
stay NaN longer). The decayed pressures need ``23 tau`` seconds of trades, whatever the
timeframe; their inputs are NaN until then, so the features are null.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tradebrain.features.orderflow_inputs import DECAY_SECONDS, DEPTH_LEVELS, SIZE_WINDOW
from tradebrain.features.registry import Bars, feature_group
from tradebrain.features.rolling import first_valid, rolling_sums

SET = "orderflow"
DELTA_WINDOWS = (5, 20)
SLOPE_WINDOW = 20
FLOW_WINDOW = 20
BOOK_WINDOW = 10
VPIN_WINDOW = 50
VPIN_BUCKETS = 10
_TINY = 1e-12


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Return ``part / whole``, 0 where ``whole`` is 0 (no activity is no signal)."""
    safe = np.where(whole > 0.0, whole, 1.0)
    return np.where(whole > 0.0, part / safe, np.where(np.isnan(whole), np.nan, 0.0))


def _cvd_slope_weights(window: int) -> np.ndarray:
    """Weights ``c`` so that ``c @ deltas`` is the OLS slope of cumulative delta over ``window``.

    The cumulative delta ``Y_k = C + d_1 + ... + d_k`` has slope ``sum_k (k - mean) Y_k / Sxx``;
    the unknown level ``C`` cancels, so the slope reads the last ``window - 1`` deltas only.
    """
    positions = np.arange(1, window + 1, dtype=np.float64)
    centred = positions - positions.mean()
    tail_sums = np.cumsum(centred[::-1])[::-1]  # sum_{k >= j} (k - mean)
    return tail_sums[1:] / float(np.sum(centred**2))


def _sliding_dot(values: np.ndarray, weights: np.ndarray, start: int) -> np.ndarray:
    """Return ``weights @ values[t - len + 1 .. t]`` for rows ``start .. n-1`` (NaN if short)."""
    n, width = values.shape[0], weights.shape[0]
    out = np.full(n - start, np.nan)
    first = max(start, width - 1)
    if first < n:
        windows = np.lib.stride_tricks.sliding_window_view(values[first - width + 1 :], width)
        out[first - start :] = windows @ weights
    return out


@feature_group(
    SET,
    ("buy_volume", "sell_volume", "trade_count", "price_moving_volume"),
    {
        "volume_delta_share": (0, "taker buy minus taker sell volume over total volume, this bar"),
        **{
            f"cvd_ratio_{w}": (w - 1, f"cumulative volume delta over {w} bars, over their volume")
            for w in DELTA_WINDOWS
        },
        f"cvd_slope_{SLOPE_WINDOW}": (
            SLOPE_WINDOW - 2,
            f"slope per bar of cumulative volume delta over {SLOPE_WINDOW} bars, in mean bar volume"
            " units",
        ),
        f"trade_intensity_{FLOW_WINDOW}": (
            FLOW_WINDOW - 1,
            f"log of this bar's trade count over its {FLOW_WINDOW}-bar mean (+1 smoothing)",
        ),
        f"aggressive_ratio_{FLOW_WINDOW}": (
            FLOW_WINDOW,
            f"share of volume from trades that pushed price in their direction, {FLOW_WINDOW} bars",
        ),
    },
)
def _volume_delta(bars: Bars, start: int) -> dict[str, np.ndarray]:
    buy, sell = bars["buy_volume"], bars["sell_volume"]
    volume = buy + sell
    out = {"volume_delta_share": _share(buy - sell, volume)[start:]}
    for w in DELTA_WINDOWS:
        sums = rolling_sums(np.vstack((buy, sell)), w, start)
        out[f"cvd_ratio_{w}"] = _share(sums[0] - sums[1], sums[0] + sums[1])
    slope = _sliding_dot(buy - sell, _cvd_slope_weights(SLOPE_WINDOW), start)
    mean_volume = rolling_sums(volume[None, :], SLOPE_WINDOW, start)[0] / SLOPE_WINDOW
    out[f"cvd_slope_{SLOPE_WINDOW}"] = _share(slope, mean_volume)
    counts = bars["trade_count"]
    mean_count = rolling_sums(counts[None, :], FLOW_WINDOW, start)[0] / FLOW_WINDOW
    out[f"trade_intensity_{FLOW_WINDOW}"] = np.log((counts[start:] + 1.0) / (mean_count + 1.0))
    moving = rolling_sums(np.vstack((bars["price_moving_volume"], volume)), FLOW_WINDOW, start)
    out[f"aggressive_ratio_{FLOW_WINDOW}"] = _share(moving[0], moving[1])
    return out


@feature_group(
    SET,
    tuple(f"{side}_pressure_{tau}s" for tau in DECAY_SECONDS for side in ("buy", "sell")),
    {
        f"pressure_imbalance_{tau}s": (
            0,
            f"buy minus sell volume decayed over {tau} s at the close, over their sum "
            f"(null for the first {math.ceil(23.03 * tau)} s of trades)",
        )
        for tau in DECAY_SECONDS
    },
)
def _decayed_pressure(bars: Bars, start: int) -> dict[str, np.ndarray]:
    out = {}
    for tau in DECAY_SECONDS:
        buy, sell = bars[f"buy_pressure_{tau}s"][start:], bars[f"sell_pressure_{tau}s"][start:]
        out[f"pressure_imbalance_{tau}s"] = _share(buy - sell, buy + sell)
    return out


_LARGE_WARMUP = SIZE_WINDOW + FLOW_WINDOW - 1


@feature_group(
    SET,
    (
        "buy_volume",
        "sell_volume",
        "large_buy_volume",
        "large_sell_volume",
        "large_trade_count",
        "clustered_large_trades",
    ),
    {
        f"large_trade_share_{FLOW_WINDOW}": (
            _LARGE_WARMUP,
            f"share of volume in trades above the 95th size percentile, {FLOW_WINDOW} bars",
        ),
        f"large_trade_clusters_{FLOW_WINDOW}": (
            _LARGE_WARMUP + 1,
            f"share of large trades that came within 10 s of a large trade on the same side, "
            f"{FLOW_WINDOW} bars",
        ),
        f"whale_index_{FLOW_WINDOW}": (
            _LARGE_WARMUP,
            f"large taker buys minus large taker sells over all volume, {FLOW_WINDOW} bars",
        ),
    },
)
def _large_trades(bars: Bars, start: int) -> dict[str, np.ndarray]:
    rows = np.vstack(
        [
            bars["buy_volume"] + bars["sell_volume"],
            bars["large_buy_volume"],
            bars["large_sell_volume"],
            bars["large_trade_count"],
            bars["clustered_large_trades"],
        ]
    )
    volume, large_buy, large_sell, count, clustered = rolling_sums(rows, FLOW_WINDOW, start)
    return {
        f"large_trade_share_{FLOW_WINDOW}": _share(large_buy + large_sell, volume),
        f"large_trade_clusters_{FLOW_WINDOW}": _share(clustered, count),
        f"whale_index_{FLOW_WINDOW}": _share(large_buy - large_sell, volume),
    }


_DEPTH_INPUTS = tuple(f"{side}_depth_{k}" for k in DEPTH_LEVELS for side in ("bid", "ask"))


@feature_group(
    SET,
    ("best_bid", "best_ask", *_DEPTH_INPUTS),
    {
        "spread_bps": (0, "best ask minus best bid over the mid, in basis points"),
        **{
            f"book_imbalance_{k}": (0, f"bid minus ask size on the best {k} levels, over their sum")
            for k in DEPTH_LEVELS
        },
        f"depth_ratio_{FLOW_WINDOW}": (
            FLOW_WINDOW - 1,
            f"log of the 10-level depth (both sides) over its {FLOW_WINDOW}-bar mean",
        ),
    },
)
def _book_shape(bars: Bars, start: int) -> dict[str, np.ndarray]:
    bid, ask = bars["best_bid"][start:], bars["best_ask"][start:]
    out = {"spread_bps": (ask - bid) / (0.5 * (ask + bid)) * 1e4}
    for k in DEPTH_LEVELS:
        bids, asks = bars[f"bid_depth_{k}"][start:], bars[f"ask_depth_{k}"][start:]
        out[f"book_imbalance_{k}"] = _share(bids - asks, bids + asks)
    depth = bars["bid_depth_10"] + bars["ask_depth_10"]
    mean_depth = rolling_sums(depth[None, :], FLOW_WINDOW, start)[0] / FLOW_WINDOW
    out[f"depth_ratio_{FLOW_WINDOW}"] = np.log((depth[start:] + _TINY) / (mean_depth + _TINY))
    return out


@feature_group(
    SET,
    (
        "buy_volume",
        "sell_volume",
        "pulled_wall",
        "cancelled_volume",
        "iceberg_volume",
        "iceberg_ratio",
    ),
    {
        f"spoofing_score_{BOOK_WINDOW}": (
            BOOK_WINDOW,
            f"mean size (in median book levels) of the largest wall pulled untraded, "
            f"{BOOK_WINDOW} bars",
        ),
        f"cancel_to_trade_{BOOK_WINDOW}": (
            BOOK_WINDOW,
            f"log(1 + visible size cancelled untraded over traded volume), {BOOK_WINDOW} bars",
        ),
        f"iceberg_score_{FLOW_WINDOW}": (
            FLOW_WINDOW,
            f"share of volume executed beyond the visible size at its price, {FLOW_WINDOW} bars",
        ),
        "iceberg_fill_ratio": (
            1,
            "log(1 + largest executed over visible size at one price), this bar",
        ),
    },
)
def _hidden_liquidity(bars: Bars, start: int) -> dict[str, np.ndarray]:
    volume = bars["buy_volume"] + bars["sell_volume"]
    book = rolling_sums(
        np.vstack((bars["pulled_wall"], bars["cancelled_volume"], volume)), BOOK_WINDOW, start
    )
    flow = rolling_sums(np.vstack((bars["iceberg_volume"], volume)), FLOW_WINDOW, start)
    return {
        f"spoofing_score_{BOOK_WINDOW}": book[0] / BOOK_WINDOW,
        f"cancel_to_trade_{BOOK_WINDOW}": np.log1p(book[1] / (book[2] + _TINY)),
        f"iceberg_score_{FLOW_WINDOW}": _share(flow[0], flow[1]),
        "iceberg_fill_ratio": np.log1p(bars["iceberg_ratio"][start:]),
    }


@feature_group(
    SET,
    ("high", "low", "close", "volume"),
    {
        f"absorption_{FLOW_WINDOW}": (
            FLOW_WINDOW,
            f"log of relative volume over relative true range ({FLOW_WINDOW}-bar means): "
            "high volume that barely moved price",
        ),
    },
)
def _absorption(bars: Bars, start: int) -> dict[str, np.ndarray]:
    close = bars["close"]
    previous = np.concatenate(([np.nan], close[:-1]))
    span = (np.maximum(bars["high"], previous) - np.minimum(bars["low"], previous)) / close
    volume = bars["volume"]
    means = rolling_sums(np.vstack((span, volume)), FLOW_WINDOW, start) / FLOW_WINDOW
    relative_volume = (volume[start:] + _TINY) / (means[1] + _TINY)
    relative_span = (span[start:] + _TINY) / (means[0] + _TINY)
    return {f"absorption_{FLOW_WINDOW}": np.log(relative_volume / relative_span)}


@njit(cache=True, nogil=True)
def _vpin(buy: np.ndarray, sell: np.ndarray, window: int, buckets: int, start: int) -> np.ndarray:
    """Return volume-bucketed ``sum |buy - sell| / volume`` over the last ``window`` bars.

    The window's volume is cut into ``buckets`` equal buckets, in time order; a bar's volume
    spreads over the buckets it spans with the bar's buy share.
    """
    n = buy.shape[0]
    out = np.full(n - start, np.nan)
    begin = max(start, max(first_valid(buy), first_valid(sell)) + window - 1)
    for i in range(begin, n):
        total = 0.0
        for j in range(i - window + 1, i + 1):
            total += buy[j] + sell[j]
        if not total > 0.0:
            out[i - start] = 0.0 if total == 0.0 else np.nan
            continue
        size = total / buckets
        room = size
        imbalance = 0.0
        toxic = 0.0
        for j in range(i - window + 1, i + 1):
            left = buy[j] + sell[j]
            if left <= 0.0:
                continue
            lean = (buy[j] - sell[j]) / left
            while left > 0.0:
                take = min(left, room)
                imbalance += lean * take
                left -= take
                room -= take
                if room <= size * 1e-12:
                    toxic += abs(imbalance)
                    imbalance = 0.0
                    room = size
        out[i - start] = (toxic + abs(imbalance)) / total
    return out


@feature_group(
    SET,
    ("buy_volume", "sell_volume"),
    {
        f"vpin_{VPIN_WINDOW}": (
            VPIN_WINDOW - 1,
            f"VPIN toxicity: mean |buy - sell| share over {VPIN_BUCKETS} equal-volume buckets "
            f"of the last {VPIN_WINDOW} bars",
        ),
    },
)
def _toxicity(bars: Bars, start: int) -> dict[str, np.ndarray]:
    return {
        f"vpin_{VPIN_WINDOW}": _vpin(
            bars["buy_volume"], bars["sell_volume"], VPIN_WINDOW, VPIN_BUCKETS, start
        )
    }

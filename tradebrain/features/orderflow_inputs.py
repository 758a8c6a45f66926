"""Raw order flow on the candle grid: per-candle inputs of the orderflow and sentiment sets.

:func:`orderflow_columns` adds float64 columns to a candle frame, strictly from data known
when the candle closes. Candle ``t`` (open time ``t``, close ``t + tf``) reads

- the trades with a timestamp in ``[t, t + tf)``, and for thresholds and decays the trades of
  earlier candles only;
- the last order-book snapshot with a timestamp ``< t + tf`` (as-of), and the changes between
  consecutive snapshots taken inside the candle;
- the funding settlements with a timestamp ``<= t + tf``.

Every column is always present; it is NaN where its source was not given or where it still
depends on where the data started (the decays for their first ``23 tau`` seconds, large-trade
flags for their first :data:`SIZE_WINDOW` candles, book changes and iceberg fills up to the
candle of the first snapshot, price-moving volume up to the candle of the first trade).
Trades between candles (gaps) are ignored; only book rows with ``is_snapshot`` set are read.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from numba import njit

from tradebrain.data.schemas import TIMESTAMP
from tradebrain.data.timeframes import timeframe_seconds

DECAY_SECONDS = (5, 30, 300)
"""Time constants of the decayed buy/sell pressure, in seconds."""
DEPTH_LEVELS = (3, 10, 20)
"""Book levels per side summed into the depth columns."""
SIZE_WINDOW = 50
"""Candles of past trades whose size quantile defines a large trade."""
SIZE_QUANTILE = 0.95
CLUSTER_SECONDS = 10.0
"""A large trade within this many seconds of a large trade of the same side is clustered."""
_FORGET = math.log(1e10)  # a decay forgets its seed after FORGET * tau (weight < 1e-10)

TRADE_COLUMNS: tuple[str, ...] = (
    "buy_volume",
    "sell_volume",
    "trade_count",
    "price_moving_volume",
    "large_buy_volume",
    "large_sell_volume",
    "large_trade_count",
    "clustered_large_trades",
    *(f"{side}_pressure_{tau}s" for tau in DECAY_SECONDS for side in ("buy", "sell")),
)
BOOK_COLUMNS: tuple[str, ...] = (
    "best_bid",
    "best_ask",
    *(f"{side}_depth_{k}" for k in DEPTH_LEVELS for side in ("bid", "ask")),
    "pulled_wall",
    "appeared_wall",
    "cancelled_volume",
)
BOOK_TRADE_COLUMNS: tuple[str, ...] = ("iceberg_volume", "iceberg_ratio")
FUNDING_COLUMNS: tuple[str, ...] = ("funding_rate",)
ORDERFLOW_COLUMNS: tuple[str, ...] = (
    *TRADE_COLUMNS,
    *BOOK_COLUMNS,
    *BOOK_TRADE_COLUMNS,
    *FUNDING_COLUMNS,
)
"""Every column :func:`orderflow_columns` adds, in order."""


def orderflow_columns(
    candles: pl.DataFrame,
    timeframe: str,
    *,
    trades: pl.DataFrame | None = None,
    book: pl.DataFrame | None = None,
    funding: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Return ``candles`` with the order-flow inputs of each candle, leak-free.

    Parameters
    ----------
    candles
        One symbol's candles, oldest first, stamped with their open time.
    timeframe
        Candle length (``"1m"``); candle ``t`` covers ``[t, t + timeframe)``.
    trades, book, funding
        Frames in the trades, book and funding schemas (any order); ``None`` when absent.

    Returns
    -------
    pl.DataFrame
        ``candles`` plus the Float64 columns of :data:`ORDERFLOW_COLUMNS`: volumes in base
        units, ``*_pressure_{tau}s`` the exponentially decayed buy/sell volume at the close,
        ``*_depth_k`` base amount on the best ``k`` levels, ``pulled_wall`` the largest size
        withdrawn from one level that no trade reached and ``appeared_wall`` the largest new
        level, in median level sizes, ``cancelled_volume`` the untraded decrease of visible levels,
        ``iceberg_volume`` executed volume beyond the visible size at the traded price and
        ``iceberg_ratio`` the largest executed / visible ratio, ``funding_rate`` the last
        settled rate.
    """
    opens = candles.get_column("timestamp").cast(TIMESTAMP).dt.epoch("us").to_numpy()
    step = timeframe_seconds(timeframe) * 1_000_000
    n = opens.shape[0]
    out = {name: np.full(n, np.nan) for name in ORDERFLOW_COLUMNS}
    tape = None if trades is None else _tape(trades, opens, step)
    if tape is not None:
        out.update(_trade_columns(tape, opens, step))
    if book is not None:
        out.update(_book_columns(book, tape, opens, step))
    if funding is not None and funding.height:
        ordered = funding.sort("timestamp")
        settled = ordered.get_column("timestamp").cast(TIMESTAMP).dt.epoch("us").to_numpy()
        last = np.searchsorted(settled, opens + step, side="right") - 1
        rates = ordered.get_column("funding_rate").cast(pl.Float64).to_numpy()
        out["funding_rate"] = np.where(last >= 0, rates[np.maximum(last, 0)], np.nan)
    extra = [pl.Series(name, out[name], dtype=pl.Float64) for name in ORDERFLOW_COLUMNS]
    return candles.drop([c for c in ORDERFLOW_COLUMNS if c in candles.columns]).with_columns(extra)


def _tape(trades: pl.DataFrame, opens: np.ndarray, step: int) -> dict[str, np.ndarray]:
    """Return the trades inside a candle, oldest first, with their candle index."""
    ordered = trades.with_row_index("_order").sort(["timestamp", "_order"])
    stamps = ordered.get_column("timestamp").cast(TIMESTAMP).dt.epoch("us").to_numpy()
    candle = np.searchsorted(opens, stamps, side="right") - 1
    inside = (candle >= 0) & (stamps < opens[np.maximum(candle, 0)] + step)
    return {
        "timestamp": stamps[inside],
        "candle": candle[inside],
        "price": ordered.get_column("price").cast(pl.Float64).to_numpy()[inside],
        "amount": ordered.get_column("amount").cast(pl.Float64).to_numpy()[inside],
        "buy": (ordered.get_column("side") == "buy").to_numpy()[inside],
    }


def _trade_columns(
    tape: dict[str, np.ndarray], opens: np.ndarray, step: int
) -> dict[str, np.ndarray]:
    n = opens.shape[0]
    candle, amount, buy, price = tape["candle"], tape["amount"], tape["buy"], tape["price"]
    out = {
        "buy_volume": np.bincount(candle, amount * buy, n),
        "sell_volume": np.bincount(candle, amount * ~buy, n),
        "trade_count": np.bincount(candle, None, n).astype(np.float64),
    }
    moved = np.zeros(price.shape[0], dtype=bool)
    moved[1:] = np.where(buy[1:], price[1:] > price[:-1], price[1:] < price[:-1])
    out["price_moving_volume"] = np.bincount(candle, amount * moved, n)
    if candle.shape[0]:  # the first trade has no previous price to move from
        out["price_moving_volume"][: candle[0] + 1] = np.nan
    begins = np.searchsorted(candle, np.arange(n + 1))
    large, clustered = _large_trades(amount, buy, tape["timestamp"], begins)
    out["large_buy_volume"] = np.bincount(candle, amount * (large & buy), n)
    out["large_sell_volume"] = np.bincount(candle, amount * (large & ~buy), n)
    out["large_trade_count"] = np.bincount(candle, large, n)
    out["clustered_large_trades"] = np.bincount(candle, clustered, n)
    for name in ("large_buy_volume", "large_sell_volume", "large_trade_count"):
        out[name][: min(SIZE_WINDOW, n)] = np.nan
    out["clustered_large_trades"][: min(SIZE_WINDOW + 1, n)] = np.nan
    closes = opens + step
    since_start = (closes - (opens[0] if n else 0)) / 1e6
    age = closes[candle] - tape["timestamp"]
    for tau in DECAY_SECONDS:
        weight = np.exp(-age / (tau * 1e6))
        for side, mask in (("buy", buy), ("sell", ~buy)):
            inflow = np.bincount(candle, amount * mask * weight, n)
            pressure = _decay(inflow, closes, tau * 1e6)
            pressure[since_start < _FORGET * tau] = np.nan
            out[f"{side}_pressure_{tau}s"] = pressure
    return out


@njit(cache=True, nogil=True)
def _decay(inflow: np.ndarray, closes: np.ndarray, tau: float) -> np.ndarray:
    """Return ``p[i] = p[i-1] * exp(-(close[i] - close[i-1]) / tau) + inflow[i]``."""
    out = np.empty(inflow.shape[0])
    level = 0.0
    for i in range(inflow.shape[0]):
        if i > 0:
            level *= math.exp(-(closes[i] - closes[i - 1]) / tau)
        level += inflow[i]
        out[i] = level
    return out


@njit(cache=True, nogil=True)
def _large_trades(
    amount: np.ndarray, buy: np.ndarray, stamps: np.ndarray, begins: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Flag trades above the size quantile of the previous SIZE_WINDOW candles' trades."""
    large = np.zeros(amount.shape[0], dtype=np.bool_)
    clustered = np.zeros(amount.shape[0], dtype=np.bool_)
    last_large = np.array([-1e300, -1e300])
    for i in range(SIZE_WINDOW, begins.shape[0] - 1):
        past = amount[begins[i - SIZE_WINDOW] : begins[i]].copy()
        if past.shape[0] == 0:
            continue
        pos = SIZE_QUANTILE * (past.shape[0] - 1)
        lo = int(pos)  # pos >= 0: truncation is the floor
        hi = min(lo + 1, past.shape[0] - 1)
        part = np.partition(past, hi)
        low_value = np.max(part[: lo + 1]) if hi > lo else part[lo]
        threshold = low_value + (part[hi] - low_value) * (pos - lo)
        for j in range(begins[i], begins[i + 1]):
            if amount[j] > threshold:
                large[j] = True
                side = 0 if buy[j] else 1
                clustered[j] = stamps[j] - last_large[side] <= CLUSTER_SECONDS * 1e6
                last_large[side] = stamps[j]
    return large, clustered


def _book_columns(
    book: pl.DataFrame, tape: dict[str, np.ndarray] | None, opens: np.ndarray, step: int
) -> dict[str, np.ndarray]:
    n = opens.shape[0]
    out = {name: np.full(n, np.nan) for name in (*BOOK_COLUMNS, *BOOK_TRADE_COLUMNS)}
    levels = _snapshot_levels(book)
    if levels.height == 0:
        return out
    snap_ts = levels.get_column("timestamp").unique(maintain_order=True).to_numpy()
    stats = _snapshot_stats(levels)
    asof = np.searchsorted(snap_ts, opens + step, side="left") - 1
    known = asof >= 0
    for name in ("best_bid", "best_ask", *BOOK_COLUMNS[2 : 2 + 2 * len(DEPTH_LEVELS)]):
        values = stats.get_column(name).to_numpy()
        out[name] = np.where(known, values[np.maximum(asof, 0)], np.nan)
    # Snapshot k (k >= 1) belongs to the candle that contains its timestamp.
    snap_candle = np.searchsorted(opens, snap_ts, side="right") - 1
    in_candle = (snap_candle >= 0) & (snap_ts < opens[np.maximum(snap_candle, 0)] + step)
    reach = _trade_reach(tape, snap_ts)
    changes = _level_changes(levels, stats, reach)
    for name, how in (("pulled_wall", np.maximum), ("appeared_wall", np.maximum)):
        out[name] = np.zeros(n)
        how.at(out[name], snap_candle[in_candle], changes[name][in_candle])
    out["cancelled_volume"] = np.bincount(
        snap_candle[in_candle], changes["cancelled_volume"][in_candle], n
    )
    if tape is not None:
        out.update(_iceberg(levels, tape, snap_ts, n))
    # Up to the candle of the first snapshot, changes and fills lack the book before them.
    unseen = max(int(snap_candle[0]) + 1, 0)
    for name in ("pulled_wall", "appeared_wall", "cancelled_volume", *BOOK_TRADE_COLUMNS):
        out[name][:unseen] = np.nan
    return out


def _snapshot_levels(book: pl.DataFrame) -> pl.DataFrame:
    """Return snapshot levels with a snapshot index ``k`` and a rank from the touch."""
    snaps = book.filter(pl.col("is_snapshot") & (pl.col("amount") > 0)).with_columns(
        pl.col("timestamp").cast(TIMESTAMP).dt.epoch("us").alias("timestamp"),
        pl.col("price").cast(pl.Float64),
        pl.col("amount").cast(pl.Float64),
    )
    signed = pl.when(pl.col("side") == "bid").then(-pl.col("price")).otherwise(pl.col("price"))
    return (
        snaps.sort(["timestamp", "side", signed])
        .with_columns(
            k=pl.col("timestamp").rank("dense").cast(pl.Int64) - 1,
            level=signed.rank("ordinal").over(["timestamp", "side"]),
        )
        .select("timestamp", "k", "side", "price", "amount", "level")
    )


def _snapshot_stats(levels: pl.DataFrame) -> pl.DataFrame:
    bid, ask = pl.col("side") == "bid", pl.col("side") == "ask"
    depth = []
    for k in DEPTH_LEVELS:
        depth.append(
            pl.col("amount").filter(bid & (pl.col("level") <= k)).sum().alias(f"bid_depth_{k}")
        )
        depth.append(
            pl.col("amount").filter(ask & (pl.col("level") <= k)).sum().alias(f"ask_depth_{k}")
        )
    return (
        levels.group_by("k")
        .agg(
            pl.col("price").filter(bid).max().alias("best_bid"),
            pl.col("price").filter(ask).min().alias("best_ask"),
            pl.col("price").filter(bid).min().alias("lowest_bid"),
            pl.col("price").filter(ask).max().alias("highest_ask"),
            pl.col("amount").median().alias("median_level"),
            *depth,
        )
        .sort("k")
        .with_columns(pl.exclude("k").cast(pl.Float64))
    )


def _trade_reach(tape: dict[str, np.ndarray] | None, snap_ts: np.ndarray) -> pl.DataFrame:
    """Return the lowest and highest trade price between snapshot ``k - 1`` and ``k``."""
    if tape is None or tape["price"].shape[0] == 0:
        return pl.DataFrame(
            schema={"k": pl.Int64, "low_trade": pl.Float64, "high_trade": pl.Float64}
        )
    k = np.searchsorted(snap_ts, tape["timestamp"], side="left")  # trade in (ts[k-1], ts[k]]
    return (
        pl.DataFrame({"k": k.astype(np.int64), "price": tape["price"]})
        .group_by("k")
        .agg(low_trade=pl.col("price").min(), high_trade=pl.col("price").max())
    )


def _level_changes(
    levels: pl.DataFrame, stats: pl.DataFrame, reach: pl.DataFrame
) -> dict[str, np.ndarray]:
    """Return, per snapshot ``k``, walls pulled/appeared since ``k - 1`` and cancelled volume."""
    now = levels.select("k", "side", "price", now="amount")
    before = levels.select(pl.col("k") + 1, "side", "price", before="amount")
    ranges = stats.select("k", "lowest_bid", "highest_ask", "median_level")
    previous = ranges.select(
        pl.col("k") + 1,
        prev_lowest_bid="lowest_bid",
        prev_highest_ask="highest_ask",
        prev_median="median_level",
    )
    bid = pl.col("side") == "bid"
    joined = (
        now.join(before, on=["k", "side", "price"], how="full", coalesce=True)
        .join(ranges, on="k", how="inner")
        .join(previous, on="k", how="inner")
        .join(reach, on="k", how="left")
        .with_columns(pl.col("now", "before").fill_null(0.0))
    )
    untouched = (
        pl.when(bid)
        .then(pl.col("low_trade").is_null() | (pl.col("low_trade") > pl.col("price")))
        .otherwise(pl.col("high_trade").is_null() | (pl.col("high_trade") < pl.col("price")))
    )
    still_visible = (
        pl.when(bid)
        .then(pl.col("price") >= pl.col("lowest_bid"))
        .otherwise(pl.col("price") <= pl.col("highest_ask"))
    )
    was_visible = (
        pl.when(bid)
        .then(pl.col("price") >= pl.col("prev_lowest_bid"))
        .otherwise(pl.col("price") <= pl.col("prev_highest_ask"))
    )
    decrease = (pl.col("before") - pl.col("now")).clip(lower_bound=0.0)
    pulled = still_visible & untouched
    appeared = was_visible & (pl.col("before") == 0.0)
    per_snapshot = joined.group_by("k").agg(
        pulled_wall=(decrease / pl.col("prev_median")).filter(pulled).max(),
        appeared_wall=(pl.col("now") / pl.col("median_level")).filter(appeared).max(),
        cancelled_volume=decrease.filter(still_visible & untouched).sum(),
    )
    count = stats.height
    full = pl.DataFrame({"k": np.arange(count, dtype=np.int64)}).join(
        per_snapshot, on="k", how="left"
    )
    return {
        name: full.get_column(name).cast(pl.Float64).fill_null(0.0).to_numpy()
        for name in ("pulled_wall", "appeared_wall", "cancelled_volume")
    }


def _iceberg(
    levels: pl.DataFrame, tape: dict[str, np.ndarray], snap_ts: np.ndarray, n: int
) -> dict[str, np.ndarray]:
    """Return executed volume beyond the visible size at the traded price, per candle."""
    seen = np.searchsorted(snap_ts, tape["timestamp"], side="left") - 1  # last snapshot < trade
    fills = pl.DataFrame(
        {
            "candle": tape["candle"],
            "k": seen.astype(np.int64),
            "side": np.where(tape["buy"], "ask", "bid"),
            "price": tape["price"],
            "amount": tape["amount"],
        }
    ).filter(pl.col("k") >= 0)
    groups = (
        fills.group_by("candle", "k", "side", "price")
        .agg(executed=pl.col("amount").sum())
        .join(levels.select("k", "side", "price", visible="amount"), on=["k", "side", "price"])
        .with_columns(
            excess=(pl.col("executed") - pl.col("visible")).clip(lower_bound=0.0),
            ratio=pl.col("executed") / pl.col("visible"),
        )
        .group_by("candle")
        .agg(pl.col("excess").sum(), pl.col("ratio").max())
    )
    candle = groups.get_column("candle").to_numpy()
    volume, ratio = np.zeros(n), np.zeros(n)
    volume[candle] = groups.get_column("excess").to_numpy()
    ratio[candle] = groups.get_column("ratio").to_numpy()
    return {"iceberg_volume": volume, "iceberg_ratio": ratio}

"""Benchmark the feature engine on 1M synthetic 1m candles, against TA-Lib in the same run.

Run: ``.venv/bin/python benchmarks/bench_features.py [--bars 1000000] [--live 3000]``

Measures (median of repeats): the full candle feature set (bars/s); a 12-feature reference
subset (log return, std 20, EMA 12/26, MACD + signal + histogram, RSI 14, ATR 14, ADX 14,
Bollinger %B 20, volume z-score 20) with our kernels and with TA-Lib (+ numpy for what TA-Lib
lacks); and the live update of the full set, one candle at a time (µs per candle, p50/p99).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import polars as pl

from tradebrain.features import CANDLE_SETS, LiveFeatureEngine, compute_features, list_features
from tradebrain.features._oscillator_kernels import macd_kernel
from tradebrain.features.indicators import directional_index, relative_strength
from tradebrain.features.rolling import log_returns, rolling_mean_std
from tradebrain.features.smoothing import true_range, wilder


def random_walk_candles(bars: int, seed: int = 42) -> pl.DataFrame:
    """Return the PERF_ANCHORS random walk: 1m bars, sigma 0.0008, lognormal volume."""
    rng = np.random.default_rng(seed)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, bars)))
    open_ = np.concatenate(([30_000.0], close[:-1]))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.0004, bars)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.0004, bars)))
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
    stamps = start + np.arange(bars, dtype=np.int64) * 60_000_000
    return pl.DataFrame(
        {
            "timestamp": pl.Series(stamps).cast(pl.Datetime("us", "UTC")),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.lognormal(2.0, 0.6, bars),
        }
    )


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Return the median wall time of ``repeats`` calls of ``run`` (after one warm-up call)."""
    run()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def output_floor(candles: pl.DataFrame, columns: int) -> np.ndarray:
    """Allocate and fill the full set's output block: the memory traffic any engine pays."""
    close = candles["close"].to_numpy()
    block = np.empty((columns, close.shape[0]))
    for row in block:
        np.divide(close, 3.0, out=row)
    return block


def reference_subset(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Compute the 12 reference features with tradebrain's kernels."""
    high, low, close, volume = c["high"], c["low"], c["close"], c["volume"]
    log_ret = log_returns(close)
    fast, slow, line, signal = macd_kernel(close, 12, 26, 9, 0)
    middle, std = rolling_mean_std(close, 20, 0, 0)
    vol_mean, vol_std = rolling_mean_std(volume, 20, 0, 0)
    return {
        "logret": log_ret,
        "std20": rolling_mean_std(log_ret, 20, 0, 0)[1],
        "ema12": fast,
        "ema26": slow,
        "macd": line,
        "signal": signal,
        "hist": line - signal,
        "rsi14": relative_strength(close, 14, 0),
        "atr14": wilder(true_range(high, low, close), 14, 0),
        "adx14": directional_index(high, low, close, 14, 0)[2],
        "pctb20": (close - middle + 2.0 * std) / (4.0 * std),
        "volz20": (volume - vol_mean) / vol_std,
    }


def talib_subset(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Compute the 12 reference features with TA-Lib (+ numpy for log return and z-score)."""
    import talib

    high, low, close, volume = c["high"], c["low"], c["close"], c["volume"]
    log_ret = np.empty_like(close)
    log_ret[0] = np.nan
    np.log(close[1:] / close[:-1], out=log_ret[1:])
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, _, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    return {
        "logret": log_ret,
        "std20": talib.STDDEV(log_ret, 20, 1.0),
        "ema12": talib.EMA(close, 12),
        "ema26": talib.EMA(close, 26),
        "macd": macd,
        "signal": signal,
        "hist": hist,
        "rsi14": talib.RSI(close, 14),
        "atr14": talib.ATR(high, low, close, 14),
        "adx14": talib.ADX(high, low, close, 14),
        "pctb20": (close - lower) / (upper - lower),
        "volz20": (volume - talib.SMA(volume, 20)) / talib.STDDEV(volume, 20, 1.0),
    }


def worst_difference(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> str:
    """Return the largest max|a-b|/mean|b| over bars >= 1000, with the column's name."""
    worst, name = 0.0, ""
    for key, expected in theirs.items():
        a, b = ours[key][1000:], expected[1000:]
        error = float(np.nanmax(np.abs(a - b)) / np.nanmean(np.abs(b)))
        if error > worst:
            worst, name = error, key
    return f"{worst:.1e} ({name})"


def live_latencies(candles: pl.DataFrame, count: int) -> np.ndarray:
    """Feed ``count`` candles through a warmed live engine; return µs per update."""
    engine = LiveFeatureEngine(CANDLE_SETS)
    history = candles.head(engine.tail_length + 100)
    engine.warm_up(history)
    rows = candles.slice(history.height, count).to_dicts()
    for row in rows[:50]:
        engine.update(row)
    latencies = np.empty(len(rows) - 50)
    for i, row in enumerate(rows[50:]):
        began = time.perf_counter_ns()
        engine.update(row)
        latencies[i] = (time.perf_counter_ns() - began) / 1000.0
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=3_000, help="candles for the live update")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    candles = random_walk_candles(args.bars)
    columns = {k: candles[k].to_numpy() for k in ("open", "high", "low", "close", "volume")}
    feature_count = len(list_features(CANDLE_SETS))
    print(f"candles: {args.bars:,} synthetic 1m bars; features: {feature_count}")

    full = median_seconds(lambda: compute_features(candles, CANDLE_SETS), args.repeats)
    floor = median_seconds(lambda: output_floor(candles, feature_count), args.repeats)
    print(f"full set ({feature_count} features): {full:.3f} s = {args.bars / full:,.0f} bars/s")
    print(
        f"floor, write {feature_count} float64 columns into a new block: {floor:.3f} s = "
        f"{args.bars / floor:,.0f} bars/s; full set / floor: {full / floor:.1f}x"
    )

    ours = median_seconds(lambda: reference_subset(columns), args.repeats)
    try:
        theirs = median_seconds(lambda: talib_subset(columns), args.repeats)
    except ImportError:
        theirs = float("nan")
        print("TA-Lib not installed (pip install ta-lib): no reference")
    print(f"12-feature subset, tradebrain: {ours:.4f} s = {args.bars / ours:,.0f} bars/s")
    if theirs == theirs:
        print(f"12-feature subset, TA-Lib:     {theirs:.4f} s = {args.bars / theirs:,.0f} bars/s")
        print(f"speed vs TA-Lib: {theirs / ours:.2f}x (>1 is faster)")
        diff = worst_difference(reference_subset(columns), talib_subset(columns))
        print(f"max |ours - TA-Lib| / mean |TA-Lib| after bar 1000: {diff}")

    latencies = live_latencies(candles, args.live)
    p50, p99 = np.percentile(latencies, [50, 99])
    print(
        f"live update, full set: p50 {p50:.0f} µs, p99 {p99:.0f} µs per candle "
        f"({len(latencies)} candles); goal 1000 µs"
    )
    print(
        f"full set vs the 12-feature subset per feature: {full / feature_count / (ours / 12):.2f}x"
    )


if __name__ == "__main__":
    main()

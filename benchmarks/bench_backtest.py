"""Benchmark the backtest engine against backtesting.py on the same 100k candles.

Run: ``.venv/bin/python benchmarks/bench_backtest.py [--bars 100000] [--repeats 5]``

Measures (median of repeats, after one warm-up call that also compiles the numba kernels):

- ``sma_cross`` 10/50, long-only, all-in, 0.1 % fee per side, fills at the next open, through
  ``run_backtest`` (the array fast path: SMAs, signals, simulation, trade records) and through
  the event loop (``path="events"``), against backtesting.py's ``FractionalBacktest`` with the
  same strategy (time includes its ``run``); trade counts are checked to agree;
- a precomputed-signal strategy (a stand-in for ``hybrid`` with predictions computed
  beforehand: long / flat / short targets from a noisy score) on a perp, through the event
  loop (what ``hybrid`` will use: a Python call per candle, risk on every intent) and through
  the fast path;
- ``hybrid`` with precomputed features and votes (random probabilities for every default
  model, features computed beforehand, both outside the timing) through the real
  :class:`~tradebrain.brain.brain.Brain` and :class:`~tradebrain.risk.manager.RiskManager`
  in the event loop, with the seconds its ``Brain.decide`` calls took on their own (what
  bounds it; ``--hybrid-bars`` limits its candles, 0 skips it).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
import polars as pl

from tradebrain.engine.backtest import BacktestConfig, run_backtest
from tradebrain.engine.engine import EngineResult
from tradebrain.engine.strategies import PrecomputedSignals, SmaCross, window_means
from tradebrain.execution.costs import FlatCosts
from tradebrain.risk.market import MarketType

T = TypeVar("T")


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


def timed(call: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Return the median seconds of ``repeats`` calls (after one warm-up) and the last result."""
    result = call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def peer_sma_cross(candles: pl.DataFrame) -> Callable[[], Any]:
    """Return a call that runs backtesting.py's FractionalBacktest on the same strategy."""
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

    frame = (
        candles.to_pandas()
        .set_index("timestamp")
        .rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    )

    def sma(values: np.ndarray, n: int) -> np.ndarray:
        return window_means(np.asarray(values, dtype=np.float64), n)

    class PeerSmaCross(Strategy):
        def init(self) -> None:
            self.fast_sma = self.I(sma, self.data.Close, 10)
            self.slow_sma = self.I(sma, self.data.Close, 50)

        def next(self) -> None:
            if crossover(self.fast_sma, self.slow_sma):
                self.buy(size=0.999)
            elif crossover(self.slow_sma, self.fast_sma):
                self.position.close()

    def run() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = FractionalBacktest(
                frame, PeerSmaCross, cash=1e12, commission=0.001, trade_on_close=False
            )
            return test.run()["_trades"]

    return run


def hybrid_run(
    candles: pl.DataFrame, seed: int = 11
) -> tuple[Callable[[], EngineResult], list[float]]:
    """Return a call that runs ``hybrid`` with precomputed signals, and its decide timings.

    Features come from :func:`~tradebrain.features.compute_features` and each default model
    votes random (p_down, p_flat, p_up) rows; both are built here, before any timing. The
    returned list collects, per run, the seconds spent inside ``Brain.decide``.
    """
    from tradebrain.brain.decision import Decision
    from tradebrain.engine.hybrid import HybridSignals, HybridStrategy
    from tradebrain.engine.walk_forward_backtest import HybridConfig
    from tradebrain.features import compute_features
    from tradebrain.risk.manager import RiskManager

    config = HybridConfig()
    features = compute_features(candles, list(config.feature_sets))
    rng = np.random.default_rng(seed)
    votes = {name: rng.dirichlet(np.ones(3), candles.height) for name in config.models}
    signals = HybridSignals.from_tables(features, votes)
    spot = BacktestConfig(costs=FlatCosts(0.001, 0.0), path="events")
    decide_seconds: list[float] = []

    def run() -> EngineResult:
        strategy = HybridStrategy(signals)
        brain = strategy.brain
        decide = brain.decide
        spent = [0.0]

        def timed_decide(*args: Any, **kwargs: Any) -> Decision:
            start = time.perf_counter()
            try:
                return decide(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        brain.decide = timed_decide  # type: ignore[method-assign]
        result = run_backtest(
            candles, strategy, spot, symbol="BTC/USDT", timeframe="1m", risk=RiskManager()
        )
        decide_seconds.append(spent[0])
        return result

    return run, decide_seconds


def main() -> None:
    """Run the benchmark and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peer-repeats", type=int, default=2)
    parser.add_argument("--hybrid-bars", type=int, default=20_000)
    args = parser.parse_args()
    candles = random_walk_candles(args.bars)
    n = candles.height
    spot = BacktestConfig(costs=FlatCosts(0.001, 0.0))

    def ours(path: str, strategy: Callable[[], object], config: BacktestConfig) -> EngineResult:
        run_config = BacktestConfig(**{**config.__dict__, "path": path})
        return run_backtest(candles, strategy(), run_config, symbol="BTC/USDT", timeframe="1m")  # type: ignore[arg-type]

    rows: list[tuple[str, float, int]] = []
    hybrid_bars = 0
    fast_s, fast = timed(lambda: ours("auto", lambda: SmaCross(10, 50), spot), args.repeats)
    events_s, events = timed(lambda: ours("events", lambda: SmaCross(10, 50), spot), args.repeats)
    rows.append(("sma_cross, engine fast path", fast_s, len(fast.trades)))
    rows.append(("sma_cross, engine event loop", events_s, len(events.trades)))
    try:
        peer_s, peer = timed(peer_sma_cross(candles), args.peer_repeats)
        rows.append(("sma_cross, backtesting.py Fractional", peer_s, len(peer)))
    except ImportError:
        peer_s = float("nan")
        print("backtesting.py is not installed: pip install backtesting")

    rng = np.random.default_rng(7)
    score = window_means(rng.normal(0.0, 1.0, n), 20)
    targets = np.where(score > 0.15, 1.0, np.where(score < -0.15, -1.0, 0.0))
    targets[np.isnan(score)] = np.nan
    perp = BacktestConfig(costs=FlatCosts(0.0005, 1.0), market=MarketType.PERP)
    signal_events_s, signal_events = timed(
        lambda: ours("events", lambda: PrecomputedSignals(targets), perp), args.repeats
    )
    signal_fast_s, signal_fast = timed(
        lambda: ours("auto", lambda: PrecomputedSignals(targets), perp), args.repeats
    )
    rows.append(
        ("precomputed signals (perp), event loop", signal_events_s, len(signal_events.trades))
    )
    rows.append(("precomputed signals (perp), fast path", signal_fast_s, len(signal_fast.trades)))

    hybrid_line = ""
    if args.hybrid_bars > 0:
        hybrid_candles = candles.head(args.hybrid_bars)
        hybrid_call, decide_seconds = hybrid_run(hybrid_candles)
        hybrid_s, hybrid = timed(hybrid_call, 1)
        bars = hybrid_bars = hybrid_candles.height
        decide_s = decide_seconds[-1]
        rows.append(
            (
                f"hybrid, precomputed votes, Brain + RiskManager [{bars:,}]",
                hybrid_s,
                len(hybrid.trades),
            ),
        )
        rest_us = (hybrid_s - decide_s) / bars * 1e6
        hybrid_line = (
            f"hybrid: {bars / hybrid_s / 1e3:,.1f}k candles/s over {bars:,} candles; "
            f"Brain.decide {decide_s / hybrid_s:.0%} of the time ({decide_s / bars * 1e6:,.1f} us "
            f"per candle), the rest (engine, risk, broker) {rest_us:,.1f} us per candle"
        )

    print(f"{n:,} candles; median seconds; candles/s")
    print(f"{'run':56} {'seconds':>9} {'candles/s':>12} {'trades':>7}")
    for name, seconds, trades in rows:
        bars = hybrid_bars if name.startswith("hybrid") else n
        print(f"{name:56} {seconds:9.4f} {bars / seconds:12,.0f} {trades:7d}")
    print(f"engine fast path vs backtesting.py: {peer_s / fast_s:,.1f}x faster (goal >= 10x)")
    print(f"engine event loop vs backtesting.py: {peer_s / events_s:,.1f}x faster")
    print(f"sma_cross through the engine: {n / fast_s / 1e6:.2f}M candles/s (goal >= 1M/s)")
    print(
        f"precomputed signals: event loop {n / signal_events_s / 1e3:,.0f}k candles/s, "
        f"fast path {n / signal_fast_s / 1e6:.2f}M candles/s (goal >= 200k/s)"
    )
    if hybrid_line:
        print(hybrid_line)


if __name__ == "__main__":
    main()

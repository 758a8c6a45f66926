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
- ``hybrid`` with precomputed features and votes through the full engine (``Engine`` +
  ``SimulatedBroker`` + :class:`~tradebrain.risk.manager.RiskManager`, event loop), twice on
  the same candles: with the Python :class:`~tradebrain.brain.brain.Brain` asked on every
  candle (``HybridStrategy``; timed once, with the seconds its ``Brain.decide`` calls took on
  their own) and with the compiled brain (``FastHybridStrategy``: every decision in one numba
  pass in ``init``, then a look-up per candle; median of ``--repeats``). Its market is the
  synthetic one with a planted signal (``SyntheticConfig(signal=0.3)``, 1h candles, seed 11;
  ``--hybrid-bars`` candles, 0 skips it), features ``atomic``, ``indicators`` and ``regime``,
  and the votes of two noisy oracles (``logistic``, ``lightgbm``): a logistic of the planted
  component known at each close (``oracle_expected_return``, causal) plus Gaussian noise of
  0.3 and 0.5 of its standard deviation, no vote on the first 300 candles. Features and votes
  are built before any timing.
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

from tradebrain.core.market import MarketType
from tradebrain.engine.backtest import BacktestConfig, run_backtest
from tradebrain.engine.engine import EngineResult
from tradebrain.execution.costs import FlatCosts
from tradebrain.strategies.builtin import PrecomputedSignals, SmaCross, window_means

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


def hybrid_market(bars: int, seed: int = 11) -> tuple[pl.DataFrame, Any]:
    """Return the planted-signal candles and their precomputed :class:`HybridSignals`.

    Votes: for each of ``logistic`` and ``lightgbm``, ``p_up = sigmoid(1.5 * (m / sd(m) +
    noise))`` with ``m`` the oracle's expected next return (a function of closes up to ``t``)
    and Gaussian noise of 0.3 and 0.5; ``(p_down, p_flat, p_up) = (0.8 (1 - p_up), 0.2,
    0.8 p_up)``; NaN (no vote) on the first 300 candles.
    """
    from tradebrain.data.synthetic import SyntheticConfig, generate_market
    from tradebrain.features import compute_features
    from tradebrain.strategies.hybrid import HybridSignals

    market = generate_market(SyntheticConfig(bars=bars, timeframe="1h", signal=0.3, seed=seed))
    features = compute_features(market.candles, ["atomic", "indicators", "regime"])
    expected = market.regimes["oracle_expected_return"].to_numpy()
    rng = np.random.default_rng(seed)
    votes = {}
    for name, noise in (("logistic", 0.3), ("lightgbm", 0.5)):
        score = expected / np.std(expected) + rng.normal(0.0, noise, bars)
        up = 1.0 / (1.0 + np.exp(-1.5 * score))
        proba = np.stack([0.8 * (1.0 - up), np.full(bars, 0.2), 0.8 * up], axis=1)
        proba[:300] = np.nan
        votes[name] = proba
    return market.candles, HybridSignals.from_tables(features, votes)


def hybrid_run(
    candles: pl.DataFrame, signals: Any, fast: bool
) -> tuple[Callable[[], EngineResult], list[float]]:
    """Return a call that runs ``hybrid`` through the full engine, and its decide timings.

    ``fast`` picks :class:`FastHybridStrategy` (compiled brain) over :class:`HybridStrategy`
    (the Python brain, whose ``Brain.decide`` seconds the returned list collects per run).
    """
    from tradebrain.brain.decision import Decision
    from tradebrain.research.hybrid_request import HybridRequest

    spot = BacktestConfig(costs=FlatCosts(0.001, 0.0), path="events")
    # Default brain and risk settings: the request's own defaults.
    request = HybridRequest(candles, "BTC/USDT", "1h", backtest=spot)
    decide_seconds: list[float] = []

    def run() -> EngineResult:
        if fast:
            return request.replay(request.strategy(signals))
        strategy = request.strategy(signals, compiled=False)
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
        result = request.replay(strategy)
        decide_seconds.append(spent[0])
        return result

    return run, decide_seconds


def same_trades(a: EngineResult, b: EngineResult) -> bool:
    """Return whether two runs made the same trades and the same equity curve."""

    def key(result: EngineResult) -> list[tuple[Any, ...]]:
        return [
            (t.entry_time, t.exit_time, t.entry_price, t.exit_price, t.quantity)
            for t in result.trades
        ]

    return key(a) == key(b) and bool(np.array_equal(a.equity, b.equity))


def main() -> None:
    """Run the benchmark and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peer-repeats", type=int, default=2)
    parser.add_argument("--hybrid-bars", type=int, default=100_000)
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

    hybrid_lines: list[str] = []
    if args.hybrid_bars > 0:
        hybrid_candles, signals = hybrid_market(args.hybrid_bars)
        bars = hybrid_bars = hybrid_candles.height
        python_call, decide_seconds = hybrid_run(hybrid_candles, signals, fast=False)
        fast_call, _ = hybrid_run(hybrid_candles, signals, fast=True)
        fast_hybrid_s, fast_hybrid = timed(fast_call, args.repeats)
        start = time.perf_counter()
        python = python_call()  # once: about 20 s per 100k candles, nothing left to warm up
        python_s = time.perf_counter() - start
        decide_s = decide_seconds[-1]
        rows.append((f"hybrid, Python brain + risk [{bars:,}]", python_s, len(python.trades)))
        rows.append(
            (f"hybrid, compiled brain + risk [{bars:,}]", fast_hybrid_s, len(fast_hybrid.trades))
        )
        rest_us = (python_s - decide_s) / bars * 1e6
        hybrid_lines = [
            f"hybrid, Python brain: {bars / python_s / 1e3:,.1f}k candles/s; Brain.decide "
            f"{decide_s / python_s:.0%} of the time ({decide_s / bars * 1e6:,.1f} us per candle), "
            f"the rest (engine, risk, broker) {rest_us:,.1f} us per candle",
            f"hybrid, compiled brain: {bars / fast_hybrid_s / 1e3:,.1f}k candles/s "
            f"(goal >= 200k/s), {python_s / fast_hybrid_s:,.1f}x the Python brain; same trades "
            f"and equity: {same_trades(python, fast_hybrid)}",
        ]

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
    for line in hybrid_lines:
        print(line)


if __name__ == "__main__":
    main()

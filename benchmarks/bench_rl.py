"""Benchmark: do the RL agents earn their place? Seed spread against the plain rules, per world.

Run: ``.venv/bin/python benchmarks/bench_rl.py [--bars 12000] [--seeds 5] [--steps 1000]
[--blocks 3] [--time-bars 20000]``

On planted worlds of two structures (a persistent ``trend`` and a mean-reverting ``revert``
drift) and a ``null`` world (no edge), with the default settings (0.1 % fee per side, 1 bp
slippage), :func:`tradebrain.research.rl_comparison.compare_agents` trains each agent with
every seed walk-forward (on the out-of-sample blocks before the block it is evaluated on) and
evaluates it after costs beside the plain rule (the brain's own target) and a fixed-fraction
rule. The table shows the median and the spread over seeds (never the best seed) of the
out-of-sample log return, Sharpe (per bar) and trades, the deflated Sharpe of the median seed
(every configuration a trial), and whether the agent earned its place on that world.
``--time-bars`` times the training of all three agents once on that many candles.

``--ablation`` adds the agents' ablation rows per world: each agent is trained (seed 0) on the
first half of the out-of-sample candles (``train_on_signals(share=0.5)``, as ``tradebrain rl
train --share 0.5``) and toggled as a part by :func:`tradebrain.research.ablation.run_ablation`,
which judges it only on the candles after its training; the row is what it adds to the
after-cost log return there.
"""

from __future__ import annotations

import argparse
import statistics
import time

from tradebrain.config import Settings
from tradebrain.data.planted_edge import EdgeKind
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.research.ablation import run_ablation
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.research.rl_comparison import (
    AGENTS,
    RULES,
    Comparison,
    compare_agents,
    psr,
    train_on_signals,
)
from tradebrain.research.walk_forward_backtest import hybrid_signals
from tradebrain.rl.agents import NothingToLearnError

WORLDS: dict[str, tuple[EdgeKind, float]] = {
    "trend": ("trend", 0.08),
    "revert": ("revert", 0.08),
    "null": ("trend", 0.0),
}


def _request(bars: int, edge: EdgeKind, signal: float, seed: int) -> tuple[HybridRequest, Settings]:
    settings = Settings()
    market = generate_market(
        SyntheticConfig(bars=bars, timeframe="1h", seed=seed, signal=signal, edge=edge)
    )
    request = HybridRequest.from_settings(
        settings, market.candles, symbol="SYN/USDT", timeframe="1h"
    )
    return request, settings


def _table(comparison: Comparison) -> None:
    print(f"\n{comparison.world}: {comparison.trials} configurations (trials for the DSR)")
    print(
        f"  {'policy':<15} {'log return: median [min, max]':<34} {'Sharpe/bar median':>17} "
        f"{'trades median':>13} {'PSR':>6} {'DSR':>6}  earned"
    )
    for policy in (*RULES, *AGENTS):
        scores = comparison.of(policy)
        if not scores:
            continue
        returns = [s.log_return for s in scores]
        median = statistics.median(returns)
        middle = min(scores, key=lambda s: abs(s.log_return - median))
        earned = "" if policy in RULES else ("yes" if comparison.earned(policy) else "no")
        print(
            f"  {policy:<15} {median:+.4f} [{min(returns):+.4f}, {max(returns):+.4f}]"
            f"{'':<8} {comparison.median(policy):>+17.4f} "
            f"{statistics.median(s.trades for s in scores):>13.0f} {psr(middle):>6.3f} "
            f"{comparison.dsr(middle):>6.3f}  {earned}"
        )


def _ablation(world: str, request: HybridRequest, settings: Settings, steps: int) -> None:
    """Train each agent on the first half of the out-of-sample candles; print its ablation row."""
    signals, _ = hybrid_signals(request)
    agents = {}
    for name in AGENTS:
        try:
            agents[name] = train_on_signals(request, settings, signals, name, 0, steps, share=0.5)
        except NothingToLearnError as error:
            print(f"\n{world}: {name}: {error}")
    if not agents:
        return
    result = run_ablation(request, agents=agents)
    full = result.full
    print(f"\n{world}: ablation rows of the agents (configured system: log return "
          f"{full['log_return']:+.4f}, {full['n_trades']:.0f} trades)")  # fmt: skip
    print(f"  {'part':<14} {'judged candles':>14} {'log return':>11} {'worth':>9} "
          f"{'trades':>7} {'Sharpe':>7}")  # fmt: skip
    for row in result.rows:
        if not row.layer.startswith("rl:"):
            continue
        metrics = row.metrics
        if row.worth is None:
            print(f"  {row.layer:<14} {row.note}")
            continue
        print(
            f"  {row.layer:<14} {row.judged_candles or 0:>14,} "
            f"{metrics['log_return'] or 0:>+11.4f} "
            f"{row.worth:>+9.4f} {metrics['n_trades'] or 0:>7.0f} {metrics['sharpe'] or 0:>7.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=12_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--time-bars", type=int, default=20_000)
    parser.add_argument("--worlds", default=",".join(WORLDS))
    parser.add_argument(
        "--ablation", action="store_true", help="also the agents' ablation rows per world"
    )
    parser.add_argument("--no-table", action="store_true", help="skip the seed-spread table")
    arguments = parser.parse_args()
    seeds = tuple(range(arguments.seeds))
    if arguments.time_bars:
        request, settings = _request(arguments.time_bars, "trend", 0.08, 1)
        signals, _ = hybrid_signals(request)
        started = time.perf_counter()
        comparison = compare_agents(
            request, settings, world="timing", seeds=(0,), blocks=2, steps=arguments.steps,
            signals=signals,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        trained = sum(s.train_seconds for s in comparison.scores if s.policy in AGENTS)
        print(
            f"training all three agents once on {arguments.time_bars:,} candles "
            f"({arguments.steps} steps each, the first half of the out-of-sample span): "
            f"{trained:.0f} s with their evaluation ({seconds:.0f} s in all); bar 600 s"
        )
    for world in arguments.worlds.split(","):
        edge, signal = WORLDS[world]
        request, settings = _request(arguments.bars, edge, signal, 7)
        if arguments.ablation:
            _ablation(world, request, settings, arguments.steps)
        if arguments.no_table:
            continue
        started = time.perf_counter()
        comparison = compare_agents(
            request, settings, world=world, seeds=seeds, blocks=arguments.blocks,
            steps=arguments.steps, progress=print,
        )  # fmt: skip
        _table(comparison)
        print(f"  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

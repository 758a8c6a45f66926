"""Edge to money: how much of a planted, persistent edge the hybrid keeps after costs.

For each planted kind (``trend``: defaults were chosen on it; ``revert``: never looked at while
choosing them) and each seed, a 20,000-candle 1h synthetic world is generated and the hybrid
strategy is backtested with the **default settings** (walk-forward retraining, 0.1 % fee per
side + 1 bp slippage), spot (long-only) and perp (long-short, no funding). Beside each run the
oracle strategy trades the known drift on the same candles at the same costs; the capture ratio
is the hybrid's after-cost log return over the oracle's. Null worlds (no edge) show what the
hybrid does when there is nothing to find. Timings: a 20,000-candle hybrid backtest, and a
100,000-candle 5m one (time, peak memory, progress lines).

**The statistical ceiling.** The oracle's own record is short and noisy: over the ~16,000
traded candles its annualised Sharpe ratio is 1.2-4.3, so even a strategy with the oracle's risk
and *half* its return has a probabilistic Sharpe ratio (PSR) of only ``Φ(SR/2 · √years)``.
``--ceiling`` prints, per world, the oracle's result, its PSR and that "PSR at half the oracle"
(normal returns assumed): where it is below 0.95, keeping 50 % of the oracle with PSR ≥ 0.95
needs less risk per unit of return than the oracle itself takes (it runs in seconds: no hybrid).

Run: ``.venv/bin/python benchmarks/bench_edge_to_money.py [--seeds 3] [--quick] [--ceiling]``,
and the 5m timing alone (its peak memory is then its own): ``... --only-5m``.
Figures are printed as a table and written to ``benchmarks/results/edge_to_money.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any

from tradebrain.config import Settings
from tradebrain.core.market import MarketType
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.evaluation.oracle import oracle_strategy
from tradebrain.evaluation.statistics import probabilistic_sharpe_ratio
from tradebrain.research.hybrid_request import HybridRequest, backtest_config
from tradebrain.research.walk_forward_backtest import hybrid_backtest_report

SIGNAL = 0.08
HALF_LIFE = 48
BARS = 20_000
OUT = Path(__file__).parent / "results" / "edge_to_money.json"


def backtest(
    kind: str, seed: int, signal: float, markets: tuple[str, ...], settings: Settings
) -> list[dict[str, Any]]:
    """Run the default hybrid on one world, on each market; return one row per market."""
    world = SyntheticConfig(bars=BARS, seed=seed, signal=signal, edge=kind, half_life=HALF_LIFE)
    market = generate_market(world)
    planted = market.regimes["oracle_expected_return"].to_numpy()
    rows = []
    for name in markets:
        request = HybridRequest.from_settings(
            settings, market.candles, symbol=f"{kind}-{seed}", timeframe="1h",
            backtest=backtest_config(settings, market=MarketType(name)),
        )  # fmt: skip
        started = time.perf_counter()
        run = hybrid_backtest_report(request, planted=planted if signal else None)
        seconds = time.perf_counter() - started
        metrics, oracle = run.report["metrics"], run.report.get("oracle") or {}
        equity = run.result.equity
        start = request.hybrid.min_train
        rows.append(
            {
                "kind": kind if signal else "null",
                "seed": seed,
                "market": name,
                "hybrid_log_return": math.log(float(equity[-1]) / float(equity[start - 1])),
                "oracle_log_return": (oracle.get("strategy") or {}).get("log_return"),
                "capture_ratio": oracle.get("capture_ratio"),
                "psr": metrics["psr"],
                "sharpe": metrics["sharpe"],
                "total_return": metrics["total_return"],
                "max_drawdown": metrics["max_drawdown"],
                "trades": metrics["n_trades"],
                "exposure": metrics["exposure"],
                "buy_and_hold": run.report["benchmark"]["total_return"],
                "seconds": seconds,
            }
        )
        print(_line(rows[-1]), flush=True)
    return rows


def ceiling(kind: str, seed: int, settings: Settings) -> list[dict[str, Any]]:
    """Return the oracle strategy's record per market, its PSR and the PSR at half its return.

    "PSR at half" is the probabilistic Sharpe ratio of a strategy with the oracle's volatility
    and half its mean return over the same candles (normal returns assumed): the best a
    strategy that keeps 50 % of the oracle at the oracle's risk can show.
    """
    world = SyntheticConfig(bars=BARS, seed=seed, signal=SIGNAL, edge=kind, half_life=HALF_LIFE)
    market = generate_market(world)
    planted = market.regimes["oracle_expected_return"].to_numpy()
    execution = settings.execution
    per_year = 24 * 365
    rows = []
    for name in ("spot", "perp"):
        oracle = oracle_strategy(
            market.candles["close"].to_numpy(), planted, fee=execution.taker_fee,
            slippage_bps=execution.slippage_bps, long_short=name == "perp", timeframe="1h",
            start=settings.learning.min_train_bars,
        )  # fmt: skip
        sharpe = oracle.sharpe / math.sqrt(per_year)  # per candle
        rows.append(
            {
                "kind": kind,
                "seed": seed,
                "market": name,
                "oracle_log_return": oracle.log_return,
                "oracle_sharpe": oracle.sharpe,
                "oracle_psr": probabilistic_sharpe_ratio(sharpe, oracle.candles),
                "psr_at_half": probabilistic_sharpe_ratio(sharpe / 2, oracle.candles),
            }
        )
        row = rows[-1]
        print(
            f"{kind:>6} seed {seed} {name:>4}: oracle {row['oracle_log_return']:+.2f} log, "
            f"Sharpe {row['oracle_sharpe']:.2f}, PSR {row['oracle_psr']:.3f}; "
            f"PSR at half the oracle {row['psr_at_half']:.3f}",
            flush=True,
        )
    return rows


def timing_5m(settings: Settings, bars: int) -> dict[str, Any]:
    """Time a hybrid backtest of ``bars`` 5m candles; report peak memory and progress lines."""
    market = generate_market(SyntheticConfig(bars=bars, timeframe="5m", seed=3, signal=SIGNAL,
                                             edge="trend", half_life=HALF_LIFE))  # fmt: skip
    lines: list[str] = []
    started = time.perf_counter()

    def progress(text: str) -> None:
        lines.append(f"{time.perf_counter() - started:6.1f}s {text}")
        print("   ", lines[-1], flush=True)

    request = HybridRequest.from_settings(settings, market.candles, symbol="SYN-5m", timeframe="5m")
    hybrid_backtest_report(request, progress=progress)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"bars": bars, "seconds": seconds, "peak_rss_mb": peak_mb, "progress": lines}


def _line(row: dict[str, Any]) -> str:
    capture = row["capture_ratio"]
    oracle = row["oracle_log_return"]
    return (
        f"{row['kind']:>6} seed {row['seed']} {row['market']:>4}: hybrid "
        f"{row['hybrid_log_return']:+.3f}"
        + (f" oracle {oracle:+.3f} capture {capture:5.0%}" if capture is not None else "")
        + f"  PSR {row['psr'] or 0:.3f} trades {row['trades']:4d} "
        f"B&H {row['buy_and_hold']:+.0%} ({row['seconds']:.1f}s)"
    )


def pooled(rows: list[dict[str, Any]], kind: str, market: str) -> dict[str, Any]:
    """Sum of the hybrid's log returns over the sum of the oracle's, and the per-seed range."""
    chosen = [r for r in rows if r["kind"] == kind and r["market"] == market]
    ours = sum(r["hybrid_log_return"] for r in chosen)
    best = sum(r["oracle_log_return"] for r in chosen)
    captures = [r["capture_ratio"] for r in chosen]
    return {
        "kind": kind,
        "market": market,
        "seeds": len(chosen),
        "pooled_capture": ours / best if best > 0 else None,
        "min_capture": min(captures),
        "max_capture": max(captures),
        "min_psr": min(r["psr"] or 0.0 for r in chosen),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--bars-5m", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="one seed, no 5m timing")
    parser.add_argument(
        "--ceiling", action="store_true",
        help="only the oracle's record and the PSR a 50 %% capture could show (seconds)",
    )  # fmt: skip
    parser.add_argument(
        "--only-5m", action="store_true",
        help="only the 5m timing (run it alone: peak memory is the process's own)",
    )  # fmt: skip
    args = parser.parse_args()
    seeds = range(1, 2 if args.quick else args.seeds + 1)
    settings = Settings()
    if args.only_5m:
        print(f"{args.bars_5m:,} 5m candles:")
        result = timing_5m(settings, args.bars_5m)
        print(f"  {result['seconds']:.0f} s, peak memory {result['peak_rss_mb']:.0f} MB")
        OUT.parent.mkdir(exist_ok=True)
        OUT.with_name("edge_to_money_5m.json").write_text(json.dumps(result, indent=2))
        return
    if args.ceiling:
        found = [
            r for k in ("trend", "revert") for seed in seeds for r in ceiling(k, seed, settings)
        ]
        short = [r for r in found if r["psr_at_half"] < 0.95]
        print(
            f"{len(short)} of {len(found)} worlds: half the oracle's return at its risk "
            "stays below PSR 0.95"
        )
        OUT.parent.mkdir(exist_ok=True)
        OUT.with_name("edge_to_money_ceiling.json").write_text(json.dumps(found, indent=2))
        return
    rows: list[dict[str, Any]] = []
    for kind in ("trend", "revert"):
        for seed in seeds:
            rows += backtest(kind, seed, SIGNAL, ("spot", "perp"), settings)
    for seed in range(1, 2 * len(seeds) + 1):  # twice as many null worlds: false alarms are rare
        rows += backtest("trend", 100 + seed, 0.0, ("spot", "perp"), settings)
    summary = [pooled(rows, kind, m) for kind in ("trend", "revert") for m in ("spot", "perp")]
    print("\npooled capture (sum of hybrid log returns / sum of oracle log returns):")
    for s in summary:
        print(
            f"  {s['kind']:>6} {s['market']:>4}: pooled {s['pooled_capture']:.0%}, "
            f"per seed {s['min_capture']:.0%}..{s['max_capture']:.0%}, min PSR {s['min_psr']:.3f}"
        )
    null = [r for r in rows if r["kind"] == "null"]
    print(
        "null worlds: worst total return "
        f"{min(r['total_return'] for r in null):+.2%}, most trades {max(r['trades'] for r in null)}"
    )
    timing = {"20k_1h_seconds": [r["seconds"] for r in rows]}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"rows": rows, "summary": summary, "timing": timing}, indent=2))
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()

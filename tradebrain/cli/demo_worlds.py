"""The demo's second half: the whole pipeline on a planted world and a null world, side by side.

In the planted world the synthetic market carries a weak predictable component whose best
possible accuracy (the oracle) is known; in the null world nothing is predictable. An honest
pipeline finds an edge in the first and none in the second — and the demo shows both, so a
reader can see what "no edge" looks like in tradebrain's reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from tradebrain.cli._shared import console
from tradebrain.config import Settings

WORLDS = (("planted", 0.3), ("null", 0.0))
MODELS = ("logistic", "lightgbm")
SETS = ("atomic", "indicators", "regime")


@dataclass(frozen=True)
class WorldResult:
    """What the demo measured in one world."""

    name: str
    oracle: float
    evaluation: dict[str, Any]
    backtest: dict[str, Any]
    html: Path


def run_worlds(settings: Settings, bars: int, seed: int) -> list[WorldResult]:
    """Evaluate models and backtest the hybrid strategy in both worlds; write HTML reports."""
    from tradebrain.data.synthetic import SyntheticConfig, generate_market
    from tradebrain.engine.backtest import BacktestConfig
    from tradebrain.engine.walk_forward_backtest import HybridConfig, hybrid_backtest_report
    from tradebrain.evaluation.evaluate import evaluate
    from tradebrain.evaluation.html_report import write_html_report
    from tradebrain.evaluation.walk_forward import EvaluationSettings
    from tradebrain.execution.costs import FlatCosts
    from tradebrain.labels import LabelSettings

    label = LabelSettings("direction", horizon=1, parameters={"dead_zone": 0.0})
    evaluation_settings = EvaluationSettings(label=label, models=MODELS, folds=4)
    hybrid = HybridConfig(
        retrain_every=max(250, bars // 8), min_train=max(1000, int(bars * 0.4)), models=MODELS
    )
    costs = FlatCosts(settings.execution.taker_fee, settings.execution.slippage_bps)
    reports = settings.home / "reports"
    results = []
    for offset, (name, signal) in enumerate(WORLDS):
        market = generate_market(SyntheticConfig(bars=bars, seed=seed + offset, signal=signal))
        with console.status(f"{name} world: walk-forward evaluation of {', '.join(MODELS)}..."):
            evaluation = evaluate(
                market.candles, evaluation_settings, feature_sets=SETS, oracle=market.oracle,
                source=f"synthetic {name} world",
            ).report  # fmt: skip
        with console.status(f"{name} world: hybrid backtest, retrained walk-forward..."):
            run = hybrid_backtest_report(
                market.candles, BacktestConfig(costs=costs), hybrid, symbol=f"SYN-{name}",
                timeframe="1h", risk_settings=settings.risk, brain_settings=settings.brain,
                settings={"strategy": "hybrid", "costs": repr(costs), "market": "spot"},
            )  # fmt: skip
            html = write_html_report(
                reports / f"demo_{name}.html", run.report, market.candles, run.result.equity,
                decisions=getattr(run.result, "decisions", None),
                title=f"tradebrain demo: {name} world",
            )  # fmt: skip
        results.append(
            WorldResult(name, float(market.oracle["accuracy"]), evaluation, run.report, html)
        )
    return results


def print_worlds(results: list[WorldResult]) -> None:
    """Print the two worlds side by side, then what to conclude."""
    table = Table(title="the whole pipeline, out of sample, after costs", box=box.SIMPLE_HEAD)
    table.add_column("measure")
    for result in results:
        table.add_column(f"{result.name} world", justify="right")
    metrics = [r.backtest["metrics"] for r in results]
    benchmark = [r.backtest["benchmark"] for r in results]
    rows: list[tuple[str, list[str]]] = [
        ("oracle ceiling (best possible)", [f"{r.oracle:.3f}" for r in results]),
        ("ensemble directional accuracy", [_model(r, "ensemble") for r in results]),
        ("share of the oracle's edge found", [_recovered(r) for r in results]),
        ("models beating naive baselines", [_beats(r) for r in results]),
        ("hybrid total return", [_pct(m["total_return"], "+") for m in metrics]),
        ("buy-and-hold total return", [_pct(b["total_return"], "+") for b in benchmark]),
        ("hybrid Sharpe (annualised)", [_num(m["sharpe"]) for m in metrics]),
        ("hybrid max drawdown", [_pct(m["max_drawdown"]) for m in metrics]),
        ("hybrid trades", [str(m["n_trades"]) for m in metrics]),
        ("hybrid PSR (Sharpe > 0)", [_num(m["psr"]) for m in metrics]),
    ]
    for label, values in rows:
        table.add_row(label, *values)
    console.print(table)
    for result in results:
        console.print(f"[bold]{result.name} world[/]: {result.evaluation['verdict']['summary']}")
        for warning in result.evaluation["warnings"]:
            console.print(f"[bold red]{warning}[/]")
        console.print(f"  report: {result.html}")
    console.print(
        "[dim]Forecast skill and trading profit are different things: the planted edge is a "
        "one-candle reversal, and whether the hybrid strategy turns it into money after fees is "
        "exactly what the backtest above measures.[/]"
    )


def _model(result: WorldResult, model: str) -> str:
    return _num(result.evaluation["models"].get(model, {}).get("sign_accuracy"), 3)


def _recovered(result: WorldResult) -> str:
    if result.oracle <= 0.5 + 1e-9:
        return "n/a (no edge exists)"
    share = result.evaluation["oracle"]["models"].get("ensemble", {}).get("edge_recovered")
    return "n/a" if share is None or not math.isfinite(share) else f"{share:.0%}"


def _beats(result: WorldResult) -> str:
    winners = [m for m, won in result.evaluation["verdict"]["beats_baselines"].items() if won]
    return ", ".join(winners) if winners else "no"


def _pct(value: float | None, sign: str = "") -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:{sign}.2%}"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"

"""``tradebrain ablation`` and ``tradebrain stress``: what each layer is worth, and under strain."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from tradebrain.cli._shared import (
    console,
    friendly_errors,
    hybrid_config,
    report_json,
    settings_of,
    store_of,
)

_METRICS = (
    ("log return", "log_return", "{:+.3f}"),
    ("total return", "total_return", "{:+.2%}"),
    ("Sharpe", "sharpe", "{:+.2f}"),
    ("max drawdown", "max_drawdown", "{:+.2%}"),
    ("trades", "n_trades", "{:+.0f}"),
    ("PSR", "psr", "{:+.3f}"),
)


@friendly_errors
def ablation_command(
    ctx: typer.Context,
    data: Annotated[str, typer.Option("--data", help="Candle file or stored dataset name.")],
    retrain_every: Annotated[
        int | None,
        typer.Option(
            "--retrain-every", help="Candles between retrains (learning.retrain_every_bars)."
        ),
    ] = None,
    min_train: Annotated[
        int | None,
        typer.Option(
            "--min-train", help="Candles learned from before trading (learning.min_train_bars)."
        ),
    ] = None,
    models: Annotated[str | None, typer.Option("--models", help="Models (models.enabled).")] = None,
    sets: Annotated[
        str | None,
        typer.Option("--sets", help="Feature sets offered to the models (features.sets)."),
    ] = None,
    market: Annotated[str, typer.Option("--market", help="spot or perp.")] = "spot",
    agent_folders: Annotated[
        list[Path] | None,
        typer.Option(
            "--agent",
            help="An RL agent folder (`tradebrain rl train`) to judge as a part, on the "
            "candles after the last it trained on (repeatable).",
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
) -> None:
    """Toggle each part in turn; print what it is worth in money after costs, out of sample."""
    from tradebrain.core.market import MarketType
    from tradebrain.data.loading import load_market_data
    from tradebrain.evaluation.backtest_metrics import format_metric
    from tradebrain.exceptions import UserInputError
    from tradebrain.research.ablation import run_ablation
    from tradebrain.research.hybrid_request import HybridRequest, backtest_config

    if market not in ("spot", "perp"):
        raise UserInputError(f"--market must be spot or perp; got {market!r}")
    settings = settings_of(ctx)
    loaded = load_market_data(data, store_of(settings))
    request = HybridRequest.from_settings(
        settings, loaded.frame, symbol=Path(loaded.source).stem,
        timeframe=loaded.timeframe or "1h",
        hybrid=hybrid_config(
            settings, retrain_every=retrain_every, min_train=min_train, models=models, sets=sets
        ),
        backtest=backtest_config(settings, market=MarketType(market)),
    )  # fmt: skip
    agents = _load_agents(agent_folders or [])
    with console.status("ablation...") as status:
        result = run_ablation(
            request, agents=agents, progress=lambda text: status.update(f"ablation: {text}")
        )
    report = result.to_dict()
    table = Table(
        title="ablation: each part toggled, change vs the configured system (out of sample, "
        "after costs)",
        box=box.SIMPLE_HEAVY,
    )
    table.add_column("part")
    table.add_column("default")
    table.add_column("worth (log return)", justify="right")
    for label, _, _ in _METRICS:
        table.add_column(label, justify="right")
    full = [format_metric(result.full[key], p.replace("+", "")) for _, key, p in _METRICS]
    table.add_row("[bold]configured system[/]", "", "", *full)
    for row in result.rows:
        table.add_row(
            row.layer, "on" if row.default_on else "off", format_metric(row.worth, "{:+.3f}"),
            *(format_metric(row.deltas[key], p) for _, key, p in _METRICS),
        )  # fmt: skip
    console.print(table)
    for row in result.rows:
        if row.layer.startswith("rl:"):
            judged = (
                f"judged on {row.judged_candles:,} candles from {row.judged_from[:16]}"
                if row.judged_from is not None
                else "not judged"
            )
            note = f" [yellow]({row.note})[/]" if row.note else ""
            console.print(f"{row.layer}: {judged}{note}")
    console.print(
        "[dim]worth = what the part adds to the after-cost log return (negative: it costs "
        "money); a part that is off by default shows what switching it on would do; an RL "
        "agent is judged only on candles after the last it trained on.[/]"
    )
    _write(report, json_out)


def _load_agents(folders: list[Path]) -> dict[str, Any]:
    """Load the agents saved in ``folders``, labelled by name (and folder, where names repeat)."""
    from tradebrain.rl.saved import load_agent

    loaded = [(folder, load_agent(folder)) for folder in folders]
    names = [agent.name for _, agent in loaded]
    return {
        agent.name if names.count(agent.name) == 1 else f"{agent.name}@{folder}": agent
        for folder, agent in loaded
    }


@friendly_errors
def stress_command(
    ctx: typer.Context,
    bars: Annotated[int, typer.Option("--bars", help="Synthetic 1h candles.")] = 4000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic market.")] = 7,
    crashes_per_year: Annotated[
        float, typer.Option("--crashes-per-year", help="Flash-crash rate (high: force some).")
    ] = 40.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
) -> None:
    """Flash crash with and without the panic exit, and a restart after a data gap."""
    from tradebrain.research.hybrid_request import HybridRequest
    from tradebrain.research.stress import STRESS_SETS, run_stress, stress_world
    from tradebrain.strategies.hybrid_config import HybridConfig

    settings = settings_of(ctx)
    hybrid = HybridConfig.from_settings(
        settings, min_train=min(settings.learning.min_train_bars, bars // 2),
        feature_sets=tuple(dict.fromkeys([*settings.features.sets, *STRESS_SETS])),
    )  # fmt: skip
    with console.status("stress...") as status:
        world = stress_world(bars=bars, seed=seed, crashes_per_year=crashes_per_year)
        request = HybridRequest.from_settings(
            settings, world.candles, symbol=world.symbol, timeframe=world.timeframe,
            orderflow=world.orderflow, hybrid=hybrid,
        )  # fmt: skip
        report = run_stress(request, world, progress=lambda text: status.update(f"stress: {text}"))
    table = Table(title="flash crashes (out of sample)", box=box.SIMPLE_HEAVY)
    for column in ("start", "drop", "held", "panic fired", "equity w/ panic", "w/o panic",
                   "avoided", "forced long: exit", "hold"):  # fmt: skip
        table.add_column(column, justify="left" if column == "start" else "right")
    for c in report.crashes:
        table.add_row(
            c.start[:16], f"{c.price_change:+.1%}", "yes" if c.held_at_start else "flat",
            "yes" if c.panic_fired else "no", f"{c.equity_change_with_panic:+.2%}",
            f"{c.equity_change_without_panic:+.2%}", f"{c.loss_avoided:+.2%}",
            f"{c.forced_long_change_with_panic:+.1%}" if c.forced_long_exited else "no exit",
            f"{c.forced_long_change_held:+.1%}",
        )  # fmt: skip
    console.print(table)
    crashes = report.crashes
    if not crashes:
        console.print("no flash crash after the first segment: raise --crashes-per-year")
    elif not any(c.held_at_start for c in crashes):
        console.print(
            "[yellow]the hybrid was flat at every crash: the panic exit had nothing to save "
            "(equity unchanged either way); the forced-long columns show what it would do[/]"
        )
    fired = sum(c.panic_fired for c in crashes)
    console.print(f"panic exit fired on {fired} of {len(crashes)} crash(es)")
    gap = report.gap
    if gap is not None:
        size = (
            f"mean size {gap.mean_size_gap_safe:.4f} vs {gap.mean_size_without:.4f} without"
            if gap.mean_size_gap_safe is not None and gap.mean_size_without is not None
            else "no trade was decided while it lasted"
        )
        console.print(
            f"data gap: {gap.dropped} candles dropped, resumed {gap.resumed_at[:16]}; gap-safe "
            f"mode {'fired' if gap.gap_safe_fired else 'did NOT fire'} for "
            f"{gap.gap_safe_candles} candle(s) ({gap.reason or 'no reason'}); {size}; "
            f"run finished, final equity {gap.final_equity:,.2f}"
        )
    _write(report.to_dict(), json_out)


def _write(report: dict[str, Any], path: Path | None) -> None:
    if path is None:
        return
    from tradebrain.core.atomic_write import write_text_atomic
    from tradebrain.research.backtest_report import finite

    write_text_atomic(report_json(finite(report)), path)
    console.print(f"[green]wrote[/] {path}")

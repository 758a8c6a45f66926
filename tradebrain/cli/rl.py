"""``tradebrain rl ...``: train and judge the RL agents that scale or veto the brain's entries.

``rl evaluate`` answers whether an agent earns its place on a market: walk-forward, after
costs, every seed reported (median and spread, never the best one), beside the plain rule and a
fixed-fraction rule, with the deflated Sharpe counting every configuration. ``rl train``
trains one agent on a market's out-of-sample signals and saves it in a folder of its own
(``--out``) or in a model bundle's ``agent/`` folder (``--bundle``), which ``serve`` trades with
when ``brain.rl_agent`` is ``bundle`` (``rl show`` prints it; the Q-learning sizer's table is
readable). Stable-baselines3 and torch load only inside the
commands.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Annotated

import typer

from tradebrain.cli._output import Column, print_rows
from tradebrain.cli._shared import console, friendly_errors, settings_of, store_of
from tradebrain.exceptions import UserInputError

rl_app = typer.Typer(
    help="RL agents over the real engine: train, evaluate walk-forward against plain rules.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

Data = Annotated[str, typer.Option("--data", help="Candle file or stored dataset name.")]
Symbol = Annotated[str, typer.Option("--symbol", help="The market's symbol.")]
AGENT_NAMES = ("q_sizing", "dqn_veto", "ppo_sizing")


def _request(ctx: typer.Context, data: str, symbol: str) -> tuple[object, object]:
    from tradebrain.data.loading import load_market_data
    from tradebrain.research.hybrid_request import HybridRequest

    settings = settings_of(ctx)
    loaded = load_market_data(data, store_of(settings))
    request = HybridRequest.from_settings(
        settings, loaded.frame, symbol=symbol, timeframe=loaded.timeframe or "1h"
    )
    return request, settings


@rl_app.command("evaluate")
@friendly_errors
def evaluate_command(
    ctx: typer.Context,
    data: Data,
    symbol: Symbol = "BTC/USDT",
    agents: Annotated[
        str, typer.Option("--agents", help="Comma-separated: q_sizing, dqn_veto, ppo_sizing.")
    ] = ",".join(AGENT_NAMES),
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds per agent.")] = 5,
    steps: Annotated[int, typer.Option("--steps", min=10, help="Training steps (entries).")] = (
        1_000
    ),
    blocks: Annotated[
        int, typer.Option("--blocks", min=2, help="Out-of-sample blocks (the first trains).")
    ] = 3,
) -> None:
    """Train each agent per seed on the blocks before each block; judge it on the block."""
    from tradebrain.research.rl_comparison import AGENTS, RULES, compare_agents, psr

    chosen = tuple(a.strip() for a in agents.split(",") if a.strip())
    unknown = sorted(set(chosen) - set(AGENTS))
    if unknown:
        raise UserInputError(f"unknown agent(s) {unknown}; pick from {', '.join(AGENTS)}")
    request, settings = _request(ctx, data, symbol)
    with console.status("walk-forward signals, then every agent and seed..."):
        comparison = compare_agents(
            request, settings, world=data, seeds=tuple(range(seeds)),  # type: ignore[arg-type]
            agents=chosen, blocks=blocks, steps=steps,
        )  # fmt: skip
    rows = []
    for policy in (*RULES, *chosen):
        scores = comparison.of(policy)
        returns = [s.log_return for s in scores]
        median = statistics.median(returns)
        middle = min(scores, key=lambda s: abs(s.log_return - median))
        rows.append(
            {
                "policy": policy,
                "seeds": len(scores) if policy not in RULES else "-",
                "log return (median)": f"{median:+.4f}",
                "spread": f"[{min(returns):+.4f}, {max(returns):+.4f}]",
                "trades": f"{statistics.median(s.trades for s in scores):.0f}",
                "PSR": f"{psr(middle):.3f}",
                "DSR": f"{comparison.dsr(middle):.3f}",
                "earned its place": ""
                if policy in RULES
                else ("yes" if comparison.earned(policy) else "no"),
            }
        )
    print_rows(
        rows, [Column(name, name) for name in rows[0]],
        title=f"RL agents against the plain rules, out of sample, after costs: {data}",
    )  # fmt: skip
    console.print(
        f"{comparison.trials} configurations evaluated out of sample on "
        f"{len(comparison.blocks) - 1} block(s); the DSR counts them all"
    )


@rl_app.command("train")
@friendly_errors
def train_command(
    ctx: typer.Context,
    data: Data,
    out: Annotated[Path | None, typer.Option("--out", help="Folder to save the agent in.")] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            help="A saved model bundle (MODEL_DIR): save the agent in its agent/ folder, "
            "replacing the one there at once; serve trades with it when brain.rl_agent is "
            "'bundle'.",
        ),
    ] = None,
    agent: Annotated[str, typer.Option("--agent", help="q_sizing, dqn_veto or ppo_sizing.")] = (
        "q_sizing"
    ),
    symbol: Symbol = "BTC/USDT",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    steps: Annotated[int, typer.Option("--steps", min=10)] = 1_000,
    share: Annotated[
        float,
        typer.Option(
            "--share",
            help="Train on the first part of the out-of-sample candles only (0.5: the first "
            "half), keeping the rest unseen to judge the agent on (`tradebrain ablation "
            "--agent`).",
        ),
    ] = 1.0,
) -> None:
    """Train one agent on the market's out-of-sample bars (the first ``--share`` of them);
    save it to ``--out`` or into the model bundle ``--bundle``."""
    from tradebrain.research.rl_comparison import AGENTS, check_share, train_on_signals
    from tradebrain.research.walk_forward_backtest import hybrid_signals
    from tradebrain.rl.saved import require_bundle, save_in_bundle

    if (out is None) == (bundle is None):
        raise UserInputError(
            "give exactly one of --out FOLDER (an agent folder of its own) or --bundle "
            "MODEL_DIR (the agent/ folder of a saved model bundle)"
        )
    check_share(share)
    if bundle is not None:
        require_bundle(bundle)  # before the minutes of training, not after
    if agent not in AGENTS:
        raise UserInputError(f"unknown agent {agent!r}; pick from {', '.join(AGENTS)}")
    request, settings = _request(ctx, data, symbol)
    with console.status(f"walk-forward signals, then training {agent}..."):
        signals, _ = hybrid_signals(request)  # type: ignore[arg-type]
        trained = train_on_signals(request, settings, signals, agent, seed, steps, share=share)  # type: ignore[arg-type]
    if bundle is not None:
        where = f"the bundle {bundle} ({save_in_bundle(trained, bundle)})"
    else:
        where = str(trained.save(out))
    console.print(f"[green]saved[/] {agent} (seed {seed}, {steps} steps) in {where}")


@rl_app.command("show")
@friendly_errors
def show_command(
    folder: Annotated[Path, typer.Argument(help="A folder `rl train` wrote.")],
) -> None:
    """Print a saved agent: its manifest, and the Q-learning sizer's table."""
    from tradebrain.rl.saved import load_agent

    agent = load_agent(folder)
    console.print(f"{agent.name} from {folder}")
    table = getattr(agent, "table", None)
    if table is not None:
        frame = table()
        columns = [Column(name, name) for name in frame.columns]
        print_rows(frame.to_dicts(), columns, title=f"{agent.name}: the learned table")

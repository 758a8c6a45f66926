"""The ``tradebrain`` command line (typer + rich)."""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting steal the only other core from numba, torch and the
# other model; passive waiting keeps LightGBM/XGBoost fast on a busy 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path
from typing import Annotated

import typer

from tradebrain import __version__
from tradebrain.cli._shared import CliState, console
from tradebrain.cli.backtest import backtest_command
from tradebrain.cli.config import config_app
from tradebrain.cli.data import data_app
from tradebrain.cli.demo import demo
from tradebrain.cli.experiments import ablation_command, stress_command
from tradebrain.cli.features import features_app
from tradebrain.cli.learn import learn_app, models_app
from tradebrain.cli.models import evaluate_command, train_command
from tradebrain.cli.rl import rl_app
from tradebrain.cli.serve import serve_command

app = typer.Typer(
    name="tradebrain",
    help="A hybrid-AI decision system for crypto markets whose numbers can be trusted.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(learn_app, name="learn")
app.add_typer(models_app, name="models")
app.add_typer(rl_app, name="rl")
app.command("evaluate", help="Walk-forward, out-of-sample evaluation of models.")(evaluate_command)
app.command("train", help="Fit the final models on all the data.")(train_command)
app.command(help="Run the whole pipeline on the embedded synthetic market and summarise it.")(demo)
app.command("backtest", help="Backtest a strategy with costs, next to buy-and-hold.")(
    backtest_command
)
app.command("ablation", help="Switch layers off in turn; deltas out of sample.")(ablation_command)
app.command("stress", help="Flash-crash and data-gap stress scenarios.")(stress_command)
app.command("serve", help="Paper or live trading service with its API and dashboard.")(
    serve_command
)


def _version(value: bool) -> None:
    if value:
        console.print(f"tradebrain {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Settings file (default: $TRADEBRAIN_CONFIG, else ./tradebrain.yaml if present).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    ctx.obj = CliState(config_path=config)


def main() -> None:
    """Entry point of the ``tradebrain`` console script."""
    app()


__all__ = ["app", "main"]

"""What every command shares: the console, settings, errors, hybrid flags and JSON reports."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from tradebrain.config import Settings, load_settings
from tradebrain.data.store import ParquetStore
from tradebrain.exceptions import (
    OperationalError,
    TemporaryError,
    TradebrainError,
    UserInputError,
)

if TYPE_CHECKING:
    from tradebrain.strategies.hybrid_config import HybridConfig

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class CliState:
    """Options given before the command name (``tradebrain --config X data list``)."""

    config_path: Path | None = None


def settings_of(ctx: typer.Context) -> Settings:
    """Return the settings for this invocation (file from ``--config``, env overrides)."""
    state = ctx.find_root().obj
    return load_settings(state.config_path if isinstance(state, CliState) else None)


def store_of(settings: Settings) -> ParquetStore:
    """Return the Parquet store under ``TRADEBRAIN_HOME``."""
    return ParquetStore(settings.home / "store")


def split_list(text: str | None) -> list[str]:
    """Return the items of a comma-separated option (``"a, b,"`` -> ``["a", "b"]``)."""
    return [part.strip() for part in text.split(",") if part.strip()] if text else []


def hybrid_config(
    settings: Settings,
    *,
    retrain_every: int | None = None,
    min_train: int | None = None,
    models: str | None = None,
    sets: str | None = None,
    horizons: str | None = None,
    funding: str | None = None,
    trades: str | None = None,
    book: str | None = None,
) -> HybridConfig:
    """Return the hybrid strategy's walk-forward settings: the settings, then the flags.

    Flags left out (None) keep the settings' values. Without ``--sets``, order-flow data
    (``trades``, ``book``) adds the ``orderflow`` set and ``funding`` the ``sentiment`` set.
    """
    from tradebrain.strategies.hybrid_config import HybridConfig

    chosen_sets = split_list(sets) or list(settings.features.sets)
    if sets is None and (trades or book):
        chosen_sets.append("orderflow")
    if sets is None and funding:
        chosen_sets.append("sentiment")
    try:
        horizon_list = [int(h) for h in split_list(horizons)] or None
    except ValueError:
        raise UserInputError(
            f"--horizons takes whole numbers of candles, e.g. 12,24,48; got {horizons!r}"
        ) from None
    return HybridConfig.from_settings(
        settings,
        retrain_every=retrain_every,
        min_train=min_train,
        models=tuple(split_list(models)) or None,
        feature_sets=tuple(chosen_sets),
        horizons=horizon_list,
    )


def report_json(report: Mapping[str, Any]) -> str:
    """Return a JSON report as text: sections indented, one line per row of a list of rows.

    The same JSON as ``json.dumps(report, indent=2)`` once parsed (NaN refused, other
    values as ``str``), written by the C encoder: a report with a million candles' trades
    takes a tenth of the time, and ``grep`` finds a trade on one line.
    """

    line = json.JSONEncoder(allow_nan=False, default=str).encode
    indented = json.JSONEncoder(allow_nan=False, default=str, indent=2).encode
    sections = []
    for key, value in report.items():
        if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
            text = "[\n" + ",\n".join(f"    {line(row)}" for row in value) + "\n  ]"
        else:
            text = indented(value).replace("\n", "\n  ")
        sections.append(f"  {line(str(key))}: {text}")
    return "{\n" + ",\n".join(sections) + "\n}" if sections else "{}"


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn tradebrain's errors into a short red message and exit code 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except TradebrainError as error:
            errors.print(f"[bold red]error:[/] {_escape(str(error))}")
            errors.print(f"[dim]{_what_to_do(error)}[/]")
            raise typer.Exit(1) from None

    return wrapper


def _what_to_do(error: TradebrainError) -> str:
    if isinstance(error, UserInputError):
        return "Fix the input named above and run the command again."
    if isinstance(error, TemporaryError):
        return "This is temporary (network, rate limit, exchange down); try again later."
    if isinstance(error, OperationalError):
        return "The installation or the data store needs a human; nothing was changed."
    return "See the message above."


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def tracking_registry(settings: Settings) -> Any:
    """Return the registry a command logs its run to (``learning.track_runs``), or None."""
    if not settings.learning.track_runs:
        return None
    from tradebrain.learning.registry import BundleRegistry

    return BundleRegistry(settings.home, settings.learning.registry_uri)


def track_run(
    settings: Settings, kind: str, params: Mapping[str, Any], metrics: Mapping[str, Any]
) -> None:
    """Log a command's run (``kind``: evaluate, train, backtest) to MLflow when tracking is on.

    Metrics that are not finite numbers (a Sharpe ratio of a run without trades) are left out.
    """
    registry = tracking_registry(settings)
    if registry is None:
        return
    import math

    numbers = {
        name: float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }
    run_id = registry.log_run(kind, params=params, metrics=numbers)
    console.print(f"[green]tracked[/] the {kind} run in MLflow ({registry.tracking_uri}, {run_id})")

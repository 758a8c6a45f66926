"""What every command shares: the console, settings lookup, and friendly error handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

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

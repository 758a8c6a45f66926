"""``tradebrain config init|show|validate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.syntax import Syntax

from tradebrain.cli._output import stdout_is_terminal
from tradebrain.cli._shared import console, friendly_errors, settings_of
from tradebrain.config import DEFAULT_CONFIG_FILE, config_path, load_settings, write_default_config

config_app = typer.Typer(
    help="Create, show and check the settings file.", no_args_is_help=True, rich_markup_mode="rich"
)


@config_app.command("init")
@friendly_errors
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the file.")] = DEFAULT_CONFIG_FILE,
) -> None:
    """Write a settings file with every default, ready to edit."""
    written = write_default_config(path)
    console.print(f"[green]wrote[/] {written}; edit it, then run `tradebrain config validate`")


@config_app.command("show")
@friendly_errors
def show(
    ctx: typer.Context,
    reveal_secrets: Annotated[
        bool, typer.Option("--reveal-secrets", help="Print tokens instead of masking them.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the settings as one JSON object instead.")
    ] = False,
) -> None:
    """Print the effective settings: defaults, then the file, then TRADEBRAIN_ variables.

    Piped or redirected, the YAML is printed as plain text, no line cut or coloured.
    """
    settings = settings_of(ctx)
    text = settings.to_yaml(reveal_secrets=reveal_secrets)
    if as_json:  # the YAML's values, secrets masked the same way
        sys.stdout.write(json.dumps(yaml.safe_load(text)) + "\n")
        return
    source = config_path(ctx.find_root().obj.config_path)
    header = f"# file: {source or 'none (defaults)'}; environment overrides applied"
    if not stdout_is_terminal():
        sys.stdout.write(f"{header}\n{text}")
        return
    console.print(f"[dim]{header}[/]")
    console.print(Syntax(text, "yaml"))


@config_app.command("validate")
@friendly_errors
def validate(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="File to check (default: the one in use).")
    ] = None,
) -> None:
    """Check a settings file and the environment; exit 1 naming every bad key."""
    chosen = path or ctx.find_root().obj.config_path
    load_settings(chosen)
    console.print(f"[green]settings are valid[/] ({config_path(chosen) or 'defaults only'})")

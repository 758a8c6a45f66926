"""The command line starts quickly: heavy libraries load only for the commands that use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import make_candles

HEAVY = ("scipy", "sklearn", "torch", "lightgbm", "xgboost", "plotly", "fastapi", "ccxt")
"""Libraries that take from 0.1 to several seconds to import."""
NOT_FOR_A_PLAIN_BACKTEST = (*(name for name in HEAVY if name != "scipy"), "scipy.stats")
"""numba imports ``scipy`` itself (its version, and ``scipy.linalg`` for BLAS)."""

_LOADED = """
import json, sys
{run}
names = {names!r}
print(json.dumps(sorted(name for name in names if name in sys.modules)))
"""


def _loaded_after(run: str, names: tuple[str, ...], *args: str, home: Path) -> list[str]:
    env = {**os.environ, "TRADEBRAIN_HOME": str(home)}
    env.pop("TRADEBRAIN_CONFIG", None)
    script = _LOADED.format(run=run, names=names)
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


_COMMAND = (
    "from tradebrain.cli import app\n"
    "try:\n"
    "    app(sys.argv[1:])\n"
    "except SystemExit as stop:\n"
    "    assert not stop.code, stop.code\n"
)


def test_importing_the_command_line_loads_no_heavy_library(tmp_path: Path) -> None:
    assert _loaded_after("import tradebrain.cli", HEAVY, home=tmp_path) == []


@pytest.mark.parametrize("command", [["--help"], ["data", "list"]], ids=" ".join)
def test_help_and_data_list_load_no_heavy_library(command: list[str], tmp_path: Path) -> None:
    assert _loaded_after(_COMMAND, HEAVY, *command, home=tmp_path) == []


def test_a_plain_sma_cross_backtest_loads_no_model_statistics_or_chart_library(
    tmp_path: Path,
) -> None:
    data = tmp_path / "BTC_USDT-1h.csv"
    make_candles(300, seed=3).write_csv(data)
    args = ("backtest", "--strategy", "sma_cross", "--fast", "5", "--slow", "20", "--data",
            str(data), "--json", str(tmp_path / "report.json"))  # fmt: skip
    assert _loaded_after(_COMMAND, NOT_FOR_A_PLAIN_BACKTEST, *args, home=tmp_path / "home") == []
    assert json.loads((tmp_path / "report.json").read_text())["metrics"]["n_trades"] > 0

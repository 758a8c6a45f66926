"""List commands keep every value whole when piped and print JSON with ``--json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from builders import make_candles
from typer.testing import CliRunner

from tradebrain.cli import app
from tradebrain.data.schemas import Kind
from tradebrain.data.store import DatasetKey, ParquetStore

runner = CliRunner()  # its stdout is not a terminal: what a pipe or a file sees
FIRST = "2024-01-01T00:00:00+00:00"
LAST = "2024-01-03T23:00:00+00:00"  # 72 hourly candles


pytestmark = pytest.mark.usefixtures("cli_home")


@pytest.fixture
def stored(cli_home: Path) -> DatasetKey:
    key = DatasetKey.of("BTC/USDT", "1h", Kind.CANDLES, exchange="binance", market="spot")
    ParquetStore(cli_home / "store").write(key, make_candles(72))  # from 2024-01-01 00:00 UTC
    return key


def test_piped_data_list_keeps_the_whole_timestamps(stored: DatasetKey) -> None:
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()
    assert header.split("\t") == ["dataset", "rows", "first", "last", "gaps", "bytes"]
    fields = row.split("\t")
    assert fields[:5] == [stored.name, "72", FIRST, LAST, "0"]
    assert int(fields[5]) > 0


def test_data_list_into_a_real_pipe_at_80_columns_cuts_nothing(
    stored: DatasetKey, tmp_path: Path
) -> None:
    env = {**os.environ, "COLUMNS": "80", "TRADEBRAIN_HOME": str(tmp_path / "home")}
    run = subprocess.run(
        [sys.executable, "-c", "from tradebrain.cli import main; main()", "data", "list"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert f"{stored.name}\t72\t{FIRST}\t{LAST}\t0\t" in run.stdout
    assert "…" not in run.stdout


def test_data_list_json_is_one_array_of_objects_with_every_field(stored: DatasetKey) -> None:
    result = runner.invoke(app, ["data", "list", "--json"])
    assert result.exit_code == 0, result.output
    (dataset,) = json.loads(result.stdout)
    assert dataset == {
        "dataset": stored.name,
        "exchange": "binance",
        "market": "spot",
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "kind": "candles",
        "rows": 72,
        "first": FIRST,
        "last": LAST,
        "gaps": 0,
        "bytes": dataset["bytes"],
    }
    assert dataset["bytes"] > 0


def test_an_empty_store_lists_as_an_empty_json_array_and_says_why_on_stderr() -> None:
    result = runner.invoke(app, ["data", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    piped = runner.invoke(app, ["data", "list"])
    assert piped.stdout.splitlines() == ["dataset\trows\tfirst\tlast\tgaps\tbytes"]
    assert "no datasets" in piped.stderr


def test_features_list_json_has_every_column_of_every_feature() -> None:
    result = runner.invoke(app, ["features", "list", "--sets", "indicators", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {row["set"] for row in rows} == {"indicators"}
    assert all(set(row) == {"name", "set", "warmup", "inputs", "description"} for row in rows)
    assert any(row["name"] == "rsi_14" and row["warmup"] > 14 for row in rows)


def test_piped_features_list_prints_every_description_whole() -> None:
    result = runner.invoke(app, ["features", "list", "--json"])
    rows = json.loads(result.stdout)
    piped = runner.invoke(app, ["features", "list"])
    lines = piped.stdout.splitlines()
    assert lines[0] == "name\tset\twarmup\tinputs\tdescription"
    assert len(lines) == len(rows) + 1
    longest = max(rows, key=lambda row: len(str(row["description"])))
    assert "\t".join(str(longest[key]) for key in ("name", "set", "warmup")) in piped.stdout
    assert str(longest["description"]) in piped.stdout


def test_config_show_json_parses_and_masks_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEBRAIN_API__TOKEN", "very-secret")
    monkeypatch.setenv("TRADEBRAIN_RISK__REWARD_RISK", "3.5")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)
    assert settings["risk"]["reward_risk"] == 3.5
    assert settings["api"]["token"] == "**********"
    assert {"data", "learning", "execution"} <= set(settings)


def test_piped_config_show_is_plain_yaml_holding_every_setting() -> None:
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# file: none (defaults)")
    assert "\x1b[" not in result.stdout
    as_json = runner.invoke(app, ["config", "show", "--json"])
    assert yaml.safe_load(result.stdout) == json.loads(as_json.stdout)

"""``tradebrain features`` from the command line."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tradebrain.cli import app
from tradebrain.data.synthetic import SyntheticConfig, generate_market, write_market

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("cli_home")


def test_list_shows_every_feature_with_its_warmup() -> None:
    result = runner.invoke(app, ["features", "list", "--sets", "indicators"])
    assert result.exit_code == 0, result.output
    assert "rsi_14" in result.output
    assert result.output.splitlines()[0].split("\t")[:3] == ["name", "set", "warmup"]


def test_features_for_a_candle_file_keep_one_row_per_candle(tmp_path: Path) -> None:
    write_market(generate_market(SyntheticConfig(bars=400, seed=2)), tmp_path / "syn.parquet")
    result = runner.invoke(
        app,
        ["features", "--data", "syn.parquet", "--sets", "atomic,indicators", "--out", "f.parquet"],
    )
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(tmp_path / "f.parquet")
    candles = pl.read_parquet(tmp_path / "syn.parquet")
    assert table.height == candles.height
    assert table.columns[0] == "timestamp"
    assert all(dtype == pl.Float64 for dtype in table.schema.dtypes()[1:])
    assert table["rsi_14"][:10].is_null().all() and table["rsi_14"][-1] is not None


def test_order_flow_files_add_the_orderflow_and_sentiment_sets(tmp_path: Path) -> None:
    market = generate_market(SyntheticConfig(bars=300, seed=4, orderflow=True))
    write_market(market, tmp_path / "syn.parquet")
    args = ["features", "--data", "syn.parquet", "--trades", "syn.trades.parquet"]
    args += ["--book", "syn.book.parquet", "--funding", "syn.funding.parquet"]
    args += ["--sets", "orderflow,sentiment", "--out", "flow.parquet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(tmp_path / "flow.parquet")
    assert {"cvd_ratio_20", "book_imbalance_10", "funding_z_72"} <= set(table.columns)


def test_without_data_or_out_the_command_says_what_to_give() -> None:
    result = runner.invoke(app, ["features"])
    assert result.exit_code == 1
    assert "--data" in result.output and "--out" in result.output


def test_features_select_prints_what_is_kept_and_why_the_rest_is_left_out(
    tmp_path: Path,
) -> None:
    world = generate_market(SyntheticConfig(bars=3_000, seed=2, signal=0.4))
    write_market(world, tmp_path / "w.parquet")
    args = ["features", "select", "--data", str(tmp_path / "w.parquet"), "--sets", "atomic"]
    args += ["--max-features", "3", "--dropped"]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "3 of 36 features kept for a 1-candle forecast" in result.output
    assert "beyond the cap" in result.output and "left out:" in result.output
    # the planted one-candle reversal: the last return is among the strongest features
    assert "logret_1" in result.output or "ret_1" in result.output


def test_features_select_refuses_a_cap_below_one(tmp_path: Path) -> None:
    write_market(generate_market(SyntheticConfig(bars=600, seed=2)), tmp_path / "w.parquet")
    args = ["features", "select", "--data", str(tmp_path / "w.parquet"), "--max-features", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "--max-features must be at least 1" in result.output

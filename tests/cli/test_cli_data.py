"""``tradebrain data ...`` and ``tradebrain demo`` from the command line."""

from __future__ import annotations

import hashlib
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from builders import make_candles, real_file
from fake_exchange import FakeBinance
from typer.testing import CliRunner

from tradebrain.cli import app
from tradebrain.data.store import DatasetKey, ParquetStore

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("cli_home")


def _store(tmp_path: Path) -> ParquetStore:
    return ParquetStore(tmp_path / "home" / "store")


def test_validate_exits_0_on_a_clean_file(tmp_path: Path) -> None:
    make_candles(48).write_csv(tmp_path / "clean.csv")
    result = runner.invoke(app, ["data", "validate", "clean.csv"])
    assert result.exit_code == 0, result.output
    assert "clean" in result.output
    assert "timeframe inferred from the data: 1h" in result.output


def test_validate_exits_1_with_counts_and_line_numbers(tmp_path: Path) -> None:
    frame = make_candles(48).with_columns(
        volume=pl.when(pl.int_range(pl.len()).is_in([5, 9])).then(-1.0).otherwise("volume")
    )
    frame.write_csv(tmp_path / "bad.csv")
    result = runner.invoke(app, ["data", "validate", "bad.csv", "--timeframe", "1h"])
    assert result.exit_code == 1
    assert "negative_volume" in result.output
    assert "line 7:" in result.output and "line 11:" in result.output


def test_validate_repair_writes_the_kept_rows(tmp_path: Path) -> None:
    frame = pl.concat([make_candles(48), make_candles(48)[10:11]])  # one duplicate row
    frame.write_parquet(tmp_path / "dup.parquet")
    result = runner.invoke(
        app, ["data", "validate", "dup.parquet", "--repair", "--out", "fixed.parquet"]
    )
    assert result.exit_code == 0, result.output
    assert "dropped 1 of 49 rows" in result.output
    assert pl.read_parquet(tmp_path / "fixed.parquet").equals(make_candles(48))


def test_import_then_list_shows_the_dataset(tmp_path: Path) -> None:
    make_candles(72).write_csv(tmp_path / "btc.csv")
    result = runner.invoke(
        app, ["data", "import", "btc.csv", "--symbol", "BTC/USDT", "--timeframe", "1h"]
    )
    assert result.exit_code == 0, result.output
    assert "binance/spot/BTC_USDT/1h/candles: 72 new row(s)" in result.output
    listing = runner.invoke(app, ["data", "list"])
    assert listing.exit_code == 0, listing.output
    assert "binance/spot/BTC_USDT/1h/candles" in listing.output
    assert "72" in listing.output


def test_import_of_a_bad_file_fails_and_stores_nothing(tmp_path: Path) -> None:
    make_candles(10).with_columns(high=pl.col("low") * 0.5).write_csv(tmp_path / "bad.csv")
    result = runner.invoke(
        app, ["data", "import", "bad.csv", "--symbol", "BTC/USDT", "--timeframe", "1h"]
    )
    assert result.exit_code == 1
    assert "nothing was written" in result.output
    assert _store(tmp_path).datasets() == []


def test_import_of_real_funding_rates_goes_to_the_perp_market(tmp_path: Path) -> None:
    path = real_file("marketlab__BTC_USDT-PERP__funding_rate.parquet")
    result = runner.invoke(
        app,
        [
            "data",
            "import",
            str(path),
            "--symbol",
            "BTC/USDT",
            "--market",
            "perp",
            "--kind",
            "funding",
        ],
    )
    assert result.exit_code == 0, result.output
    stored = _store(tmp_path).read(DatasetKey.parse("binance/perp/BTC_USDT/8h/funding"))
    assert stored.height == 1_247


def test_resample_a_stored_dataset_into_the_store(tmp_path: Path) -> None:
    make_candles(50).write_csv(tmp_path / "btc.csv")
    runner.invoke(app, ["data", "import", "btc.csv", "--symbol", "BTC/USDT", "--timeframe", "1h"])
    result = runner.invoke(
        app, ["data", "resample", "binance/spot/BTC_USDT/1h/candles", "--to", "4h"]
    )
    assert result.exit_code == 0, result.output
    higher = _store(tmp_path).read(DatasetKey.parse("binance/spot/BTC_USDT/4h/candles"))
    assert higher.height == 12  # 50 hours hold 12 complete 4h candles


def test_synth_with_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    digests = []
    for name in ("a.parquet", "b.parquet"):
        result = runner.invoke(
            app, ["data", "synth", "--out", name, "--bars", "500", "--seed", "3", "--signal", "0.3"]
        )
        assert result.exit_code == 0, result.output
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    assert "oracle directional accuracy" in result.output
    assert (tmp_path / "b.oracle.json").exists()


def test_demo_generates_validates_and_stores_the_synthetic_market(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--bars", "2400"])
    assert result.exit_code == 0, result.output
    names = {key.name for key in _store(tmp_path).datasets()}
    assert {
        "synthetic/perp/SYN_USDT/1h/candles",
        "synthetic/perp/SYN_USDT/4h/candles",
        "synthetic/perp/SYN_USDT/8h/funding",
        "synthetic/perp/SYN_USDT/tick/trades",
    } <= names
    assert "excess kurtosis" in result.output
    assert "planted world" in result.output and "null world" in result.output
    assert (tmp_path / "home" / "reports" / "demo_planted.html").exists()
    assert (tmp_path / "home" / "reports" / "demo_null.html").exists()


def test_a_user_error_is_one_red_line_not_a_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "validate", "missing.csv"])
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


def test_download_through_the_cli_stores_closed_candles_from_a_loopback_exchange(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    fake_binance.now = datetime.now(UTC).replace(microsecond=0)
    since = (fake_binance.now - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")
    args = ["data", "download", "--exchange", "binance", "--symbols", "BTC/USDT"]
    args += ["--timeframes", "1h", "--since", since, "--api-url", fake_binance.url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stored = _store(tmp_path).read(DatasetKey.parse("binance/spot/BTC_USDT/1h/candles"))
    assert 2 <= stored.height <= 3  # closed hours only; the open one is never stored
    assert stored["timestamp"].max() + timedelta(hours=1) <= fake_binance.now


def test_download_without_a_reachable_exchange_fails_fast_and_writes_nothing(
    tmp_path: Path, loopback_only: None
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    args = ["data", "download", "--exchange", "binance", "--symbols", "BTC/USDT"]
    args += ["--timeframes", "1h", "--since", "2024-01-01"]
    args += ["--api-url", f"http://127.0.0.1:{closed_port}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "cannot reach binance" in result.output
    assert "nothing was written" in result.output
    assert _store(tmp_path).datasets() == []

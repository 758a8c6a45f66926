"""Import reads every supported format, real files included, and never stores bad data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from builders import CandleMaker, make_candles, real_file

from tradebrain.data.importing import import_file, read_market_file
from tradebrain.data.schemas import SCHEMAS, Kind
from tradebrain.data.store import DatasetKey, ParquetStore
from tradebrain.data.validation import ROW, validate
from tradebrain.exceptions import DataFormatError, DataValidationError


def _clean(
    path: Path, kind: str, timeframe: str | None = None, allow_gaps: bool = False, **options: str
) -> pl.DataFrame:
    read = read_market_file(path, kind, **options)  # type: ignore[arg-type]
    frame, report = validate(read.frame, kind, timeframe, allow_gaps=allow_gaps, source=read.source)
    assert report.ok, report.summary()
    assert frame.drop(ROW).schema == pl.Schema(SCHEMAS[Kind(kind)].columns)
    return frame.drop(ROW)


# Real files, one per format and layout found in the wild.


def test_real_binance_candles_from_parquet_keep_every_value() -> None:
    path = real_file("marketlab__BTC_USDT__1h.parquet")
    frame = _clean(path, "candles", "1h")
    source = pl.read_parquet(path)
    assert frame.height == source.height == 12_556
    assert frame["close"].to_list() == source["close"].to_list()
    assert frame["timestamp"][0] == datetime(2024, 9, 14, tzinfo=UTC)


def test_real_minute_candles_from_csv_with_naive_text_times_are_utc() -> None:
    frame = _clean(real_file("nautilus_trader__BTC-PERP__1m.csv"), "candles", "1m")
    assert frame.height == 45_031
    assert frame["timestamp"][0] == datetime(2021, 12, 31, 23, 1, tzinfo=UTC)


def test_real_freqtrade_funding_file_reads_the_rate_from_open() -> None:
    path = real_file("marketlab__BTC_USDT-PERP__funding_rate.parquet")
    frame = _clean(path, "funding")
    assert frame["funding_rate"].to_list() == pl.read_parquet(path)["open"].to_list()


def test_real_mark_price_candles_import_as_mark() -> None:
    frame = _clean(real_file("marketlab__BTC_USDT-PERP__1h_mark.parquet"), "mark", "1h")
    assert frame.height == 9_981


@pytest.mark.parametrize(
    ("name", "rows", "first_id"),
    [
        ("freqtrade__XRP_ETH__trades.parquet", 12_477, "13519807"),
        ("nautilus_trader__BTCUSDT-PERP__trades_tardis.csv", 9_999, "42377944"),
        ("freqtrade__ETH_USDT-PERP__trades_sample.csv", 1_000, "1206419187"),
        ("nautilus_trader__BTCUSDT__trades_binance.parquet", 2_001, "553287559"),
    ],
)
def test_real_trade_files_of_every_layout_import(name: str, rows: int, first_id: str) -> None:
    frame = _clean(real_file(name), "trades")
    assert frame.height == rows
    assert frame["id"][0] == first_id
    assert set(frame["side"].unique()) <= {"buy", "sell"}


def test_buyer_is_maker_means_the_aggressor_sold() -> None:
    path = real_file("nautilus_trader__BTCUSDT__trades_binance.parquet")
    source = pl.read_parquet(path)
    frame = _clean(path, "trades")
    expected = ["sell" if flag == "True" else "buy" for flag in source["buyer_maker"]]
    assert frame["side"].to_list() == expected


def test_a_multi_symbol_file_needs_a_source_symbol() -> None:
    path = real_file("hftbacktest__BTC-ETH_USDT_multi__trades.parquet")
    with pytest.raises(DataFormatError, match="--source-symbol") as error:
        read_market_file(path, "trades")
    assert "BTCUSDT" in str(error.value)
    frame = _clean(path, "trades", source_symbol="btcusdt")
    assert frame.height == 67_997


def test_real_depth_snapshot_csv_imports_as_book_snapshots() -> None:
    frame = _clean(real_file("nautilus_trader__BTCUSDT-PERP__depth_snapshot.csv"), "book")
    assert frame.height == 100
    assert frame["is_snapshot"].all()
    assert set(frame["side"]) == {"bid"}  # the file's side column holds only "b"


def test_real_depth_updates_with_repeated_rows_are_reported_as_duplicates() -> None:
    read = read_market_file(real_file("nautilus_trader__BTCUSDT-PERP__depth_updates.csv"), "book")
    _, report = validate(read.frame, "book")
    assert {p.rule for p in report.errors} == {"duplicate_level"}


# Formats written here from real candles: freqtrade feather and freqtrade JSON.


def test_freqtrade_feather_candles_import(tmp_path: Path) -> None:
    source = pl.read_parquet(real_file("freqtrade__ETH_BTC__5m.parquet"))
    path = tmp_path / "ETH_BTC-5m.feather"
    source.write_ipc(path)
    frame = _clean(path, "candles", "5m", allow_gaps=True)  # the 2018 fixture has real gaps
    assert frame["close"].to_list() == source["close"].to_list()


def test_freqtrade_json_candles_import(tmp_path: Path) -> None:
    source = pl.read_parquet(real_file("freqtrade__XRP_ETH__1m.parquet"))
    rows = [
        [int(t.timestamp() * 1000), o, h, low, c, v] for t, o, h, low, c, v in source.iter_rows()
    ]
    path = tmp_path / "XRP_ETH-1m.json"
    path.write_text(json.dumps(rows))
    frame = _clean(path, "candles", "1m", allow_gaps=True)  # an illiquid pair: quiet minutes
    assert frame["timestamp"].to_list() == source["date"].dt.cast_time_unit("us").to_list()
    assert frame["volume"].to_list() == source["volume"].to_list()


def test_real_illiquid_minute_candles_have_their_gaps_reported() -> None:
    read = read_market_file(real_file("freqtrade__XRP_ETH__1m.parquet"), "candles")
    _, report = validate(read.frame, "candles", "1m")
    assert [p.rule for p in report.errors] == ["gap"]
    assert report.errors[0].count == 676


# Time formats and column names.


@pytest.mark.parametrize(
    ("factor", "unit"),
    [(1, "seconds"), (1_000, "milliseconds"), (1_000_000, "microseconds"), (10**9, "nanoseconds")],
)
def test_epoch_numbers_in_any_unit_give_the_same_times(
    tmp_path: Path, candles: CandleMaker, factor: int, unit: str
) -> None:
    frame = candles(5)
    seconds = frame["timestamp"].dt.epoch("s")
    path = tmp_path / "c.csv"
    frame.with_columns(timestamp=seconds * factor).write_csv(path)
    read = read_market_file(path, "candles")
    assert read.frame["timestamp"].to_list() == frame["timestamp"].to_list()
    assert any(unit in note for note in read.notes)


def test_iso_text_with_offsets_is_converted_to_utc(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Volume\n"
        "2024-01-01T02:00:00+02:00,1,2,0.5,1.5,10\n"
        "2024-01-01T01:00:00Z,1.5,2,1,1.8,11\n"
    )
    read = read_market_file(path, "candles")
    expected = [datetime(2024, 1, 1, 0, tzinfo=UTC), datetime(2024, 1, 1, 1, tzinfo=UTC)]
    assert read.frame["timestamp"].to_list() == expected


def test_column_names_match_case_insensitively(tmp_path: Path, candles: CandleMaker) -> None:
    frame = candles(4).rename(lambda c: c.upper() if c != "timestamp" else "Open_Time")
    path = tmp_path / "upper.parquet"
    frame.write_parquet(path)
    assert read_market_file(path, "candles").frame.height == 4


def test_a_missing_column_error_lists_what_was_found(tmp_path: Path, candles: CandleMaker) -> None:
    path = tmp_path / "no_close.csv"
    candles(3).drop("close").write_csv(path)
    with pytest.raises(DataFormatError, match="column 'close'") as error:
        read_market_file(path, "candles")
    assert "found: timestamp, open, high, low, volume" in str(error.value)


def test_unreadable_times_name_the_value_and_the_row(tmp_path: Path) -> None:
    path = tmp_path / "bad_time.csv"
    path.write_text("time,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\nyesterday,1,1,1,1,1\n")
    with pytest.raises(DataFormatError, match=r"'yesterday'.*data row 1"):
        read_market_file(path, "candles")


def test_an_unknown_file_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.xlsx"
    path.write_bytes(b"not really")
    with pytest.raises(DataFormatError, match="unknown file type"):
        read_market_file(path, "candles")


# import_file: validate, then store or refuse.


def _store_with_data(tmp_path: Path, key: DatasetKey) -> ParquetStore:
    store = ParquetStore(tmp_path / "store")
    store.write(key, make_candles(10, seed=1))
    return store


BAD_EDITS = {
    "nan_or_inf": lambda f: f.with_columns(close=pl.when(pl.int_range(pl.len()) == 3)
                                           .then(float("nan")).otherwise("close")),
    "negative_volume": lambda f: f.with_columns(volume=-pl.col("volume")),
    "high_below_body": lambda f: f.with_columns(high=pl.col("low")),
    "gap": lambda f: pl.concat([f[:5], f[8:]]),
    "duplicate_timestamp": lambda f: pl.concat([f, f[2:3]]),
    "off_grid": lambda f: f.with_columns(pl.col("timestamp") + pl.duration(minutes=1)),
}  # fmt: skip


@pytest.mark.parametrize("rule", sorted(BAD_EDITS))
def test_each_kind_of_bad_input_is_refused_and_writes_nothing(tmp_path: Path, rule: str) -> None:
    key = DatasetKey.of("BTC/USDT", "1h")
    store = _store_with_data(tmp_path, key)
    before = store.path(key).read_bytes()
    bad = BAD_EDITS[rule](make_candles(20, start=datetime(2024, 2, 1, tzinfo=UTC)))
    path = tmp_path / "bad.csv"
    bad.write_csv(path)
    with pytest.raises(DataValidationError) as error:
        import_file(path, store, key)
    assert rule in {p.rule for p in error.value.report.errors}
    assert "nothing was written" in str(error.value)
    assert store.path(key).read_bytes() == before
    assert not store.exists(DatasetKey.of("ETH/USDT", "1h"))


def test_repair_stores_the_good_rows_and_returns_the_dropped_ones(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path / "store")
    key = DatasetKey.of("BTC/USDT", "1h")
    frame = make_candles(20).with_columns(
        volume=pl.when(pl.int_range(pl.len()) == 19).then(-1.0).otherwise("volume")
    )
    path = tmp_path / "one_bad.parquet"
    frame.write_parquet(path)
    result = import_file(path, store, key, repair=True)
    assert result.dropped.height == 1 and result.dropped[ROW][0] == 19
    assert store.read(key).equals(frame[:19])


def test_repair_cannot_fill_a_gap_but_allow_gaps_accepts_it(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path / "store")
    key = DatasetKey.of("BTC/USDT", "1h")
    path = tmp_path / "gappy.parquet"
    pl.concat([make_candles(20)[:5], make_candles(20)[9:]]).write_parquet(path)
    with pytest.raises(DataValidationError, match="gap"):
        import_file(path, store, key, repair=True)
    assert not store.exists(key)
    result = import_file(path, store, key, allow_gaps=True)
    assert result.written is not None and result.written.rows_total == 16


def test_importing_the_same_file_twice_adds_nothing(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path / "store")
    key = DatasetKey.of("BTC/USDT", "1h")
    path = tmp_path / "c.parquet"
    make_candles(30).write_parquet(path)
    first = import_file(path, store, key)
    second = import_file(path, store, key)
    assert first.written is not None and first.written.rows_added == 30
    assert second.written is not None and second.written.rows_added == 0

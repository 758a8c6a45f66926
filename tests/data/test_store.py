"""Tests of the Parquet store (tradebrain.data.store): round trips, de-duplication, range reads,
DuckDB queries, dataset names, and atomic, serialised writes across processes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.exceptions import PanicException
from polars.testing import assert_frame_equal

from tradebrain.data.schemas import SCHEMAS, Kind
from tradebrain.data.store import DatasetKey, ParquetStore
from tradebrain.exceptions import StoreError, UserInputError

REPO_ROOT = Path(__file__).resolve().parents[2]
CANDLE_SCHEMA = SCHEMAS[Kind.CANDLES].columns
TRADE_SCHEMA = SCHEMAS[Kind.TRADES].columns
T0 = datetime(2024, 1, 1, tzinfo=UTC)
BTC_1M = DatasetKey.of("BTC/USDT", "1m")


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def candles(minutes: list[int], close: float | list[float] = 1.0) -> pl.DataFrame:
    """Return 1m candles at the given minutes after ``T0``, with distinctive float values."""
    closes = close if isinstance(close, list) else [close] * len(minutes)
    return pl.DataFrame(
        {
            "timestamp": [minute(m) for m in minutes],
            "open": [100.0 + m / 3 for m in minutes],
            "high": [101.123456789 + m for m in minutes],
            "low": [0.1 + m * 1e-9 for m in minutes],
            "close": closes,
            "volume": [1e-12 * (m + 1) for m in minutes],
        },
        schema=CANDLE_SCHEMA,
    )


def trades(rows: list[tuple[int, str, float]]) -> pl.DataFrame:
    """Return trades from ``(second after T0, id, price)`` rows."""
    return pl.DataFrame(
        [(T0 + timedelta(seconds=s), trade_id, price, 0.5, "buy") for s, trade_id, price in rows],
        schema=TRADE_SCHEMA,
        orient="row",
    )


@pytest.fixture
def store(tmp_path: Path) -> ParquetStore:
    return ParquetStore(tmp_path / "store")


def leftover_temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --- round trips and de-duplication --------------------------------------------------------


def test_write_then_read_keeps_exact_values_and_schema(store: ParquetStore) -> None:
    frame = candles(list(range(10)), close=[1 / 3 + i for i in range(10)])
    result = store.write(BTC_1M, frame)
    assert (result.rows_added, result.rows_total) == (10, 10)
    back = store.read(BTC_1M)
    assert back.schema == pl.Schema(CANDLE_SCHEMA)
    assert_frame_equal(back, frame, check_exact=True)


def test_write_conforms_naive_timestamps_extra_columns_and_integer_prices(
    store: ParquetStore,
) -> None:
    frame = candles([0, 1]).with_columns(
        pl.col("timestamp").dt.replace_time_zone(None),
        pl.col("close").cast(pl.Int64),
        pl.lit("x").alias("note"),
    )
    store.write(BTC_1M, frame)
    assert_frame_equal(store.read(BTC_1M), candles([0, 1]), check_exact=True)


def test_write_sorts_rows_by_timestamp(store: ParquetStore) -> None:
    store.write(BTC_1M, candles([5, 3, 9]))
    store.write(BTC_1M, candles([1, 7]))
    assert store.read(BTC_1M)["timestamp"].to_list() == [minute(m) for m in (1, 3, 5, 7, 9)]


def test_append_replaces_rows_with_the_same_timestamp_and_the_newest_copy_wins(
    store: ParquetStore,
) -> None:
    store.write(BTC_1M, candles([0, 1, 2], close=1.0))
    result = store.write(BTC_1M, candles([2, 3], close=2.0))
    assert (result.rows_added, result.rows_total) == (1, 4)
    assert store.read(BTC_1M)["close"].to_list() == [1.0, 1.0, 2.0, 2.0]


def test_the_last_copy_inside_one_batch_wins(store: ParquetStore) -> None:
    store.write(BTC_1M, candles([0, 0, 0], close=[1.0, 2.0, 3.0]))
    assert store.read(BTC_1M)["close"].to_list() == [3.0]


def test_replace_drops_the_stored_rows(store: ParquetStore) -> None:
    store.write(BTC_1M, candles([0, 1, 2]))
    store.write(BTC_1M, candles([7]), replace=True)
    assert store.read(BTC_1M)["timestamp"].to_list() == [minute(7)]


def test_trades_de_duplicate_by_id_not_by_timestamp(store: ParquetStore) -> None:
    key = DatasetKey.of("BTC/USDT", None, Kind.TRADES)
    store.write(key, trades([(0, "a", 100.0), (0, "b", 101.0), (1, "c", 102.0)]))
    result = store.write(key, trades([(1, "c", 102.5), (2, "d", 103.0)]))
    assert (result.rows_added, result.rows_total) == (1, 4)
    back = store.read(key)
    assert back.schema == pl.Schema(TRADE_SCHEMA)
    assert back["id"].to_list() == ["a", "b", "c", "d"]
    assert back["price"].to_list() == [100.0, 101.0, 102.5, 103.0]


# --- reads by time range ---------------------------------------------------------------------


def test_read_by_range_includes_the_start_and_excludes_the_end(store: ParquetStore) -> None:
    store.write(BTC_1M, candles(list(range(10))))
    back = store.read(BTC_1M, start=minute(2), end=minute(5))
    assert back["timestamp"].to_list() == [minute(2), minute(3), minute(4)]
    assert store.read(BTC_1M, start=minute(8))["timestamp"].to_list() == [minute(8), minute(9)]
    assert store.read(BTC_1M, end=minute(1))["timestamp"].to_list() == [minute(0)]


def test_read_treats_naive_bounds_as_utc_and_converts_other_zones(store: ParquetStore) -> None:
    store.write(BTC_1M, candles(list(range(10))))
    naive = store.read(BTC_1M, start=datetime(2024, 1, 1, 0, 2), end=datetime(2024, 1, 1, 0, 4))
    assert naive["timestamp"].to_list() == [minute(2), minute(3)]
    plus_two = timezone(timedelta(hours=2))
    zoned = store.read(BTC_1M, start=datetime(2024, 1, 1, 2, 7, tzinfo=plus_two))
    assert zoned["timestamp"].to_list() == [minute(7), minute(8), minute(9)]


def test_read_of_an_absent_dataset_says_how_to_get_it(store: ParquetStore) -> None:
    with pytest.raises(UserInputError, match="tradebrain data list"):
        store.read(BTC_1M)


def test_last_timestamp_is_the_newest_row_or_none(store: ParquetStore) -> None:
    assert store.last_timestamp(BTC_1M) is None
    store.write(BTC_1M, candles([4, 2, 9, 1]))
    assert store.last_timestamp(BTC_1M) == minute(9)


# --- DuckDB ---------------------------------------------------------------------------------


def test_sql_exposes_each_dataset_as_a_view(store: ParquetStore) -> None:
    eth = DatasetKey.of("ETH/USDT", "1m")
    store.write(BTC_1M, candles([0, 1, 2], close=[10.0, 11.0, 12.0]))
    store.write(eth, candles([1, 2, 3], close=[1.0, 2.0, 3.0]))
    joined = store.sql(
        "select b.close as btc, e.close as eth from b join e using (timestamp) order by timestamp",
        b=BTC_1M,
        e=eth,
    )
    assert joined.to_dict(as_series=False) == {"btc": [11.0, 12.0], "eth": [1.0, 2.0]}
    count = store.sql("select count(*) as n, sum(close) as total from b", b=BTC_1M)
    assert count.row(0) == (3, 33.0)


_SQL_IN_NEW_YORK = """
import json, sys
from datetime import UTC, datetime
import polars as pl
from tradebrain.data.store import DatasetKey, ParquetStore
store, key = ParquetStore(sys.argv[1]), DatasetKey.of("BTC/USDT", "1m")
store.write(key, pl.DataFrame({"timestamp": [datetime(2024, 1, 1, h, tzinfo=UTC) for h in (0, 6)],
    **{c: [1.0, 2.0] for c in ("open", "high", "low", "close", "volume")}}))
frame = store.sql("select * from c where timestamp >= '2024-01-01 03:00:00'", c=key)
print(json.dumps({"rows": frame.height, "zone": frame.schema["timestamp"].time_zone}))
"""


def test_sql_reads_literals_as_utc_and_returns_utc_timestamps_on_a_non_utc_machine(
    tmp_path: Path,
) -> None:
    environment = {**os.environ, "TZ": "America/New_York"}
    output = subprocess.run(
        [sys.executable, "-c", _SQL_IN_NEW_YORK, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=REPO_ROOT,
        timeout=60,
    ).stdout
    assert json.loads(output) == {"rows": 1, "zone": "UTC"}


# --- listing and info -----------------------------------------------------------------------


def test_keys_lists_every_dataset_sorted_and_ignores_foreign_files(store: ParquetStore) -> None:
    perp_funding = DatasetKey.of("BTC/USDT:USDT", "8h", Kind.FUNDING)
    eth_trades = DatasetKey.of("ETH/USDT", None, Kind.TRADES, exchange="okx")
    store.write(BTC_1M, candles([0]))
    store.write(perp_funding, pl.DataFrame({"timestamp": [T0], "funding_rate": [1e-4]}))
    store.write(eth_trades, trades([(0, "1", 2000.0)]))
    foreign = store.root / "binance" / "futures" / "BTC_USDT" / "1h" / "candles.parquet"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"not ours")
    (store.root / "notes.parquet").write_bytes(b"not ours either")
    listed = store.datasets()
    assert listed == [perp_funding, BTC_1M, eth_trades]
    assert [key.name for key in listed] == sorted(key.name for key in listed)


def test_keys_of_a_store_that_does_not_exist_yet_is_empty(tmp_path: Path) -> None:
    assert ParquetStore(tmp_path / "nowhere").datasets() == []


def test_info_counts_rows_span_and_gaps(store: ParquetStore) -> None:
    store.write(BTC_1M, candles([0, 1, 2, 5, 6, 10]))
    info = store.info(BTC_1M)
    assert (info.rows, info.first, info.last, info.gaps) == (6, minute(0), minute(10), 2)
    assert info.bytes == store.path(BTC_1M).stat().st_size > 0


def test_info_of_trades_counts_no_gaps(store: ParquetStore) -> None:
    key = DatasetKey.of("BTC/USDT", None, Kind.TRADES)
    store.write(key, trades([(0, "a", 1.0), (3600, "b", 1.0)]))
    assert store.info(key).gaps == 0


def test_info_of_an_empty_dataset_has_no_first_or_last(store: ParquetStore) -> None:
    store.write(BTC_1M, candles([]))
    info = store.info(BTC_1M)
    assert (info.rows, info.first, info.last, info.gaps) == (0, None, None, 0)


def test_info_of_an_absent_dataset_says_how_to_get_it(store: ParquetStore) -> None:
    with pytest.raises(UserInputError, match="not in the store"):
        store.info(BTC_1M)


def test_read_and_write_of_a_corrupt_file_raise_store_error(store: ParquetStore) -> None:
    store.write(BTC_1M, candles([0]))
    store.path(BTC_1M).write_bytes(b"PAR1 torn")
    with pytest.raises(StoreError, match=r"candles\.parquet"):
        store.read(BTC_1M)
    with pytest.raises(StoreError, match=r"candles\.parquet"):
        store.write(BTC_1M, candles([1]))
    assert store.path(BTC_1M).read_bytes() == b"PAR1 torn"


@pytest.mark.parametrize("method", ["info", "last_timestamp"])
def test_info_and_last_timestamp_of_a_corrupt_file_raise_store_error(
    store: ParquetStore, method: str
) -> None:
    store.write(BTC_1M, candles([0]))
    store.path(BTC_1M).write_bytes(b"PAR1 torn")
    with pytest.raises(StoreError):
        getattr(store, method)(BTC_1M)


# --- dataset keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "binance/spot/BTC_USDT/1h/candles",
        "binance/perp/ETH_USDT/8h/funding",
        "okx/spot/1000SHIB_USDT/tick/trades",
        "bybit/perp/XRP_USDT/1m/mark",
        "kraken/spot/BTC_USD/tick/book",
    ],
)
def test_dataset_name_parses_and_prints_back_unchanged(name: str) -> None:
    assert DatasetKey.parse(name).name == name
    assert DatasetKey.parse(f"/{name}.parquet").name == name


def test_parse_reads_the_parts_of_a_name() -> None:
    key = DatasetKey.parse("binance/perp/BTC_USDT/8h/funding")
    assert key == DatasetKey("binance", "perp", "BTC/USDT", "8h", Kind.FUNDING)
    assert key.symbol_path == "BTC_USDT"


def test_of_understands_ccxt_perpetual_symbols_and_normalises_case() -> None:
    key = DatasetKey.of("btc/usdt:USDT", "1h", exchange="Binance")
    assert key == DatasetKey("binance", "perp", "BTC/USDT", "1h", Kind.CANDLES)
    assert DatasetKey.of("BTC/USDT", None, "trades").timeframe == "tick"


@given(
    exchange=st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True),
    market=st.sampled_from(["spot", "perp"]),
    base=st.from_regex(r"[A-Z0-9]{1,10}", fullmatch=True),
    quote=st.from_regex(r"[A-Z0-9]{1,6}", fullmatch=True),
    timeframe=st.sampled_from(["1m", "5m", "15m", "1h", "4h", "1d", "1w", "tick"]),
    kind=st.sampled_from(list(Kind)),
)
def test_any_valid_key_survives_name_then_parse(
    exchange: str, market: str, base: str, quote: str, timeframe: str, kind: Kind
) -> None:
    if SCHEMAS[kind].has_timeframe:
        timeframe = "1h" if timeframe == "tick" else timeframe
    else:
        timeframe = "tick"
    key = DatasetKey(exchange, market, f"{base}/{quote}", timeframe, kind)
    assert DatasetKey.parse(key.name) == key


def test_a_key_whose_timeframe_does_not_fit_its_kind_is_refused() -> None:
    with pytest.raises(UserInputError, match="trades datasets need tick"):
        DatasetKey("binance", "spot", "BTC/USDT", "1h", Kind.TRADES)
    with pytest.raises(UserInputError, match="candles datasets need a timeframe"):
        DatasetKey("binance", "spot", "BTC/USDT", "tick", Kind.CANDLES)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("binance/spot/BTC_USDT/1h", "five parts"),
        ("binance/spot/BTC_USDT/1h/candles/extra", "five parts"),
        ("binance/futures/BTC_USDT/1h/candles", "market 'futures' is not one of spot, perp"),
        ("binance/spot/BTCUSDT/1h/candles", "BASE/QUOTE"),
        ("binance/spot/BTC_USDT/1x/candles", "timeframe '1x' is not understood"),
        ("binance/spot/BTC_USDT/1h/ohlcv", "unknown kind 'ohlcv'"),
        ("bin ance/spot/BTC_USDT/1h/candles", "exchange 'bin ance' may hold only"),
        ("binance/spot/BTC-USDT_X$/1h/candles", "symbol"),
    ],
)
def test_parse_rejects_malformed_names_and_says_why(name: str, says: str) -> None:
    with pytest.raises(UserInputError, match=says.replace("$", r"\$")):
        DatasetKey.parse(name)


@pytest.mark.parametrize("symbol", ["BTCUSDT", "BTC/USDT/X", "/USDT", "BTC USDT", ""])
def test_key_rejects_malformed_symbols(symbol: str) -> None:
    with pytest.raises(UserInputError, match="symbol"):
        DatasetKey("binance", "spot", symbol, "1h", Kind.CANDLES)


def test_key_rejects_a_symbol_without_a_quote_currency() -> None:
    with pytest.raises(UserInputError, match="symbol"):
        DatasetKey("binance", "spot", "BTC/", "1h", Kind.CANDLES)


def test_a_symbol_with_an_underscore_is_rejected_or_survives_name_then_parse() -> None:
    try:
        key = DatasetKey("binance", "spot", "A_B/USDT", "1h", Kind.CANDLES)
    except UserInputError:
        return
    assert DatasetKey.parse(key.name) == key


def test_key_rejects_an_unknown_market() -> None:
    with pytest.raises(UserInputError, match="market 'swap'"):
        DatasetKey("binance", "swap", "BTC/USDT", "1h", Kind.CANDLES)


# --- atomicity and locking ------------------------------------------------------------------


def test_a_write_that_fails_half_way_keeps_the_old_file_and_leaves_no_temp_file(
    store: ParquetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write(BTC_1M, candles([0, 1, 2]))
    before = store.path(BTC_1M).read_bytes()

    def write_some_then_fail(self: pl.DataFrame, file: Any, *args: Any, **kwargs: Any) -> None:
        file.write(b"PAR1" + b"\0" * 4096)
        file.flush()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", write_some_then_fail)
    with pytest.raises((OSError, StoreError)):
        store.write(BTC_1M, candles([3, 4]))
    monkeypatch.undo()

    assert store.path(BTC_1M).read_bytes() == before
    assert_frame_equal(store.read(BTC_1M), candles([0, 1, 2]), check_exact=True)
    assert leftover_temp_files(store.path(BTC_1M).parent) == []


_VERSION_ROWS = 200_000

# Child processes load this file by path for its helpers: argv[1] is this file.
_LOAD_THIS_FILE = textwrap.dedent(
    """
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("_store_test_helpers", sys.argv[1])
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    """
)

# Writes versions start, start + 1, ... of one big dataset until it is killed.
_WRITE_VERSIONS_FOREVER = _LOAD_THIS_FILE + textwrap.dedent(
    """
    from itertools import count
    from tradebrain.data.store import ParquetStore
    store = ParquetStore(sys.argv[2])
    print("ready", flush=True)
    for number in count(int(sys.argv[3])):
        store.write(helpers.BTC_1M, helpers.version(number), replace=True)
    """
)


def version(number: int) -> pl.DataFrame:
    """Return version ``number`` of a big candle dataset; every column depends on it."""
    index = pl.int_range(0, _VERSION_ROWS, eager=True)
    return pl.DataFrame(
        {
            "timestamp": pl.datetime_range(
                T0, minute(_VERSION_ROWS - 1), "1m", time_unit="us", time_zone="UTC", eager=True
            ),
            "open": pl.repeat(float(number), _VERSION_ROWS, eager=True),
            "high": (index + number).cast(pl.Float64),
            "low": (index - number).cast(pl.Float64) / 7,
            "close": (index * (number + 1)).cast(pl.Float64),
            "volume": (index % 97 + number).cast(pl.Float64),
        },
        schema=CANDLE_SCHEMA,
    )


def _kill_while_writing(
    root: Path, first_version: int, folder: Path, mid_write: bool, chance: random.Random
) -> None:
    """Start a writer, SIGKILL it mid-write (or at a random moment), and reap it."""
    stale = set(leftover_temp_files(folder))
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITE_VERSIONS_FOREVER, __file__, str(root), str(first_version)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        if mid_write:  # wait for the writer's temporary file to appear, then a little more
            deadline = time.monotonic() + 10
            while set(leftover_temp_files(folder)) <= stale and time.monotonic() < deadline:
                time.sleep(0.0002)
            time.sleep(chance.uniform(0, 0.02))
        else:
            time.sleep(chance.uniform(0, 0.3))
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        if writer.stdout is not None:
            writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL


def test_a_writer_killed_at_any_moment_leaves_a_complete_version(store: ParquetStore) -> None:
    store.write(BTC_1M, version(0), replace=True)
    folder = store.path(BTC_1M).parent
    newest = 0
    chance = random.Random(20240101)
    kills_mid_write = 0
    for attempt in range(8):
        _kill_while_writing(store.root, newest + 1, folder, attempt % 2 == 0, chance)
        kills_mid_write += bool(leftover_temp_files(folder))
        frame = store.read(BTC_1M)
        found = int(frame["open"][0])
        assert_frame_equal(frame, version(found), check_exact=True)
        assert found >= newest
        newest = found
    assert newest > 0, "no write ever completed; the kill test proved nothing"
    assert kills_mid_write, "no kill landed mid-write; the kill test proved nothing"
    # A killed writer's lock is released with its process; the next write clears its temp files.
    store.write(BTC_1M, candles([_VERSION_ROWS + 5]))
    assert store.read(BTC_1M).height == _VERSION_ROWS + 1
    assert store.datasets() == [BTC_1M]
    assert leftover_temp_files(folder) == []


def test_reads_while_another_process_rewrites_the_file_always_see_a_complete_version(
    store: ParquetStore,
) -> None:
    store.write(BTC_1M, version(0), replace=True)
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITE_VERSIONS_FOREVER, __file__, str(store.root), "1"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    failures: list[str] = []
    reads = 0
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 4
        while not failures and time.monotonic() < deadline:
            reads += 1
            try:
                frame = store.read(BTC_1M, start=T0) if reads % 2 else store.read(BTC_1M)
                store.last_timestamp(BTC_1M)
                store.info(BTC_1M)
            except (pl.exceptions.PolarsError, StoreError, PanicException) as error:
                failures.append(f"read {reads}: {error!r}"[:300])
                continue
            assert_frame_equal(frame, version(int(frame["open"][0])), check_exact=True)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        if writer.stdout is not None:
            writer.stdout.close()
    assert failures == [], f"{len(failures)} of {reads} reads failed"


_APPEND_BATCHES = _LOAD_THIS_FILE + textwrap.dedent(
    """
    import time
    from pathlib import Path
    from tradebrain.data.store import ParquetStore
    store, parity, go = ParquetStore(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    while not go.exists():
        time.sleep(0.001)
    for batch in range(60):
        minutes = [4 * (batch * 2 + parity) + i for i in range(4)]
        store.write(helpers.BTC_1M, helpers.candles(minutes))
    """
)


def test_two_processes_appending_at_once_lose_no_rows(store: ParquetStore, tmp_path: Path) -> None:
    go = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _APPEND_BATCHES,
                __file__,
                str(store.root),
                str(parity),
                str(go),
            ],
            cwd=REPO_ROOT,
        )
        for parity in (0, 1)
    ]
    go.touch()
    for writer in writers:
        assert writer.wait(timeout=60) == 0
    back = store.read(BTC_1M)
    assert back["timestamp"].to_list() == [minute(m) for m in range(2 * 60 * 4)]
    assert_frame_equal(back, candles(list(range(2 * 60 * 4))), check_exact=True)


# --- the store as a model of a dictionary -----------------------------------------------------

candle_batches = st.lists(
    st.lists(
        st.tuples(st.integers(0, 40), st.floats(allow_nan=False, allow_infinity=False)),
        max_size=12,
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(batches=candle_batches)
def test_appends_hold_the_sorted_union_with_the_newest_value_per_timestamp(
    batches: list[list[tuple[int, float]]],
) -> None:
    newest: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as root:
        store = ParquetStore(root)
        for batch in batches:
            before = len(newest)
            newest.update(batch)
            result = store.write(BTC_1M, candles([m for m, _ in batch], [c for _, c in batch]))
            assert (result.rows_added, result.rows_total) == (len(newest) - before, len(newest))
        expected = candles(sorted(newest), [newest[m] for m in sorted(newest)])
        assert_frame_equal(store.read(BTC_1M), expected, check_exact=True)

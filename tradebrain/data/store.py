"""The Parquet store: one file per dataset (exchange / market / symbol / timeframe / kind).

Layout under the store root::

    binance/spot/BTC_USDT/1h/candles.parquet
    binance/perp/BTC_USDT/8h/funding.parquet
    okx/spot/ETH_USDT/tick/trades.parquet

A dataset's *name* is its path without the suffix (``binance/spot/BTC_USDT/1h/candles``).
Writes are atomic: the new content goes to a temporary file in the same folder, is flushed to
disk, and replaces the old file with one ``os.replace``; a crash at any point leaves either the
old file or the new one, never a mix. A lock file serialises writers of the same dataset so two
appends never lose each other's rows.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from tradebrain.core.atomic_write import write_parquet_atomic
from tradebrain.data.schemas import Kind, conform, schema_for
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.exceptions import StoreError, UserInputError

MARKETS = ("spot", "perp")
NO_TIMEFRAME = "tick"
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class DatasetKey:
    """Identifies one dataset in the store."""

    exchange: str
    market: str
    symbol: str  # "BTC/USDT"
    timeframe: str  # "1h"; "tick" for kinds without a timeframe (trades, book)
    kind: Kind

    def __post_init__(self) -> None:
        if self.market not in MARKETS:
            raise UserInputError(f"market {self.market!r} is not one of {', '.join(MARKETS)}")
        base, _, quote = self.symbol.partition("/")
        if not base or not quote or "/" in quote or "_" in self.symbol:
            raise UserInputError(
                f"symbol {self.symbol!r} must look like BASE/QUOTE, for example BTC/USDT"
            )
        for label, part in (("exchange", self.exchange), ("symbol", self.symbol_path)):
            if not _PART.match(part):
                raise UserInputError(
                    f"{label} {part!r} may hold only letters, digits, '.', '_', '-'"
                )
        if schema_for(self.kind).has_timeframe == (self.timeframe == NO_TIMEFRAME):
            needed = "a timeframe such as 1h" if self.timeframe == NO_TIMEFRAME else NO_TIMEFRAME
            raise UserInputError(
                f"{self.kind.value} datasets need {needed}, not {self.timeframe!r}"
            )
        if self.timeframe != NO_TIMEFRAME:
            timeframe_seconds(self.timeframe)

    @classmethod
    def of(
        cls,
        symbol: str,
        timeframe: str | None,
        kind: Kind | str = Kind.CANDLES,
        exchange: str = "binance",
        market: str = "spot",
    ) -> DatasetKey:
        """Build a key, accepting ccxt-style perpetual symbols (``BTC/USDT:USDT``)."""
        if ":" in symbol:
            symbol, market = symbol.split(":", 1)[0], "perp"
        return cls(exchange.lower(), market, symbol.upper(), timeframe or NO_TIMEFRAME, Kind(kind))

    @classmethod
    def parse(cls, name: str) -> DatasetKey:
        """Parse a dataset name such as ``binance/spot/BTC_USDT/1h/candles``."""
        parts = name.strip("/").removesuffix(".parquet").split("/")
        if len(parts) != 5:
            raise UserInputError(
                f"dataset name {name!r} must have five parts, "
                "exchange/market/BASE_QUOTE/timeframe/kind, e.g. binance/spot/BTC_USDT/1h/candles"
            )
        exchange, market, symbol, timeframe, kind = parts
        try:
            return cls(exchange, market, symbol.replace("_", "/", 1), timeframe, Kind(kind))
        except ValueError:
            raise UserInputError(f"dataset {name!r}: unknown kind {kind!r}") from None

    @property
    def symbol_path(self) -> str:
        return self.symbol.replace("/", "_")

    @property
    def name(self) -> str:
        return (
            f"{self.exchange}/{self.market}/{self.symbol_path}/{self.timeframe}/{self.kind.value}"
        )


@dataclass(frozen=True)
class DatasetInfo:
    """What ``tradebrain data list`` shows about one dataset."""

    key: DatasetKey
    rows: int
    first: datetime | None
    last: datetime | None
    gaps: int
    bytes: int


@dataclass(frozen=True)
class WriteResult:
    """Outcome of one write: rows new to the store, and rows in the dataset afterwards."""

    key: DatasetKey
    rows_added: int
    rows_total: int


class ParquetStore:
    """Market data as Parquet files under ``root``; see the module docstring for the layout."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, key: DatasetKey) -> Path:
        return self.root / f"{key.name}.parquet"

    def exists(self, key: DatasetKey) -> bool:
        return self.path(key).exists()

    def write(self, key: DatasetKey, frame: pl.DataFrame, *, replace: bool = False) -> WriteResult:
        """Append ``frame`` to the dataset (or replace it), de-duplicated and sorted.

        Rows with the same key as stored rows (the timestamp for candles and funding, the trade id
        for trades) replace the stored ones: the newest copy of a row wins.
        """
        schema = schema_for(key.kind)
        new = conform(frame, key.kind)
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock(path):
            self._remove_stale_temporaries(path)
            old = self._read_file(path) if path.exists() and not replace else schema.empty()
            combined = pl.concat([old, new], how="vertical")
            combined = combined.unique(subset=list(schema.key), keep="last", maintain_order=True)
            combined = combined.sort("timestamp", maintain_order=True)
            write_parquet_atomic(combined, path)
        return WriteResult(key, combined.height - old.height, combined.height)

    def read(
        self,
        key: DatasetKey,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pl.DataFrame:
        """Return the rows with ``start <= timestamp < end`` (either bound may be omitted)."""

        def in_range(scan: pl.LazyFrame) -> pl.LazyFrame:
            if start is not None:
                scan = scan.filter(pl.col("timestamp") >= _utc(start))
            if end is not None:
                scan = scan.filter(pl.col("timestamp") < _utc(end))
            return scan

        frame, _ = self._collect(key, in_range)
        return frame

    def sql(self, query: str, **datasets: DatasetKey) -> pl.DataFrame:
        """Run a DuckDB query in which each keyword names a dataset as a view.

        ``store.sql("select * from c where timestamp >= '2024-01-01'", c=key)``
        """
        import duckdb  # only here: importing it costs every command a tenth of a second

        with duckdb.connect() as connection:
            connection.execute("SET TimeZone = 'UTC'")  # literals and results in UTC, not local
            for view, key in datasets.items():
                path = str(self.path(key)).replace("'", "''")
                connection.execute(f"create view {view} as select * from read_parquet('{path}')")
            table = connection.sql(query).to_arrow_table()
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def last_timestamp(self, key: DatasetKey) -> datetime | None:
        """Return the newest stored timestamp of the dataset, or None when it is empty/absent."""
        if not self.path(key).exists():
            return None
        newest, _ = self._collect(key, lambda scan: scan.select(pl.col("timestamp").max()))
        value = newest.item()
        return value if isinstance(value, datetime) else None

    def datasets(self) -> list[DatasetKey]:
        """Return every dataset in the store, sorted by name."""
        if not self.root.exists():
            return []
        found = []
        for path in sorted(self.root.glob("*/*/*/*/*.parquet")):
            name = path.relative_to(self.root).as_posix()
            try:
                found.append(DatasetKey.parse(name))
            except UserInputError:
                continue  # not ours; leave it alone
        return found

    def info(self, key: DatasetKey) -> DatasetInfo:
        """Return rows, first/last timestamp and the number of candle gaps of a dataset."""
        frame, size = self._collect(key, lambda scan: scan.select("timestamp"))
        stamps = frame["timestamp"]
        gaps = 0
        if key.timeframe != NO_TIMEFRAME and stamps.len() > 1:
            step = stamps.diff().dt.total_seconds().drop_nulls()
            gaps = int((step > timeframe_seconds(key.timeframe)).sum())
        return DatasetInfo(
            key=key,
            rows=stamps.len(),
            first=stamps.min() if stamps.len() else None,  # type: ignore[arg-type]
            last=stamps.max() if stamps.len() else None,  # type: ignore[arg-type]
            gaps=gaps,
            bytes=size,
        )

    def _collect(
        self, key: DatasetKey, query: Callable[[pl.LazyFrame], pl.LazyFrame]
    ) -> tuple[pl.DataFrame, int]:
        """Run ``query`` on the dataset's file; return the result and the file's size.

        The file is opened once and read through that handle: a writer's ``os.replace`` during
        the read then cannot make the footer and the pages come from different versions.
        """
        path = self.path(key)
        try:
            with open(path, "rb") as handle:
                frame = query(pl.scan_parquet(handle)).collect()
                return frame, os.fstat(handle.fileno()).st_size
        except FileNotFoundError:
            raise UserInputError(
                f"dataset {key.name} is not in the store at {self.root}; "
                "see `tradebrain data list`, or import/download it first"
            ) from None
        except (pl.exceptions.ComputeError, OSError) as error:
            raise StoreError(f"cannot read {path}: {error}; restore it from a backup") from None

    @staticmethod
    def _remove_stale_temporaries(path: Path) -> None:
        """Delete temp files a killed writer left behind; call only while holding the lock."""
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)

    def _read_file(self, path: Path) -> pl.DataFrame:
        try:
            return pl.read_parquet(path)
        except (pl.exceptions.ComputeError, OSError) as error:
            raise StoreError(f"cannot read {path}: {error}; restore it from a backup") from None

    @contextmanager
    def _lock(self, path: Path) -> Iterator[None]:
        lock_path = path.with_name(f".{path.name}.lock")
        with open(lock_path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

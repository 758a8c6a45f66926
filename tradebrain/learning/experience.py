"""The experience log: every decision, order, fill and closed trade of a run, as Parquet.

The state store is the durable, write-ahead record of a run (one transaction per closed
candle); the experience log is its research copy, made from it by :meth:`ExperienceLog.export`
and read with polars (:meth:`ExperienceLog.read`) or DuckDB (:meth:`ExperienceLog.glob`).
Because an export can always be redone from the store, nothing is lost across ``kill -9``.

Layout, partitioned by the UTC day of each row's time (hive style)::

    {root}/decisions/date=2024-01-01/{run}.parquet    decision timestamp (the candle's open)
    {root}/orders/date=.../{run}.parquet              order created_at
    {root}/fills/date=.../{run}.parquet               fill timestamp
    {root}/trades/date=.../{run}.parquet              trade exit_time
    {root}/_watermarks/{run}.json                     where the next export resumes

``{run}`` is the run's name with every character other than letters, digits, ``-``, ``_``,
``.`` and ``~`` percent-encoded (``paper:1`` -> ``paper%3A1``), so two runs never share a file.
A run's file of decisions also holds the decisions of its shadow runs (candidate models whose
decisions are stored under ``f"{run}:shadow:v{version}"``), flagged by ``shadow`` and
``model_version``.

How an export stays exact when it is interrupted at any point:

- it reads from the store only what may be new: per kind, per (shadow) run and per symbol,
  the rows at or after the newest time it exported minus ``overlap`` (the watermark);
- each day file it touches is read, merged with the new rows, de-duplicated by the row's key
  (orders keep their newest ``updated_at``: an order changes status), sorted, and written
  atomically (a temporary file beside it, fsync, ``os.replace``) only when its rows changed;
- the watermark is written after every day file, so a crash in between leaves the old
  watermark: the next export reads those rows again and the merge drops what it already has.
  It never loses or duplicates a row.

One export of a run runs at a time (a lock file); the root holds the copy of one state store
(a watermark written from another store is ignored, and the next export reads everything).

>>> log = ExperienceLog(home / "experience")
>>> log.export(store, "paper-1")
{'decisions': 120, 'orders': 8, 'fills': 8, 'trades': 4}
>>> duckdb.sql(f"select * from read_parquet('{log.glob('fills')}', hive_partitioning=true)")
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl

from tradebrain.core.atomic_write import write_parquet_atomic, write_text_atomic
from tradebrain.exceptions import StoreError, UserInputError
from tradebrain.state import StateStore
from tradebrain.state.records import from_micros, to_micros

KINDS = ("decisions", "orders", "fills", "trades")
"""The kinds of rows the experience log keeps, each in its own folder."""

SHADOW_MARK = ":shadow:"
"""A shadow run is named ``f"{run}{SHADOW_MARK}v{version}"``."""

_TIME = pl.Datetime("us", "UTC")
_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "decisions": {
        "run": pl.String(),
        "symbol": pl.String(),
        "timestamp": _TIME,
        "action": pl.String(),
        "confidence": pl.Float64(),
        "regime": pl.String(),
        "shadow": pl.Boolean(),
        "model_version": pl.String(),
        "votes": pl.String(),  # JSON: model name -> [p_down, p_flat, p_up]
        "reasons": pl.List(pl.String()),
        "document": pl.String(),  # JSON: the whole decision as the store keeps it
    },
    "orders": {
        "run": pl.String(),
        "client_id": pl.String(),
        "symbol": pl.String(),
        "side": pl.String(),
        "order_type": pl.String(),
        "quantity": pl.Float64(),
        "status": pl.String(),
        "created_at": _TIME,
        "updated_at": _TIME,
        "limit_price": pl.Float64(),
        "stop_price": pl.Float64(),
        "target_price": pl.Float64(),
        "trigger_price": pl.Float64(),
        "reduce_only": pl.Boolean(),
        "tag": pl.String(),
        "reason": pl.String(),
        "exchange_id": pl.String(),
        "filled_quantity": pl.Float64(),
        "confidence": pl.Float64(),
    },
    "fills": {
        "run": pl.String(),
        "fill_id": pl.String(),
        "client_id": pl.String(),
        "symbol": pl.String(),
        "side": pl.String(),
        "quantity": pl.Float64(),
        "price": pl.Float64(),
        "fee": pl.Float64(),
        "liquidity": pl.String(),
        "tag": pl.String(),
        "timestamp": _TIME,
        "slippage": pl.Float64(),
    },
    "trades": {
        "run": pl.String(),
        "trade_id": pl.String(),
        "symbol": pl.String(),
        "side": pl.String(),
        "entry_time": _TIME,
        "exit_time": _TIME,
        "entry_price": pl.Float64(),
        "exit_price": pl.Float64(),
        "quantity": pl.Float64(),
        "pnl": pl.Float64(),
        "fees": pl.Float64(),
        "funding": pl.Float64(),
        "exit_reason": pl.String(),
        "r_multiple": pl.Float64(),  # null where the trade had no risk defined
    },
}
_PARTITION = {
    "decisions": "timestamp",
    "orders": "created_at",
    "fills": "timestamp",
    "trades": "exit_time",
}
# The column StateStore.rows_since filters on: what moves forward when a row is new or changed.
_NEWEST = {
    "decisions": "timestamp",
    "orders": "updated_at",
    "fills": "timestamp",
    "trades": "exit_time",
}
_KEY = {
    "decisions": ("run", "symbol", "timestamp"),
    "orders": ("run", "client_id"),
    "fills": ("run", "fill_id"),
    "trades": ("run", "trade_id"),
}
_WATERMARKS = "_watermarks"
_WATERMARK_FORMAT = 1

# kind -> source run -> symbol -> newest exported time (epoch microseconds)
Watermark = dict[str, dict[str, dict[str, int]]]


def file_name(run: str) -> str:
    """Return the file stem of ``run`` in the log (percent-encoded, never hidden).

    Raises
    ------
    UserInputError
        ``run`` is empty.
    """
    if not run:
        raise UserInputError("the run name is empty; name the run to export, e.g. 'paper-1'")
    encoded = quote(run, safe="-_.~")
    return "%2E" + encoded[1:] if encoded.startswith(".") else encoded


def _check_kind(kind: str) -> None:
    if kind not in _SCHEMAS:
        raise UserInputError(f"the experience log has no kind {kind!r}; choose one of {KINDS}")


def _empty(kind: str) -> pl.DataFrame:
    return pl.DataFrame(schema=_SCHEMAS[kind])


def _sorted(kind: str, frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort([_PARTITION[kind], *_KEY[kind]], maintain_order=True)


def _deduplicated(kind: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Return one row per key: the last one, or for orders the newest ``updated_at`` (ties:
    the last one, i.e. the store's over the file's)."""
    if kind == "orders":
        frame = frame.sort("updated_at", maintain_order=True)
    return _sorted(kind, frame.unique(subset=list(_KEY[kind]), keep="last", maintain_order=True))


def _shadow_version(source: str, document: dict[str, Any]) -> str | None:
    version = document.get("model_version")
    if version is not None:
        return str(version)
    _, _, suffix = source.partition(SHADOW_MARK)
    return suffix.removeprefix("v") or None


def _reasons(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(reason) for reason in value]


def _decision_row(run: str, row: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(row["document"])
    shadow = row["run"] != run
    return {
        "run": row["run"],
        "symbol": row["symbol"],
        "timestamp": row["timestamp"],
        "action": row["action"],
        "confidence": row["confidence"],
        "regime": row["regime"],
        "shadow": shadow,
        "model_version": _shadow_version(row["run"], document) if shadow else None,
        "votes": json.dumps(document.get("votes") or {}),
        "reasons": _reasons(document.get("reasons")),
        "document": row["document"],
    }


def _frame(kind: str, run: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Return the store's ``rows`` of one kind as a frame of the log's schema."""
    if kind == "decisions":
        rows = [_decision_row(run, row) for row in rows]
    schema = _SCHEMAS[kind]
    if not rows:
        return _empty(kind)
    return pl.DataFrame(
        {name: [row[name] for row in rows] for name in schema}, schema=schema, strict=False
    )


def _fsync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _make_folder(folder: Path) -> None:
    """Make ``folder`` and its missing parents, durably (each new entry's parent is synced),
    so a day file cannot outlive a power cut in a folder that did not."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for created in reversed(missing):
        created.mkdir(exist_ok=True)
        _fsync_folder(created.parent)


class ExperienceLog:
    """The append-only, day-partitioned Parquet copy of runs' decisions, orders, fills and
    closed trades (see the module docstring for the layout and the watermark).

    Parameters
    ----------
    root
        The log's folder, e.g. ``TRADEBRAIN_HOME / "experience"``; made on the first export.
    overlap
        How far before the newest exported time an export reads the store again, per kind,
        run and symbol: rows recorded late (a fill reconciled after a restart, a symbol whose
        candle came late) are still exported when they are at most this much older than the
        newest row already exported of their symbol. Re-read rows cost time, never duplicates.
    """

    def __init__(self, root: Path, *, overlap: timedelta = timedelta(days=1)) -> None:
        if overlap < timedelta(0):
            raise UserInputError(f"overlap must be >= 0; got {overlap}")
        self.root = Path(root)
        self.overlap = overlap

    def __repr__(self) -> str:
        return f"ExperienceLog({str(self.root)!r})"

    # -- writing ---------------------------------------------------------------------------

    def export(self, store: StateStore, run: str) -> dict[str, int]:
        """Copy what is new in the store for ``run`` into the log; return the rows written.

        Parameters
        ----------
        store
            The state store the run is recorded in.
        run
            The production run's name; the decisions of its shadow runs come with it.

        Returns
        -------
        dict
            Kind -> rows newly written or changed (an order whose status changed counts once);
            all zero, and no file written, when nothing changed since the last export.

        Raises
        ------
        UserInputError
            ``run`` is empty or is a shadow run's name.
        StoreError
            The store cannot be read, or a day file of the log cannot be read.
        """
        name = file_name(run)
        if SHADOW_MARK in run:
            production = run.partition(SHADOW_MARK)[0]
            raise UserInputError(
                f"{run!r} is a shadow run; export its production run {production!r}, whose "
                "decisions file holds the shadow decisions too"
            )
        with self._locked(name):
            self._remove_stale_temporaries(name)
            old_mark = self._load_watermark(name, store, run)
            mark: Watermark = {k: {s: dict(v) for s, v in by.items()} for k, by in old_mark.items()}
            sources = {"decisions": [run, *store.shadow_runs(run)]}
            written: dict[str, int] = {}
            for kind in KINDS:
                rows: list[dict[str, Any]] = []
                for source in sources.get(kind, [run]):
                    newest = mark.setdefault(kind, {}).setdefault(source, {})
                    since = {
                        symbol: from_micros(micros) - self.overlap
                        for symbol, micros in newest.items()
                    }
                    found = store.rows_since(source, kind, since)
                    for row in found:
                        micros = to_micros(row[_NEWEST[kind]])
                        newest[row["symbol"]] = max(newest.get(row["symbol"], micros), micros)
                    rows += found
                written[kind] = self._merge(kind, name, _frame(kind, run, rows))
            mark = {
                k: kept for k, by in mark.items() if (kept := {s: v for s, v in by.items() if v})
            }
            if mark != old_mark:
                self._write_watermark(name, store, run, mark)
        return written

    def _merge(self, kind: str, name: str, frame: pl.DataFrame) -> int:
        """Merge ``frame`` into its day files; return the rows new or changed."""
        if frame.is_empty():
            return 0
        changed = 0
        days = frame.with_columns(_day=pl.col(_PARTITION[kind]).dt.date())
        for (day,), part in sorted(days.partition_by("_day", as_dict=True).items()):
            path = self.root / kind / f"date={day.isoformat()}" / f"{name}.parquet"
            old = self._read_file(path, kind) if path.exists() else None
            new = part.drop("_day")
            merged = _deduplicated(kind, new if old is None else pl.concat([old, new]))
            if old is not None and merged.equals(old):
                continue
            kept = set() if old is None else set(old.hash_rows().to_list())
            changed += sum(1 for h in merged.hash_rows().to_list() if h not in kept)
            _make_folder(path.parent)
            write_parquet_atomic(merged, path)
        return changed

    # -- reading ---------------------------------------------------------------------------

    def read(self, kind: str, run: str | None = None) -> pl.DataFrame:
        """Return every row of ``kind`` in the log (of ``run`` and its shadow runs when given),
        all days, ordered by time then key.

        Timestamps are ``Datetime("us", "UTC")``. Decisions carry ``shadow`` (bool) and
        ``model_version`` (text; null for production), ``votes`` and ``document`` as JSON
        text and ``reasons`` as a list of text. An empty frame of the kind's columns when
        nothing was exported.
        """
        _check_kind(kind)
        files = self._files(kind, run)
        if not files:
            return _empty(kind)
        return _sorted(kind, pl.concat([self._read_file(path, kind) for path in files]))

    def counts(self, run: str | None = None) -> dict[str, int]:
        """Return kind -> rows in the log (of ``run`` and its shadow runs when given)."""
        counts: dict[str, int] = {}
        for kind in KINDS:
            files = self._files(kind, run)
            counts[kind] = (
                int(pl.scan_parquet(files).select(pl.len()).collect().item()) if files else 0
            )
        return counts

    def glob(self, kind: str) -> str:
        """Return the glob of ``kind``'s files, for DuckDB:
        ``read_parquet(glob, hive_partitioning=true)`` adds the ``date`` column.

        DuckDB refuses a glob that matches no file: export first.
        """
        _check_kind(kind)
        return (self.root / kind / "date=*" / "*.parquet").as_posix()

    def _files(self, kind: str, run: str | None) -> list[Path]:
        pattern = "*.parquet" if run is None else f"{file_name(run)}.parquet"
        return sorted((self.root / kind).glob(f"date=*/{pattern}"))

    def _read_file(self, path: Path, kind: str) -> pl.DataFrame:
        schema = _SCHEMAS[kind]
        try:
            frame = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as error:
            raise StoreError(
                f"cannot read the experience file {path}: {error}; delete it and export again "
                "(the state store still holds every row)"
            ) from None
        missing = [column for column in schema if column not in frame.columns]
        if missing:
            raise StoreError(
                f"the experience file {path} lacks the columns {missing}; delete it and export "
                "again (the state store still holds every row)"
            )
        return frame.select(list(schema)).cast(pl.Schema(schema))

    # -- watermark, lock and leftovers -----------------------------------------------------

    def _watermark_path(self, name: str) -> Path:
        return self.root / _WATERMARKS / f"{name}.json"

    def _load_watermark(self, name: str, store: StateStore, run: str) -> Watermark:
        """Return the saved watermark, or an empty one (read everything) when it is missing,
        unreadable, or was written from another store or run."""
        try:
            saved = json.loads(self._watermark_path(name).read_text(encoding="utf-8"))
            if (saved["format"], saved["store"], saved["run"]) != (
                _WATERMARK_FORMAT,
                store.url,
                run,
            ):
                return {}
            return {
                str(kind): {
                    str(source): {str(symbol): int(micros) for symbol, micros in by.items()}
                    for source, by in sources.items()
                }
                for kind, sources in saved["newest"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def _write_watermark(self, name: str, store: StateStore, run: str, mark: Watermark) -> None:
        document = {"format": _WATERMARK_FORMAT, "store": store.url, "run": run, "newest": mark}
        write_text_atomic(
            json.dumps(document, indent=1, sort_keys=True), self._watermark_path(name)
        )

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        folder = self.root / _WATERMARKS
        _make_folder(folder)
        with open(folder / f".{name}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _remove_stale_temporaries(self, name: str) -> None:
        """Delete temporary files a killed export left; call only while holding the lock."""
        for kind in KINDS:
            for stale in (self.root / kind).glob(f"date=*/.{name}.parquet.*.tmp"):
                stale.unlink(missing_ok=True)
        for stale in (self.root / _WATERMARKS).glob(f".{name}.json.*.tmp"):
            stale.unlink(missing_ok=True)


__all__ = ["KINDS", "SHADOW_MARK", "ExperienceLog", "file_name"]

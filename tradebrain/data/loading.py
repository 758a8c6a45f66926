"""Load market data named on a command line: a file path or a stored dataset's name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from tradebrain.data.importing import read_market_file
from tradebrain.data.schemas import Kind
from tradebrain.data.store import DatasetKey, ParquetStore
from tradebrain.data.validation import ROW, validate
from tradebrain.exceptions import DataValidationError, UserInputError

_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


@dataclass(frozen=True)
class LoadedData:
    """Validated data, sorted by time, in its kind's schema."""

    frame: pl.DataFrame
    kind: Kind
    timeframe: str | None
    source: str


def infer_timeframe(timestamps: pl.Series) -> str:
    """Return the most common spacing of ``timestamps`` as a timeframe string (``"1h"``)."""
    steps = timestamps.sort().diff().dt.total_seconds().drop_nulls()
    steps = steps.filter(steps > 0)
    if steps.len() == 0:
        raise UserInputError("cannot infer the timeframe from fewer than two distinct timestamps")
    seconds = int(steps.mode().sort()[0])
    for unit, size in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every spacing is a whole number of seconds")


def load_market_data(
    spec: str | Path,
    store: ParquetStore,
    kind: Kind | str = Kind.CANDLES,
    *,
    timeframe: str | None = None,
    allow_gaps: bool = False,
) -> LoadedData:
    """Load ``spec``: a file (read and validated) or a dataset name from ``store``.

    Candle files without an explicit ``timeframe`` get the most common spacing between rows.
    Raises :class:`DataValidationError` when a file breaks a rule.
    """
    kind = Kind(kind)
    path = Path(spec)
    if path.exists():
        read = read_market_file(path, kind)
        candles = kind in (Kind.CANDLES, Kind.MARK)
        if candles and timeframe is None:
            timeframe = infer_timeframe(read.frame["timestamp"])
        frame, report = validate(
            read.frame,
            kind,
            timeframe if candles else None,
            allow_gaps=allow_gaps,
            source=read.source,
            first_line=read.first_line,
        )
        if not report.ok:
            raise DataValidationError(
                f"{path} is not clean; fix it or run `tradebrain data validate {path} --repair`\n"
                + report.summary(),
                report,
            )
        return LoadedData(frame.drop(ROW), kind, timeframe, str(path))
    if str(spec).count("/") == 4:
        key = DatasetKey.parse(str(spec))
        return LoadedData(store.read(key), key.kind, key.timeframe, key.name)
    raise UserInputError(
        f"{spec!r} is neither a file nor a stored dataset name "
        "(exchange/market/BASE_QUOTE/timeframe/kind); see `tradebrain data list`"
    )


def load_planted_edge(source: str, candles: pl.DataFrame) -> np.ndarray | None:
    """Return a synthetic world's known expected return per candle, or None for other data.

    A file written by ``tradebrain data synth`` has a ``<stem>.regimes.parquet`` beside it
    whose ``oracle_expected_return`` column is the planted edge. It is lined up with
    ``candles`` by timestamp; a candle the sidecar lacks gets 0 (no known edge there).
    """
    path = Path(source)
    sidecar = path.with_name(path.name.removesuffix(".parquet") + ".regimes.parquet")
    if not path.exists() or not sidecar.exists():
        return None
    regimes = pl.read_parquet(sidecar, columns=["timestamp", "oracle_expected_return"])
    lined_up = candles.select("timestamp").join(regimes, on="timestamp", how="left")
    edge: np.ndarray = lined_up["oracle_expected_return"].fill_null(0.0).to_numpy()
    return edge.astype(np.float64)

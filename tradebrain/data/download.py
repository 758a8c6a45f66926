"""Download candles, funding rates and trades from an exchange through ccxt into the store.

Every dataset is fetched page by page from where the store ends (or from ``since`` for a new
dataset), so a download that was stopped resumes where it was. Pages are written to the
:class:`~tradebrain.data.store.ParquetStore` every few pages and once more when the dataset ends
or fails; each write is atomic, so the store never holds a half-written file.

Temporary exchange trouble (network errors, HTTP 429, 5xx) is retried with exponential backoff;
what is still failing after the last retry raises :class:`ExchangeUnavailableError`, and a
request the exchange refuses (unknown symbol, unsupported timeframe) raises
:class:`UserInputError`. A host that cannot be reached at all fails at once, before anything
is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import ccxt
import polars as pl

from tradebrain.data.exchanges import (
    ExchangeLink,
    RetryPolicy,
    check_listing,
    listed_ms,
    make_exchange,
    page_limit,
)
from tradebrain.data.schemas import TIMESTAMP, Kind
from tradebrain.data.store import MARKETS, DatasetKey, ParquetStore, WriteResult
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.data.validation import ROW, validate
from tradebrain.exceptions import (
    DataValidationError,
    ExchangeUnavailableError,
    UserInputError,
)

ProgressCallback = Callable[[str, int, int | None], None]
"""``on_progress(dataset_name, rows_so_far, expected_rows_or_None)``."""

FUNDING_TIMEFRAME = "8h"
PAGES_PER_WRITE = 10
_TRADE_WINDOW_MS = 3_600_000  # Binance answers at most one hour of trades per request


@dataclass(frozen=True)
class DownloadRequest:
    """What to download: the exchange, markets, timeframes and the time span.

    Parameters
    ----------
    exchange
        A ccxt exchange id such as ``"binance"`` or ``"okx"``.
    symbols
        ``BASE/QUOTE`` symbols (``"BTC/USDT"``); with ``market="perp"`` they name the linear
        perpetual swap (``BTC/USDT:USDT``).
    timeframes
        Candle timeframes (``"1m"``, ``"1h"``, ...).
    since, until
        The span, in UTC (naive datetimes are read as UTC); ``until=None`` means now.
        ``since`` matters only where the store has no data yet, or none that early.
    trades, funding
        Also download trades (``tick``) and perpetual funding rates (every 8 h).
    market
        ``"spot"`` or ``"perp"``.
    """

    exchange: str
    symbols: Sequence[str]
    timeframes: Sequence[str]
    since: datetime
    until: datetime | None = None
    trades: bool = False
    funding: bool = False
    market: str = "spot"

    def __post_init__(self) -> None:
        if self.market not in MARKETS:
            raise UserInputError(f"market {self.market!r} is not one of {', '.join(MARKETS)}")
        if not self.symbols:
            raise UserInputError("name at least one symbol to download, for example BTC/USDT")
        for timeframe in self.timeframes:
            timeframe_seconds(timeframe)
        if self.until is not None and _utc(self.until) <= _utc(self.since):
            raise UserInputError(
                f"until ({_utc(self.until):%Y-%m-%d %H:%M}) must be after "
                f"since ({_utc(self.since):%Y-%m-%d %H:%M})"
            )

    @property
    def ccxt_symbols(self) -> list[str]:
        """Return the symbols as ccxt names them in ``market``."""
        return [_perp_symbol(s) if self.market == "perp" else s for s in self.symbols]

    @property
    def markets_needed(self) -> tuple[str, ...]:
        """Return the markets whose listings the exchange must load."""
        return tuple(sorted({self.market, *(("perp",) if self.funding else ())}))


def download(
    request: DownloadRequest,
    store: ParquetStore,
    *,
    exchange: ccxt.Exchange | None = None,
    retry: RetryPolicy | None = None,
    on_progress: ProgressCallback | None = None,
    clock: Callable[[], datetime] | None = None,
) -> list[WriteResult]:
    """Download what ``request`` asks for into ``store`` and return one result per dataset.

    Candles come first (every symbol, every timeframe), then funding rates, then trades.
    Only closed candles are stored: one whose open time plus its timeframe lies after now is
    left for the next run.

    Parameters
    ----------
    request
        What to download.
    store
        Where the datasets go; existing datasets are extended, never rewritten.
    exchange
        A ready exchange (tests point one at a fake server); by default
        ``make_exchange(request.exchange, markets=request.markets_needed)``.
    retry
        Retry policy for temporary errors; ``RetryPolicy()`` by default.
    on_progress
        Called as ``on_progress(dataset_name, rows_so_far, expected_rows_or_None)``.
    clock
        Returns the current UTC time; decides which candles have closed.

    Raises
    ------
    ExchangeUnavailableError
        The exchange cannot be reached, or kept failing after every retry. Pages fetched
        before the failure are kept; running the same request again resumes.
    UserInputError
        The exchange refuses the request (unknown symbol, timeframe or market).
    """
    if exchange is None:
        exchange = make_exchange(request.exchange, markets=request.markets_needed)
    link = ExchangeLink(exchange, retry or RetryPolicy())
    link.call("load markets", exchange.load_markets, first_contact=True)
    _check_request(exchange, request)
    now_ms = _ms((clock or _now)())
    end_ms = min(now_ms, _ms(request.until)) if request.until is not None else now_ms
    start_ms = _ms(request.since)
    report = on_progress or _no_progress
    jobs = [
        *_candle_jobs(link, request, store, start_ms, end_ms, now_ms),
        *(_funding_jobs(link, request, store, start_ms, end_ms) if request.funding else []),
        *(_trade_jobs(link, request, store, start_ms, end_ms) if request.trades else []),
    ]
    return [_store_pages(store, job, report) for job in jobs]


@dataclass(frozen=True)
class _Job:
    """One dataset to extend: its key, the pages to fetch, and how many rows to expect."""

    key: DatasetKey
    pages: Callable[[], Iterator[pl.DataFrame]]
    expected_rows: int | None


def _store_pages(store: ParquetStore, job: _Job, report: ProgressCallback) -> WriteResult:
    """Fetch the pages of ``job`` and append them to the store every few pages and at the end."""
    pending: list[pl.DataFrame] = []
    rows_fetched = rows_added = 0
    rows_total = store.info(job.key).rows if store.exists(job.key) else 0

    def flush() -> None:
        nonlocal rows_added, rows_total
        if pending:
            result = store.write(job.key, pl.concat(pending))
            rows_added, rows_total = rows_added + result.rows_added, result.rows_total
            pending.clear()

    report(job.key.name, 0, job.expected_rows)
    try:
        for page in job.pages():
            pending.append(page)
            rows_fetched += page.height
            report(job.key.name, rows_fetched, job.expected_rows)
            if len(pending) >= PAGES_PER_WRITE:
                flush()
    except ExchangeUnavailableError as error:
        flush()
        kept = f"kept {rows_added} new rows" if rows_added else "nothing was written"
        raise ExchangeUnavailableError(f"{job.key.name}: {error}; {kept}") from error
    except BaseException:  # keep the complete pages fetched so far, even on Ctrl-C
        flush()
        raise
    flush()
    return WriteResult(job.key, rows_added, rows_total)


def _candle_jobs(
    link: ExchangeLink,
    request: DownloadRequest,
    store: ParquetStore,
    start_ms: int,
    end_ms: int,
    now_ms: int,
) -> Iterator[_Job]:
    for symbol in request.ccxt_symbols:
        for timeframe in request.timeframes:
            key = DatasetKey.of(symbol, timeframe, Kind.CANDLES, request.exchange, request.market)
            step_ms = timeframe_seconds(timeframe) * 1000
            # A candle is complete once its close time, open + step, is not after now.
            last_open_ms = min(end_ms - 1, now_ms - step_ms)
            first_ms = max(start_ms, listed_ms(link.exchange, symbol))
            spans = _missing_spans(store, key, first_ms, last_open_ms + 1, step_ms)
            expected = sum(math.ceil((stop - start) / step_ms) for start, stop in spans)
            yield _Job(key, _pages_of(link, symbol, timeframe, spans, _candle_pages), expected)


def _funding_jobs(
    link: ExchangeLink, request: DownloadRequest, store: ParquetStore, start_ms: int, end_ms: int
) -> Iterator[_Job]:
    for symbol in request.symbols:
        perp = _perp_symbol(symbol)
        key = DatasetKey.of(perp, FUNDING_TIMEFRAME, Kind.FUNDING, request.exchange, "perp")
        step_ms = timeframe_seconds(FUNDING_TIMEFRAME) * 1000
        spans = _missing_spans(store, key, start_ms, end_ms, 1)
        expected = sum(math.ceil((stop - start) / step_ms) for start, stop in spans)
        yield _Job(key, _pages_of(link, perp, FUNDING_TIMEFRAME, spans, _funding_pages), expected)


def _trade_jobs(
    link: ExchangeLink, request: DownloadRequest, store: ParquetStore, start_ms: int, end_ms: int
) -> Iterator[_Job]:
    for symbol in request.ccxt_symbols:
        key = DatasetKey.of(symbol, None, Kind.TRADES, request.exchange, request.market)
        # Resume AT the last stored trade: trades sharing its millisecond may not all be stored;
        # the store de-duplicates by trade id.
        spans = _missing_spans(store, key, start_ms, end_ms, 0)
        yield _Job(key, _pages_of(link, symbol, "tick", spans, _trade_pages), None)


_PageFetcher = Callable[[ExchangeLink, str, str, int, int], Iterator[pl.DataFrame]]


def _pages_of(
    link: ExchangeLink,
    symbol: str,
    timeframe: str,
    spans: list[tuple[int, int]],
    fetch_pages: _PageFetcher,
) -> Callable[[], Iterator[pl.DataFrame]]:
    def pages() -> Iterator[pl.DataFrame]:
        for start_ms, stop_ms in spans:
            yield from fetch_pages(link, symbol, timeframe, start_ms, stop_ms)

    return pages


def _missing_spans(
    store: ParquetStore, key: DatasetKey, start_ms: int, stop_ms: int, step_ms: int
) -> list[tuple[int, int]]:
    """Return the ``[start, stop)`` spans of open times the store lacks: before and after it."""
    if not store.exists(key):
        spans = [(start_ms, stop_ms)]
    else:
        info = store.info(key)
        if info.first is None or info.last is None:
            spans = [(start_ms, stop_ms)]
        else:
            first_ms, resume_ms = _ms(info.first), _ms(info.last) + step_ms
            spans = [(start_ms, min(first_ms, stop_ms)), (max(start_ms, resume_ms), stop_ms)]
    return [(start, stop) for start, stop in spans if start < stop]


def _candle_pages(
    link: ExchangeLink, symbol: str, timeframe: str, start_ms: int, stop_ms: int
) -> Iterator[pl.DataFrame]:
    """Yield pages of closed candles with ``start_ms <= open time < stop_ms``.

    An empty answer ends the span: the exchange has nothing newer, or nothing within the
    window it serves per request (a gap longer than one page on OKX).
    """
    limit = page_limit(link.exchange, symbol)
    since_ms = start_ms
    while since_ms < stop_ms:
        rows = link.call(
            f"fetch {symbol} {timeframe} candles from {_iso(since_ms)}",
            partial(link.exchange.fetch_ohlcv, symbol, timeframe, since=since_ms, limit=limit),
        )
        fresh = [row for row in rows if since_ms <= row[0] < stop_ms]
        if not fresh:
            return
        source = f"{link.exchange.id} {symbol} {timeframe} candles"
        yield _checked(_candle_frame(fresh), Kind.CANDLES, timeframe, source)
        since_ms = fresh[-1][0] + timeframe_seconds(timeframe) * 1000


def _funding_pages(
    link: ExchangeLink, symbol: str, timeframe: str, start_ms: int, stop_ms: int
) -> Iterator[pl.DataFrame]:
    """Yield pages of funding rates settled in ``[start_ms, stop_ms)``."""
    since_ms = start_ms
    while since_ms < stop_ms:
        rows = link.call(
            f"fetch {symbol} funding rates from {_iso(since_ms)}",
            partial(link.exchange.fetch_funding_rate_history, symbol, since=since_ms),
        )
        fresh = [row for row in rows if since_ms <= row["timestamp"] < stop_ms]
        if not fresh:
            return
        funding = _frame(
            {
                "timestamp": [row["timestamp"] for row in fresh],
                "funding_rate": [float(row["fundingRate"]) for row in fresh],
            }
        )
        yield _checked(funding, Kind.FUNDING, None, f"{link.exchange.id} {symbol} funding rates")
        since_ms = fresh[-1]["timestamp"] + 1


def _trade_pages(
    link: ExchangeLink, symbol: str, timeframe: str, start_ms: int, stop_ms: int
) -> Iterator[pl.DataFrame]:
    """Yield pages of trades in ``[start_ms, stop_ms)``.

    An empty answer moves on by one hour (Binance serves trades in one-hour windows); an
    exchange that ignores ``since`` yields only its most recent trades.
    """
    since_ms = start_ms
    while since_ms < stop_ms:
        rows = link.call(
            f"fetch {symbol} trades from {_iso(since_ms)}",
            partial(link.exchange.fetch_trades, symbol, since=since_ms),
        )
        fresh = [row for row in rows if since_ms <= row["timestamp"] < stop_ms]
        if not fresh:
            since_ms += _TRADE_WINDOW_MS
            continue
        trades = _frame(
            {
                "timestamp": [row["timestamp"] for row in fresh],
                "id": [str(row["id"]) for row in fresh],
                "price": [float(row["price"]) for row in fresh],
                "amount": [float(row["amount"]) for row in fresh],
                "side": [row["side"] for row in fresh],
            }
        )
        yield _checked(trades, Kind.TRADES, None, f"{link.exchange.id} {symbol} trades")
        since_ms = fresh[-1]["timestamp"] + 1


def _candle_frame(rows: list[list[Any]]) -> pl.DataFrame:
    names = ("timestamp", "open", "high", "low", "close", "volume")
    columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    return _frame(columns)


_TEXT_COLUMNS = {"timestamp", "id", "side"}


def _frame(columns: dict[str, list[Any]]) -> pl.DataFrame:
    frame = pl.DataFrame(columns, strict=False)
    return frame.with_columns(
        pl.col("timestamp").cast(pl.Int64).cast(pl.Datetime("ms", "UTC")).cast(TIMESTAMP),
        *(pl.col(name).cast(pl.Float64) for name in frame.columns if name not in _TEXT_COLUMNS),
    )


def _checked(frame: pl.DataFrame, kind: Kind, timeframe: str | None, source: str) -> pl.DataFrame:
    """Return ``frame`` if it passes :func:`validate` (gaps allowed), else raise.

    Raises :class:`DataValidationError` with the report: broken data from an exchange is never
    stored, and exchanges do have real gaps.
    """
    checked, report = validate(frame, kind, timeframe, allow_gaps=True, source=source)
    if not report.ok:
        raise DataValidationError(
            f"{source}: the exchange sent data that breaks {len(report.errors)} rule(s); that "
            "page was not stored; run again later, and report it to the exchange if it "
            f"persists\n{report.summary()}",
            report,
        )
    return checked.drop(ROW)


def _check_request(exchange: ccxt.Exchange, request: DownloadRequest) -> None:
    """Raise :class:`UserInputError` for symbols or timeframes the exchange does not list."""
    symbols = request.ccxt_symbols + [_perp_symbol(s) for s in request.symbols if request.funding]
    check_listing(exchange, symbols, request.timeframes)
    if request.funding and not exchange.has.get("fetchFundingRateHistory"):
        raise UserInputError(f"{exchange.id} offers no funding rate history through ccxt")
    if request.trades and not exchange.has.get("fetchTrades"):
        raise UserInputError(f"{exchange.id} offers no trade history through ccxt")


def _perp_symbol(symbol: str) -> str:
    """Return the linear perpetual of ``symbol``: ``BTC/USDT`` -> ``BTC/USDT:USDT``."""
    return symbol if ":" in symbol else f"{symbol}:{symbol.split('/')[-1]}"


def _no_progress(dataset: str, rows: int, expected: int | None) -> None:
    return None


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _ms(moment: datetime) -> int:
    return int(_utc(moment).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

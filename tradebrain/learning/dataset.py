"""Training sets from what a run lived through: the retraining window and decision outcomes.

Both keep the future out. :func:`retraining_window` never returns a candle stamped at or after
``end``; :func:`decision_outcomes` gives a decision an outcome only when the last candle of its
horizon had closed by ``as_of``, the same purge as the walk-forward evaluation's (a training
row is kept only when its label interval ends before the rows it is tested on), so a set
built at time ``T`` never reads a price after ``T``.

Time conventions of the project, relied on here:

- a candle is stamped with its **open** time (``timestamp``) and is known at its close,
  ``timestamp + timeframe``;
- the brain stamps a decision with the open time of the candle it decided on (the runner
  decides when that candle closes, at its close price; the stored decision document carries
  that price as ``price``), so a decision's ``timestamp`` equals its candle's ``timestamp``.

>>> window = retraining_window(candles, max_rows=20_000, end=now)
>>> outcomes = decision_outcomes(log.read("decisions", "paper-1"), candles, horizon=12,
...                              round_trip_cost=0.002, as_of=now)
>>> meta_y = outcomes["meta_label"]
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import polars as pl

from tradebrain.data.timeframes import timeframe_delta
from tradebrain.exceptions import UserInputError

DIRECTIONS = {"buy": 1, "long": 1, "sell": -1, "short": -1}
"""Action (case-insensitive) -> direction of the trade it opens or grows."""
NO_TRADE_ACTIONS = frozenset({"hold", "exit"})
"""Actions without a direction of their own (``exit`` closes what is open): no outcome."""

_TIME = pl.Datetime("us", "UTC")
OUTCOME_SCHEMA: dict[str, pl.DataType] = {
    "run": pl.String(),
    "symbol": pl.String(),
    "timestamp": _TIME,
    "action": pl.String(),
    "direction": pl.Int8(),
    "confidence": pl.Float64(),
    "model_version": pl.String(),
    "shadow": pl.Boolean(),
    "forward_return": pl.Float64(),
    "after_cost_return": pl.Float64(),
    "meta_label": pl.Int8(),
    "outcome_end": _TIME,
}
"""The columns of :func:`decision_outcomes`, in order."""


# -- checks ----------------------------------------------------------------------------------


def _require_columns(frame: pl.DataFrame, needed: tuple[str, ...], what: str) -> None:
    missing = [name for name in needed if name not in frame.columns]
    if not missing:
        return
    lowered = {column.lower(): column for column in frame.columns}
    hints = [f"{lowered[name]!r} -> {name!r}" for name in missing if name in lowered]
    hint = f"; rename {', '.join(hints)}" if hints else ""
    raise UserInputError(f"{what} lack the column(s) {missing}; found {frame.columns}{hint}")


def _check_instant(moment: datetime | None, name: str) -> None:
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        raise UserInputError(
            f"{name} {moment.isoformat()} has no time zone; give a UTC instant such as "
            "datetime(2024, 1, 1, tzinfo=UTC)"
        )


def _utc_times(frame: pl.DataFrame, what: str) -> pl.DataFrame:
    """Return ``frame`` with ``timestamp`` as ``Datetime("us", "UTC")``; refuse naive or
    missing times."""
    dtype = frame.schema["timestamp"]
    if not isinstance(dtype, pl.Datetime):
        raise UserInputError(
            f"{what}: column 'timestamp' is {dtype}, not a datetime; parse it first, e.g. "
            "pl.col('timestamp').str.to_datetime(time_zone='UTC')"
        )
    if dtype.time_zone is None:
        raise UserInputError(
            f"{what}: column 'timestamp' has no time zone; tradebrain works in UTC instants, "
            "so set it with pl.col('timestamp').dt.replace_time_zone('UTC')"
        )
    nulls = frame["timestamp"].null_count()
    if nulls:
        raise UserInputError(f"{what}: {nulls} row(s) have no timestamp; drop or fill them")
    return frame.with_columns(pl.col("timestamp").dt.convert_time_zone("UTC").cast(_TIME))


def _check_order(timestamps: pl.Series, what: str) -> None:
    """Refuse timestamps that are not strictly increasing, naming the first offending row."""
    if timestamps.len() < 2:
        return
    steps = timestamps.diff().slice(1)
    bad = steps <= timedelta(0)
    if not bad.any():
        return
    row = int(bad.arg_true()[0]) + 1
    earlier, later = timestamps[row - 1], timestamps[row]
    if earlier == later:
        raise UserInputError(
            f"{what}: timestamp {later.isoformat()} appears twice (rows {row - 1} and {row}); "
            "keep one candle per time, e.g. frame.unique('timestamp', keep='last')"
        )
    raise UserInputError(
        f"{what} are not sorted by time: row {row} ({later.isoformat()}) comes after row "
        f"{row - 1} ({earlier.isoformat()}); sort them with frame.sort('timestamp')"
    )


def _checked_candles(candles: pl.DataFrame, what: str) -> pl.DataFrame:
    """Return one market's ``candles`` with UTC microsecond timestamps, checked for order."""
    _require_columns(candles, ("timestamp",), what)
    if "symbol" in candles.columns and candles["symbol"].n_unique() > 1:
        raise UserInputError(
            f"{what} hold {candles['symbol'].n_unique()} symbols; give one market's candles "
            "(filter them by symbol first)"
        )
    checked = _utc_times(candles, what)
    _check_order(checked["timestamp"], what)
    return checked


# -- the retraining window -------------------------------------------------------------------


def retraining_window(
    candles: pl.DataFrame, *, max_rows: int | None, end: datetime | None = None
) -> pl.DataFrame:
    """Return the newest ``max_rows`` candles stamped before ``end``: a model's training rows.

    Parameters
    ----------
    candles
        One market's candles, oldest first, with a UTC ``timestamp`` (open time) column; any
        other columns come along unchanged.
    max_rows
        The most rows to return (the newest ones); None for every row before ``end``.
    end
        The moment of retraining: no row stamped at or after it is returned (nothing from
        the future). On the candle grid (e.g. the open time of the candle now forming) every
        row returned has closed. None keeps every row.

    Returns
    -------
    polars.DataFrame
        ``min(max_rows, rows before end)`` rows, oldest first, ``timestamp`` as
        ``Datetime("us", "UTC")``.

    Raises
    ------
    UserInputError
        A missing, naive or null ``timestamp``, timestamps not strictly increasing (unsorted
        or duplicated, the first offending row named), several symbols, a ``max_rows`` that
        is not a whole number >= 1, or a naive ``end``.
    """
    if max_rows is not None and (
        isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
    ):
        raise UserInputError(
            f"max_rows must be a whole number >= 1 or None (every row); got {max_rows!r}"
        )
    _check_instant(end, "end")
    window = _checked_candles(candles, "the candles of the retraining window")
    if end is not None:
        window = window.filter(pl.col("timestamp") < end)
    return window if max_rows is None else window.tail(max_rows)


# -- decision outcomes -----------------------------------------------------------------------


def _candle_step(timestamps: list[pl.Series], timeframe: str | timedelta | None) -> timedelta:
    """Return one candle's length: ``timeframe``, or the smallest step between candles."""
    if timeframe is not None:
        step = timeframe_delta(timeframe) if isinstance(timeframe, str) else timeframe
        if step <= timedelta(0):
            raise UserInputError(f"timeframe must be a positive duration; got {timeframe}")
        return step
    steps = [series.diff().min() for series in timestamps if series.len() > 1]
    known = [step for step in steps if isinstance(step, timedelta)]
    return min(known) if known else timedelta(0)  # no pair of candles: no outcome anyway


def _check_closes(candles: pl.DataFrame, what: str) -> None:
    close = candles["close"]
    bad = close.is_null() | close.is_nan() | close.is_infinite() | (close <= 0)
    if bad.any():
        row = int(bad.arg_true()[0])
        raise UserInputError(
            f"{what}: close {close[row]!r} at {candles['timestamp'][row]} (row {row}) is not a "
            "positive price; repair or drop that candle"
        )


def _candle_outcomes(
    candles: pl.DataFrame, horizon: int, as_of: datetime | None, step: timedelta
) -> pl.DataFrame:
    """Return, per candle, the forward log return over ``horizon`` candles and the open time
    of the horizon's last candle; null where that candle is missing or closes after
    ``as_of``."""
    end = pl.col("timestamp").shift(-horizon).over("symbol")
    outcome = (pl.col("close").shift(-horizon).over("symbol") / pl.col("close")).log()
    known = end.is_not_null()
    if as_of is not None:
        known = known & (end + step <= as_of)
    return candles.select(
        "symbol",
        "timestamp",
        pl.when(known).then(outcome).alias("forward_return"),
        pl.when(known).then(end).alias("outcome_end"),
        pl.lit(True).alias("_candle"),
    )


def _directions(decisions: pl.DataFrame) -> pl.DataFrame:
    """Return the decisions that open or grow a trade, with their ``direction``."""
    action = pl.col("action").cast(pl.String).str.to_lowercase()
    unknown = decisions.filter(
        action.is_not_null() & ~action.is_in([*DIRECTIONS, *NO_TRADE_ACTIONS])
    )
    if not unknown.is_empty():
        raise UserInputError(
            f"decision action {unknown['action'][0]!r} (at {unknown['timestamp'][0]}) is not "
            f"one of {sorted([*DIRECTIONS, *NO_TRADE_ACTIONS])}; map it to one of them"
        )
    return decisions.filter(action.is_in(list(DIRECTIONS))).with_columns(
        direction=action.replace_strict(DIRECTIONS, return_dtype=pl.Int8)
    )


def _with_defaults(decisions: pl.DataFrame) -> pl.DataFrame:
    defaults = {
        "run": pl.lit(None, pl.String),
        "confidence": pl.lit(None, pl.Float64),
        "model_version": pl.lit(None, pl.String),
        "shadow": pl.lit(False),
    }
    return decisions.with_columns(
        **{name: value for name, value in defaults.items() if name not in decisions.columns}
    ).with_columns(pl.col("shadow").fill_null(False))


def decision_outcomes(
    decisions: pl.DataFrame,
    candles: pl.DataFrame,
    *,
    horizon: int,
    round_trip_cost: float,
    as_of: datetime | None = None,
    timeframe: str | timedelta | None = None,
) -> pl.DataFrame:
    """Return what each trading decision earned over ``horizon`` candles: meta-labels.

    A decision stamped ``t`` was made on the candle stamped ``t`` (its open time) at that
    candle's close ``close[i]``. Its forward return is ``log(close[i + horizon] / close[i])``
    (``horizon`` rows later in the candles), its after-cost return is ``direction *
    forward_return + log(1 - round_trip_cost)``, and ``meta_label`` is 1 when that is > 0,
    else 0: was following the decision worth it?

    Purge: a decision gets an outcome only when the horizon's last candle closed by ``as_of``
    (``outcome_end + timeframe <= as_of``) and is in ``candles``; other decisions are dropped,
    so the outcomes never read a price after ``as_of``, and adding later candles or moving
    ``as_of`` later adds rows without changing any row already there.

    Parameters
    ----------
    decisions
        One row per decision, e.g. :meth:`ExperienceLog.read` of ``"decisions"``: ``symbol``,
        ``timestamp`` (UTC) and ``action`` are required; ``run``, ``confidence``,
        ``model_version`` and ``shadow`` are kept when present (null, or False for
        ``shadow``, when absent). Actions ``buy``/``long`` (+1) and ``sell``/``short`` (-1)
        get outcomes; ``hold``, ``exit`` and null are dropped.
    candles
        Candles with ``timestamp`` (UTC open time) and ``close``, each market's sorted with
        unique times; with a ``symbol`` column for several markets, without one for the
        decisions' only market.
    horizon
        Candles ahead, a whole number >= 1.
    round_trip_cost
        Fees and slippage of entering and leaving, as a fraction of the notional in [0, 1)
        (0.002 for 10 bps a side).
    as_of
        The moment the training set is built; None for "after every candle given".
    timeframe
        One candle's length (``"1h"`` or a timedelta), to tell when a candle closed; None
        infers it as the smallest step between consecutive candles.

    Returns
    -------
    polars.DataFrame
        The columns of :data:`OUTCOME_SCHEMA`, ordered by ``timestamp``, ``symbol``, ``run``;
        ``outcome_end`` is the open time of the horizon's last candle.

    Raises
    ------
    UserInputError
        A missing column, a naive or null timestamp, candles unsorted or duplicated, a close
        that is not a positive price, an unknown action, a decision stamped inside the
        candles' span where no candle is (a time off the candle grid), decisions of several
        symbols against candles without ``symbol``, or a bad ``horizon``, cost or ``as_of``.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise UserInputError(f"horizon must be a whole number of candles >= 1; got {horizon!r}")
    if isinstance(round_trip_cost, bool) or not (
        isinstance(round_trip_cost, int | float) and 0 <= round_trip_cost < 1
    ):
        raise UserInputError(
            f"round_trip_cost must be a fraction in [0, 1) (0.002 for 20 bps); "
            f"got {round_trip_cost!r}"
        )
    _check_instant(as_of, "as_of")
    _require_columns(decisions, ("symbol", "timestamp", "action"), "the decisions")
    _require_columns(candles, ("timestamp", "close"), "the candles")
    decisions = _utc_times(decisions, "the decisions")
    if "symbol" not in candles.columns:
        symbols = decisions["symbol"].unique().to_list()
        if len(symbols) > 1:
            raise UserInputError(
                f"the decisions are of {len(symbols)} symbols ({sorted(map(str, symbols))}) "
                "but the candles have no 'symbol' column; add one, or give one symbol's "
                "decisions"
            )
        candles = candles.with_columns(symbol=pl.lit(symbols[0] if symbols else "", pl.String))
    candles = candles.select(pl.col("symbol").cast(pl.String), "timestamp", "close")
    decisions = decisions.with_columns(pl.col("symbol").cast(pl.String))
    markets = [
        _checked_candles(market, f"the candles of {market['symbol'][0]}")
        for market in candles.partition_by("symbol", maintain_order=True)
    ]
    if not markets:
        return pl.DataFrame(schema=OUTCOME_SCHEMA)
    for market in markets:
        _check_closes(market, f"the candles of {market['symbol'][0]}")
    step = _candle_step([market["timestamp"] for market in markets], timeframe)
    checked = pl.concat(markets)
    outcomes = _candle_outcomes(checked, horizon, as_of, step)
    spans = checked.group_by("symbol").agg(
        first=pl.col("timestamp").min(), last=pl.col("timestamp").max()
    )
    trades = _with_defaults(_directions(decisions)).join(
        outcomes, on=["symbol", "timestamp"], how="left"
    )
    stray = trades.join(spans, on="symbol", how="inner").filter(
        pl.col("_candle").is_null() & pl.col("timestamp").is_between("first", "last")
    )
    if not stray.is_empty():
        raise UserInputError(
            f"the {stray['symbol'][0]} decision at {stray['timestamp'][0]} has no candle "
            "stamped at that time although the candles span it; a decision is stamped with "
            "the open time of its candle, so give the candles it was made on (or drop "
            "decisions off the candle grid)"
        )
    cost = math.log1p(-float(round_trip_cost))
    after_cost = pl.col("direction").cast(pl.Float64) * pl.col("forward_return") + cost
    return (
        trades.filter(pl.col("forward_return").is_not_null())
        .with_columns(after_cost_return=after_cost, meta_label=(after_cost > 0).cast(pl.Int8))
        .select(pl.col(name).cast(dtype) for name, dtype in OUTCOME_SCHEMA.items())
        .sort(["timestamp", "symbol", "run"], nulls_last=False, maintain_order=True)
    )


__all__ = [
    "DIRECTIONS",
    "NO_TRADE_ACTIONS",
    "OUTCOME_SCHEMA",
    "decision_outcomes",
    "retraining_window",
]

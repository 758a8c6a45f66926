"""Validation of market data: find every broken row, report it, never fix it silently.

:func:`validate` returns the data sorted by time together with a :class:`ValidationReport`.
Unsorted input is the one thing sorted without asking (with a warning); every other problem is
an error unless the caller asks for :func:`repair` (drop the bad rows, report what was dropped).
Gaps cannot be repaired (tradebrain never invents candles); they are errors unless gaps are
allowed, in which case they are warnings.

Frames passed in carry a ``_row`` column: each row's position in the source file, so a report
can point at the line to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import polars as pl

from tradebrain.data.schemas import Kind, schema_for
from tradebrain.data.timeframes import timeframe_seconds

ROW = "_row"
EXAMPLES_PER_PROBLEM = 5
Severity = Literal["error", "warning"]

# Funding above 10% per settlement is not a market, it is a parsing mistake (percent vs fraction).
MAX_ABS_FUNDING_RATE = 0.10
_WEEK_EPOCH_OFFSET_S = 4 * 86400  # 1970-01-01 was a Thursday; exchange weeks open on Monday


@dataclass(frozen=True)
class Problem:
    """One broken rule: how many rows break it and the first few of them."""

    rule: str
    description: str
    count: int
    severity: Severity
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ValidationReport:
    """Everything :func:`validate` found in one frame."""

    kind: Kind
    rows: int
    problems: list[Problem]
    source: str = "<frame>"
    # Line of the file that holds data row 0 (2 for a CSV with a header); None: report row numbers.
    first_line: int | None = None

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings are allowed)."""
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def where(self, row: int) -> str:
        """Return ``"line 17"`` (text files) or ``"row 15"`` for a data row position."""
        return f"line {row + self.first_line}" if self.first_line is not None else f"row {row}"

    def summary(self) -> str:
        """Return a plain-text report: counts per problem and the first offending rows."""
        if not self.problems:
            return f"{self.source}: {self.rows} {self.kind.value} rows, no problems"
        lines = [f"{self.source}: {self.rows} {self.kind.value} rows"]
        for problem in self.problems:
            lines.append(
                f"  {problem.severity.upper()} {problem.rule}: {problem.count}"
                f" — {problem.description}"
            )
            for example in problem.examples:
                where = self.where(int(example[ROW])) if example.get(ROW) is not None else ""
                shown = ", ".join(f"{k}={_show(v)}" for k, v in example.items() if k != ROW)
                lines.append(f"      {where}: {shown}".rstrip(": "))
        return "\n".join(lines)


def validate(
    frame: pl.DataFrame,
    kind: Kind | str,
    timeframe: str | None = None,
    *,
    allow_gaps: bool = False,
    source: str = "<frame>",
    first_line: int | None = None,
    gap_fix: str = "pass --allow-gaps to accept them",
) -> tuple[pl.DataFrame, ValidationReport]:
    """Check ``frame`` against the rules of its kind.

    Parameters
    ----------
    frame
        Data with the columns of ``kind`` (see :mod:`tradebrain.data.schemas`); a ``_row``
        column with source positions is added when missing.
    kind
        ``candles``, ``mark``, ``trades``, ``book`` or ``funding``.
    timeframe
        Candle timeframe (``"1h"``); needed for the grid and gap checks of candles.
    allow_gaps
        Report gaps between candles as warnings instead of errors.
    gap_fix
        What the reader can do about a gap, said in the error (the CLI's flag by default; the
        API says what a caller can send instead).

    Returns
    -------
    The frame sorted by timestamp (``_row`` kept) and the report.
    """
    kind = Kind(kind)
    if ROW not in frame.columns:
        frame = frame.with_row_index(ROW)
    problems: list[Problem] = []
    if frame.height > 1 and not frame["timestamp"].is_sorted():
        backwards = pl.col("timestamp").diff().dt.total_microseconds() < 0
        out_of_order = int(frame.select(backwards.sum()).item())
        problems.append(
            Problem(
                "unsorted", "timestamps out of order; the data was sorted", out_of_order, "warning"
            )
        )
        frame = frame.sort("timestamp", maintain_order=True)

    for rule, description, mask in _row_rules(frame, kind, timeframe):
        problems.extend(_problem(frame, rule, description, mask))
    if kind in (Kind.CANDLES, Kind.MARK) and timeframe is not None:
        problems.extend(_gap_problems(frame, timeframe, allow_gaps, gap_fix))
    report = ValidationReport(kind, frame.height, problems, source, first_line)
    return frame, report


def bad_row_mask(frame: pl.DataFrame, kind: Kind | str, timeframe: str | None = None) -> pl.Series:
    """Return a boolean Series: True for rows that break any row rule of ``kind``."""
    mask = pl.Series("bad", [False] * frame.height)
    for _rule, _description, rule_mask in _row_rules(frame, Kind(kind), timeframe):
        mask = mask | rule_mask
    return mask


def repair_frame(
    frame: pl.DataFrame, kind: Kind | str, timeframe: str | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Drop every row that breaks a row rule; return ``(kept, dropped)``.

    ``frame`` must be the sorted frame returned by :func:`validate`. Gaps are not repaired.
    """
    mask = bad_row_mask(frame, kind, timeframe)
    return frame.filter(~mask), frame.filter(mask)


def _row_rules(
    frame: pl.DataFrame, kind: Kind, timeframe: str | None
) -> list[tuple[str, str, pl.Series]]:
    """Each rule as (name, description, boolean mask of offending rows).

    All masks come from one ``select``, so polars evaluates the rules in parallel in one pass.
    """
    rules = _rule_expressions(frame, kind, timeframe)
    masks = frame.select(
        [expression.fill_null(False).alias(f"m{i}") for i, (_, _, expression) in enumerate(rules)]
    )
    return [
        (rule, description, masks.to_series(i)) for i, (rule, description, _) in enumerate(rules)
    ]


def _rule_expressions(
    frame: pl.DataFrame, kind: Kind, timeframe: str | None
) -> list[tuple[str, str, pl.Expr]]:
    """Each rule as (name, description, expression that is True on offending rows)."""
    values = [name for name, dtype in schema_for(kind).columns.items() if dtype == pl.Float64()]
    not_finite = (
        pl.any_horizontal([pl.col(c).is_null() | ~pl.col(c).is_finite() for c in values])
        | pl.col("timestamp").is_null()
    )
    rules = [
        (
            "nan_or_inf",
            f"missing, NaN or infinite value in timestamp, {', '.join(values)}",
            not_finite,
        )
    ]

    if kind in (Kind.CANDLES, Kind.MARK):
        prices = ["open", "high", "low", "close"]
        body_top = pl.max_horizontal("open", "close")
        body_bottom = pl.min_horizontal("open", "close")
        rules += [
            (
                "non_positive_price",
                "open, high, low or close <= 0",
                pl.any_horizontal([pl.col(c) <= 0 for c in prices]),
            ),
            ("high_below_body", "high below max(open, close)", pl.col("high") < body_top),
            ("low_above_body", "low above min(open, close)", pl.col("low") > body_bottom),
            ("negative_volume", "volume < 0", pl.col("volume") < 0),
            (
                "duplicate_timestamp",
                "timestamp seen before (later copies are flagged)",
                _later_timestamp_copies(frame),
            ),
        ]
        if timeframe is not None:
            rules.append(
                (
                    "off_grid",
                    f"timestamp not on the {timeframe} grid (candles are stamped with "
                    "their open time)",
                    _off_grid(timeframe),
                )
            )
    elif kind is Kind.TRADES:
        rules += [
            ("non_positive_price", "price <= 0", pl.col("price") <= 0),
            ("non_positive_amount", "amount <= 0", pl.col("amount") <= 0),
            ("bad_side", "side is not 'buy' or 'sell'", ~pl.col("side").is_in(["buy", "sell"])),
            (
                "duplicate_id",
                "trade id seen before (later copies are flagged)",
                ~pl.col("id").is_first_distinct(),
            ),
        ]
    elif kind is Kind.BOOK:
        key = pl.struct("timestamp", "side", "price", "update_id")
        rules += [
            ("non_positive_price", "price <= 0", pl.col("price") <= 0),
            (
                "negative_amount",
                "amount < 0 (0 removes a level, below 0 is invalid)",
                pl.col("amount") < 0,
            ),
            ("bad_side", "side is not 'bid' or 'ask'", ~pl.col("side").is_in(["bid", "ask"])),
            (
                "duplicate_level",
                "same timestamp, side, price and update id seen before",
                ~key.is_first_distinct(),
            ),
        ]
    elif kind is Kind.FUNDING:
        rules += [
            (
                "implausible_rate",
                f"|funding_rate| >= {MAX_ABS_FUNDING_RATE} per settlement "
                "(a percentage where a fraction was expected?)",
                pl.col("funding_rate").abs() >= MAX_ABS_FUNDING_RATE,
            ),
            (
                "duplicate_timestamp",
                "timestamp seen before (later copies are flagged)",
                _later_timestamp_copies(frame),
            ),
        ]
    return rules


def _sorted_without_nulls(frame: pl.DataFrame) -> bool:
    """Return whether ``frame``'s timestamps are sorted and none is missing."""
    stamps = frame["timestamp"]
    return stamps.null_count() == 0 and stamps.is_sorted()


def _later_timestamp_copies(frame: pl.DataFrame) -> pl.Expr:
    """Return an expression: True for each row whose timestamp an earlier row has.

    On sorted timestamps (what :func:`validate` checks) copies are neighbours: comparing each
    timestamp with the previous one finds the same rows as hashing them all, ten times faster.
    """
    if _sorted_without_nulls(frame):
        return pl.col("timestamp").diff() == pl.duration(microseconds=0)
    return ~pl.col("timestamp").is_first_distinct()


def _off_grid(timeframe: str) -> pl.Expr:
    step_us = timeframe_seconds(timeframe) * 1_000_000
    offset_us = _WEEK_EPOCH_OFFSET_S * 1_000_000 if timeframe.endswith("w") else 0
    epoch_us = pl.col("timestamp").dt.epoch("us")
    return ((epoch_us - offset_us) % step_us) != 0


def _problem(frame: pl.DataFrame, rule: str, description: str, mask: pl.Series) -> list[Problem]:
    count = int(mask.sum())
    if count == 0:
        return []
    examples = frame.filter(mask).head(EXAMPLES_PER_PROBLEM).to_dicts()
    return [Problem(rule, description, count, "error", examples)]


def _gap_problems(
    frame: pl.DataFrame, timeframe: str, allow_gaps: bool, gap_fix: str
) -> list[Problem]:
    step_s = timeframe_seconds(timeframe)
    stamps = frame.select("timestamp", ROW)
    if not _sorted_without_nulls(frame):
        stamps = stamps.unique("timestamp", keep="first", maintain_order=True)
    # Sorted: a copy of a timestamp follows it (a step of 0, never a gap), so the rows after
    # a gap are the first rows of their timestamps, as after dropping the copies.
    gaps = stamps.with_columns(
        previous=pl.col("timestamp").shift(1),
        seconds=pl.col("timestamp").diff().dt.total_seconds(),
    ).filter(pl.col("seconds") > step_s)
    if gaps.height == 0:
        return []
    missing = int(((gaps["seconds"] // step_s) - 1).sum())
    examples = [
        {
            ROW: row[ROW],
            "after": row["previous"],
            "before": row["timestamp"],
            "missing_candles": int(row["seconds"] // step_s - 1),
        }
        for row in gaps.head(EXAMPLES_PER_PROBLEM).to_dicts()
    ]
    severity: Severity = "warning" if allow_gaps else "error"
    hint = "" if allow_gaps else f"; {gap_fix} (tradebrain never invents candles)"
    description = (
        f"{gaps.height} gap(s) between candles, {missing} missing {timeframe} candle(s){hint}"
    )
    return [Problem("gap", description, gaps.height, severity, examples)]


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S%z").replace("+0000", "Z")
    return repr(value) if isinstance(value, str) else str(value)

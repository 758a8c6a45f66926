"""Every validation rule finds what it should, where it is, and nothing else."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from builders import CandleMaker, make_candles
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.data.schemas import TIMESTAMP
from tradebrain.data.validation import ROW, repair_frame, validate


def _set(frame: pl.DataFrame, row: int, **values: object) -> pl.DataFrame:
    """Return ``frame`` with the given columns of one row replaced."""
    index = pl.int_range(pl.len()) == row
    return frame.with_columns(
        [
            pl.when(index).then(pl.lit(value, dtype=frame.schema[name])).otherwise(pl.col(name))
            .alias(name)
            for name, value in values.items()
        ]
    )  # fmt: skip


def _rules(frame: pl.DataFrame, kind: str = "candles", timeframe: str | None = "1h") -> set[str]:
    return {p.rule for p in validate(frame, kind, timeframe)[1].problems}


def test_clean_candles_pass_with_no_problems(candles: CandleMaker) -> None:
    frame, report = validate(candles(100), "candles", "1h")
    assert report.ok and report.problems == []
    assert frame.height == 100 and report.rows == 100


CANDLE_CORRUPTIONS = [
    ("nan_or_inf", {"close": float("nan")}),
    ("nan_or_inf", {"volume": float("inf")}),
    ("non_positive_price", {"low": 0.0, "open": 0.0, "close": 0.0, "high": 0.0}),
    ("high_below_body", {"high": 1.0}),
    ("low_above_body", {"low": 1_000.0}),
    ("negative_volume", {"volume": -1.0}),
]


@pytest.mark.parametrize(("rule", "values"), CANDLE_CORRUPTIONS)
def test_each_broken_candle_rule_names_the_offending_row(
    candles: CandleMaker, rule: str, values: dict[str, float]
) -> None:
    frame = _set(candles(30), 17, **values)
    _, report = validate(frame, "candles", "1h", source="x.csv", first_line=2)
    problem = next(p for p in report.problems if p.rule == rule)
    assert not report.ok
    assert problem.count == 1 and problem.severity == "error"
    assert problem.examples[0][ROW] == 17
    assert "line 19" in report.summary()  # header is line 1, data row 0 is line 2


def test_a_duplicate_timestamp_flags_the_later_copy(candles: CandleMaker) -> None:
    frame = candles(10)
    frame = pl.concat([frame, frame[4:5]])
    _, report = validate(frame, "candles", "1h")
    duplicate = next(p for p in report.problems if p.rule == "duplicate_timestamp")
    assert duplicate.count == 1
    assert duplicate.examples[0][ROW] == 10  # the appended copy, not the original row 4


def test_unsorted_input_is_sorted_with_a_warning_and_nothing_else(candles: CandleMaker) -> None:
    frame = candles(20)
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    result, report = validate(shuffled, "candles", "1h")
    assert report.ok
    assert [p.rule for p in report.problems] == ["unsorted"]
    assert report.problems[0].severity == "warning"
    assert result.drop(ROW).equals(frame)


def test_a_timestamp_off_the_grid_is_an_error(candles: CandleMaker) -> None:
    frame = candles(10)
    moved = frame["timestamp"][5] + timedelta(minutes=7)
    frame = _set(frame, 5, timestamp=moved)
    assert "off_grid" in _rules(frame)


def test_weekly_candles_open_on_monday_are_on_the_grid() -> None:
    frame = make_candles(8, timeframe="1w").with_columns(pl.col("timestamp") + pl.duration(days=0))
    # 2024-01-01 is a Monday, like exchange weeks.
    assert "off_grid" not in _rules(frame, timeframe="1w")


def test_a_gap_is_an_error_unless_gaps_are_allowed(candles: CandleMaker) -> None:
    frame = candles(30)
    frame = pl.concat([frame[:10], frame[13:]])
    _, strict = validate(frame, "candles", "1h")
    gap = next(p for p in strict.problems if p.rule == "gap")
    assert gap.severity == "error" and gap.count == 1
    assert gap.examples[0]["missing_candles"] == 3
    assert "--allow-gaps" in gap.description
    _, lenient = validate(frame, "candles", "1h", allow_gaps=True)
    assert lenient.ok and lenient.warnings[0].rule == "gap"


def test_repair_drops_exactly_the_broken_rows(candles: CandleMaker) -> None:
    frame = _set(_set(candles(40), 3, close=float("nan")), 30, volume=-5.0)
    sorted_frame, _ = validate(frame, "candles", "1h")
    kept, dropped = repair_frame(sorted_frame, "candles", "1h")
    assert sorted(dropped[ROW].to_list()) == [3, 30]
    assert kept.height == 38
    # The repaired data is clean except for the gaps the dropped rows leave behind.
    assert _rules(kept.drop(ROW)) == {"gap"}


TRADE_CORRUPTIONS = [
    ("non_positive_price", {"price": -1.0}),
    ("non_positive_amount", {"amount": 0.0}),
    ("bad_side", {"side": "long"}),
    ("nan_or_inf", {"price": float("nan")}),
]


def _trades(n: int = 20) -> pl.DataFrame:
    start = make_candles(1)["timestamp"][0]
    return pl.DataFrame(
        {
            "timestamp": pl.Series(
                [start + timedelta(seconds=i) for i in range(n)], dtype=TIMESTAMP
            ),
            "id": [str(1000 + i) for i in range(n)],
            "price": [100.0 + i for i in range(n)],
            "amount": [0.5] * n,
            "side": ["buy", "sell"] * (n // 2),
        }
    )


@pytest.mark.parametrize(("rule", "values"), TRADE_CORRUPTIONS)
def test_each_broken_trade_rule_is_reported(rule: str, values: dict[str, object]) -> None:
    assert _rules(_set(_trades(), 7, **values), "trades", None) == {rule}


def test_a_repeated_trade_id_is_reported() -> None:
    trades = _set(_trades(), 9, id="1003")
    assert _rules(trades, "trades", None) == {"duplicate_id"}


def test_funding_rates_given_in_percent_are_implausible() -> None:
    funding = pl.DataFrame(
        {
            "timestamp": make_candles(5, timeframe="8h")["timestamp"],
            "funding_rate": [0.0001, 0.0002, 1.5, -0.0001, 0.0001],
        }
    )
    assert _rules(funding, "funding", None) == {"implausible_rate"}


def test_book_levels_with_negative_amount_or_bad_side_are_reported() -> None:
    stamp = make_candles(1)["timestamp"][0]
    book = pl.DataFrame(
        {
            "timestamp": pl.Series([stamp] * 4, dtype=TIMESTAMP),
            "side": ["bid", "ask", "middle", "bid"],
            "price": [99.0, 101.0, 100.0, 98.0],
            "amount": [1.0, 0.0, 1.0, -2.0],
            "is_snapshot": [True] * 4,
            "update_id": pl.Series([1, 1, 1, 1], dtype=pl.Int64),
        }
    )
    assert _rules(book, "book", None) == {"bad_side", "negative_amount"}


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=3, max_value=60),
    data=st.data(),
    corruption=st.sampled_from(CANDLE_CORRUPTIONS),
)
def test_one_corrupted_candle_is_found_at_its_row_and_repair_removes_only_it(
    n: int, data: st.DataObject, corruption: tuple[str, dict[str, float]]
) -> None:
    rule, values = corruption
    row = data.draw(st.integers(min_value=0, max_value=n - 1))
    frame = _set(make_candles(n, seed=n), row, **values)
    sorted_frame, report = validate(frame, "candles", "1h", allow_gaps=True)
    offending = {int(e[ROW]) for p in report.errors for e in p.examples}
    assert offending == {row}
    assert rule in {p.rule for p in report.errors}
    kept, dropped = repair_frame(sorted_frame, "candles", "1h")
    assert dropped[ROW].to_list() == [row]
    assert validate(kept.drop(ROW), "candles", "1h", allow_gaps=True)[1].ok


@settings(max_examples=60, deadline=None)
@given(hours=st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=12)), max_size=30))
def test_copies_and_gaps_are_the_rows_that_hashing_every_timestamp_finds(
    hours: list[int | None],
) -> None:
    """Sorted data is checked by comparing neighbours; the rows flagged must not change."""
    start = make_candles(1)["timestamp"][0]
    frame = make_candles(len(hours) or 1).head(len(hours))
    stamps = [None if h is None else start + timedelta(hours=h) for h in hours]
    frame = frame.with_columns(timestamp=pl.Series(stamps, dtype=TIMESTAMP))
    checked, report = validate(frame, "candles", "1h")
    later_copies = checked.filter(~pl.col("timestamp").is_first_distinct())[ROW].to_list()
    firsts = checked.unique("timestamp", keep="first", maintain_order=True)
    after_gaps = firsts.filter(pl.col("timestamp").diff() > timedelta(hours=1))[ROW].to_list()
    found = {p.rule: p for p in report.problems}
    copies = found.get("duplicate_timestamp")
    assert (copies.count if copies else 0) == len(later_copies)
    assert ([e[ROW] for e in copies.examples] if copies else []) == later_copies[:5]
    gaps = found.get("gap")
    assert (gaps.count if gaps else 0) == len(after_gaps)
    assert ([e[ROW] for e in gaps.examples] if gaps else []) == after_gaps[:5]

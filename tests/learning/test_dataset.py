"""Training sets from a run: the retraining window and decision outcomes never see the future."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.brain.decision import Action, Decision
from tradebrain.exceptions import UserInputError
from tradebrain.learning.dataset import OUTCOME_SCHEMA, decision_outcomes, retraining_window
from tradebrain.learning.experience import ExperienceLog
from tradebrain.state import CandleRecord, StateStore, Step

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
TIME = pl.Datetime("us", "UTC")
SYMBOL = "BTC/USDT"
COST = 0.002


def candles_of(closes: list[float], symbol: str | None = None) -> pl.DataFrame:
    """Hourly candles from T0 with the given closes (open time stamps)."""
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series([T0 + i * HOUR for i in range(len(closes))], dtype=TIME),
            "close": [float(c) for c in closes],
        }
    )
    return frame if symbol is None else frame.with_columns(symbol=pl.lit(symbol))


def decisions_of(
    rows: list[tuple[int, str]], symbol: str = SYMBOL, **columns: list[Any]
) -> pl.DataFrame:
    """Decisions on candles ``i`` (stamped with the candle's open time) with an action each."""
    frame = pl.DataFrame(
        {
            "symbol": [symbol] * len(rows),
            "timestamp": pl.Series([T0 + i * HOUR for i, _ in rows], dtype=TIME),
            "action": [action for _, action in rows],
            **columns,
        }
    )
    return frame


CLOSES = [100.0, 101.0, 103.0, 102.0, 104.0, 108.0, 107.0]


# -- decision outcomes -----------------------------------------------------------------------


def test_a_buy_earns_the_log_return_from_its_close_to_the_close_horizon_candles_on() -> None:
    outcomes = decision_outcomes(
        decisions_of([(1, "buy")]), candles_of(CLOSES), horizon=3, round_trip_cost=COST
    )

    row = outcomes.row(0, named=True)
    assert outcomes.height == 1
    assert row["direction"] == 1
    assert row["forward_return"] == pytest.approx(math.log(104.0 / 101.0), abs=1e-15)
    assert row["after_cost_return"] == pytest.approx(
        math.log(104.0 / 101.0) + math.log(1 - COST), abs=1e-15
    )
    assert row["meta_label"] == 1
    assert row["outcome_end"] == T0 + 4 * HOUR


def test_a_sell_earns_the_opposite_of_the_move_less_the_cost() -> None:
    outcomes = decision_outcomes(
        decisions_of([(4, "sell"), (2, "short"), (0, "long")]),
        candles_of(CLOSES),
        horizon=1,
        round_trip_cost=COST,
    )

    assert outcomes["timestamp"].to_list() == [T0, T0 + 2 * HOUR, T0 + 4 * HOUR]
    assert outcomes["direction"].to_list() == [1, -1, -1]
    expected = [
        math.log(101 / 100) + math.log(1 - COST),
        -math.log(102 / 103) + math.log(1 - COST),
        -math.log(108 / 104) + math.log(1 - COST),
    ]
    assert outcomes["after_cost_return"].to_list() == pytest.approx(expected, abs=1e-15)
    assert outcomes["meta_label"].to_list() == [1, 1, 0]


def test_a_move_smaller_than_the_cost_is_labelled_not_worth_it() -> None:
    outcomes = decision_outcomes(
        decisions_of([(0, "buy")]), candles_of([100.0, 100.1]), horizon=1, round_trip_cost=COST
    )

    assert outcomes["forward_return"][0] > 0
    assert outcomes["after_cost_return"][0] < 0
    assert outcomes["meta_label"].to_list() == [0]


def test_hold_exit_and_missing_actions_get_no_outcome() -> None:
    decisions = decisions_of([(0, "hold"), (1, "exit"), (2, "BUY"), (3, "hold")]).vstack(
        decisions_of([(4, "buy")]).with_columns(action=pl.lit(None, pl.String))
    )

    outcomes = decision_outcomes(decisions, candles_of(CLOSES), horizon=1, round_trip_cost=0.0)

    assert outcomes["timestamp"].to_list() == [T0 + 2 * HOUR]
    assert outcomes["action"].to_list() == ["BUY"]


def test_the_shadow_flag_model_version_run_and_confidence_are_kept() -> None:
    decisions = decisions_of(
        [(0, "buy"), (0, "sell")],
        run=["paper-1", "paper-1:shadow:v3"],
        shadow=[False, True],
        model_version=[None, "3"],
        confidence=[0.6, 0.7],
    )

    outcomes = decision_outcomes(decisions, candles_of(CLOSES), horizon=2, round_trip_cost=COST)

    assert outcomes.select("run", "shadow", "model_version", "confidence").rows() == [
        ("paper-1", False, None, 0.6),
        ("paper-1:shadow:v3", True, "3", 0.7),
    ]
    assert outcomes.schema == pl.Schema(OUTCOME_SCHEMA)


def test_columns_left_out_of_the_decisions_come_back_null_or_not_shadow() -> None:
    outcomes = decision_outcomes(
        decisions_of([(0, "buy")]), candles_of(CLOSES), horizon=1, round_trip_cost=COST
    )

    assert outcomes.select("run", "confidence", "model_version", "shadow").row(0) == (
        None,
        None,
        None,
        False,
    )


def test_a_decision_whose_horizon_is_past_the_last_candle_gets_no_outcome() -> None:
    outcomes = decision_outcomes(
        decisions_of([(3, "buy"), (4, "buy")]), candles_of(CLOSES), horizon=3, round_trip_cost=0
    )

    assert outcomes["timestamp"].to_list() == [T0 + 3 * HOUR]


def test_an_outcome_is_kept_only_when_its_last_candle_closed_by_as_of() -> None:
    decisions = decisions_of([(1, "buy")])
    last_close = T0 + 5 * HOUR  # horizon 3 ends on the candle opened at 4:00, closed at 5:00

    at_close = decision_outcomes(
        decisions, candles_of(CLOSES), horizon=3, round_trip_cost=0, as_of=last_close
    )
    just_before = decision_outcomes(
        decisions,
        candles_of(CLOSES),
        horizon=3,
        round_trip_cost=0,
        as_of=last_close - timedelta(microseconds=1),
    )

    assert at_close.height == 1
    assert just_before.is_empty()


def test_the_timeframe_says_when_a_candle_closed_and_inferring_it_errs_late() -> None:
    sparse = candles_of(CLOSES).filter(pl.col("timestamp").dt.hour() % 2 == 0)  # 1h, gaps
    decisions = decisions_of([(0, "buy")])
    as_of = T0 + 3 * HOUR  # the 2:00 candle closed at 3:00

    told = decision_outcomes(
        decisions, sparse, horizon=1, round_trip_cost=0, as_of=as_of, timeframe="1h"
    )
    inferred = decision_outcomes(decisions, sparse, horizon=1, round_trip_cost=0, as_of=as_of)

    assert told["outcome_end"].to_list() == [T0 + 2 * HOUR]  # one row on, over the gap
    assert told["forward_return"].to_list() == pytest.approx([math.log(103 / 100)])
    assert inferred.is_empty()  # a 2h step inferred: the 2:00 candle would close at 4:00


def test_decisions_of_several_symbols_are_matched_to_their_own_candles() -> None:
    candles = pl.concat(
        [candles_of(CLOSES, "BTC"), candles_of([c * 10 for c in CLOSES[::-1]], "ETH")]
    )
    decisions = pl.concat([decisions_of([(0, "buy")], "BTC"), decisions_of([(0, "buy")], "ETH")])

    outcomes = decision_outcomes(decisions, candles, horizon=1, round_trip_cost=0)

    assert outcomes["symbol"].to_list() == ["BTC", "ETH"]
    assert outcomes["forward_return"].to_list() == pytest.approx(
        [math.log(101 / 100), math.log(1080 / 1070)]
    )


def test_decisions_outside_the_candles_are_dropped_and_one_off_the_grid_is_refused() -> None:
    outside = decisions_of([(-5, "buy"), (40, "buy"), (0, "buy")])

    kept = decision_outcomes(outside, candles_of(CLOSES), horizon=1, round_trip_cost=0)
    assert kept["timestamp"].to_list() == [T0]

    off_grid = outside.with_columns(pl.col("timestamp") + timedelta(minutes=30))
    with pytest.raises(UserInputError, match="no candle stamped at that time"):
        decision_outcomes(off_grid, candles_of(CLOSES), horizon=1, round_trip_cost=0)


def test_decisions_of_several_symbols_need_candles_with_a_symbol_column() -> None:
    decisions = pl.concat([decisions_of([(0, "buy")], "BTC"), decisions_of([(0, "buy")], "ETH")])

    with pytest.raises(UserInputError, match=r"2 symbols.*no 'symbol' column"):
        decision_outcomes(decisions, candles_of(CLOSES), horizon=1, round_trip_cost=0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"horizon": 0}, "horizon must be a whole number"),
        ({"horizon": 1.5}, "horizon must be a whole number"),
        ({"round_trip_cost": 1.0}, r"round_trip_cost must be a fraction in \[0, 1\)"),
        ({"round_trip_cost": -0.1}, "round_trip_cost must be"),
        ({"round_trip_cost": math.nan}, "round_trip_cost must be"),
        ({"as_of": datetime(2024, 1, 1)}, "as_of .* has no time zone"),
        ({"timeframe": "1x"}, "timeframe '1x' is not understood"),
    ],
)
def test_bad_settings_are_refused_with_the_value_that_is_wrong(
    changes: dict[str, Any], message: str
) -> None:
    settings_ = {"horizon": 1, "round_trip_cost": COST} | changes

    with pytest.raises(UserInputError, match=message):
        decision_outcomes(decisions_of([(0, "buy")]), candles_of(CLOSES), **settings_)


def test_an_unknown_action_is_refused_with_the_actions_known() -> None:
    with pytest.raises(UserInputError, match=r"action 'flip' .* is not one of \['buy', 'exit'"):
        decision_outcomes(
            decisions_of([(0, "flip")]), candles_of(CLOSES), horizon=1, round_trip_cost=0
        )


def test_a_close_that_is_not_a_positive_price_is_refused_with_its_row() -> None:
    with pytest.raises(UserInputError, match=r"close 0.0 .* \(row 2\) is not a positive price"):
        decision_outcomes(
            decisions_of([(0, "buy")]),
            candles_of([100.0, 101.0, 0.0]),
            horizon=1,
            round_trip_cost=0,
        )


def test_missing_columns_are_named_with_a_hint_for_a_different_case() -> None:
    candles = candles_of(CLOSES).rename({"close": "Close"})

    with pytest.raises(UserInputError, match=r"\['close'\].*rename 'Close' -> 'close'"):
        decision_outcomes(decisions_of([(0, "buy")]), candles, horizon=1, round_trip_cost=0)


def test_a_decision_as_the_runner_records_it_is_matched_to_the_candle_it_was_made_on(
    tmp_path: Path,
) -> None:
    """End to end: the brain stamps the candle's open time, the runner adds the close as
    ``price``; the outcome's entry is that close."""
    closes = [100.0, 102.0, 101.0, 105.0, 104.0]
    store = StateStore.for_path(tmp_path / "state.db")
    for i, close in enumerate(closes):
        candle = CandleRecord(SYMBOL, "1h", T0 + i * HOUR, close, close, close, close, 1.0)
        decision = Decision(T0 + i * HOUR, SYMBOL, Action.BUY if i % 2 else Action.SELL, 0.7)
        shown = {**decision.to_dict(), "price": close, "timeframe": "1h"}  # Runner.latest_shape
        store.record_step(Step("paper-1", SYMBOL, "1h", candle, decision=shown))
    log = ExperienceLog(tmp_path / "experience")
    log.export(store, "paper-1")

    outcomes = decision_outcomes(
        log.read("decisions", "paper-1"),
        store.candles("paper-1", SYMBOL, "1h"),
        horizon=1,
        round_trip_cost=0,
        as_of=T0 + 5 * HOUR,
    )

    documents = log.read("decisions")["document"].str.json_decode()
    entry = [doc["price"] for doc in documents.to_list()[:4]]
    assert outcomes.height == 4
    assert outcomes["forward_return"].to_list() == pytest.approx(
        [math.log(closes[i + 1] / entry[i]) for i in range(4)]
    )
    assert outcomes["direction"].to_list() == [-1, 1, -1, 1]
    store.close()


# -- the purge as a property -----------------------------------------------------------------


@st.composite
def market(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = draw(st.integers(2, 40))
    steps = draw(st.lists(st.floats(-0.05, 0.05), min_size=n, max_size=n))
    closes = [100.0 * math.exp(sum(steps[: i + 1])) for i in range(n)]
    actions = draw(
        st.lists(st.sampled_from(["buy", "sell", "hold", "exit"]), min_size=n, max_size=n)
    )
    return candles_of(closes), decisions_of(list(enumerate(actions)))


@settings(max_examples=60)
@given(
    data=market(),
    horizon=st.integers(1, 6),
    cut=st.integers(0, 45),
    later=st.integers(0, 45),
    minutes=st.integers(0, 59),
)
def test_no_outcome_reads_a_price_after_as_of_and_more_future_changes_no_outcome(
    data: tuple[pl.DataFrame, pl.DataFrame], horizon: int, cut: int, later: int, minutes: int
) -> None:
    candles, decisions = data
    as_of = T0 + cut * HOUR + timedelta(minutes=minutes)
    known = candles.filter(pl.col("timestamp") + HOUR <= as_of)  # what existed at as_of

    now = decision_outcomes(
        decisions, known, horizon=horizon, round_trip_cost=COST, as_of=as_of, timeframe="1h"
    )
    with_future = decision_outcomes(
        decisions,
        candles,
        horizon=horizon,
        round_trip_cost=COST,
        as_of=as_of + later * HOUR,
        timeframe="1h",
    )

    assert (now["outcome_end"] + HOUR <= as_of).all()
    assert (now["outcome_end"] <= as_of).all()
    assert now.equals(with_future.join(now.select("timestamp"), on="timestamp", how="semi"))
    assert set(now["action"]) <= {"buy", "sell"}
    expected_rows = sum(
        1
        for i, action in enumerate(decisions["action"])
        if action in {"buy", "sell"}
        and T0 + (i + horizon + 1) * HOUR <= as_of
        and i + horizon < candles.height
    )
    assert now.height == expected_rows


# -- the retraining window -------------------------------------------------------------------


@settings(max_examples=60)
@given(
    n=st.integers(0, 50),
    max_rows=st.none() | st.integers(1, 60),
    end_hours=st.none() | st.floats(-5, 60),
)
def test_the_retraining_window_holds_the_newest_rows_before_end_and_at_most_max_rows(
    n: int, max_rows: int | None, end_hours: float | None
) -> None:
    candles = candles_of([100.0 + i for i in range(n)])
    end = None if end_hours is None else T0 + timedelta(hours=end_hours)

    window = retraining_window(candles, max_rows=max_rows, end=end)

    before = candles if end is None else candles.filter(pl.col("timestamp") < end)
    assert window.height == (before.height if max_rows is None else min(max_rows, before.height))
    assert end is None or (window["timestamp"] < end).all()
    assert window.equals(before.tail(window.height))


def test_the_retraining_window_never_includes_the_candle_stamped_at_end() -> None:
    window = retraining_window(candles_of(CLOSES), max_rows=3, end=T0 + 4 * HOUR)

    assert window["timestamp"].to_list() == [T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]


def test_unsorted_candles_are_refused_naming_the_row_that_goes_back() -> None:
    candles = candles_of(CLOSES)
    shuffled = pl.concat([candles.slice(0, 3), candles.slice(4, 1), candles.slice(3, 1)])

    with pytest.raises(UserInputError, match=r"not sorted by time: row 4 .* comes after row 3"):
        retraining_window(shuffled, max_rows=None)


def test_duplicate_candles_are_refused_naming_the_time_twice_seen() -> None:
    candles = candles_of(CLOSES)
    doubled = pl.concat([candles.slice(0, 3), candles.slice(2, 1)])

    with pytest.raises(UserInputError, match=r"2024-01-01T02:00:00\+00:00 appears twice"):
        retraining_window(doubled, max_rows=None)
    with pytest.raises(UserInputError, match="appears twice"):
        decision_outcomes(decisions_of([(0, "buy")]), doubled, horizon=1, round_trip_cost=0)


@pytest.mark.parametrize(
    ("candles", "message"),
    [
        (
            candles_of(CLOSES).with_columns(pl.col("timestamp").dt.replace_time_zone(None)),
            "has no time zone.*replace_time_zone",
        ),
        (
            candles_of(CLOSES).with_columns(pl.col("timestamp").cast(pl.String)),
            "not a datetime",
        ),
        (pl.concat([candles_of(CLOSES, "BTC"), candles_of(CLOSES, "ETH")]), "hold 2 symbols"),
        (candles_of(CLOSES).drop("timestamp"), r"lack the column\(s\) \['timestamp'\]"),
    ],
)
def test_candles_that_cannot_be_trusted_are_refused_with_the_fix(
    candles: pl.DataFrame, message: str
) -> None:
    with pytest.raises(UserInputError, match=message):
        retraining_window(candles, max_rows=10)


@pytest.mark.parametrize("max_rows", [0, -1, True, 2.5])
def test_a_max_rows_that_is_not_a_whole_number_above_zero_is_refused(max_rows: Any) -> None:
    with pytest.raises(UserInputError, match="max_rows must be a whole number >= 1"):
        retraining_window(candles_of(CLOSES), max_rows=max_rows)


def test_a_naive_end_is_refused() -> None:
    with pytest.raises(UserInputError, match="end 2024-01-01T00:00:00 has no time zone"):
        retraining_window(candles_of(CLOSES), max_rows=3, end=datetime(2024, 1, 1))

"""The model supervisor judges each model on the moves that followed its votes, never later."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from tradebrain.brain.decision import Action, Decision
from tradebrain.data.synthetic import SyntheticConfig, SyntheticMarket, generate_market
from tradebrain.exceptions import ConfigError, UserInputError
from tradebrain.learning.supervisor import (
    FAILING,
    HEALTHY,
    WARMING_UP,
    ModelHealth,
    SupervisorSettings,
    retrain_wanted,
    supervise,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
TIME = pl.Datetime("us", "UTC")
SYMBOL = "BTC/USDT"
SMALL = SupervisorSettings(horizon=3, min_resolved=5, window=20, alpha=0.05)


def candles_of(closes: list[float] | np.ndarray) -> pl.DataFrame:
    """Hourly candles from T0 (open time stamps) with the given closes."""
    return pl.DataFrame(
        {
            "timestamp": pl.Series([T0 + i * HOUR for i in range(len(closes))], dtype=TIME),
            "close": [float(c) for c in closes],
        }
    )


def decision(row: int, votes: dict[str, list[float] | None], **fields: Any) -> dict[str, Any]:
    """A stored decision document on candle ``row`` (stamped with its open time)."""
    return {"timestamp": (T0 + row * HOUR).isoformat(), "symbol": SYMBOL, "votes": votes} | fields


def up(p_up: float) -> list[float]:
    """A binary vote ``[p_down, 0, p_up]``."""
    return [1.0 - p_up, 0.0, p_up]


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return generate_market(SyntheticConfig(bars=3000, signal=0.3, edge="trend", seed=1))


def market_decisions(market: SyntheticMarket, rows: range | None = None) -> list[dict[str, Any]]:
    """Decisions of three models on the market's candles, newest first as the store gives them.

    ``oracle`` votes p_up = sigmoid(drift / std(drift)) from the planted drift, ``inverse`` the
    opposite, ``always_up`` p_up = 0.9 whatever happens.
    """
    drift = market.regimes["oracle_expected_return"].to_numpy()
    p_up = 1.0 / (1.0 + np.exp(-drift / drift.std()))
    stamps, closes = market.candles["timestamp"], market.candles["close"]
    return [
        {
            "timestamp": stamps[i].isoformat(),
            "symbol": SYMBOL,
            "price": closes[i],
            "horizon": 12,
            "votes": {
                "oracle": up(p_up[i]),
                "inverse": up(1.0 - p_up[i]),
                "always_up": [0.1, 0.0, 0.9],
            },
        }
        for i in reversed(rows or range(market.candles.height))
    ]


@pytest.fixture(scope="module")
def health(market: SyntheticMarket) -> dict[str, ModelHealth]:
    return supervise(market_decisions(market), market.candles, timeframe="1h")


# -- the verdicts ----------------------------------------------------------------------------


def test_a_model_voting_with_the_planted_drift_is_healthy_with_positive_skill(
    health: dict[str, ModelHealth],
) -> None:
    oracle = health["oracle"]
    assert oracle.status == HEALTHY and oracle.weight == 1.0
    assert not oracle.failing and not oracle.biased
    assert oracle.resolved == 3000 - 12
    assert oracle.information_coefficient > 0.3 and oracle.ic_t_stat > 5
    assert oracle.hit_rate > 0.6
    assert oracle.brier < 0.25  # better than a coin
    assert any(reason.startswith("healthy") for reason in oracle.reasons)


def test_a_model_voting_against_the_drift_is_failing_and_weighed_to_zero(
    health: dict[str, ModelHealth],
) -> None:
    inverse = health["inverse"]
    assert inverse.status == FAILING and inverse.failing and inverse.weight == 0.0
    assert not inverse.biased
    assert inverse.information_coefficient == pytest.approx(
        -health["oracle"].information_coefficient
    )
    assert inverse.ic_t_stat < -5
    assert any("significantly negative" in reason for reason in inverse.reasons)


def test_a_model_that_always_says_up_is_biased_and_failing(
    health: dict[str, ModelHealth],
) -> None:
    always_up = health["always_up"]
    assert always_up.biased and always_up.failing and always_up.weight == 0.0
    assert always_up.up_share == 1.0
    assert abs(always_up.up_share - always_up.realised_up_share) > 0.15
    assert always_up.information_coefficient == 0.0  # a constant vote has no rank skill
    assert any(
        reason.startswith("failing: biased, it says up on 100%") for reason in always_up.reasons
    )


def test_fewer_resolved_votes_than_min_resolved_is_warming_up_at_full_weight(
    market: SyntheticMarket,
) -> None:
    health = supervise(market_decisions(market, range(150)), market.candles, timeframe="1h")
    for judged in health.values():  # even the inverse model is not judged yet
        assert judged.status == WARMING_UP and judged.weight == 1.0 and not judged.failing
        assert judged.resolved == 150
        assert judged.reasons[0].startswith("warming up: 150 of the 200 resolved votes")
    assert retrain_wanted(health) == ""


def test_retrain_wanted_names_every_failing_model_and_is_empty_when_none_fails(
    health: dict[str, ModelHealth],
) -> None:
    reason = retrain_wanted(health)
    assert reason.startswith("retrain: 2 models failing on live decisions (always_up, inverse)")
    assert "biased" in reason and "significantly negative" in reason
    assert "oracle" not in reason
    assert retrain_wanted({"oracle": health["oracle"]}) == ""
    assert retrain_wanted({}) == ""


def test_only_the_newest_window_of_resolved_votes_is_judged(market: SyntheticMarket) -> None:
    decisions = market_decisions(market)
    settings = SupervisorSettings(window=500)
    health = supervise(decisions, market.candles, timeframe="1h", settings=settings)
    newest = supervise(decisions[: 500 + 12], market.candles, timeframe="1h", settings=settings)
    assert health["oracle"].resolved == 3000 - 12
    assert health["oracle"].information_coefficient == newest["oracle"].information_coefficient
    assert "newest 500 of 2988 resolved votes" in health["oracle"].reasons[0]


# -- the numbers -----------------------------------------------------------------------------


def test_the_scores_follow_their_textbook_definitions() -> None:
    rng = np.random.default_rng(3)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 300)))
    closes[50] = closes[49]  # a zero move, left out of the hit rate
    p_up = rng.uniform(0.0, 1.0, 299)
    p_up[10:20] = 0.5  # neutral votes score half a hit
    decisions = [decision(i, {"m": up(p_up[i])}) for i in range(299)]
    settings = SupervisorSettings(horizon=1, min_resolved=10, window=1000)
    judged = supervise(decisions, candles_of(closes), timeframe="1h", settings=settings)["m"]

    forward = np.log(closes[1:] / closes[:-1])
    signal = 2.0 * p_up - 1.0
    went_up = (forward > 0).astype(float)
    ic = stats.spearmanr(signal, forward).statistic
    moved = forward != 0
    hits = np.where(signal[moved] == 0, 0.5, np.sign(signal[moved]) == np.sign(forward[moved]))
    bins = np.minimum((p_up * 10).astype(int), 9)
    ece = sum(
        (bins == b).mean() * abs(p_up[bins == b].mean() - went_up[bins == b].mean())
        for b in np.unique(bins)
    )
    assert judged.resolved == 299
    assert judged.information_coefficient == pytest.approx(ic)
    # one-candle horizons on every candle do not overlap: the plain t of a correlation
    assert judged.ic_t_stat == pytest.approx(math.sqrt(297) * ic / math.sqrt(1 - ic**2))
    assert judged.hit_rate == pytest.approx(hits.mean())
    assert judged.brier == pytest.approx(np.mean((p_up - went_up) ** 2))
    assert judged.calibration_error == pytest.approx(ece)
    assert judged.up_share == pytest.approx(np.mean(p_up > 0.5))
    assert judged.realised_up_share == pytest.approx(went_up.mean())


def test_the_t_statistic_is_shrunk_by_overlapping_horizons_only(market: SyntheticMarket) -> None:
    every = supervise(market_decisions(market), market.candles, timeframe="1h")["oracle"]
    apart = supervise(market_decisions(market, range(0, 3000, 12)), market.candles, timeframe="1h")[
        "oracle"
    ]
    ic = apart.information_coefficient
    n = apart.resolved
    assert apart.ic_t_stat == pytest.approx(math.sqrt(n - 2) * ic / math.sqrt(1 - ic**2))
    plain = math.sqrt(2000 - 2) * every.information_coefficient
    plain /= math.sqrt(1 - every.information_coefficient**2)
    assert every.ic_t_stat == pytest.approx(plain / math.sqrt(12), rel=0.01)


def test_a_decisions_own_horizon_overrides_the_default_and_zero_means_none() -> None:
    closes = [100.0, 101.0, 99.0, 120.0, 80.0, 100.0]
    decisions = [
        decision(0, {"m": up(0.9)}, horizon=1),  # 100 -> 101
        decision(1, {"m": up(0.9)}, horizon=0),  # default 3: 101 -> 80
    ]
    settings = SupervisorSettings(horizon=3, min_resolved=3, window=10)
    judged = supervise(decisions, candles_of(closes), timeframe="1h", settings=settings)["m"]
    assert judged.resolved == 2
    assert judged.realised_up_share == 0.5


# -- no look-ahead ---------------------------------------------------------------------------


def test_a_vote_resolves_only_once_its_horizons_last_candle_has_closed() -> None:
    candles = candles_of([100.0 + i for i in range(10)])
    decisions = [decision(0, {"m": up(0.7)}, horizon=3)]  # last candle: row 3, closes at 4 h
    closed = T0 + 4 * HOUR

    def resolved(as_of: datetime | None, frame: pl.DataFrame = candles) -> int:
        return supervise(decisions, frame, timeframe="1h", as_of=as_of, settings=SMALL)[
            "m"
        ].resolved

    assert resolved(closed) == 1
    assert resolved(closed - timedelta(microseconds=1)) == 0
    assert resolved(None, candles.head(4)) == 1  # as_of: the newest candle's close
    assert resolved(None, candles.head(3)) == 0  # its last candle is not there yet


CLOSES = 100.0 * np.exp(np.cumsum(np.random.default_rng(5).normal(0.0, 0.02, 80)))


@st.composite
def judged_decisions(draw: st.DrawFn) -> tuple[list[dict[str, Any]], datetime, list[int]]:
    """Decisions on distinct candles of ``CLOSES`` (some past the end), an ``as_of`` on the
    grid, and the free rows at or after it (decisions there are made after ``as_of``)."""
    rows = draw(st.lists(st.integers(0, 95), min_size=10, max_size=60, unique=True))
    decisions = [
        decision(
            row,
            {
                model: up(draw(st.floats(0.0, 1.0)))
                for model in draw(st.sets(st.sampled_from(["a", "b", "c"]), min_size=1))
            },
            horizon=draw(st.sampled_from([None, 0, 1, 2, 5])),
        )
        for row in rows
    ]
    cut = draw(st.integers(1, 90))
    later = [row for row in range(cut, 100) if row not in rows]
    return decisions, T0 + cut * HOUR, later


def results(
    decisions: list[dict[str, Any]], as_of: datetime, candles: pl.DataFrame | None = None
) -> dict[str, dict[str, Any]]:
    frame = candles_of(CLOSES) if candles is None else candles
    health = supervise(decisions, frame, timeframe="1h", as_of=as_of, settings=SMALL)
    return {model: judged.to_dict() for model, judged in health.items()}


@given(judged_decisions(), st.data())
def test_decisions_made_after_as_of_never_change_the_judgement(
    drawn: tuple[list[dict[str, Any]], datetime, list[int]], data: st.DataObject
) -> None:
    decisions, as_of, free = drawn
    extra_rows = data.draw(st.lists(st.sampled_from(free), unique=True) if free else st.just([]))
    extra = [decision(row, {"a": up(1.0), "late_model": up(0.0)}, horizon=1) for row in extra_rows]
    assert results(decisions + extra, as_of) == results(decisions, as_of)


@given(judged_decisions())
def test_candles_that_close_after_as_of_never_change_the_judgement(
    drawn: tuple[list[dict[str, Any]], datetime, list[int]],
) -> None:
    decisions, as_of, _ = drawn
    closed = candles_of(CLOSES).filter(pl.col("timestamp") + HOUR <= as_of)
    assert results(decisions, as_of, closed) == results(decisions, as_of)


@given(judged_decisions(), st.data())
def test_the_judgement_is_the_same_whatever_order_the_decisions_come_in(
    drawn: tuple[list[dict[str, Any]], datetime, list[int]], data: st.DataObject
) -> None:
    decisions, as_of, _ = drawn
    shuffled = data.draw(st.permutations(decisions))
    assert results(shuffled, as_of) == results(decisions, as_of)


# -- documents, settings and errors ----------------------------------------------------------


def test_the_brains_decision_documents_are_judged_as_stored() -> None:
    candles = candles_of([100.0, 102.0, 101.0, 103.0, 104.0])
    documents = [
        Decision(
            timestamp=T0 + i * HOUR,
            symbol=SYMBOL,
            action=Action.HOLD,
            confidence=0.5,
            votes={"gbm": (0.2, 0.3, 0.5)},
        ).to_dict()  # horizon 0: no forecast
        for i in range(5)
    ]
    health = supervise(documents, candles, timeframe="1h", settings=SMALL)
    assert health["gbm"].resolved == 2  # horizon 3 by default: rows 0 and 1


def test_a_model_without_a_resolved_vote_is_warming_up_and_json_ready() -> None:
    health = supervise(
        [decision(0, {"m": up(0.6), "silent": None})], candles_of([100.0, 101.0]), timeframe="1h"
    )
    assert list(health) == ["m"]  # a vote of None is no vote
    judged = health["m"]
    assert judged.status == WARMING_UP and judged.resolved == 0 and judged.weight == 1.0
    assert json.loads(json.dumps(judged.to_dict(), allow_nan=False))["brier"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"horizon": 0}, "horizon must be a whole number >= 1"),
        ({"min_resolved": 2}, "min_resolved must be a whole number >= 3"),
        ({"window": 100}, r"window \(100\) must be >= min_resolved \(200\)"),
        ({"alpha": 0.5}, r"alpha must be in \(0, 0.5\)"),
        ({"horizon": True}, "horizon must be a whole number"),
    ],
)
def test_settings_out_of_range_are_refused_when_made(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SupervisorSettings(**change)


GOOD = candles_of([100.0, 101.0, 102.0, 103.0, 104.0])


@pytest.mark.parametrize(
    ("decisions", "candles", "keywords", "message"),
    [
        (
            [{"timestamp": (T0 + 90 * timedelta(minutes=1)).isoformat(), "votes": {}}],
            GOOD,
            {},
            "not on the candles' grid",
        ),
        (
            [decision(2, {}), decision(2, {})],
            GOOD,
            {},
            "appears twice",
        ),
        (
            [decision(1, {})],
            GOOD.filter(pl.col("timestamp") != T0 + HOUR),
            {},
            "no candle stamped at that time although the candles span it",
        ),
        ([decision(0, {})], GOOD, {"timeframe": "1 hour"}, "timeframe '1 hour' is not understood"),
        ([decision(0, {})], GOOD, {"timeframe": "2h"}, "a whole number of 2h candles apart"),
        ([decision(0, {})], GOOD, {"as_of": datetime(2024, 1, 2)}, "as_of .* has no time zone"),
        (
            [{"timestamp": "2024-01-01T00:00:00", "votes": {}}],
            GOOD,
            {},
            "has no time zone",
        ),
        ([{"votes": {}}], GOOD, {}, "decision 0 has no 'timestamp'"),
        ([decision(0, {"m": [0.5, 0.5]})], GOOD, {}, "a vote is \\[p_down, p_flat, p_up\\]"),
        ([decision(0, {"m": [0.5, 0.0, 1.5]})], GOOD, {}, "outside \\[0, 1\\]"),
        ([decision(0, {}, horizon=-1)], GOOD, {}, "horizon -1 is not a whole number"),
        ([decision(0, {}, price=250.0)], GOOD, {}, "made at price 250.0 but its candle closed"),
        (
            [decision(0, {}), decision(1, {}, symbol="ETH/USDT")],
            GOOD,
            {},
            r"2 symbols \(\['BTC/USDT', 'ETH/USDT'\]\)",
        ),
        ([decision(0, {})], GOOD.reverse(), {}, "must be sorted, unique"),
        ([decision(0, {})], GOOD.with_columns(close=pl.lit(-1.0)), {}, "not a positive price"),
        ([decision(0, {})], GOOD.drop("close"), {}, r"lack the column\(s\) \['close'\]"),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_the_fix(
    decisions: list[dict[str, Any]], candles: pl.DataFrame, keywords: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"timeframe": "1h"} | keywords
    with pytest.raises(UserInputError, match=message):
        supervise(decisions, candles, **arguments)

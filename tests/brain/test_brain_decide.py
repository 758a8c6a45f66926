"""The Brain decides candle after candle, each step with its filter name and reason."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pytest
from conftest import CALM_ROW, HOUR, START, CrashMarket, RowMaker
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.brain import PARTS, Action, Brain, Decision, PositionContext
from tradebrain.brain.fusion import Vote
from tradebrain.config import BrainSettings
from tradebrain.exceptions import ConfigError

BUY_VOTE = {"lightgbm": (0.15, 0.25, 0.60)}
STRONG_BUY = {"lightgbm": (0.05, 0.10, 0.85)}
SELL_VOTE = {"lightgbm": (0.60, 0.25, 0.15)}
MARKET = PositionContext(price=100.0)
REASON_WORDS = {
    "regime_weights": "tilt: ",
    "order_flow_vote": "order-flow vote",
    "risk_vote": "risk vote",
    "risk_block": "risk block",
    "volatility_cut": "volatility cut",
    "liquidation_guard": "liquidation guard",
    "kalman": "Kalman smoothed",
    "volatility_threshold": "volatility threshold",
    "chop": "chop filter",
    "trend_depth": "trend depth",
    "panic_exit": "panic score",
    "funding_flip": "funding flip",
    "gap_safe": "gap-safe mode",
    "maker_taker": "order type",
}


def decide_once(
    brain: Brain,
    features: dict[str, float],
    votes: Mapping[str, Vote],
    position: float = 0.0,
    liquidation_distance: float | None = None,
) -> Decision:
    market = PositionContext(100.0, position=position, liquidation_distance=liquidation_distance)
    return brain.decide(START, "BTC/USDT", features, votes, market)


def test_a_confident_vote_in_a_calm_market_buys_with_stop_target_and_size(row: RowMaker) -> None:
    decision = decide_once(Brain(), row(), BUY_VOTE)
    assert decision.action is Action.BUY
    assert decision.confidence == pytest.approx(0.60)
    assert decision.stop == pytest.approx(100.0 - 1.5 * 1.0)
    assert decision.target == pytest.approx(100.0 + 1.5 * 1.5 * 1.0)  # choppy: reward:risk 1.5
    assert 0.0 < decision.size <= 0.02
    assert decision.regime == "choppy"
    assert decision.votes == BUY_VOTE


def test_a_sell_puts_the_stop_above_and_the_target_below(row: RowMaker) -> None:
    decision = decide_once(Brain(), row(adx_14=31.0, ema_alignment=-1.0), SELL_VOTE)
    assert decision.action is Action.SELL
    assert decision.stop == pytest.approx(101.5)
    assert decision.target == pytest.approx(100.0 - 3.0 * 1.5)  # trend: reward:risk 3


def test_hold_when_no_model_is_confident(row: RowMaker) -> None:
    votes = {"lightgbm": (0.32, 0.35, 0.33), "cnn": (0.34, 0.33, 0.33)}
    decision = decide_once(Brain(), row(), votes)
    assert decision.action is Action.HOLD
    assert decision.size == 0.0 and decision.stop is None
    assert any("below the bar" in reason for reason in decision.reasons)


def test_hold_when_no_model_votes_and_say_so(row: RowMaker) -> None:
    decision = decide_once(Brain(), row(), {"broken": (float("nan"), 0.5, 0.5)})
    assert decision.action is Action.HOLD
    assert "vote of broken ignored" in decision.reasons[1]
    assert "no model voted" in decision.reasons[2]


def test_the_chop_filter_raises_the_bar_above_a_fair_vote(row: RowMaker) -> None:
    quiet = row(atr_ratio_14_96=0.8)
    assert decide_once(Brain(), quiet, BUY_VOTE).action is Action.HOLD
    assert "chop" in decide_once(Brain(), quiet, BUY_VOTE).filters
    assert decide_once(Brain(disabled={"chop"}), quiet, BUY_VOTE).action is Action.BUY


def test_a_deep_trend_bypasses_the_chop_filter_and_takes_liquidity(row: RowMaker) -> None:
    deep_and_quiet = row(
        adx_14=40.0, ema_alignment=1.0, efficiency_ratio_20=0.5, atr_ratio_14_96=0.8
    )
    decision = decide_once(Brain(), deep_and_quiet, BUY_VOTE)
    assert decision.action is Action.BUY
    assert "trend_depth" in decision.filters and "chop" not in decision.filters
    assert not decision.maker
    shallow = decide_once(Brain(disabled={"trend_depth"}), deep_and_quiet, BUY_VOTE)
    assert shallow.action is Action.HOLD


def test_high_volatility_raises_the_bar_and_cuts_confidence(row: RowMaker) -> None:
    decision = decide_once(Brain(), row(atr_ratio_14_96=2.0), STRONG_BUY)
    assert {"volatility_threshold", "volatility_cut"} <= set(decision.filters)
    assert decision.confidence < 0.85


def test_a_dangerous_market_blocks_new_trades(row: RowMaker) -> None:
    decision = decide_once(Brain(), row(atr_ratio_14_96=3.0), STRONG_BUY)
    assert decision.action is Action.HOLD
    assert "risk_block" in decision.filters


def test_a_position_near_liquidation_is_closed(row: RowMaker) -> None:
    near = decide_once(Brain(), row(), BUY_VOTE, position=2.0, liquidation_distance=0.015)
    assert near.action is Action.EXIT
    assert "liquidation_guard" in near.filters
    flat = decide_once(Brain(), row(), BUY_VOTE, position=0.0, liquidation_distance=0.015)
    assert flat.action is Action.BUY


def test_the_funding_flip_cools_longs_but_not_shorts(row: RowMaker) -> None:
    brain = Brain()
    actions = []
    for i, funding in enumerate([1.0, 1.0, -1.0] + [-1.0] * 9):
        decision = brain.decide(
            START + i * HOUR, "BTC/USDT", row(funding_rate_bps=funding), BUY_VOTE, MARKET
        )
        actions.append(decision.action)
    assert actions[:2] == [Action.BUY, Action.BUY]
    assert actions[2:10] == [Action.HOLD] * 8
    assert actions[10:] == [Action.BUY, Action.BUY]
    shorts = Brain()
    shorts.decide(START, "BTC/USDT", row(funding_rate_bps=1.0), SELL_VOTE, MARKET)
    after_flip = shorts.decide(
        START + HOUR, "BTC/USDT", row(funding_rate_bps=-1.0), SELL_VOTE, MARKET
    )
    assert after_flip.action is Action.SELL and "funding_flip" in after_flip.filters


def test_each_symbol_keeps_its_own_memory(row: RowMaker) -> None:
    brain = Brain()
    brain.decide(START, "BTC/USDT", row(funding_rate_bps=1.0), BUY_VOTE, MARKET)
    brain.decide(START + HOUR, "BTC/USDT", row(funding_rate_bps=-1.0), BUY_VOTE, MARKET)
    other = brain.decide(START + HOUR, "ETH/USDT", row(funding_rate_bps=-1.0), BUY_VOTE, MARKET)
    assert other.action is Action.BUY


def test_a_data_gap_halves_the_size_for_a_while(row: RowMaker) -> None:
    brain = Brain()
    sizes = []
    for hour in [*range(5), *range(10, 40)]:
        decision = brain.decide(START + hour * HOUR, "BTC/USDT", row(), BUY_VOTE, MARKET)
        sizes.append(decision.size)
    assert sizes[5] == pytest.approx(sizes[4] / 2)
    assert (
        "gap_safe"
        in brain.decide(
            START + 40 * HOUR, "X", row(), BUY_VOTE, PositionContext(100.0, gap_candles=2)
        ).filters
    )
    assert sizes[-1] == pytest.approx(sizes[4])


def test_a_wide_spread_posts_a_maker_order(row: RowMaker) -> None:
    brain = Brain(disabled={"kalman"})
    for hour in range(30):
        brain.decide(START + hour * HOUR, "BTC/USDT", row(spread_bps=2.0), BUY_VOTE, MARKET)
    wide = brain.decide(START + 30 * HOUR, "BTC/USDT", row(spread_bps=4.0), STRONG_BUY, MARKET)
    assert wide.action is Action.BUY and wide.maker
    tight = brain.decide(START + 31 * HOUR, "BTC/USDT", row(spread_bps=2.0), BUY_VOTE, MARKET)
    assert not tight.maker


def test_the_kalman_filter_cuts_flicker_between_buy_and_sell(row: RowMaker) -> None:
    rng = np.random.default_rng(5)

    def flips(brain: Brain) -> int:
        sides = []
        for i in range(120):
            lean = 0.25 * (-1) ** i + rng.normal(0, 0.05)
            vote = {"lightgbm": (0.4 - lean, 0.2, 0.4 + lean)}
            action = brain.decide(START + i * HOUR, "BTC/USDT", row(), vote, MARKET).action
            if action in (Action.BUY, Action.SELL):
                sides.append(action)
        return sum(a != b for a, b in itertools.pairwise(sides))

    raw, smoothed = flips(Brain(disabled={"kalman"})), flips(Brain())
    assert raw > 100
    assert smoothed <= raw // 10


def test_settings_switches_turn_parts_off() -> None:
    brain = Brain(
        BrainSettings(kalman=False, chop_filter=False, panic_exit=False, funding_flip_filter=False)
    )
    assert not {"kalman", "chop", "panic_exit", "funding_flip"} & brain.enabled


def test_an_unknown_part_to_disable_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown brain part.*kalmann.*choose from"):
        Brain(disabled={"kalmann"})


def run_market(brain: Brain, market: CrashMarket, candles: int = 1500) -> list[Decision]:
    """Run the brain over the synthetic market with noisy votes, a gap and a risky position."""
    rng = np.random.default_rng(0)
    decisions = []
    for i in range(candles):
        lean = float(np.clip(0.3 * math.sin(i / 40) + rng.normal(0.0, 0.05), -0.3, 0.3))
        votes = {
            "lightgbm": (0.35 - lean, 0.3, 0.35 + lean),
            "lstm": (0.3 - lean / 2, 0.4, 0.3 + lean / 2),
        }
        timestamp = market.timestamps[i] + (5 * HOUR if i >= 800 else 0 * HOUR)
        state = PositionContext(
            price=float(market.close[i]),
            position=1.0 if i % 50 == 0 else 0.0,
            liquidation_distance=0.005,
        )
        features = market.rows[i]
        if i % 300 == 299:  # liquidity vanishes: the spread jumps 5x
            features = features | {"spread_bps": 5.0 * features["spread_bps"]}
        decisions.append(brain.decide(timestamp, "BTC/USDT", features, votes, state))
    return decisions


@pytest.fixture(scope="module")
def full_run(crash_market: CrashMarket) -> list[Decision]:
    return run_market(Brain(), crash_market)


def test_every_part_fires_on_the_synthetic_market_with_a_reason_each_time(
    full_run: list[Decision],
) -> None:
    fired = {name for decision in full_run for name in decision.filters}
    assert fired == set(PARTS)
    for decision in full_run:
        for name in decision.filters:
            assert any(REASON_WORDS[name] in reason for reason in decision.reasons), (
                name,
                decision.reasons,
            )


@pytest.mark.parametrize("part", PARTS)
def test_disabling_a_part_removes_its_name_from_the_filters(
    crash_market: CrashMarket, part: str
) -> None:
    decisions = run_market(Brain(disabled={part}), crash_market, candles=1000)
    assert all(part not in decision.filters for decision in decisions)


def test_the_same_inputs_give_the_same_decisions(
    crash_market: CrashMarket, full_run: list[Decision]
) -> None:
    again = run_market(Brain(), crash_market)
    assert [d.to_dict() for d in again] == [d.to_dict() for d in full_run]


probabilities = st.tuples(*(st.floats(0.0, 1.0) for _ in range(3)))
feature_values = st.one_of(st.floats(-5.0, 100.0), st.just(float("nan")))


@settings(max_examples=60, deadline=None)
@given(
    votes=st.lists(
        st.dictionaries(
            st.sampled_from(["lightgbm", "lstm", "cnn", "orderflow", "ppo"]),
            probabilities,
            max_size=5,
        ),
        min_size=1,
        max_size=6,
    ),
    overrides=st.dictionaries(st.sampled_from(sorted(CALM_ROW)), feature_values, max_size=5),
    position=st.sampled_from([0.0, 1.0, -1.0]),
    distance=st.one_of(st.none(), st.floats(0.0, 0.2)),
)
def test_decisions_stay_well_formed_and_deterministic_whatever_the_inputs(
    votes: list[dict[str, tuple[float, float, float]]],
    overrides: dict[str, float],
    position: float,
    distance: float | None,
) -> None:
    features = CALM_ROW | overrides
    runs = []
    for brain in (Brain(), Brain()):
        run = []
        for i, candle_votes in enumerate(votes):
            market = PositionContext(price=100.0, position=position, liquidation_distance=distance)
            run.append(brain.decide(START + i * HOUR, "BTC/USDT", features, candle_votes, market))
        runs.append(run)
    assert [d.to_dict() for d in runs[0]] == [d.to_dict() for d in runs[1]]
    for decision, candle_votes in zip(runs[0], votes, strict=True):
        assert 0.0 <= decision.confidence <= 1.0
        assert math.fsum(decision.proba) == pytest.approx(1.0)
        assert decision.size >= 0.0
        if decision.action in (Action.BUY, Action.SELL):
            assert decision.confidence >= BrainSettings().min_confidence - 1e-9
        if not any(max(v) - min(v) > 0 for v in candle_votes.values()):
            assert decision.action is not Action.BUY and decision.action is not Action.SELL


def test_a_decision_is_json_ready(row: RowMaker) -> None:
    data = decide_once(Brain(), row(), BUY_VOTE).to_dict()
    assert data["action"] == "buy"
    assert isinstance(data["timestamp"], str)
    assert data["proba"] == pytest.approx([0.15, 0.25, 0.60])
    assert isinstance(datetime.fromisoformat(data["timestamp"]), datetime)


def test_raises_never_lower_a_strict_minimum_confidence(row: RowMaker) -> None:
    strict = Brain(BrainSettings(min_confidence=0.97))
    assert decide_once(strict, row(atr_ratio_14_96=0.8), STRONG_BUY).action is Action.HOLD
    certain = {"lightgbm": (0.0, 0.0, 1.0)}
    assert (
        decide_once(Brain(BrainSettings(min_confidence=1.0)), row(), certain).action is Action.BUY
    )

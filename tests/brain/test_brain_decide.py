"""The Brain turns a calibrated forecast into a target position, each step with its reason."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest
from conftest import CALM_ROW, HOUR, START, CrashMarket, RowMaker
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.brain import PARTS, Action, Brain, Decision, PositionContext
from tradebrain.brain.fusion import Vote
from tradebrain.brain.positioning import Forecast
from tradebrain.brain.tuning import BrainTuning
from tradebrain.config import BrainSettings, ExecutionSettings, RiskSettings, Settings
from tradebrain.exceptions import ConfigError
from tradebrain.models.forecast import probit_score

BUY_VOTE = {"lightgbm": (0.15, 0.25, 0.60)}
STRONG_BUY = {"lightgbm": (0.05, 0.10, 0.85)}
SELL_VOTE = {"lightgbm": (0.60, 0.25, 0.15)}
FAIR_VOTE = {"lightgbm": (0.30, 0.30, 0.40)}  # z 0.18: expected 0.54 %, above the 0.33 % bar
FORECAST = Forecast(beta=1.0, sigma=0.03, horizon=24)
MARKET = PositionContext(price=100.0)
ROUND_TRIP = 2 * (0.001 + 1e-4)
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
    exposure: float = 0.0,
    liquidation_distance: float | None = None,
    *,
    shorts: bool = True,
    forecast: Forecast | None = FORECAST,
) -> Decision:
    market = PositionContext(
        100.0, position=exposure, liquidation_distance=liquidation_distance,
        exposure=exposure, shorts=shorts,
    )  # fmt: skip
    return brain.decide(START, "BTC/USDT", features, votes, market, forecast)


def test_a_confident_vote_opens_the_full_target_with_a_stop_and_no_take_profit(
    row: RowMaker,
) -> None:
    decision = decide_once(Brain(), row(), BUY_VOTE)
    z = probit_score(0.15, 0.60)
    assert decision.action is Action.BUY
    assert decision.expected_return == pytest.approx(z * 0.03)
    assert decision.target_position == pytest.approx(1.0)  # half Kelly far above the cap
    assert decision.horizon == 24
    assert decision.confidence == pytest.approx(0.60 / 0.75)
    assert decision.stop == pytest.approx(100.0 * (1 - 6.0 * 0.01))  # 6 ATR
    assert decision.target is None
    assert decision.size == pytest.approx(0.05)  # 6 % at risk, cut to the 5 % per trade
    assert decision.regime == "choppy"
    assert decision.votes == BUY_VOTE


def test_a_sell_on_a_perpetual_opens_a_short_with_its_stop_above(row: RowMaker) -> None:
    decision = decide_once(Brain(), row(adx_14=31.0, ema_alignment=-1.0), SELL_VOTE)
    assert decision.action is Action.SELL
    assert decision.target_position == pytest.approx(-1.0)
    assert decision.stop == pytest.approx(106.0)


def test_spot_never_goes_short(row: RowMaker) -> None:
    decision = decide_once(Brain(), row(), SELL_VOTE, shorts=False)
    assert decision.action is Action.HOLD
    assert decision.target_position == 0.0


def test_a_take_profit_is_set_only_when_asked_and_follows_the_regime(row: RowMaker) -> None:
    settings = Settings(risk=RiskSettings(take_profit=True))
    brain = Brain(tuning=BrainTuning.from_settings(settings))
    choppy = decide_once(brain, row(), BUY_VOTE)
    assert choppy.target == pytest.approx(100.0 * (1 + 2.0 * 0.75 * 0.06))  # ranges x0.75
    trending = decide_once(Brain(tuning=brain.tuning), row(adx_14=31.0, ema_alignment=1.0),
                           BUY_VOTE)  # fmt: skip
    assert trending.target == pytest.approx(100.0 * (1 + 2.0 * 1.5 * 0.06))  # trends x1.5


def test_an_edge_smaller_than_the_costs_stays_flat_and_says_so(row: RowMaker) -> None:
    votes = {"lightgbm": (0.33, 0.33, 0.34)}  # z 0.02: expected 0.06 %, under the 0.33 % bar
    decision = decide_once(Brain(), row(), votes)
    assert decision.action is Action.HOLD
    assert decision.target_position == 0.0 and decision.stop is None
    assert any(reason.startswith("stay flat") for reason in decision.reasons)


def test_without_a_forecast_calibration_nothing_opens(row: RowMaker) -> None:
    decision = decide_once(Brain(), row(), STRONG_BUY, forecast=None)
    assert decision.action is Action.HOLD
    assert decision.expected_return == 0.0
    assert any("no usable forecast" in reason for reason in decision.reasons)
    no_skill = decide_once(Brain(), row(), STRONG_BUY, forecast=replace(FORECAST, beta=0.0))
    assert no_skill.action is Action.HOLD


def test_hold_when_no_model_votes_and_say_so(row: RowMaker) -> None:
    decision = decide_once(Brain(), row(), {"broken": (float("nan"), 0.5, 0.5)})
    assert decision.action is Action.HOLD
    assert "vote of broken ignored" in decision.reasons[1]
    assert "no model voted" in decision.reasons[2]


def test_a_position_is_held_while_the_forecast_holds_and_closed_when_it_turns(
    row: RowMaker,
) -> None:
    slightly_down = {"lightgbm": (0.345, 0.31, 0.345 - 0.01)}  # expected just below 0
    held = decide_once(Brain(), row(), slightly_down, exposure=1.0, shorts=False)
    assert held.action is Action.HOLD and held.target_position == 1.0
    assert any(reason.startswith("hold the long") for reason in held.reasons)
    turned = decide_once(Brain(), row(), SELL_VOTE, exposure=1.0, shorts=False)
    assert turned.action is Action.EXIT and turned.target_position == 0.0
    flipped = decide_once(Brain(), row(), SELL_VOTE, exposure=1.0, shorts=True)
    assert flipped.action is Action.SELL and flipped.target_position == pytest.approx(-1.0)


def test_a_position_is_resized_only_outside_the_band(row: RowMaker) -> None:
    assert decide_once(Brain(), row(), BUY_VOTE, exposure=0.9).action is Action.HOLD
    grown = decide_once(Brain(), row(), BUY_VOTE, exposure=0.5)
    assert grown.action is Action.BUY and grown.target_position == pytest.approx(1.0)
    assert grown.size == pytest.approx(0.5 * 0.06)  # only what is added risks the stop
    slow = Brain(BrainSettings(trade_rate=0.5))
    assert decide_once(slow, row(), BUY_VOTE, exposure=0.5).target_position == pytest.approx(0.75)


def test_the_chop_filter_raises_the_entry_bar(row: RowMaker) -> None:
    quiet = row(atr_ratio_14_96=0.8)
    assert decide_once(Brain(), row(), FAIR_VOTE).action is Action.BUY
    decision = decide_once(Brain(), quiet, FAIR_VOTE)
    assert decision.action is Action.HOLD and "chop" in decision.filters
    assert decide_once(Brain(disabled={"chop"}), quiet, FAIR_VOTE).action is Action.BUY


def test_a_deep_trend_bypasses_the_chop_filter_and_takes_liquidity(row: RowMaker) -> None:
    deep_and_quiet = row(
        adx_14=40.0, ema_alignment=1.0, efficiency_ratio_20=0.5, atr_ratio_14_96=0.8
    )
    decision = decide_once(Brain(), deep_and_quiet, FAIR_VOTE)
    assert decision.action is Action.BUY
    assert "trend_depth" in decision.filters and "chop" not in decision.filters
    assert not decision.maker
    shallow = decide_once(Brain(disabled={"trend_depth"}), deep_and_quiet, FAIR_VOTE)
    assert shallow.action is Action.HOLD


def test_high_volatility_raises_the_bar_and_cuts_the_target(row: RowMaker) -> None:
    weak = Forecast(beta=0.5, sigma=0.03, horizon=24)  # half Kelly lands below the cap
    calm = decide_once(Brain(), row(), STRONG_BUY, forecast=weak)
    loud = decide_once(Brain(), row(atr_ratio_14_96=2.0), STRONG_BUY, forecast=weak)
    assert {"volatility_threshold", "volatility_cut"} <= set(loud.filters)
    assert 0 < loud.target_position < calm.target_position
    assert loud.target_position == pytest.approx(calm.target_position * 1.5 / 2.0)


def test_a_dangerous_market_opens_nothing_and_keeps_what_is_held(row: RowMaker) -> None:
    flat = decide_once(Brain(), row(atr_ratio_14_96=3.0), STRONG_BUY)
    assert flat.action is Action.HOLD and "risk_block" in flat.filters
    held = decide_once(Brain(), row(atr_ratio_14_96=3.0), SELL_VOTE, exposure=1.0, shorts=False)
    assert held.action is Action.HOLD and held.target_position == 1.0


def test_a_position_near_liquidation_is_closed(row: RowMaker) -> None:
    near = decide_once(Brain(), row(), BUY_VOTE, exposure=1.0, liquidation_distance=0.015)
    assert near.action is Action.EXIT and near.target_position == 0.0
    assert "liquidation_guard" in near.filters
    flat = decide_once(Brain(), row(), BUY_VOTE, exposure=0.0, liquidation_distance=0.015)
    assert flat.action is Action.BUY


def test_the_funding_flip_cools_new_longs_but_not_shorts(row: RowMaker) -> None:
    brain = Brain()
    actions = []
    for i, funding in enumerate([1.0, 1.0, -1.0] + [-1.0] * 9):
        decision = brain.decide(
            START + i * HOUR, "BTC/USDT", row(funding_rate_bps=funding), BUY_VOTE, MARKET,
            FORECAST,
        )  # fmt: skip
        actions.append(decision.action)
    assert actions[:2] == [Action.BUY, Action.BUY]
    assert actions[2:10] == [Action.HOLD] * 8
    assert actions[10:] == [Action.BUY, Action.BUY]
    shorts = Brain()
    shorts.decide(START, "BTC/USDT", row(funding_rate_bps=1.0), SELL_VOTE, MARKET, FORECAST)
    after_flip = shorts.decide(
        START + HOUR, "BTC/USDT", row(funding_rate_bps=-1.0), SELL_VOTE, MARKET, FORECAST
    )
    assert after_flip.action is Action.SELL and "funding_flip" in after_flip.filters


def test_each_symbol_keeps_its_own_memory(row: RowMaker) -> None:
    brain = Brain()
    brain.decide(START, "BTC/USDT", row(funding_rate_bps=1.0), BUY_VOTE, MARKET, FORECAST)
    brain.decide(START + HOUR, "BTC/USDT", row(funding_rate_bps=-1.0), BUY_VOTE, MARKET, FORECAST)
    other = brain.decide(
        START + HOUR, "ETH/USDT", row(funding_rate_bps=-1.0), BUY_VOTE, MARKET, FORECAST
    )
    assert other.action is Action.BUY


def test_a_data_gap_halves_the_target_for_a_while(row: RowMaker) -> None:
    brain = Brain()
    weak = Forecast(beta=0.12, sigma=0.2, horizon=24)  # enters, with a target below the cap
    targets = []
    for hour in [*range(5), *range(10, 40)]:
        decision = brain.decide(START + hour * HOUR, "BTC/USDT", row(), STRONG_BUY, MARKET, weak)
        targets.append(decision.target_position)
    assert 0 < targets[4] < 1
    assert targets[5] == pytest.approx(targets[4] / 2)
    assert targets[-1] == pytest.approx(targets[4])
    told = brain.decide(
        START + 40 * HOUR, "X", row(), BUY_VOTE, PositionContext(100.0, gap_candles=2), weak
    )
    assert "gap_safe" in told.filters


def test_a_wide_spread_posts_a_maker_order(row: RowMaker) -> None:
    brain = Brain(disabled={"kalman"})
    for hour in range(30):
        brain.decide(
            START + hour * HOUR, "BTC/USDT", row(spread_bps=2.0), BUY_VOTE, MARKET, FORECAST
        )
    wide = brain.decide(
        START + 30 * HOUR, "BTC/USDT", row(spread_bps=4.0), STRONG_BUY, MARKET, FORECAST
    )
    assert wide.action is Action.BUY and wide.maker
    tight = brain.decide(
        START + 31 * HOUR, "BTC/USDT", row(spread_bps=2.0), BUY_VOTE, MARKET, FORECAST
    )
    assert not tight.maker


def test_the_kalman_filter_cuts_flicker_between_long_and_short(row: RowMaker) -> None:
    rng = np.random.default_rng(5)
    modest = Forecast(beta=0.3, sigma=0.03, horizon=24)

    def flips(brain: Brain) -> int:
        exposure, changes = 0.0, 0
        for i in range(120):
            lean = 0.25 * (-1) ** i + rng.normal(0, 0.05)
            vote = {"lightgbm": (0.4 - lean, 0.2, 0.4 + lean)}
            market = PositionContext(100.0, position=exposure, exposure=exposure)
            decision = brain.decide(START + i * HOUR, "BTC/USDT", row(), vote, market, modest)
            changes += decision.target_position != exposure
            exposure = decision.target_position
        return changes

    raw, smoothed = flips(Brain(disabled={"kalman"})), flips(Brain())
    assert raw > 100
    assert smoothed <= raw // 10


def test_the_costs_and_the_kelly_share_come_from_the_settings(row: RowMaker) -> None:
    dear = Settings(execution=ExecutionSettings(taker_fee=0.01))
    assert decide_once(Brain(tuning=BrainTuning.from_settings(dear)), row(), FAIR_VOTE).action is (
        Action.HOLD
    )  # a 2 % round trip needs 3 % expected to enter
    timid = Settings(brain=BrainSettings(kelly_fraction=0.01))
    weak = decide_once(Brain(tuning=BrainTuning.from_settings(timid)), row(), FAIR_VOTE)
    z = probit_score(0.30, 0.40)
    assert weak.target_position == pytest.approx(0.01 * z * 0.03 / 0.03**2)
    assert BrainTuning.from_settings(Settings()) == BrainTuning()


def test_settings_switches_and_disabled_parts_turn_parts_off() -> None:
    brain = Brain(
        BrainSettings(kalman=False, chop_filter=False, panic_exit=False, funding_flip_filter=False)
    )
    assert not {"kalman", "chop", "panic_exit", "funding_flip"} & brain.enabled
    listed = Brain(BrainSettings(disabled_parts=["maker_taker", "risk_vote"]))
    assert not {"maker_taker", "risk_vote"} & listed.enabled


def test_an_unknown_part_to_disable_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown brain part.*kalmann.*choose from"):
        Brain(disabled={"kalmann"})
    with pytest.raises(ConfigError, match=r"unknown brain part.*chopp"):
        Brain(BrainSettings(disabled_parts=["chopp"]))


def test_an_exit_bar_above_the_entry_bar_is_refused() -> None:
    with pytest.raises(ValueError, match="exit_cost_multiple"):
        BrainSettings(entry_cost_multiple=1.0, exit_cost_multiple=2.0)


def run_market(brain: Brain, market: CrashMarket, candles: int = 1500) -> list[Decision]:
    """Run the brain over the synthetic market: noisy votes, a gap, a book that follows it."""
    rng = np.random.default_rng(0)
    decisions = []
    exposure = 0.0
    for i in range(candles):
        lean = float(np.clip(0.3 * math.sin(i / 40) + rng.normal(0.0, 0.05), -0.3, 0.3))
        votes = {
            "lightgbm": (0.35 - lean, 0.3, 0.35 + lean),
            "lstm": (0.3 - lean / 2, 0.4, 0.3 + lean / 2),
        }
        timestamp = market.timestamps[i] + (5 * HOUR if i >= 800 else 0 * HOUR)
        state = PositionContext(
            price=float(market.close[i]),
            position=exposure,
            liquidation_distance=0.005 if i % 50 == 0 else 0.5,
            exposure=exposure,
        )
        features = market.rows[i]
        if i % 300 == 299:  # liquidity vanishes: the spread jumps 5x
            features = features | {"spread_bps": 5.0 * features["spread_bps"]}
        decision = brain.decide(timestamp, "BTC/USDT", features, votes, state, FORECAST)
        exposure = decision.target_position
        decisions.append(decision)
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


def test_the_market_run_trades_both_ways_and_holds_in_between(full_run: list[Decision]) -> None:
    actions = {decision.action for decision in full_run}
    assert actions == {Action.BUY, Action.SELL, Action.HOLD, Action.EXIT}
    targets = [decision.target_position for decision in full_run]
    assert max(targets) > 0.5 and min(targets) < -0.5


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
    exposure=st.sampled_from([0.0, 1.0, -1.0, 0.4]),
    shorts=st.booleans(),
    distance=st.one_of(st.none(), st.floats(0.0, 0.2)),
    beta=st.floats(0.0, 3.0),
)
def test_decisions_stay_well_formed_and_deterministic_whatever_the_inputs(
    votes: list[dict[str, tuple[float, float, float]]],
    overrides: dict[str, float],
    exposure: float,
    shorts: bool,
    distance: float | None,
    beta: float,
) -> None:
    features = CALM_ROW | overrides
    forecast = Forecast(beta, 0.03, 24)
    cap = BrainSettings().max_position
    if not shorts:
        exposure = abs(exposure)
    runs = []
    for brain in (Brain(), Brain()):
        run = []
        for i, candle_votes in enumerate(votes):
            market = PositionContext(
                price=100.0, position=exposure, liquidation_distance=distance,
                exposure=exposure, shorts=shorts,
            )  # fmt: skip
            run.append(
                brain.decide(START + i * HOUR, "BTC/USDT", features, candle_votes, market, forecast)
            )
        runs.append(run)
    assert [d.to_dict() for d in runs[0]] == [d.to_dict() for d in runs[1]]
    for decision, candle_votes in zip(runs[0], votes, strict=True):
        assert 0.0 <= decision.confidence <= 1.0
        assert math.fsum(decision.proba) == pytest.approx(1.0)
        assert 0.0 <= decision.size <= RiskSettings().risk_per_trade
        assert abs(decision.target_position) <= max(cap, abs(exposure)) + 1e-12
        if not shorts:
            assert decision.target_position >= 0.0
        if decision.action is Action.HOLD:
            assert decision.target_position == exposure
        if decision.action is Action.EXIT:
            assert decision.target_position == 0.0
        grows = abs(decision.target_position) > abs(exposure) + 1e-9
        if grows and decision.action is not Action.HOLD:
            assert abs(decision.expected_return) > 0  # nothing opens without an edge
        if not any(max(v) - min(v) > 0 for v in candle_votes.values()):
            assert not grows


def test_a_decision_is_json_ready(row: RowMaker) -> None:
    data = decide_once(Brain(), row(), BUY_VOTE).to_dict()
    assert data["action"] == "buy"
    assert isinstance(data["timestamp"], str)
    assert data["proba"] == pytest.approx([0.15, 0.25, 0.60])
    assert data["target_position"] == pytest.approx(1.0)
    assert data["horizon"] == 24
    assert isinstance(datetime.fromisoformat(data["timestamp"]), datetime)


def test_pairs_of_parts_leave_decisions_well_formed(crash_market: CrashMarket) -> None:
    for first, second in itertools.islice(itertools.combinations(PARTS, 2), 0, None, 13):
        decisions = run_market(Brain(disabled={first, second}), crash_market, candles=300)
        assert all(abs(d.target_position) <= 1.0 + 1e-12 for d in decisions)

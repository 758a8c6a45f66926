"""The meta-reasoner fuses votes by family, with weights that shift with the regime."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradebrain.brain.fusion import FAMILIES, family_of, fuse, order_flow_vote, vote_confidence
from tradebrain.brain.guards import danger_level, liquidation_guard, risk_block, volatility_cut
from tradebrain.brain.regime import Regime
from tradebrain.config import FusionWeights

WEIGHTS = FusionWeights()
UP = (0.1, 0.2, 0.7)
DOWN = (0.7, 0.2, 0.1)
EVERY_FAMILY = {"lstm": UP, "lightgbm": UP, "cnn": DOWN, "orderflow": DOWN, "ppo": UP}


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("lstm", "sequence"),
        ("tcn", "sequence"),
        ("transformer", "sequence"),
        ("patchtst", "sequence"),
        ("nhits", "sequence"),
        ("cnn", "cnn"),
        ("orderflow", "order_flow"),
        ("order_flow_gbm", "order_flow"),
        ("logistic", "tabular"),
        ("lightgbm", "tabular"),
        ("xgboost", "tabular"),
        ("rl", "rl"),
        ("ppo_sizing", "rl"),
        ("dqn_veto", "rl"),
        ("my_new_model", "tabular"),
    ],
)
def test_each_model_belongs_to_its_family(model: str, family: str) -> None:
    assert family_of(model) == family
    assert family in FAMILIES


def test_a_trend_up_weights_sequence_models() -> None:
    calm = fuse(EVERY_FAMILY, Regime.CHOPPY, WEIGHTS)
    trend = fuse(EVERY_FAMILY, Regime.TRENDING_UP, WEIGHTS)
    assert trend.family_weights["sequence"] > calm.family_weights["sequence"]
    assert trend.family_weights["order_flow"] < calm.family_weights["order_flow"]
    assert trend.tilt == {"sequence": 2.0}


@pytest.mark.parametrize("regime", [Regime.RANGING, Regime.BREAKOUT])
def test_a_range_or_breakout_up_weights_order_flow(regime: Regime) -> None:
    calm = fuse(EVERY_FAMILY, Regime.CHOPPY, WEIGHTS)
    tilted = fuse(EVERY_FAMILY, regime, WEIGHTS)
    assert tilted.family_weights["order_flow"] > calm.family_weights["order_flow"]


def test_high_volatility_up_weights_cnn_and_rl() -> None:
    calm = fuse(EVERY_FAMILY, Regime.CHOPPY, WEIGHTS)
    wild = fuse(EVERY_FAMILY, Regime.HIGH_VOLATILITY, WEIGHTS)
    assert wild.family_weights["cnn"] > calm.family_weights["cnn"]
    assert wild.family_weights["rl"] > calm.family_weights["rl"]


def test_the_configured_weights_apply_when_the_regime_tilts_nothing() -> None:
    fusion = fuse({"lstm": UP, "cnn": DOWN, "orderflow": DOWN, "rl": UP}, Regime.CHOPPY, WEIGHTS)
    expected = {"sequence": 0.25, "cnn": 0.20, "order_flow": 0.30, "rl": 0.15}
    total = sum(expected.values())
    for family, weight in expected.items():
        assert fusion.family_weights[family] == pytest.approx(weight / total)


def test_tabular_models_share_the_sequence_budget() -> None:
    alone = fuse({"lightgbm": UP, "cnn": DOWN}, Regime.CHOPPY, WEIGHTS)
    assert alone.family_weights["tabular"] == pytest.approx(0.25 / 0.45)
    shared = fuse({"lightgbm": UP, "lstm": UP, "cnn": DOWN}, Regime.CHOPPY, WEIGHTS)
    assert shared.family_weights["tabular"] == pytest.approx(shared.family_weights["sequence"])
    assert shared.family_weights["tabular"] + shared.family_weights["sequence"] == pytest.approx(
        0.25 / 0.45
    )


def test_switching_regime_adaptation_off_keeps_the_configured_weights() -> None:
    plain = fuse(EVERY_FAMILY, Regime.TRENDING_UP, WEIGHTS, adapt_to_regime=False)
    calm = fuse(EVERY_FAMILY, Regime.CHOPPY, WEIGHTS)
    assert plain.family_weights == calm.family_weights
    assert plain.tilt == {}


def test_a_confident_model_counts_more_than_an_indifferent_one_in_its_family() -> None:
    fusion = fuse({"lstm": (0.05, 0.05, 0.9), "tcn": (0.34, 0.33, 0.33)}, Regime.CHOPPY, WEIGHTS)
    assert fusion.proba[2] > 0.85


def test_the_risk_family_is_silent_in_a_calm_market_and_votes_flat_in_danger() -> None:
    calm = fuse({"lightgbm": UP}, Regime.CHOPPY, WEIGHTS, danger=0.0)
    assert "risk" not in calm.family_weights
    assert calm.proba == pytest.approx(UP)
    scared = fuse({"lightgbm": UP}, Regime.CHOPPY, WEIGHTS, danger=1.0)
    assert scared.proba[1] > calm.proba[1]
    model_weight = 0.25 * vote_confidence(UP)
    assert scared.family_weights["risk"] == pytest.approx(0.10 / (0.10 + model_weight), rel=1e-4)
    assert fuse({"lightgbm": UP}, Regime.CHOPPY, WEIGHTS, danger=0.3).proba[1] < scared.proba[1]


def test_a_family_with_nothing_to_say_does_not_drag_the_others_to_indifference() -> None:
    fusion = fuse({"lightgbm": UP, "orderflow": (0.33, 0.34, 0.33)}, Regime.CHOPPY, WEIGHTS)
    assert fusion.family_weights["tabular"] > 0.9
    assert fusion.proba[2] > 0.65


def test_no_votes_give_a_uniform_view() -> None:
    assert fuse({}, Regime.CHOPPY, WEIGHTS).proba == pytest.approx((1 / 3, 1 / 3, 1 / 3))


probabilities = st.tuples(*(st.floats(0.001, 1.0) for _ in range(3))).map(
    lambda p: (p[0] / sum(p), p[1] / sum(p), p[2] / sum(p))
)


@given(
    votes=st.dictionaries(
        st.sampled_from(["lstm", "lightgbm", "xgboost", "cnn", "orderflow", "ppo", "other"]),
        probabilities,
        max_size=7,
    ),
    regime=st.sampled_from(list(Regime)),
    danger=st.floats(0.0, 1.0),
)
def test_fused_probabilities_sum_to_one_and_weights_sum_to_one(
    votes: dict[str, tuple[float, float, float]], regime: Regime, danger: float
) -> None:
    fusion = fuse(votes, regime, WEIGHTS, danger=danger)
    assert math.fsum(fusion.proba) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in fusion.proba)
    if fusion.family_weights:
        assert math.fsum(fusion.family_weights.values()) == pytest.approx(1.0)


def test_the_order_flow_vote_leans_with_buying_pressure_and_holds_back_half_the_mass() -> None:
    buying = order_flow_vote({"cvd_ratio_20": 0.4, "book_imbalance_10": 0.4})
    assert buying is not None
    vote, reason = buying
    assert vote[2] == max(vote)
    assert vote[2] <= 2 / 3
    assert math.fsum(vote) == pytest.approx(1.0)
    assert "2 features" in reason
    assert order_flow_vote({"adx_14": 30.0}) is None


def test_danger_grows_with_volatility_and_with_a_wide_spread() -> None:
    assert danger_level(1.0, 1.0) == 0.0
    assert 0.0 < danger_level(1.8, 1.0) < 1.0
    assert danger_level(1.0, 4.0) == 1.0
    assert danger_level(float("nan"), float("nan")) == 0.0


def test_dangerous_markets_are_blocked_with_the_reason() -> None:
    assert risk_block(1.2, 1.0) is None
    assert "ATR ratio 2.60" in (risk_block(2.6, 1.0) or "")
    assert "spread 4.5x" in (risk_block(1.0, 4.5) or "")


def test_high_volatility_cuts_confidence_but_never_below_half() -> None:
    assert volatility_cut(1.2) == (1.0, None)
    factor, reason = volatility_cut(2.0)
    assert factor == pytest.approx(0.75)
    assert reason is not None and "x0.75" in reason
    assert volatility_cut(10.0)[0] == 0.5


def test_a_position_near_liquidation_is_neutralized() -> None:
    assert liquidation_guard(None, 0.01) is None
    assert liquidation_guard(0.10, 0.01) is None
    reason = liquidation_guard(0.025, 0.01)
    assert reason is not None and "2.5% away" in reason and "3.0%" in reason

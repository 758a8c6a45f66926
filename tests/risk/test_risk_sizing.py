"""Sizing: ATR stops, reward:risk targets by regime, caps, and fractional Kelly."""

from __future__ import annotations

import math

import pytest
from risk_builders import make_account, make_entry, make_market, make_position, make_trades

from tradebrain.config import RiskSettings
from tradebrain.core.orders import OrderIntent, Side
from tradebrain.risk import Denial, MarketType, RiskManager, SizingRules, kelly_estimate
from tradebrain.risk.sizing import size_entry
from tradebrain.risk.stops import atr_stop, protective_levels

TAKE_PROFIT = RiskSettings(take_profit=True, stop_atr_multiple=3.0)
KELLY = RiskSettings(kelly_from_trades=True, stop_atr_multiple=3.0)


def _approve(
    intent: OrderIntent, settings: RiskSettings | None = None, **account_fields: object
) -> OrderIntent:
    market = account_fields.pop("market", make_market(100.0, 2.0))
    settings = settings or RiskSettings(stop_atr_multiple=3.0)  # hand-computed: 3 ATR stops
    verdict = RiskManager(settings).review(intent, make_account(**account_fields), market)  # type: ignore[arg-type]
    assert isinstance(verdict, OrderIntent), verdict
    return verdict


def test_the_default_rules_come_from_the_risk_settings() -> None:
    rules = SizingRules.from_settings(RiskSettings(risk_per_trade=0.01, leverage_cap=5))
    assert rules.risk_per_trade == 0.01
    assert rules.leverage_cap == 5
    assert rules.stop_atr_multiple == 6.0
    assert rules.margin_cap == 1.0
    assert rules.take_profit is False
    assert rules.kelly_min_trades is None  # Kelly from closed trades is off by default


def test_sizing_rules_from_settings_follow_the_kelly_from_trades_switch() -> None:
    on = SizingRules.from_settings(RiskSettings(kelly_from_trades=True, kelly_min_trades=30))
    assert on.kelly_min_trades == 30
    off = SizingRules.from_settings(RiskSettings(kelly_min_trades=30))
    assert off.kelly_min_trades is None
    record = make_trades([2.0, -1.0] * 20)
    assert kelly_estimate(record, off) is None
    estimate = kelly_estimate(record, on)
    assert estimate is not None and estimate.trades == 40


def test_the_sizing_rules_defaults_are_the_default_settings() -> None:
    from_settings = SizingRules.from_settings(RiskSettings())
    defaults = SizingRules()
    shared = (
        "risk_per_trade", "stop_atr_multiple", "take_profit", "reward_risk", "margin_cap",
        "leverage_cap", "kelly_fraction",
    )  # fmt: skip
    for name in shared:
        assert getattr(defaults, name) == getattr(from_settings, name), name


def test_atr_stop_sits_one_and_a_half_atr_against_the_position() -> None:
    assert atr_stop(100.0, 2.0, +1, 1.5) == pytest.approx(97.0)
    assert atr_stop(100.0, 2.0, -1, 1.5) == pytest.approx(103.0)


@pytest.mark.parametrize(
    ("regime", "target"),
    [("unknown", 112.0), ("trending_up", 118.0), ("ranging", 109.0), ("choppy", 109.0)],
)
def test_with_take_profit_the_target_is_two_r_stretched_in_trends_and_pulled_in_in_ranges(
    regime: str, target: float
) -> None:
    market = make_market(100.0, 2.0, regime=regime)
    approved = _approve(make_entry(), TAKE_PROFIT, market=market)
    assert approved.stop_price == pytest.approx(94.0)  # 3 ATR of 2 below 100
    assert approved.target_price == pytest.approx(target)


@pytest.mark.parametrize("regime", ["unknown", "trending_up", "ranging", "choppy"])
def test_by_default_an_entry_without_a_target_gets_none(regime: str) -> None:
    approved = _approve(make_entry(), market=make_market(100.0, 2.0, regime=regime))
    assert approved.stop_price == pytest.approx(94.0)
    assert approved.target_price is None
    assert not any("target" in reason for reason in approved.reasons)


def test_by_default_protective_levels_set_a_stop_and_no_target() -> None:
    rules = SizingRules.from_settings(RiskSettings())
    levels = protective_levels(make_entry(), make_market(100.0, 2.0), 100.0, rules)
    assert not isinstance(levels, Denial)
    stop, target, _ = levels
    assert stop == pytest.approx(88.0)  # 6 ATR of 2 below 100
    assert target is None
    chosen = protective_levels(make_entry(target_price=130.0), make_market(), 100.0, rules)
    assert not isinstance(chosen, Denial)
    assert chosen[1] == 130.0  # the strategy's own target is kept


def test_a_perp_short_gets_its_stop_above_and_with_take_profit_its_target_below() -> None:
    market = make_market(100.0, 2.0, market_type=MarketType.PERP, leverage=3.0)
    approved = _approve(make_entry(Side.SELL), TAKE_PROFIT, market=market)
    assert approved.stop_price == pytest.approx(106.0)
    assert approved.target_price == pytest.approx(88.0)
    plain = _approve(make_entry(Side.SELL), market=market)
    assert plain.stop_price == pytest.approx(106.0)
    assert plain.target_price is None


def test_risk_binds_when_the_caps_are_wide() -> None:
    size = size_entry(
        equity=10_000,
        entry_price=100,
        stop_price=97,
        risk_fraction=0.02,
        rules=SizingRules(stop_atr_multiple=3.0, margin_cap=1.0),
        leverage=3.0,
    )
    assert size.binding == "risk"
    assert size.risk_amount == pytest.approx(200.0)
    assert size.quantity == pytest.approx(200 / 3)


def test_a_ten_percent_margin_cap_binds_at_ten_percent_of_equity_times_leverage() -> None:
    size = size_entry(
        equity=10_000,
        entry_price=100,
        stop_price=97,
        risk_fraction=0.02,
        rules=SizingRules(stop_atr_multiple=3.0, margin_cap=0.10),
        leverage=3.0,
    )
    assert size.binding == "margin cap"
    assert size.margin == pytest.approx(1_000.0)
    assert size.notional == pytest.approx(3_000.0)


def test_the_default_margin_cap_is_the_whole_equity() -> None:
    size = size_entry(
        equity=10_000,
        entry_price=100,
        stop_price=99.9,
        risk_fraction=0.05,
        rules=SizingRules(stop_atr_multiple=3.0),
    )
    assert size.binding == "margin cap"
    assert size.margin == pytest.approx(10_000.0)


def test_leverage_above_the_cap_is_cut_to_the_cap() -> None:
    size = size_entry(
        equity=10_000,
        entry_price=100,
        stop_price=97,
        risk_fraction=0.02,
        rules=SizingRules(stop_atr_multiple=3.0, margin_cap=0.10),
        leverage=20.0,
    )
    assert size.notional == pytest.approx(3_000.0)  # 1 000 of margin at 3x, not at 20x


def test_leverage_cap_counts_every_open_position() -> None:
    size = size_entry(
        equity=10_000,
        entry_price=100,
        stop_price=97,
        risk_fraction=0.02,
        rules=SizingRules(stop_atr_multiple=3.0, margin_cap=1.0),
        leverage=3.0,
        gross_notional=29_000,
    )
    assert size.binding == "leverage cap"
    assert size.notional == pytest.approx(1_000.0)


def test_a_requested_quantity_is_a_ceiling_never_a_floor() -> None:
    approved = _approve(make_entry(quantity=1.0))
    assert approved.quantity == pytest.approx(1.0)
    approved = _approve(make_entry(quantity=1_000.0))
    assert approved.quantity == pytest.approx(500.0 / 6.0)  # 5 % of 10 000 over a 6 stop


def test_spot_entries_never_spend_more_than_the_free_cash() -> None:
    approved = _approve(make_entry(), cash=500.0)
    assert approved.quantity * 100.0 == pytest.approx(500.0)


def test_kelly_waits_for_twenty_trades_with_a_known_r() -> None:
    rules = SizingRules(stop_atr_multiple=3.0, kelly_min_trades=20)
    assert kelly_estimate(make_trades([2.0, -1.0] * 9 + [2.0]), rules) is None
    trades = make_trades([2.0, -1.0] * 10 + [math.nan] * 5)
    estimate = kelly_estimate(trades, rules)
    assert estimate is not None
    assert estimate.trades == 20


def test_half_kelly_never_risks_more_than_the_fixed_fraction() -> None:
    rules = SizingRules(stop_atr_multiple=3.0, risk_per_trade=0.02, kelly_min_trades=20)
    estimate = kelly_estimate(make_trades([2.0, -1.0] * 10), rules)
    assert estimate is not None
    assert estimate.win_rate == pytest.approx(0.5)
    assert estimate.payoff_ratio == pytest.approx(2.0)
    assert estimate.full_kelly == pytest.approx(0.25)
    assert estimate.risk_fraction == pytest.approx(0.02)


def test_half_kelly_shrinks_the_risk_of_a_thin_edge() -> None:
    # 7 wins of +2R and 13 losses of -1R: full Kelly 0.35 - 0.65 / 2 = 2.5 %, half is 1.25 %.
    trades = make_trades([2.0] * 6 + [-1.0] * 13 + [2.0])
    estimate = kelly_estimate(trades, SizingRules(stop_atr_multiple=3.0, kelly_min_trades=20))
    assert estimate is not None
    assert estimate.full_kelly == pytest.approx(0.025)
    assert estimate.risk_fraction == pytest.approx(0.0125)
    approved = _approve(make_entry(), KELLY, trades=trades, market=make_market(100.0, 20.0))
    assert approved.quantity * (100.0 - approved.stop_price) == pytest.approx(125.0)  # type: ignore[operator]


def test_a_losing_record_means_no_trade_not_a_negative_size() -> None:
    trades = make_trades([2.0] * 5 + [-1.0] * 14 + [2.0])  # 30 % wins at 2R: Kelly -5 %
    verdict = RiskManager(KELLY).review(make_entry(), make_account(trades=trades), make_market())
    assert isinstance(verdict, Denial)
    assert verdict.rule == "kelly"
    assert "no edge" in verdict.reason


def test_by_default_a_losing_record_does_not_shrink_or_deny_an_entry() -> None:
    trades = make_trades([2.0] * 5 + [-1.0] * 14 + [2.0])
    losing = _approve(make_entry(), trades=trades, market=make_market(100.0, 20.0))
    fresh = _approve(make_entry(), market=make_market(100.0, 20.0))
    assert losing.quantity == pytest.approx(fresh.quantity)
    assert not any("Kelly" in reason for reason in losing.reasons)


def test_adding_to_a_position_counts_its_margin_against_the_cap() -> None:
    held = make_position(60.0)  # 6 000 of the 10 000 margin cap on spot
    approved = _approve(make_entry(), positions=[held])
    assert approved.quantity * 100.0 == pytest.approx(4_000.0)
    assert "set by the margin cap" in approved.reasons[-1]


def test_an_optional_volume_cap_keeps_orders_a_share_of_the_bar() -> None:
    rules = SizingRules(stop_atr_multiple=3.0, margin_cap=1.0, max_participation=0.1)
    manager = RiskManager(sizing=rules)
    market = make_market(100.0, 20.0, volume=20.0)
    approved = manager.review(make_entry(), make_account(), market)
    assert isinstance(approved, OrderIntent)
    assert approved.quantity == pytest.approx(2.0)  # 10 % of 20, below the 6.67 risk allows
    assert "set by the volume" in approved.reasons[-1]

"""The risk gate: what it approves, how it clips exits, and how it words its denials."""

from __future__ import annotations

import pytest
from risk_builders import make_account, make_entry, make_exit, make_market, make_position

from tradebrain.config import RiskSettings
from tradebrain.core.orders import OrderIntent, OrderType, Side
from tradebrain.risk import Denial, MarketType, RiskManager, RiskRule, SizingRules

THREE_ATR = RiskSettings(stop_atr_multiple=3.0)  # the hand-computed stops below are 3 ATR away


@pytest.fixture
def manager() -> RiskManager:
    return RiskManager(THREE_ATR)


def _denied(verdict: OrderIntent | Denial, rule: RiskRule) -> Denial:
    assert isinstance(verdict, Denial), verdict
    assert verdict.rule == rule.value
    assert verdict.reason.startswith("denied: ")
    return verdict


def test_an_approved_entry_is_sized_and_explains_its_size(manager: RiskManager) -> None:
    intent = make_entry(reasons=("fused p(up) 0.71",))
    approved = manager.review(intent, make_account(), make_market(100.0, 20.0))
    assert isinstance(approved, OrderIntent)
    assert approved.stop_price == pytest.approx(40.0)  # 3 ATR of 20 below 100
    assert approved.quantity == pytest.approx(500.0 / 60.0)  # 5 % of 10 000 over a 60 stop
    assert approved.reasons[0] == "fused p(up) 0.71"
    assert approved.reasons[-1].endswith("set by the risk: risks 500.00 = 5.00% of equity")


def test_the_strategys_stop_and_target_are_kept_when_on_the_right_side(
    manager: RiskManager,
) -> None:
    intent = make_entry(stop_price=95.0, target_price=120.0)
    approved = manager.review(intent, make_account(), make_market(100.0, 2.0))
    assert isinstance(approved, OrderIntent)
    assert (approved.stop_price, approved.target_price) == (95.0, 120.0)


def test_a_stop_on_the_wrong_side_is_denied_with_both_prices(manager: RiskManager) -> None:
    verdict = manager.review(make_entry(stop_price=101.0), make_account(), make_market(100.0))
    denial = _denied(verdict, RiskRule.STOP)
    assert (
        denial.reason == "denied: stop 101 must be a positive price below the entry 100 for a buy"
    )


def test_a_target_on_the_wrong_side_is_denied(manager: RiskManager) -> None:
    verdict = manager.review(make_entry(target_price=99.0), make_account(), make_market(100.0))
    _denied(verdict, RiskRule.TARGET)


def test_an_entry_without_stop_or_atr_is_denied(manager: RiskManager) -> None:
    verdict = manager.review(make_entry(), make_account(), make_market(100.0, float("nan")))
    assert "no usable ATR" in _denied(verdict, RiskRule.STOP).reason


def test_no_shorts_on_spot(manager: RiskManager) -> None:
    verdict = manager.review(make_entry(Side.SELL), make_account(), make_market())
    assert "spot market: no shorts" in _denied(verdict, RiskRule.SPOT_SHORT).reason


def test_an_entry_against_an_open_position_must_exit_first(manager: RiskManager) -> None:
    account = make_account(positions=[make_position(-2.0)])
    market = make_market(market_type=MarketType.PERP)
    verdict = manager.review(make_entry(Side.BUY), account, market)
    denial = _denied(verdict, RiskRule.OPPOSITE_POSITION)
    assert "BTCUSDT holds a short of 2; close it with a reduce-only exit" in denial.reason


def test_an_exit_of_zero_quantity_closes_the_whole_position(manager: RiskManager) -> None:
    account = make_account(positions=[make_position(3.5)])
    approved = manager.review(make_exit(Side.SELL), account, make_market())
    assert isinstance(approved, OrderIntent)
    assert approved.quantity == 3.5 and approved.reduce_only


def test_an_exit_larger_than_the_position_is_clipped_not_flipped(manager: RiskManager) -> None:
    account = make_account(positions=[make_position(-3.0)])
    approved = manager.review(make_exit(Side.BUY, 10.0), account, make_market())
    assert isinstance(approved, OrderIntent)
    assert approved.quantity == 3.0


def test_an_exit_without_a_position_or_growing_it_is_denied(manager: RiskManager) -> None:
    flat = manager.review(make_exit(Side.SELL), make_account(), make_market())
    assert _denied(flat, RiskRule.REDUCE_ONLY).reason == (
        "denied: no open BTCUSDT position to reduce"
    )
    account = make_account(positions=[make_position(2.0)])
    grow = manager.review(make_exit(Side.BUY), account, make_market())
    assert "would grow the long 2 BTCUSDT" in _denied(grow, RiskRule.REDUCE_ONLY).reason


def test_no_room_under_a_cap_names_the_cap(manager: RiskManager) -> None:
    account = make_account(positions=[make_position(100.0)])  # spot margin 10 000 = 100 % cap
    verdict = manager.review(make_entry(), account, make_market())
    denial = _denied(verdict, RiskRule.SIZE)
    assert denial.reason.startswith("denied: no room under the margin cap: it allows")


def test_an_order_under_the_venue_minimum_is_denied(manager: RiskManager) -> None:
    # 5 of cash buys at most 5 of notional on spot
    verdict = manager.review(make_entry(), make_account(5.0), make_market(min_notional=10.0))
    assert "below the venue minimum of 10" in _denied(verdict, RiskRule.MIN_NOTIONAL).reason


def test_market_data_of_another_symbol_is_refused(manager: RiskManager) -> None:
    verdict = manager.review(make_entry(), make_account(), make_market(symbol="ETHUSDT"))
    _denied(verdict, RiskRule.INVALID_MARKET)


def test_a_negative_quantity_is_refused(manager: RiskManager) -> None:
    verdict = manager.review(make_entry(quantity=-1.0), make_account(), make_market())
    _denied(verdict, RiskRule.INVALID_ORDER)


def test_a_limit_entry_is_sized_and_stopped_from_its_limit_price(manager: RiskManager) -> None:
    intent = make_entry(order_type=OrderType.LIMIT, limit_price=90.0)
    approved = manager.review(intent, make_account(), make_market(100.0, 2.0))
    assert isinstance(approved, OrderIntent)
    assert approved.stop_price == pytest.approx(84.0)  # 3 ATR below the limit, not the market
    assert approved.quantity == pytest.approx(500.0 / 6.0)
    assert approved.target_price is None


def test_a_limit_entrys_take_profit_target_is_measured_from_its_limit_price() -> None:
    manager = RiskManager(RiskSettings(take_profit=True, stop_atr_multiple=3.0))
    intent = make_entry(order_type=OrderType.LIMIT, limit_price=90.0)
    approved = manager.review(intent, make_account(), make_market(100.0, 2.0))
    assert isinstance(approved, OrderIntent)
    assert approved.target_price == pytest.approx(102.0)  # 2R of a 6 stop above 90


def test_a_stop_entry_is_sized_from_its_trigger_price(manager: RiskManager) -> None:
    market = make_market(100.0, 2.0, market_type=MarketType.PERP, leverage=3.0)
    intent = make_entry(Side.SELL, order_type=OrderType.STOP, trigger_price=95.0)
    approved = manager.review(intent, make_account(), market)
    assert isinstance(approved, OrderIntent)
    assert approved.stop_price == pytest.approx(101.0)  # 3 ATR above the trigger of 95
    assert approved.quantity == pytest.approx(500.0 / 6.0)


def test_an_equity_fraction_is_a_ceiling_on_the_size() -> None:
    wide = RiskManager(sizing=SizingRules(margin_cap=1.0, stop_atr_multiple=3.0))
    approved = wide.review(make_entry(equity_fraction=0.01), make_account(), make_market(100, 2))
    assert isinstance(approved, OrderIntent)
    assert approved.quantity * 100.0 == pytest.approx(100.0)  # 1 % of 10 000


def test_settings_set_the_limits() -> None:
    strict = RiskManager(RiskSettings(risk_per_trade=0.005, stop_atr_multiple=1.5))
    approved = strict.review(make_entry(), make_account(), make_market(100.0, 20.0))
    assert isinstance(approved, OrderIntent)
    assert approved.stop_price == pytest.approx(70.0)
    assert approved.quantity * 30.0 == pytest.approx(50.0)
    capped = RiskManager(RiskSettings(margin_cap=0.1))
    approved = capped.review(make_entry(), make_account(), make_market(100.0, 2.0))
    assert isinstance(approved, OrderIntent)
    assert approved.quantity * 100.0 == pytest.approx(1_000.0)
    assert "set by the margin cap" in approved.reasons[-1]


def test_a_smaller_risk_suggested_by_the_strategy_shrinks_the_size_and_says_so(
    manager: RiskManager,
) -> None:
    intent = make_entry(risk_fraction=0.01)
    approved = manager.review(intent, make_account(), make_market(100.0, 20.0))
    assert isinstance(approved, OrderIntent)
    assert approved.quantity == pytest.approx(100.0 / 60.0)  # 1 % of 10 000 over a 60 stop
    assert any("suggests risking 1.00%" in r for r in approved.reasons)


def test_a_larger_risk_suggested_by_the_strategy_never_raises_the_limit(
    manager: RiskManager,
) -> None:
    intent = make_entry(risk_fraction=0.09)
    approved = manager.review(intent, make_account(), make_market(100.0, 20.0))
    assert isinstance(approved, OrderIntent)
    assert approved.quantity == pytest.approx(500.0 / 60.0)  # the 5 % limit, not 9 %

"""Every rule of the simulated broker and the position monitor, one candle at a time."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from tradebrain.core.events import CandleClosed, FundingSettled, OrderDenied, OrderFilled
from tradebrain.core.market import MarketType
from tradebrain.core.orders import OrderIntent, OrderType, Side
from tradebrain.execution.broker import SimulatedBroker
from tradebrain.execution.costs import FlatCosts
from tradebrain.execution.monitor import MonitorRules, PositionMonitor

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
FREE = FlatCosts(0.0, 0.0)


def candle(i: int, o: float, h: float, low: float, c: float) -> CandleClosed:
    return CandleClosed("X", T0 + i * HOUR, T0 + (i + 1) * HOUR, o, h, low, c, 10.0)


def fills(events: list) -> list:
    return [e.fill for e in events if isinstance(e, OrderFilled)]


def broker(**kw: object) -> SimulatedBroker:
    rules = kw.pop("rules", MonitorRules.off())
    return SimulatedBroker(
        cash=10_000.0, costs=kw.pop("costs", FREE), monitor=PositionMonitor(rules), **kw
    )  # type: ignore[arg-type]


def enter_long(b: SimulatedBroker, quantity: float = 10.0, **kw: object) -> None:
    b.on_candle(candle(0, 100, 101, 99, 100))
    b.submit(OrderIntent(T0 + HOUR, "X", Side.BUY, quantity, **kw))  # type: ignore[arg-type]


def test_market_order_fills_at_the_next_candle_open_not_before() -> None:
    b = broker()
    enter_long(b)
    (fill,) = fills(b.on_candle(candle(1, 102, 103, 101, 102)))
    assert fill.price == 102 and fill.timestamp == T0 + HOUR


def test_limit_buy_fills_only_when_the_price_trades_through() -> None:
    b = broker()
    b.on_candle(candle(0, 100, 101, 99, 100))
    b.submit(OrderIntent(T0, "X", Side.BUY, 1.0, OrderType.LIMIT, limit_price=98.0))
    assert fills(b.on_candle(candle(1, 100, 101, 98.0, 100))) == []  # touched, not through
    (fill,) = fills(b.on_candle(candle(2, 100, 101, 97.5, 100)))
    assert fill.price == 98.0


def test_limit_buy_gapped_through_fills_at_the_better_open() -> None:
    b = broker()
    b.on_candle(candle(0, 100, 101, 99, 100))
    b.submit(OrderIntent(T0, "X", Side.BUY, 1.0, OrderType.LIMIT, limit_price=98.0))
    (fill,) = fills(b.on_candle(candle(1, 95, 96, 94, 95)))
    assert fill.price == 95


def test_stop_entry_triggers_on_touch_and_fills_at_the_stop() -> None:
    b = broker()
    b.on_candle(candle(0, 100, 101, 99, 100))
    b.submit(OrderIntent(T0, "X", Side.BUY, 1.0, OrderType.STOP, trigger_price=105.0))
    assert fills(b.on_candle(candle(1, 100, 104, 99, 103))) == []
    (fill,) = fills(b.on_candle(candle(2, 103, 106, 102, 105)))
    assert fill.price == 105.0


def test_stop_loss_with_gap_down_fills_at_open() -> None:
    b = broker()
    enter_long(b, stop_price=95.0)
    b.on_candle(candle(1, 100, 101, 99, 100))
    (fill,) = fills(b.on_candle(candle(2, 90, 92, 88, 91)))
    assert fill.price == 90 and fill.tag == "stop"


def test_candle_touching_both_stop_and_target_counts_the_stop_first() -> None:
    b = broker()
    enter_long(b, stop_price=95.0, target_price=110.0)
    b.on_candle(candle(1, 100, 101, 99, 100))
    (fill,) = fills(b.on_candle(candle(2, 100, 115, 90, 105)))
    assert fill.price == 95.0 and fill.tag == "stop"
    assert b.portfolio.quantity("X") == 0.0


def test_target_fills_only_when_traded_through() -> None:
    b = broker()
    enter_long(b, stop_price=95.0, target_price=110.0)
    b.on_candle(candle(1, 100, 101, 99, 100))
    assert fills(b.on_candle(candle(2, 100, 110.0, 99, 105))) == []
    (fill,) = fills(b.on_candle(candle(3, 105, 111, 104, 110)))
    assert fill.price == 110.0 and fill.tag == "target"


@pytest.mark.parametrize(
    ("quantity", "rate", "expected"), [(10.0, 0.001, -1.0), (-10.0, 0.001, 1.0)]
)
def test_positive_funding_costs_longs_and_pays_shorts(
    quantity: float, rate: float, expected: float
) -> None:
    b = broker(market=MarketType.PERP)
    b.on_candle(candle(0, 100, 101, 99, 100))
    side = Side.BUY if quantity > 0 else Side.SELL
    b.submit(OrderIntent(T0, "X", side, abs(quantity)))
    b.on_candle(candle(1, 100, 101, 99, 100))
    cash = b.portfolio.cash
    b.on_funding(FundingSettled("X", T0 + 2 * HOUR, rate))
    assert b.portfolio.cash - cash == pytest.approx(expected)


def test_leveraged_long_is_liquidated_at_the_liquidation_price() -> None:
    b = broker(market=MarketType.PERP, leverage=10.0)
    enter_long(b, quantity=500.0)
    b.on_candle(candle(1, 100, 101, 99, 100))
    liquidation = b.liquidation_price("X")
    assert liquidation == pytest.approx(100 * (1 - 0.1 + 0.005))
    (fill,) = fills(b.on_candle(candle(2, 99, 99, 85, 88)))
    assert fill.tag == "liquidation" and fill.price == pytest.approx(liquidation)


def test_spot_short_is_denied_with_a_reason() -> None:
    b = broker()
    b.on_candle(candle(0, 100, 101, 99, 100))
    b.submit(OrderIntent(T0, "X", Side.SELL, 1.0))
    (event,) = b.on_candle(candle(1, 100, 101, 99, 100))
    assert isinstance(event, OrderDenied) and "short" in event.reason


def test_break_even_moves_the_stop_to_entry_after_plus_one_r() -> None:
    b = broker(rules=MonitorRules(break_even_at_r=1.0, trailing_at_r=None, partial_at_r=None))
    enter_long(b, stop_price=95.0)
    b.on_candle(candle(1, 100, 106, 99, 104))  # +1.2R
    protection = b.protection("X")
    assert protection is not None and protection.stop_price == 100.0
    (fill,) = fills(b.on_candle(candle(2, 103, 103, 99, 99.5)))
    assert fill.price == 100.0 and fill.tag == "break_even"


def test_trailing_stop_activates_at_plus_two_r_one_atr_behind_the_best_price() -> None:
    rules = MonitorRules(break_even_at_r=None, trailing_at_r=2.0, partial_at_r=None)
    b = broker(rules=rules)
    enter_long(b, stop_price=95.0)
    b.on_candle(candle(1, 100, 105, 99, 104))  # +1R: not yet
    assert b.protection("X").stop_price == 95.0  # type: ignore[union-attr]
    b.on_candle(candle(2, 104, 112, 103, 111))  # +2.4R: trailing on
    atr = b.monitor.atr("X")
    protection = b.protection("X")
    assert protection is not None and protection.stop_reason == "trailing"
    assert protection.stop_price == pytest.approx(112 - atr)


def test_partial_exit_takes_half_off_at_plus_two_r() -> None:
    rules = MonitorRules(break_even_at_r=None, trailing_at_r=None, partial_at_r=2.0)
    b = broker(rules=rules)
    enter_long(b, quantity=10.0, stop_price=95.0)
    b.on_candle(candle(1, 100, 101, 99, 100))
    (fill,) = fills(b.on_candle(candle(2, 100, 111, 99, 108)))
    assert fill.tag == "partial" and fill.price == 110.0 and fill.quantity == 5.0
    assert b.portfolio.quantity("X") == 5.0
    trade = b.portfolio.closed_trades[-1]
    assert trade.r_multiple == pytest.approx(2.0)


def test_fees_and_slippage_go_through_the_cost_model() -> None:
    b = broker(costs=FlatCosts(0.001, 10.0))
    enter_long(b)
    (fill,) = fills(b.on_candle(candle(1, 100, 101, 99, 100)))
    assert fill.price == pytest.approx(100.1)
    assert fill.fee == pytest.approx(10 * 100.1 * 0.001)
    assert b.equity() == pytest.approx(10_000 - 1.0 - fill.fee)
    assert math.isclose(b.portfolio.fees_paid, fill.fee)


def test_each_candle_marks_the_account_so_its_day_start_follows_the_utc_day() -> None:
    b = broker()
    enter_long(b)  # candle 0 closes at 01:00 on 2024-01-01: the day starts at 10 000
    assert b.account(T0 + HOUR).day_start_equity == 10_000.0
    b.on_candle(candle(1, 100, 100, 80, 80))  # filled at 100, marked at 80: 9 800
    account = b.account(T0 + 2 * HOUR)
    assert (account.equity, account.day_start_equity, account.peak_equity) == (
        pytest.approx(9_800.0),
        10_000.0,
        10_000.0,
    )
    for i in range(2, 24):  # the candle of 23:00 closes at midnight: day two starts at 9 700
        b.on_candle(candle(i, 80, 80, 70, 70))
    account = b.account(T0 + 24 * HOUR)
    assert account.day_start_equity == pytest.approx(9_700.0)
    b.on_candle(candle(24, 70, 121, 70, 120))
    assert b.account(T0 + 25 * HOUR).peak_equity == pytest.approx(10_200.0)


def test_a_broker_built_without_a_monitor_keeps_only_the_entrys_stop_and_target() -> None:
    b = SimulatedBroker(cash=10_000.0, costs=FREE)
    enter_long(b, stop_price=95.0, target_price=130.0)  # 1R = 5
    b.on_candle(candle(1, 100, 101, 99, 100))
    b.on_candle(candle(2, 100, 112, 100, 111))  # +2.4R: break-even, trailing and half off if on
    protection = b.protection("X")
    assert protection is not None
    assert (protection.stop_price, protection.target_price) == (95.0, 130.0)
    assert protection.partial_price is None and b.portfolio.quantity("X") == 10.0

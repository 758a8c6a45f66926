"""Risk invariants that hold for any account, market and order (property-based)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from risk_builders import (
    make_account,
    make_entry,
    make_exit,
    make_market,
    make_position,
    make_trades,
)

from tradebrain.execution.account import AccountSnapshot
from tradebrain.execution.orders import OrderIntent, Side
from tradebrain.risk import Denial, MarketState, MarketType, PolicyMode, RiskManager

RISK_PER_TRADE = 0.02
MARGIN_CAP = 0.10
LEVERAGE_CAP = 3.0
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Case:
    account: AccountSnapshot
    market: MarketState
    intent: OrderIntent


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Draw an account (drawdowns, streaks, open positions), a market and an entry order."""
    equity = draw(st.floats(100.0, 1e7))
    price = draw(st.floats(1e-3, 1e5))
    market_type = draw(st.sampled_from(MarketType))
    side = Side.BUY if market_type is MarketType.SPOT else draw(st.sampled_from(Side))
    market = make_market(
        price,
        price * draw(st.floats(1e-4, 0.3)),
        market_type=market_type,
        leverage=draw(st.floats(1.0, 20.0)),
        regime=draw(st.sampled_from(["trending_up", "ranging", "choppy", "breakout", "unknown"])),
        data_healthy=draw(st.integers(0, 9)) > 0,  # mostly healthy
    )
    positions = []
    if draw(st.booleans()):
        quantity = side.sign * equity * draw(st.floats(0.0, 0.5)) / price
        positions.append(make_position(quantity, price, leverage=draw(st.floats(1.0, 3.0))))
    if draw(st.booleans()):
        positions.append(make_position(draw(st.floats(0.0, 2.0)) * equity / 50, 50, symbol="ETH"))
    r_multiples = draw(st.lists(st.floats(-1.5, 3.0), max_size=40))
    account = make_account(
        equity,
        cash=equity * draw(st.floats(0.0, 1.0)),
        peak=equity * draw(st.floats(1.0, 1.13)),
        day_start=equity * draw(st.floats(0.97, 1.04)),
        positions=positions,
        trades=make_trades(r_multiples),
    )
    stop = None
    if draw(st.booleans()):
        stop = price * (1 - side.sign * draw(st.floats(-0.05, 0.5)))
    requested = draw(st.one_of(st.just(0.0), st.floats(0.0, 10 * equity / price)))
    intent = make_entry(
        side, quantity=requested, stop_price=stop, confidence=draw(st.floats(0.0, 1.0))
    )
    return Case(account, market, intent)


def _manager() -> RiskManager:
    return RiskManager()


@settings(max_examples=400, deadline=None)
@given(case=cases())
def test_an_approved_entry_never_breaks_a_cap(case: Case) -> None:
    manager = _manager()
    approved = manager.review(case.intent, case.account, case.market)
    if isinstance(approved, Denial):
        assert approved.reason.startswith("denied: ")
        return
    account, market = case.account, case.market
    equity, price = account.equity, market.price
    assert approved.stop_price is not None
    risk_fraction = RISK_PER_TRADE * (0.5 if manager.mode is PolicyMode.DEFENSIVE else 1.0)
    risk = approved.quantity * abs(price - approved.stop_price)
    assert approved.quantity > 0
    assert risk <= risk_fraction * equity * (1 + TOLERANCE)

    spot = market.market_type is MarketType.SPOT
    leverage = 1.0 if spot else min(market.leverage, LEVERAGE_CAP)
    held = account.positions.get(market.symbol)
    held_margin = 0.0 if held is None else held.notional / held.leverage
    margin = held_margin + approved.quantity * price / leverage
    assert margin <= MARGIN_CAP * equity * (1 + TOLERANCE)

    gross = sum(p.notional for p in account.positions.values()) + approved.quantity * price
    assert gross / equity <= LEVERAGE_CAP * (1 + TOLERANCE)
    if spot:
        assert approved.quantity * price <= account.cash * (1 + TOLERANCE)
    if case.intent.quantity > 0:
        assert approved.quantity <= case.intent.quantity


@settings(max_examples=400, deadline=None)
@given(case=cases())
def test_every_approved_entry_has_a_stop_on_the_loss_side_and_a_target_on_the_profit_side(
    case: Case,
) -> None:
    approved = _manager().review(case.intent, case.account, case.market)
    if isinstance(approved, Denial):
        return
    sign = approved.side.sign
    assert approved.stop_price is not None and approved.target_price is not None
    assert approved.stop_price > 0
    assert (case.market.price - approved.stop_price) * sign > 0
    assert (approved.target_price - case.market.price) * sign > 0


@settings(max_examples=300, deadline=None)
@given(case=cases())
def test_no_new_trade_in_critical_mode(case: Case) -> None:
    manager = _manager()
    verdict = manager.review(case.intent, case.account, case.market)
    if manager.mode is PolicyMode.CRITICAL:
        assert isinstance(verdict, Denial)
        assert verdict.rule == "policy_mode"
        assert "mode CRITICAL" in verdict.reason


@settings(max_examples=200, deadline=None)
@given(case=cases())
def test_no_new_trade_after_the_emergency_stop_but_exits_pass(case: Case) -> None:
    manager = _manager()
    manager.emergency_stop("operator pressed the red button")
    verdict = manager.review(case.intent, case.account, case.market)
    assert isinstance(verdict, Denial)
    for exit_order in manager.close_all_intents(case.account):
        market = make_market(symbol=exit_order.symbol)
        approved = manager.review(exit_order, case.account, market)
        assert isinstance(approved, OrderIntent)
        assert approved.reduce_only and approved.tag == "emergency"


@settings(max_examples=300, deadline=None)
@given(
    held=st.floats(-100.0, 100.0).filter(lambda q: abs(q) > 1e-6),
    side=st.sampled_from(Side),
    quantity=st.floats(0.0, 500.0),
    drawdown=st.floats(0.0, 0.5),
)
def test_an_exit_never_grows_or_flips_a_position(
    held: float, side: Side, quantity: float, drawdown: float
) -> None:
    account = make_account(
        10_000 * (1 - drawdown), peak=10_000, day_start=10_000, positions=[make_position(held)]
    )
    verdict = _manager().review(make_exit(side, quantity), account, make_market())
    if side.sign * held > 0:
        assert isinstance(verdict, Denial) and verdict.rule == "reduce_only"
        return
    assert isinstance(verdict, OrderIntent)
    assert 0 < verdict.quantity <= abs(held)
    remaining = held + side.sign * verdict.quantity
    assert abs(remaining) <= abs(held) and remaining * held >= 0

"""Risk invariants that hold for any account, market and order (property-based)."""

from __future__ import annotations

from dataclasses import dataclass, replace

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

from tradebrain.config import RiskSettings
from tradebrain.core.orders import OrderIntent, Side
from tradebrain.execution.account import AccountSnapshot
from tradebrain.risk import Denial, MarketState, MarketType, PolicyMode, RiskManager

TOLERANCE = 1e-9

# The default settings, and settings drawn across their whole valid range with every rule that
# is off by default (take-profit targets, Kelly from trades, the trade-record rules, a
# DEFENSIVE minimum confidence) switched on or off at random.
risk_settings = st.one_of(
    st.just(RiskSettings()),
    st.builds(
        RiskSettings,
        risk_per_trade=st.floats(0.001, 0.10),
        stop_atr_multiple=st.floats(0.5, 4.0),
        take_profit=st.booleans(),
        reward_risk=st.floats(0.5, 4.0),
        max_daily_drawdown=st.sampled_from([0.03, 0.05, 0.1, 0.2, 0.5]),
        max_drawdown=st.sampled_from([0.1, 0.2, 0.4, 0.9]),
        margin_cap=st.floats(0.01, 1.0),
        leverage_cap=st.floats(1.0, 10.0),
        kelly_fraction=st.floats(0.05, 1.0),
        kelly_min_trades=st.integers(1, 30),
        kelly_from_trades=st.booleans(),
        trade_record_rules=st.booleans(),
        defensive_min_confidence=st.floats(0.0, 1.0),
    ),
)


@dataclass(frozen=True)
class Case:
    settings: RiskSettings
    account: AccountSnapshot
    market: MarketState
    intent: OrderIntent


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Draw settings, an account (drawdowns, streaks, open positions), a market and an entry."""
    risk = draw(risk_settings)
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
        data_healthy=draw(st.sampled_from([True] * 9 + [False])),  # mostly healthy
    )
    positions = []
    if draw(st.booleans()):
        quantity = side.sign * equity * draw(st.floats(0.0, 1.5)) / price
        positions.append(make_position(quantity, price, leverage=draw(st.floats(1.0, 3.0))))
    if draw(st.booleans()):
        positions.append(make_position(draw(st.floats(0.0, 2.0)) * equity / 50, 50, symbol="ETH"))
    r_multiples = draw(st.lists(st.floats(-1.5, 3.0), max_size=40))
    # Drawdowns on both sides of the default lines (5 %/10 % daily, 20 %/40 % from the peak).
    account = make_account(
        equity,
        cash=equity * draw(st.floats(0.0, 1.0)),
        peak=equity * draw(st.floats(1.0, 1.5)),
        day_start=equity * draw(st.floats(0.97, 1.12)),
        positions=positions,
        trades=make_trades(r_multiples),
    )
    stop = None
    if draw(st.booleans()):
        stop = price * (1 - side.sign * draw(st.floats(-0.05, 0.5)))
    target = None
    if draw(st.sampled_from([False, False, False, True])):  # a strategy's own target
        target = price * (1 + side.sign * draw(st.floats(0.001, 0.5)))
    requested = draw(st.one_of(st.just(0.0), st.floats(0.0, 10 * equity / price)))
    intent = make_entry(
        side,
        quantity=requested,
        stop_price=stop,
        target_price=target,
        confidence=draw(st.floats(0.0, 1.0)),
    )
    return Case(risk, account, market, intent)


def _manager(case: Case | None = None) -> RiskManager:
    return RiskManager(None if case is None else case.settings)


@settings(max_examples=600, deadline=None)
@given(case=cases())
def test_an_approved_entry_never_breaks_a_cap(case: Case) -> None:
    manager = _manager(case)
    approved = manager.review(case.intent, case.account, case.market)
    if isinstance(approved, Denial):
        assert approved.reason.startswith("denied: ")
        return
    limits = case.settings
    account, market = case.account, case.market
    equity, price = account.equity, market.price
    assert approved.stop_price is not None
    defensive = manager.mode is PolicyMode.DEFENSIVE
    risk_fraction = limits.risk_per_trade * (0.5 if defensive else 1.0)
    risk = approved.quantity * abs(price - approved.stop_price)
    assert approved.quantity > 0
    assert risk <= risk_fraction * equity * (1 + TOLERANCE)
    if defensive:
        assert case.intent.confidence >= limits.defensive_min_confidence

    spot = market.market_type is MarketType.SPOT
    leverage = 1.0 if spot else min(market.leverage, limits.leverage_cap)
    held = account.positions.get(market.symbol)
    held_margin = 0.0 if held is None else held.notional / held.leverage
    margin = held_margin + approved.quantity * price / leverage
    assert margin <= limits.margin_cap * equity * (1 + TOLERANCE)

    gross = sum(p.notional for p in account.positions.values()) + approved.quantity * price
    assert gross / equity <= limits.leverage_cap * (1 + TOLERANCE)
    if spot:
        assert approved.quantity * price <= account.cash * (1 + TOLERANCE)
    if case.intent.quantity > 0:
        assert approved.quantity <= case.intent.quantity


@settings(max_examples=600, deadline=None)
@given(case=cases())
def test_every_approved_entry_has_a_stop_on_the_loss_side_and_any_target_on_the_profit_side(
    case: Case,
) -> None:
    approved = _manager(case).review(case.intent, case.account, case.market)
    if isinstance(approved, Denial):
        return
    sign = approved.side.sign
    assert approved.stop_price is not None
    assert approved.stop_price > 0
    assert (case.market.price - approved.stop_price) * sign > 0
    if case.intent.target_price is not None:
        assert approved.target_price == case.intent.target_price  # the strategy's is kept
    elif not case.settings.take_profit:
        assert approved.target_price is None  # risk adds no target unless take_profit is set
    else:
        assert approved.target_price is not None  # take_profit: risk sets one
    if approved.target_price is not None:
        assert (approved.target_price - case.market.price) * sign > 0


@settings(max_examples=300, deadline=None)
@given(case=cases())
def test_a_switched_off_rule_never_denies_or_shrinks_an_entry(case: Case) -> None:
    """Kelly from trades and the trade-record rules off: the closed trades change nothing."""
    quiet = case.settings.model_copy(
        update={"kelly_from_trades": False, "trade_record_rules": False}
    )
    with_record = RiskManager(quiet).review(case.intent, case.account, case.market)
    without = replace(case.account, closed_trades=())
    no_record = RiskManager(quiet).review(case.intent, without, case.market)
    assert type(with_record) is type(no_record)
    if isinstance(with_record, OrderIntent) and isinstance(no_record, OrderIntent):
        assert with_record.quantity == no_record.quantity
    elif isinstance(with_record, Denial) and isinstance(no_record, Denial):
        assert with_record.rule == no_record.rule
        assert with_record.rule not in ("kelly", "symbol_paused")


@settings(max_examples=300, deadline=None)
@given(case=cases())
def test_no_new_trade_in_critical_mode(case: Case) -> None:
    manager = _manager(case)
    verdict = manager.review(case.intent, case.account, case.market)
    if manager.mode is PolicyMode.CRITICAL:
        assert isinstance(verdict, Denial)
        assert verdict.rule == "policy_mode"
        assert "mode CRITICAL" in verdict.reason


@settings(max_examples=200, deadline=None)
@given(case=cases())
def test_no_new_trade_after_the_emergency_stop_but_exits_pass(case: Case) -> None:
    manager = _manager(case)
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

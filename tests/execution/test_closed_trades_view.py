"""The account snapshot's closed-trades view: a tuple-like, O(1) window on the trade log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tradebrain.core.orders import Fill, Liquidity, Side
from tradebrain.execution.account import ClosedTrade, ClosedTradesView
from tradebrain.execution.portfolio import Portfolio

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


def _trade(pnl: float) -> ClosedTrade:
    return ClosedTrade("BTC", 1, WHEN, WHEN, 1.0, 1.0, 1.0, pnl, 0.0, 0.0, float("nan"), "exit")


def test_the_view_reads_like_the_tuple_of_its_first_trades() -> None:
    log = [_trade(float(i)) for i in range(5)]
    view = ClosedTradesView(log, 3)
    log.append(_trade(99.0))
    expected = tuple(log[:3])
    assert len(view) == 3
    assert tuple(view) == expected and view == expected
    assert list(reversed(view)) == list(reversed(expected))
    assert view[-1] is log[2] and view[0] is log[0]
    assert view[-2:] == expected[-2:] and view[::-1] == expected[::-1]
    assert view[10:] == ()
    with pytest.raises(IndexError):
        view[3]
    with pytest.raises(IndexError):
        view[-4]
    assert repr(view) == repr(expected)
    assert hash(view) == hash(expected)


def _fill(side: Side, price: float) -> Fill:
    return Fill(
        timestamp=WHEN,
        order_id="o",
        symbol="BTC",
        side=side,
        quantity=1.0,
        price=price,
        fee=0.0,
        liquidity=Liquidity.TAKER,
        tag="t",
        slippage=0.0,
        reasons=(),
    )


def test_a_snapshot_keeps_the_trades_closed_when_it_was_taken() -> None:
    portfolio = Portfolio(cash=1_000.0)
    portfolio.apply_fill(_fill(Side.BUY, 10.0))
    portfolio.apply_fill(_fill(Side.SELL, 11.0))
    before = portfolio.snapshot(WHEN, {"BTC": 11.0})
    assert portfolio.snapshot(WHEN, {"BTC": 11.0}).closed_trades is before.closed_trades
    portfolio.apply_fill(_fill(Side.BUY, 11.0))
    portfolio.apply_fill(_fill(Side.SELL, 12.0))
    after = portfolio.snapshot(WHEN, {"BTC": 12.0})
    assert len(before.closed_trades) == 1 and len(after.closed_trades) == 2
    assert after.closed_trades == tuple(portfolio.closed_trades)
    portfolio.closed_trades = list(portfolio.closed_trades)
    assert portfolio.snapshot(WHEN, {}).closed_trades == tuple(portfolio.closed_trades)

"""Funding at a settlement is what the broker's cost model says a position pays."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.builders import make_candles
from tradebrain.core.events import FundingSettled
from tradebrain.core.market import MarketType
from tradebrain.core.orders import OrderIntent, Side
from tradebrain.engine.feed import ReplayFeed
from tradebrain.execution.account import Position
from tradebrain.execution.broker import SimulatedBroker
from tradebrain.execution.costs import FlatCosts, ScaledCosts


@dataclass(frozen=True)
class DoubleFunding(FlatCosts):
    """Flat fees, but a venue that charges twice the usual funding."""

    def funding(self, position: Position, rate: float, mark_price: float | None = None) -> float:
        return 2 * super().funding(position, rate, mark_price)


@pytest.mark.parametrize(
    ("costs", "multiple"),
    [(FlatCosts(0.0), 1.0), (DoubleFunding(0.0), 2.0), (ScaledCosts(FlatCosts(0.0), 3.0), 1.0)],
)
def test_a_long_pays_the_funding_its_cost_model_computes(costs, multiple: float) -> None:
    candles = list(ReplayFeed(make_candles(3, seed=2), "BTC/USDT:USDT", "1h"))
    broker = SimulatedBroker(10_000.0, costs, market=MarketType.PERP)
    broker.on_candle(candles[0])
    broker.submit(OrderIntent(candles[0].close_time, "BTC/USDT:USDT", Side.BUY, 2.0))
    broker.on_candle(candles[1])
    cash = broker.portfolio.cash
    broker.on_funding(FundingSettled("BTC/USDT:USDT", candles[1].close_time, 0.001, 100.0))
    assert cash - broker.portfolio.cash == pytest.approx(multiple * 2.0 * 100.0 * 0.001)
    assert broker.portfolio.funding_paid == pytest.approx(multiple * 0.2)

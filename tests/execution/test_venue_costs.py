"""Costs: venue fee presets, square-root slippage, funding signs, flat costs — one port."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from tradebrain.core.market import MarketState, MarketType
from tradebrain.core.orders import Liquidity, Side
from tradebrain.exceptions import ConfigError, UserInputError
from tradebrain.execution.account import Position
from tradebrain.execution.costs import (
    CostModel,
    FlatCosts,
    ScaledCosts,
    VenueCosts,
    slippage_fraction,
)

MAKER, TAKER = Liquidity.MAKER, Liquidity.TAKER
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def make_market(price: float, **fields: object) -> MarketState:
    """Return a market snapshot at NOW."""
    return MarketState(timestamp=NOW, symbol="BTC/USDT", price=price, atr=1.0, **fields)  # type: ignore[arg-type]


def make_position(quantity: float, entry_price: float) -> Position:
    """Return an open position (positive quantity long, negative short)."""
    return Position("BTC/USDT", quantity, entry_price, NOW - timedelta(hours=5))


def slippage_paid(costs: CostModel, quantity: float, side: Side, **market: float) -> float:
    """Return what a taker fill of ``quantity`` at 100 pays versus the price, in quote."""
    price = costs.fill_price(side, 100.0, quantity, make_market(100.0, **market), TAKER)
    return abs(quantity) * abs(price - 100.0)


@pytest.mark.parametrize(
    ("venue", "market", "maker", "taker"),
    [
        ("binance-spot", MarketType.SPOT, 10.0, 10.0),
        ("binance-usdm", MarketType.PERP, 2.0, 5.0),
        ("okx-spot", MarketType.SPOT, 8.0, 10.0),
        ("okx-swap", MarketType.PERP, 2.0, 5.0),
    ],
)
def test_venue_presets_charge_their_maker_and_taker_fees_on_10k(
    venue: str, market: MarketType, maker: float, taker: float
) -> None:
    costs = VenueCosts.preset(venue)
    assert costs.market is market
    assert costs.fee(10_000.0, MAKER, market) == pytest.approx(maker)
    assert costs.fee(-10_000.0, TAKER, market) == pytest.approx(taker)
    assert costs.fee(10_000.0, TAKER) == pytest.approx(taker)


def test_perp_aliases_name_the_same_presets() -> None:
    assert VenueCosts.preset("Binance-Perp") == VenueCosts.preset("binance-usdm")
    assert VenueCosts.preset("okx-perp") == VenueCosts.preset("okx-swap")


def test_an_unknown_venue_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown venue 'kraken'; known venues: binance-spot"):
        VenueCosts.preset("kraken")


def test_asking_a_spot_venue_for_perp_fees_names_the_venues_that_trade_perps() -> None:
    with pytest.raises(ConfigError, match=r"not perp; use one of: binance-usdm, okx-swap"):
        VenueCosts.preset("binance-spot").fee(1_000.0, TAKER, MarketType.PERP)


def test_slippage_of_a_tiny_order_is_half_the_spread() -> None:
    costs = VenueCosts.preset("binance-spot")
    cost = slippage_paid(costs, 1e-9, Side.BUY, volume=1e9, spread=0.0004)
    assert cost / (1e-9 * 100.0) == pytest.approx(0.0002, rel=1e-6)


def test_market_impact_grows_with_the_square_root_of_size_over_volume() -> None:
    costs = VenueCosts.preset("binance-spot", impact_coefficient=0.01)
    small = slippage_paid(costs, 10.0, Side.BUY, volume=1_000.0, spread=0.0)
    large = slippage_paid(costs, 40.0, Side.SELL, volume=1_000.0, spread=0.0)
    assert small / (10 * 100) == pytest.approx(0.01 * math.sqrt(0.01))  # 10 bps at 1 %
    assert (large / 40) / (small / 10) == pytest.approx(2.0)  # 4x size, 2x price impact


def test_unknown_volume_assumes_the_whole_bar_is_traded() -> None:
    assert slippage_fraction(5.0, 0.0, 0.001, 0.01) == pytest.approx(0.0005 + 0.01)


def test_takers_fill_worse_than_the_reference_and_makers_at_it() -> None:
    costs = VenueCosts.preset("binance-usdm")
    market = make_market(100.0, market_type=MarketType.PERP, volume=1_000.0, spread=0.0002)
    buy = costs.fill_price(Side.BUY, 100.0, 10.0, market, TAKER)
    sell = costs.fill_price(Side.SELL, 100.0, 10.0, market, TAKER)
    assert buy == pytest.approx(100.0 * (1 + 0.0001 + 0.001))
    assert sell == pytest.approx(100.0 * (1 - 0.0001 - 0.001))
    assert costs.fill_price(Side.BUY, 100.0, 10.0, market, MAKER) == 100.0


@pytest.mark.parametrize(
    ("quantity", "rate", "paid"),
    [(2.0, 0.0001, 0.02), (-2.0, 0.0001, -0.02), (2.0, -0.0003, -0.06), (-2.0, -0.0003, 0.06)],
)
def test_longs_pay_positive_funding_and_shorts_receive_it(
    quantity: float, rate: float, paid: float
) -> None:
    position = make_position(quantity, 100.0)
    for costs in (VenueCosts.preset("binance-usdm"), FlatCosts()):
        assert costs.funding(position, rate) == pytest.approx(paid)
    assert FlatCosts().funding(position, rate, mark_price=200.0) == pytest.approx(2 * paid)


def test_flat_costs_charge_one_rate_and_fixed_basis_points() -> None:
    costs = FlatCosts(fee_rate=0.001, slippage_bps=5.0)
    assert costs.fee(10_000.0, MAKER) == costs.fee(10_000.0, TAKER, "perp") == pytest.approx(10)
    assert slippage_paid(costs, 3.0, Side.BUY, spread=0.01) == pytest.approx(0.15)
    assert costs.fill_price(Side.SELL, 100.0, 3.0, None, TAKER) == pytest.approx(99.95)


def test_every_cost_model_satisfies_the_one_cost_port() -> None:
    base = VenueCosts.preset("okx-swap")
    for model in (base, FlatCosts(), ScaledCosts(base, 2.0)):
        assert isinstance(model, CostModel)


def test_scaled_costs_multiply_fees_and_slippage_but_not_funding() -> None:
    base = FlatCosts(fee_rate=0.001, slippage_bps=10.0)
    doubled = ScaledCosts(base, 2.0)
    assert doubled.fee(1_000.0, TAKER) == pytest.approx(2.0)
    assert doubled.fill_price(Side.BUY, 100.0, 1.0, None, TAKER) == pytest.approx(100.2)
    position = make_position(1.0, 100.0)
    assert doubled.funding(position, 0.001) == base.funding(position, 0.001)


def test_flat_costs_take_a_venues_base_tier_and_refuse_an_unknown_one() -> None:
    costs = FlatCosts.for_venue("binance-perp", slippage_bps=1.0)
    assert (costs.maker_fee_rate, costs.fee_rate) == (0.0002, 0.0005)
    with pytest.raises(UserInputError, match="unknown venue 'kraken'"):
        FlatCosts.for_venue("kraken")

"""The costs a simulated run pays come from the execution settings: backtests and paper alike."""

from __future__ import annotations

import pytest

from tradebrain.config import ExecutionSettings
from tradebrain.core.orders import Liquidity, Side
from tradebrain.execution.costs import CostModel, FlatCosts, settings_costs

MAKER, TAKER = Liquidity.MAKER, Liquidity.TAKER


def test_the_default_settings_cost_ten_basis_points_a_side_and_one_of_slippage() -> None:
    costs = settings_costs(ExecutionSettings())
    assert costs == FlatCosts(fee_rate=0.001, slippage_bps=1.0, maker_fee_rate=0.001)
    assert isinstance(costs, CostModel)


def test_settings_costs_price_a_taker_fill_with_the_settings_fee_and_slippage() -> None:
    costs = settings_costs(ExecutionSettings(taker_fee=0.002, maker_fee=0.0005, slippage_bps=5.0))
    assert costs.fill_price(Side.BUY, 100.0, 3.0, None, TAKER) == pytest.approx(100.05)
    assert costs.fill_price(Side.SELL, 100.0, 3.0, None, TAKER) == pytest.approx(99.95)
    assert costs.fee(10_000.0, TAKER) == pytest.approx(20.0)


def test_settings_costs_charge_makers_the_maker_fee_and_no_slippage() -> None:
    costs = settings_costs(ExecutionSettings(taker_fee=0.002, maker_fee=0.0005, slippage_bps=5.0))
    assert costs.fill_price(Side.BUY, 100.0, 3.0, None, MAKER) == 100.0
    assert costs.fee(10_000.0, MAKER) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("field", "value"), [("taker_fee", 0.0), ("maker_fee", 0.0), ("slippage_bps", 0.0)]
)
def test_each_execution_setting_changes_what_a_fill_costs(field: str, value: float) -> None:
    def price_and_fees(settings: ExecutionSettings) -> tuple[float, float, float]:
        costs = settings_costs(settings)
        return (
            costs.fill_price(Side.BUY, 100.0, 1.0, None, TAKER),
            costs.fee(1_000.0, TAKER),
            costs.fee(1_000.0, MAKER),
        )

    changed = ExecutionSettings(**{field: value})
    assert price_and_fees(changed) != price_and_fees(ExecutionSettings())

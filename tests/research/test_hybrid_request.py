"""The hybrid request: one market and one set of run settings, built from the settings."""

from __future__ import annotations

import polars as pl
import pytest

from tradebrain.brain.tuning import BrainTuning
from tradebrain.config import BrainSettings, RiskSettings, Settings
from tradebrain.core.market import MarketType
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.engine.backtest import BacktestConfig
from tradebrain.exceptions import UserInputError
from tradebrain.execution.costs import settings_costs
from tradebrain.execution.monitor import MonitorRules
from tradebrain.research.hybrid_request import HybridRequest, backtest_config
from tradebrain.research.stress import run_stress, stress_world
from tradebrain.strategies.hybrid import HybridStrategy
from tradebrain.strategies.hybrid_config import HybridConfig
from tradebrain.strategies.hybrid_fast import FastHybridStrategy

SETTINGS = Settings.model_validate(
    {
        "execution": {"taker_fee": 0.0007, "slippage_bps": 3.0},
        "risk": {"manage_exits": True},
        "brain": {"disabled_parts": ["maker_taker"]},
        "learning": {"min_train_bars": 900},
    }
)


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return generate_market(SyntheticConfig(bars=300, seed=3)).candles


def test_from_settings_takes_costs_exits_risk_brain_tuning_and_walk_forward_from_the_settings(
    candles: pl.DataFrame,
) -> None:
    request = HybridRequest.from_settings(SETTINGS, candles, symbol="SYN", timeframe="1h")
    assert (request.candles, request.symbol, request.timeframe) == (candles, "SYN", "1h")
    assert request.orderflow is None and request.funding is None
    assert request.backtest.costs == settings_costs(SETTINGS.execution)
    assert request.backtest.monitor == MonitorRules.from_settings(SETTINGS.risk)
    assert request.backtest.monitor != MonitorRules.off()
    assert (request.risk, request.brain) == (SETTINGS.risk, SETTINGS.brain)
    assert request.tuning == BrainTuning.from_settings(SETTINGS)
    assert request.hybrid == HybridConfig.from_settings(SETTINGS)
    assert request.hybrid.min_train == 900


def test_a_given_simulation_or_walk_forward_wins_over_the_settings(candles: pl.DataFrame) -> None:
    perp = backtest_config(SETTINGS, market=MarketType.PERP, leverage=3.0, cash=500.0)
    assert (perp.market, perp.leverage, perp.cash) == (MarketType.PERP, 3.0, 500.0)
    assert perp.costs == settings_costs(SETTINGS.execution)
    hybrid = HybridConfig(min_train=1200)
    request = HybridRequest.from_settings(
        SETTINGS, candles, symbol="SYN", timeframe="1h", backtest=perp, hybrid=hybrid
    )
    assert request.backtest is perp and request.hybrid is hybrid


def test_backtest_config_refuses_an_account_no_venue_could_hold() -> None:
    with pytest.raises(UserInputError):
        backtest_config(SETTINGS, leverage=2.0)  # leverage on spot


def test_a_request_built_directly_has_every_default(candles: pl.DataFrame) -> None:
    request = HybridRequest(candles, "SYN", "1h")
    assert request.backtest == BacktestConfig() and request.hybrid == HybridConfig()
    assert (request.risk, request.brain, request.tuning) == (RiskSettings(), BrainSettings(), None)
    assert request.feature_candles is candles
    with_flow = HybridRequest(candles, "SYN", "1h", orderflow=candles.clone())
    assert with_flow.feature_candles is with_flow.orderflow


def test_the_strategy_decides_with_the_requests_brain_compiled_or_not(
    candles: pl.DataFrame,
) -> None:
    from tradebrain.features import compute_features
    from tradebrain.strategies.hybrid import HybridSignals

    signals = HybridSignals.from_tables(compute_features(candles, ["regime"]), {})
    request = HybridRequest.from_settings(SETTINGS, candles, symbol="SYN", timeframe="1h")
    assert isinstance(request.strategy(signals), FastHybridStrategy)
    python = request.strategy(signals, compiled=False)
    assert isinstance(python, HybridStrategy)
    assert python.brain.settings == SETTINGS.brain


def test_stress_refuses_a_request_on_another_market(candles: pl.DataFrame) -> None:
    world = stress_world(bars=400, seed=1)
    with pytest.raises(UserInputError, match="stress world"):
        run_stress(HybridRequest(candles, "SYN", "1h"), world)

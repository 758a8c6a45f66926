"""Policy modes, per-symbol performance and the emergency stop."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from risk_builders import (
    NOW,
    SYMBOL,
    make_account,
    make_entry,
    make_exit,
    make_market,
    make_position,
    make_trades,
)

from tradebrain.config import RiskSettings
from tradebrain.core.events import CandleClosed
from tradebrain.core.orders import OrderIntent, Side
from tradebrain.data.schemas import TIMESTAMP
from tradebrain.engine.backtest import BacktestConfig, run_backtest
from tradebrain.engine.strategy import StrategyContext
from tradebrain.exceptions import ConfigError
from tradebrain.execution.costs import FlatCosts
from tradebrain.risk import (
    Denial,
    EmergencyStopped,
    EmergencyStopReleased,
    PolicyMode,
    PolicyModeChanged,
    PolicyRules,
    RiskManager,
    SymbolPaused,
    SymbolResumed,
)
from tradebrain.risk.performance import symbol_performance
from tradebrain.risk.policy import assess


@pytest.fixture
def manager() -> RiskManager:
    return RiskManager(RiskSettings(stop_atr_multiple=3.0))


def _with(**settings: object) -> RiskManager:
    """A risk manager whose settings switch on what the test is about."""
    return RiskManager(RiskSettings(**{"stop_atr_multiple": 3.0, **settings}))  # type: ignore[arg-type]


def test_daily_drawdown_past_the_ten_percent_limit_is_critical_and_says_so(
    manager: RiskManager,
) -> None:
    account = make_account(8_900.0, day_start=10_000.0, peak=10_000.0)
    verdict = manager.review(make_entry(), account, make_market())
    assert isinstance(verdict, Denial)
    assert verdict.rule == "policy_mode"
    assert verdict.reason == "denied: daily drawdown 11.0% exceeds the 10.0% limit; mode CRITICAL"
    assert manager.mode is PolicyMode.CRITICAL


def test_drawdown_from_peak_past_forty_percent_is_critical(manager: RiskManager) -> None:
    account = make_account(5_800.0, peak=10_000.0)
    verdict = manager.review(make_entry(), account, make_market())
    assert isinstance(verdict, Denial)
    assert "drawdown from peak 42.0% exceeds the 40.0% limit; mode CRITICAL" in verdict.reason


def test_defensive_mode_asks_more_confidence_when_set_and_halves_the_size() -> None:
    manager = _with(defensive_min_confidence=0.65)
    normal = manager.review(make_entry(confidence=0.6), make_account(), make_market(100, 20))
    assert isinstance(normal, OrderIntent)
    account = make_account(9_400.0, day_start=10_000.0)  # 6 % down on the day
    timid = manager.review(make_entry(confidence=0.6), account, make_market(100, 20))
    assert isinstance(timid, Denial)
    assert timid.rule == "min_confidence"
    assert timid.reason == "denied: confidence 0.60 is below the 0.65 minimum of mode DEFENSIVE"
    sure = manager.review(make_entry(confidence=0.8), account, make_market(100, 20))
    assert isinstance(sure, OrderIntent)
    risk_normal = normal.quantity * 60.0 / 10_000
    risk_defensive = sure.quantity * 60.0 / 9_400
    assert risk_normal == pytest.approx(0.05)
    assert risk_defensive == pytest.approx(0.025)
    assert any("mode DEFENSIVE (daily drawdown 6.0%" in reason for reason in sure.reasons)


def test_by_default_defensive_mode_halves_the_size_but_asks_no_more_confidence(
    manager: RiskManager,
) -> None:
    account = make_account(9_400.0, day_start=10_000.0)
    timid = manager.review(make_entry(confidence=0.1), account, make_market(100, 20))
    assert manager.mode is PolicyMode.DEFENSIVE
    assert isinstance(timid, OrderIntent)
    assert timid.quantity * 60.0 / 9_400 == pytest.approx(0.025)


@pytest.mark.parametrize(("losses", "mode"), [(2, "normal"), (3, "defensive"), (6, "critical")])
def test_losing_streaks_move_the_mode_when_the_trade_record_rules_are_on(
    losses: int, mode: str
) -> None:
    manager = _with(trade_record_rules=True)
    trades = make_trades([1.0] + [-1.0] * losses)
    manager.observe(make_account(trades=trades))
    assert manager.mode == mode


def test_by_default_a_losing_streak_leaves_the_mode_normal(manager: RiskManager) -> None:
    trades = make_trades([1.0] + [-1.0] * 12)
    manager.observe(make_account(trades=trades))
    assert manager.mode is PolicyMode.NORMAL


def test_a_losing_streak_expires_a_day_after_the_last_loss() -> None:
    manager = _with(trade_record_rules=True)
    trades = make_trades([1.0] + [-1.0] * 4)
    manager.observe(make_account(trades=trades))
    assert manager.mode == "defensive"
    later = trades[-1].exit_time + timedelta(hours=25)
    manager.observe(make_account(trades=trades, timestamp=later))
    assert manager.mode == "normal"  # otherwise DEFENSIVE would deny every trade that could end it


def test_unhealthy_data_stops_new_trades_until_it_heals(manager: RiskManager) -> None:
    account = make_account()
    sick = manager.review(make_entry(), account, make_market(data_healthy=False))
    assert isinstance(sick, Denial)
    assert sick.reason == "denied: data for BTCUSDT is unhealthy; mode CRITICAL"
    healthy = manager.review(make_entry(), account, make_market())
    assert isinstance(healthy, OrderIntent)
    changes = manager.drain_events()
    assert [(e.previous, e.mode) for e in changes if isinstance(e, PolicyModeChanged)] == [
        (PolicyMode.NORMAL, PolicyMode.CRITICAL),
        (PolicyMode.CRITICAL, PolicyMode.NORMAL),
    ]
    assert manager.drain_events() == []


def test_a_mode_change_is_recorded_once_with_its_reasons(manager: RiskManager) -> None:
    account = make_account(9_400.0, day_start=10_000.0)
    manager.observe(account)
    manager.observe(account)
    events = manager.drain_events()
    assert events == [
        PolicyModeChanged(
            timestamp=NOW,
            previous=PolicyMode.NORMAL,
            mode=PolicyMode.DEFENSIVE,
            reasons=("daily drawdown 6.0% exceeds the 5.0% defensive line",),
        )
    ]


def test_exits_pass_in_critical_mode(manager: RiskManager) -> None:
    account = make_account(5_000.0, peak=10_000.0, positions=[make_position(3.0)])
    verdict = manager.review(make_exit(Side.SELL), account, make_market(data_healthy=False))
    assert isinstance(verdict, OrderIntent)
    assert verdict.quantity == 3.0
    assert manager.mode is PolicyMode.CRITICAL


def test_a_symbol_pauses_for_a_day_after_five_losses_in_a_row_when_the_rules_are_on() -> None:
    manager = _with(trade_record_rules=True)
    trades = make_trades([2.0] * 3 + [-1.0] * 5, end=NOW - timedelta(hours=1))
    paused = manager.review(make_entry(), make_account(trades=trades), make_market())
    assert isinstance(paused, Denial)
    assert paused.rule == "symbol_paused"
    assert "BTCUSDT lost 5 trades in a row (pause after 5)" in paused.reason
    later = make_account(trades=trades, timestamp=NOW + timedelta(hours=24))
    resumed = manager.review(make_entry(), later, make_market())
    assert isinstance(resumed, OrderIntent)
    kinds = [type(e) for e in manager.drain_events()]
    assert SymbolPaused in kinds and SymbolResumed in kinds


def test_by_default_a_losing_run_neither_pauses_nor_shrinks_a_symbol(
    manager: RiskManager,
) -> None:
    trades = make_trades([2.0] * 3 + [-1.0] * 5, end=NOW - timedelta(hours=1))
    losing = manager.review(make_entry(), make_account(trades=trades), make_market(100, 20))
    fresh = manager.review(make_entry(), make_account(), make_market(100, 20))
    assert isinstance(losing, OrderIntent) and isinstance(fresh, OrderIntent)
    assert losing.quantity == pytest.approx(fresh.quantity)
    assert not any(isinstance(e, SymbolPaused) for e in manager.drain_events())


def test_a_pause_of_one_symbol_leaves_the_others_alone() -> None:
    manager = _with(trade_record_rules=True)
    trades = make_trades([-1.0] * 5, symbol="ETHUSDT") + make_trades([1.0, 1.0])
    verdict = manager.review(make_entry(), make_account(trades=trades), make_market())
    assert isinstance(verdict, OrderIntent)


def test_a_poor_performer_trades_at_half_size_when_the_rules_are_on() -> None:
    manager = _with(trade_record_rules=True)
    record = [-1.0, -1.0, -1.0, -1.0, 0.5]  # -3.5R over 5 trades, last one a win
    own = make_account(trades=make_trades(record))
    other = make_account(trades=make_trades(record, symbol="ETHUSDT"))
    poor = manager.review(make_entry(), own, make_market(100, 20))
    fine = manager.review(make_entry(), other, make_market(100, 20))
    assert isinstance(poor, OrderIntent) and isinstance(fine, OrderIntent)
    assert poor.quantity == pytest.approx(fine.quantity / 2)
    assert any("made -3.5R over its last 5 trades; size x0.5" in r for r in poor.reasons)


def test_emergency_stop_latches_denies_and_closes_everything(manager: RiskManager) -> None:
    account = make_account(
        positions=[make_position(2.0), make_position(-5.0, 50.0, symbol="ETHUSDT")]
    )
    manager.emergency_stop("exchange reports a hack", timestamp=NOW)
    manager.emergency_stop("pressed twice", timestamp=NOW)
    verdict = manager.review(make_entry(), account, make_market())
    assert isinstance(verdict, Denial)
    assert verdict.rule == "emergency_stop"
    assert verdict.reason == (
        "denied: emergency stop latched (exchange reports a hack); no new trades"
    )
    exits = manager.close_all_intents(account)
    assert [(o.symbol, o.side, o.quantity, o.reduce_only) for o in exits] == [
        ("BTCUSDT", Side.SELL, 2.0, True),
        ("ETHUSDT", Side.BUY, 5.0, True),
    ]
    assert all(o.tag == "emergency" for o in exits)
    manager.release_emergency_stop("hack was a false alarm", timestamp=NOW)
    assert isinstance(manager.review(make_entry(), account, make_market()), OrderIntent)
    assert manager.drain_events() == [
        EmergencyStopped(NOW, "exchange reports a hack"),
        EmergencyStopReleased(NOW, "hack was a false alarm"),
    ]


def test_policy_lines_follow_the_risk_settings() -> None:
    rules = PolicyRules.from_settings(RiskSettings(max_daily_drawdown=0.05, max_drawdown=0.2))
    assert (rules.defensive_daily_drawdown, rules.critical_daily_drawdown) == (0.025, 0.05)
    assert (rules.defensive_drawdown, rules.critical_drawdown) == (0.1, 0.2)


def test_a_defensive_line_above_the_critical_line_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DEFENSIVE line"):
        replace(PolicyRules(), defensive_drawdown=0.2)


def test_policy_rules_from_settings_follow_the_trade_record_switch() -> None:
    off = PolicyRules.from_settings(RiskSettings())
    on = PolicyRules.from_settings(RiskSettings(trade_record_rules=True))
    streak = make_trades([1.0] + [-1.0] * 30)
    assert assess(make_account(trades=streak), frozenset(), off).mode is PolicyMode.NORMAL
    assert assess(make_account(trades=streak), frozenset(), on).mode is PolicyMode.CRITICAL
    losing_run = make_trades([-1.0] * 8)
    assert symbol_performance(SYMBOL, losing_run, off.symbols).size_factor == 1.0
    assert symbol_performance(SYMBOL, losing_run, off.symbols).paused_until is None
    assert symbol_performance(SYMBOL, losing_run, on.symbols).size_factor == 0.5
    assert symbol_performance(SYMBOL, losing_run, on.symbols).paused_until is not None
    assert (on.defensive_losing_streak, on.critical_losing_streak) == (3, 6)


def test_policy_rules_from_settings_take_the_defensive_minimum_confidence() -> None:
    assert PolicyRules.from_settings(RiskSettings()).min_confidence(PolicyMode.DEFENSIVE) == 0.0
    rules = PolicyRules.from_settings(RiskSettings(defensive_min_confidence=0.7))
    assert rules.min_confidence(PolicyMode.DEFENSIVE) == 0.7
    assert rules.min_confidence(PolicyMode.NORMAL) == 0.0


class _BuyOnBars:
    """Buys with a stop ``stop_fraction`` below the close on the given bars when flat."""

    name = "buy-on-bars"

    def __init__(self, bars: dict[int, float]) -> None:
        self.bars = bars

    def init(self, context: StrategyContext) -> None:
        pass

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        stop_fraction = self.bars.get(context.bar)
        if stop_fraction is None or context.position:
            return []
        stop = candle.close * (1.0 - stop_fraction)
        return [OrderIntent(candle.close_time, candle.symbol, Side.BUY, stop_price=stop)]


def _gap_down_candles(hours: int, gap_at: int, before: float, after: float) -> pl.DataFrame:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    level = [before if i < gap_at else after for i in range(hours)]
    return pl.DataFrame(
        {
            "timestamp": pl.Series(
                [start + timedelta(hours=i) for i in range(hours)], dtype=TIMESTAMP
            ),
            "open": level,
            "high": [p * 1.005 for p in level],
            "low": [p * 0.995 for p in level],
            "close": level,
            "volume": [10.0] * hours,
        }
    )


def test_a_backtest_measures_the_daily_drawdown_from_the_days_start_not_the_first_cash() -> None:
    # Day one: all in at 100 with a stop at 95, then the price gaps to 85 through the stop:
    # 15 % lost, past the 10 % daily limit (and under the 20 % defensive line from the peak).
    candles = _gap_down_candles(48, gap_at=2, before=100.0, after=85.0)
    strategy = _BuyOnBars({0: 0.05, 3: 0.10, 30: 0.10})  # bar 3: day one; bar 30: day two
    risk = RiskManager(RiskSettings())
    result = run_backtest(
        candles, strategy, BacktestConfig(costs=FlatCosts(0.0)),
        symbol=SYMBOL, timeframe="1h", risk=risk,
    )  # fmt: skip
    assert result.trades[0].pnl == pytest.approx(-1_500.0, rel=1e-6)
    [denied] = result.denials
    assert denied.timestamp.date().isoformat() == "2024-01-01"
    assert denied.reason == "denied: daily drawdown 15.0% exceeds the 10.0% limit; mode CRITICAL"
    # Day two starts at 8 500: its daily drawdown is 0, so the entry is approved in NORMAL
    # mode at full size (5 % of 8 500 over an 8.5 stop), not halved and not denied.
    day_two = [f for f in result.fills if f.timestamp.date().isoformat() == "2024-01-02"]
    assert [f.side for f in day_two] == [Side.BUY]
    assert day_two[0].quantity == pytest.approx(50.0, rel=1e-6)
    assert risk.mode is PolicyMode.NORMAL
    changes = [e for e in risk.drain_events() if isinstance(e, PolicyModeChanged)]
    assert [(e.previous, e.mode, e.timestamp.date().isoformat()) for e in changes] == [
        (PolicyMode.NORMAL, PolicyMode.CRITICAL, "2024-01-01"),
        (PolicyMode.CRITICAL, PolicyMode.NORMAL, "2024-01-02"),
    ]

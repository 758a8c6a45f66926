"""Policy modes, per-symbol performance and the emergency stop."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from risk_builders import (
    NOW,
    make_account,
    make_entry,
    make_exit,
    make_market,
    make_position,
    make_trades,
)

from tradebrain.exceptions import ConfigError
from tradebrain.execution.orders import OrderIntent, Side
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


@pytest.fixture
def manager() -> RiskManager:
    return RiskManager()


def test_daily_drawdown_past_three_percent_is_critical_and_says_so(manager: RiskManager) -> None:
    account = make_account(9_660.0, day_start=10_000.0, peak=10_000.0)
    verdict = manager.review(make_entry(), account, make_market())
    assert isinstance(verdict, Denial)
    assert verdict.rule == "policy_mode"
    assert verdict.reason == "denied: daily drawdown 3.4% exceeds the 3.0% limit; mode CRITICAL"
    assert manager.mode is PolicyMode.CRITICAL


def test_drawdown_from_peak_past_ten_percent_is_critical(manager: RiskManager) -> None:
    account = make_account(8_800.0, peak=10_000.0)
    verdict = manager.review(make_entry(), account, make_market())
    assert isinstance(verdict, Denial)
    assert "drawdown from peak 12.0% exceeds the 10.0% limit; mode CRITICAL" in verdict.reason


def test_defensive_mode_asks_more_confidence_and_halves_the_size(manager: RiskManager) -> None:
    normal = manager.review(make_entry(confidence=0.6), make_account(), make_market(100, 20))
    assert isinstance(normal, OrderIntent)
    account = make_account(9_800.0, day_start=10_000.0)  # 2 % down on the day
    timid = manager.review(make_entry(confidence=0.6), account, make_market(100, 20))
    assert isinstance(timid, Denial)
    assert timid.rule == "min_confidence"
    assert timid.reason == "denied: confidence 0.60 is below the 0.65 minimum of mode DEFENSIVE"
    sure = manager.review(make_entry(confidence=0.8), account, make_market(100, 20))
    assert isinstance(sure, OrderIntent)
    risk_normal = normal.quantity * 30.0 / 10_000
    risk_defensive = sure.quantity * 30.0 / 9_800
    assert risk_normal == pytest.approx(0.02)
    assert risk_defensive == pytest.approx(0.01)
    assert any("mode DEFENSIVE (daily drawdown 2.0%" in reason for reason in sure.reasons)


@pytest.mark.parametrize(("losses", "mode"), [(2, "normal"), (3, "defensive"), (6, "critical")])
def test_losing_streaks_move_the_mode(manager: RiskManager, losses: int, mode: str) -> None:
    trades = make_trades([1.0] + [-1.0] * losses)
    manager.observe(make_account(trades=trades))
    assert manager.mode == mode


def test_a_losing_streak_expires_a_day_after_the_last_loss(manager: RiskManager) -> None:
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
    account = make_account(9_800.0, day_start=10_000.0)
    manager.observe(account)
    manager.observe(account)
    events = manager.drain_events()
    assert events == [
        PolicyModeChanged(
            timestamp=NOW,
            previous=PolicyMode.NORMAL,
            mode=PolicyMode.DEFENSIVE,
            reasons=("daily drawdown 2.0% exceeds the 1.5% defensive line",),
        )
    ]


def test_exits_pass_in_critical_mode(manager: RiskManager) -> None:
    account = make_account(8_000.0, peak=10_000.0, positions=[make_position(3.0)])
    verdict = manager.review(make_exit(Side.SELL), account, make_market(data_healthy=False))
    assert isinstance(verdict, OrderIntent)
    assert verdict.quantity == 3.0
    assert manager.mode is PolicyMode.CRITICAL


def test_a_symbol_pauses_for_a_day_after_five_losses_in_a_row(manager: RiskManager) -> None:
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


def test_a_pause_of_one_symbol_leaves_the_others_alone(manager: RiskManager) -> None:
    trades = make_trades([-1.0] * 5, symbol="ETHUSDT") + make_trades([1.0, 1.0])
    verdict = manager.review(make_entry(), make_account(trades=trades), make_market())
    assert isinstance(verdict, OrderIntent)


def test_a_poor_performer_trades_at_half_size(manager: RiskManager) -> None:
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
    from tradebrain.config import RiskSettings

    rules = PolicyRules.from_settings(RiskSettings(max_daily_drawdown=0.05, max_drawdown=0.2))
    assert (rules.defensive_daily_drawdown, rules.critical_daily_drawdown) == (0.025, 0.05)
    assert (rules.defensive_drawdown, rules.critical_drawdown) == (0.1, 0.2)


def test_a_defensive_line_above_the_critical_line_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DEFENSIVE line"):
        replace(PolicyRules(), defensive_drawdown=0.2)

"""The position monitor's rules come from ``risk.manage_exits``: off by default, on when set."""

from __future__ import annotations

import pytest

from tradebrain.config import RiskSettings
from tradebrain.execution.monitor import MonitorRules, PositionMonitor, Protection

# A long opened at 100 with a stop at 95 (1R = 5); the price runs to +1.2R, then to +2.2R.
CANDLES = [(106.0, 100.0, 105.0), (111.0, 105.0, 110.0)]  # (high, low, close)


def _ride(rules: MonitorRules) -> tuple[PositionMonitor, list[Protection]]:
    monitor = PositionMonitor(rules)
    levels = [monitor.open(+1, 100.0, 10.0, 95.0, None)]
    for high, low, close in CANDLES:
        monitor.on_candle("BTC", high, low, close)
        levels.append(monitor.after_candle("BTC", levels[-1], high, low))
    return monitor, levels


def test_by_default_the_monitor_keeps_only_the_initial_stop() -> None:
    rules = MonitorRules.from_settings(RiskSettings())
    assert rules == MonitorRules.off()
    _, (opened, at_one_r, at_two_r) = _ride(rules)
    assert opened.partial_price is None and opened.partial_quantity == 0.0
    assert at_one_r.stop_price == at_two_r.stop_price == 95.0
    assert at_two_r.stop_reason == "stop" and not at_two_r.trailing


def test_managed_exits_move_the_stop_to_break_even_then_trail_and_take_half_at_two_r() -> None:
    rules = MonitorRules.from_settings(RiskSettings(manage_exits=True))
    assert rules == MonitorRules()
    monitor, (opened, at_one_r, at_two_r) = _ride(rules)
    assert opened.partial_price == pytest.approx(110.0)  # +2R
    assert opened.partial_quantity == pytest.approx(5.0)  # half of 10
    assert (at_one_r.stop_price, at_one_r.stop_reason) == (100.0, "break_even")
    assert at_two_r.trailing and at_two_r.stop_reason == "trailing"
    assert at_two_r.stop_price == pytest.approx(111.0 - monitor.atr("BTC"))  # 1 ATR behind

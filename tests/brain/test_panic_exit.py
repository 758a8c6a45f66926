"""The panic-exit model fires on the synthetic market's flash crashes, and rarely otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CrashMarket, crash_events

from tradebrain.brain import Action, Brain, PositionContext
from tradebrain.brain.panic import PanicExitModel, PanicReading, PanicSettings

AFTERMATH = 12  # candles after a crash in which the rebound and doubled volatility play out


def panic_readings(market: CrashMarket) -> list[PanicReading]:
    model = PanicExitModel()
    return [model.update(row) for row in market.rows]


def test_panic_exit_fires_on_the_synthetic_flash_crashes(crash_market: CrashMarket) -> None:
    fired = np.array([r.fired for r in panic_readings(crash_market)])
    warm = PanicSettings().min_history
    events = [e for e in crash_events(crash_market.crash) if e[0] >= warm]
    assert len(events) >= 6
    hits = sum(bool(fired[event].any()) for event in events)
    assert hits >= len(events) - 1, f"the panic exit caught {hits} of {len(events)} crashes"


def test_panic_exit_rarely_fires_away_from_crashes(crash_market: CrashMarket) -> None:
    fired = np.array([r.fired for r in panic_readings(crash_market)])
    near_crash = np.zeros(fired.size, dtype=bool)
    near_crash[: PanicSettings().min_history] = True
    for event in crash_events(crash_market.crash):
        near_crash[event[0] : event[-1] + AFTERMATH + 1] = True
    false_alarm_rate = fired[~near_crash].mean()
    assert false_alarm_rate < 0.01


def test_panic_reasons_name_the_heads_and_their_z_scores(crash_market: CrashMarket) -> None:
    readings = panic_readings(crash_market)
    first = next(r for r in readings if r.fired)
    assert first.reasons[0].startswith(f"panic score {first.score:.2f} >= 0.5: exit everything")
    assert any(reason.startswith("micro-structure head") for reason in first.reasons)
    assert any("spread_bps z +" in reason for reason in first.reasons)
    assert set(first.heads) == {"micro-structure", "order flow", "sentiment"}
    assert all(0.0 <= score <= 1.0 for score in first.heads.values())


def test_panic_scores_use_only_past_candles(crash_market: CrashMarket) -> None:
    full = panic_readings(crash_market)
    cut = 700
    model = PanicExitModel()
    partial = [model.update(row) for row in crash_market.rows[:cut]]
    assert [r.score for r in partial] == [r.score for r in full[:cut]]


def test_the_panic_model_stays_quiet_while_warming_up() -> None:
    model = PanicExitModel()
    crazy = {"spread_bps": 1e6, "price_impact_20": 1e9, "panic_proxy_20": 1e3}
    reading = model.update(crazy)
    assert reading.score == 0.0 and not reading.fired
    assert "warming up" in reading.reasons[0]


@pytest.mark.parametrize("panic_exit", [True, False])
def test_the_brain_exits_everything_on_a_crash_unless_panic_exit_is_off(
    crash_market: CrashMarket, panic_exit: bool
) -> None:
    brain = Brain(disabled=() if panic_exit else {"panic_exit"})
    exits = []
    for i, (timestamp, row) in enumerate(
        zip(crash_market.timestamps, crash_market.rows, strict=True)
    ):
        decision = brain.decide(
            timestamp,
            "BTC/USDT",
            row,
            {"lightgbm": (0.2, 0.3, 0.5)},
            PositionContext(price=float(crash_market.close[i]), position=1.0),
        )
        if decision.action is Action.EXIT:
            exits.append(i)
            assert "panic_exit" in decision.filters
            assert not decision.maker
    on_crash = set(np.flatnonzero(crash_market.crash))
    if panic_exit:
        assert on_crash & set(exits)
    else:
        assert exits == []

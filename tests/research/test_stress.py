"""Stress scenarios: flash crashes with and without the panic exit, restart after a data gap."""

from __future__ import annotations

import json
import math
from pathlib import Path

from typer.testing import CliRunner

from tradebrain.cli import app
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.research.stress import STRESS_SETS, run_stress, stress_world
from tradebrain.strategies.hybrid_config import HybridConfig

CONFIG = HybridConfig(
    retrain_every=500,
    min_train=1500,
    feature_sets=STRESS_SETS,
    model_params={"lightgbm": {"n_estimators": 30, "n_jobs": 1}},
)


def test_stress_reports_the_panic_exit_on_crash_candles_and_survives_a_gap() -> None:
    world = stress_world(bars=2500, seed=7, crashes_per_year=60.0)
    request = HybridRequest(
        world.candles, world.symbol, world.timeframe, orderflow=world.orderflow, hybrid=CONFIG
    )
    report = run_stress(request, world)
    assert report.crashes, "a high crash rate must put crashes in the traded part"
    assert all(c.price_change < -0.05 for c in report.crashes)
    assert any(c.panic_fired for c in report.crashes)
    for crash in report.crashes:
        assert isinstance(crash.panic_fired, bool)
        assert (
            crash.loss_avoided == crash.equity_change_with_panic - crash.equity_change_without_panic
        )
        if crash.panic_exit_issued:
            assert crash.panic_fired
    gap = report.gap
    assert gap is not None and gap.dropped == 48
    assert gap.gap_safe_fired and "48 candle(s) missing" in (gap.reason or "")
    assert math.isfinite(gap.final_equity)
    json.dumps(report.to_dict(), allow_nan=False)


def test_stress_command_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "stress.json"
    result = CliRunner().invoke(
        app, ["stress", "--bars", "2500", "--seed", "7", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "panic exit fired on" in result.output
    assert "gap-safe" in result.output
    assert json.loads(out.read_text())["gap"]["gap_safe_fired"] is True

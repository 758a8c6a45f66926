"""The learning loop, scripted end to end on a market whose planted edge changes twice.

The tape: 4,000 candles with no edge (the warm-up: the first production learns to stand aside),
then a persistent trend that pays, then no edge again. Served on paper with the learning loop
on and ``auto_promote``, candle by candle (each retraining is waited for, so the script is
deterministic), the loop must:

1. retrain on the trend and promote the candidate, which beat production in shadow on the same
   candles by the paired test;
2. refuse a deliberately broken candidate (its forecast turned upside down);
3. roll production back once the trend is gone and its after-cost returns degrade;

and the API must show each step: the learning status, the versions and their aliases.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tradebrain.api import create_app
from tradebrain.config import Settings
from tradebrain.data.shifting import shifting_market
from tradebrain.data.synthetic import SyntheticConfig
from tradebrain.service.feeds import TapeFeed
from tradebrain.service.options import ServeOptions
from tradebrain.service.service import TradingService

WARMUP = 4_000
TREND = 3_000  # served candles of the paying trend; the edge vanishes after them
SYMBOL = "BTC/USDT:USDT"


def _service(home: Path) -> TradingService:
    tape = shifting_market(
        [
            SyntheticConfig(bars=WARMUP, seed=1, signal=0.0, edge="trend"),
            SyntheticConfig(bars=TREND, seed=2, signal=0.4, edge="trend", half_life=48),
            SyntheticConfig(bars=2_000, seed=3, signal=0.0, edge="trend"),
        ]
    )
    settings = Settings.model_validate(
        {
            "home": home,
            "models": {"enabled": ["logistic"]},
            "learning": {
                "enabled": True,
                "auto_promote": True,
                "retrain_every_bars": 1_500,
                "max_train_bars": 1_500,
                "min_track_bars": 300,
                "max_track_bars": 1_200,
                "monitor_block_bars": 24,
                "monitor_burn_in_blocks": 10,
                "experience_every_bars": 500,
            },
        }
    )
    feed = TapeFeed("synthetic-shift", {SYMBOL: tape}, "1h", warmup=WARMUP, speed=0.0)
    options = ServeOptions(warmup=WARMUP, speed=0, state=str(home / "state.db"), symbols=(SYMBOL,))
    return TradingService(options, settings, feed=feed)


def _break(service: TradingService) -> int:
    """Register production's bundle with its forecast turned upside down; return its version."""
    loop = service.runner.learning
    assert loop is not None
    registry = loop.registry
    production = registry.production()
    bundle = registry.load(production.version)
    model = bundle.models["logistic"]
    model.coef_, model.intercept_ = -model.coef_, -model.intercept_  # up becomes down
    folder = bundle.save(loop.home / "broken")
    lineage = replace(production.lineage, source="deliberately broken: forecast inverted")
    version = int(registry.register(folder, lineage, {}).version)
    loop._pending_candidate = version  # shadowed from the next candle, like a retrained one
    return version


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Serve the tape until the rollback; keep what the API showed after each step."""
    home = tmp_path_factory.mktemp("learning")
    service = _service(home)
    runner = service.runner
    client = TestClient(create_app(service, token=None, require_token=False))
    seen: dict[str, Any] = {"home": home, "service": service, "bars": {}}
    runner.prepare()
    seen["start"] = client.get("/api/ai/learning_status").json()
    seen["start_versions"] = client.get("/models/versions").json()
    loop = runner.learning
    assert loop is not None
    broken: int | None = None
    for bar, candle in enumerate(runner.feed.resume(runner.after, threading.Event()), 1):
        runner.step(candle)
        if loop.worker.busy:
            loop.worker.wait(120)  # deterministic: the retraining lands on the next candle
        status = client.get("/api/ai/learning_status").json()
        if "promoted" not in seen and status["production_version"] == 2:
            seen["promoted"] = status
            seen["bars"]["promoted"] = bar
            broken = _break(service)
            seen["broken"] = broken
        if broken is not None and "refused" not in seen:
            verdict = status.get("last_verdict") or {}
            if verdict.get("version") == broken and verdict.get("decision") == "refuse":
                seen["refused"] = status
                seen["bars"]["refused"] = bar
        if "refused" in seen and status["production_version"] == 1:
            seen["rolled_back"] = status
            seen["bars"]["rolled_back"] = bar
            break
    seen["versions"] = client.get("/models/versions").json()
    seen["events"] = [e.message for e in service.store.events("paper", limit=None)[::-1]]
    seen["audit"] = loop.registry.audit()
    loop.close()
    return seen


def test_the_first_production_is_the_model_trained_on_the_warm_up(
    scenario: dict[str, Any],
) -> None:
    start = scenario["start"]
    assert start["enabled"] is True and start["production_version"] == 1
    assert start["candidate_version"] is None
    (first,) = scenario["start_versions"]
    assert first["version"] == 1 and first["status"] == "production"
    assert first["aliases"] == ["production"]
    assert first["lineage"]["rows"] == WARMUP and first["lineage"]["data_hash"]


def test_a_retrained_candidate_that_beats_production_in_shadow_is_promoted(
    scenario: dict[str, Any],
) -> None:
    promoted = scenario["promoted"]
    verdict = promoted["last_verdict"]
    assert verdict["version"] == 2 and verdict["decision"] == "promote"
    numbers = verdict["numbers"]
    # judged on the same candles: the paired test and the deflated Sharpe both passed
    assert numbers["p_value"] < 0.05 / 4 and numbers["dsr"] >= 0.95
    assert numbers["candidate_log_return"] > numbers["production_log_return"]
    assert scenario["bars"]["promoted"] > 1_500  # after the scheduled retraining, in the trend
    assert any(e.startswith("candidate v2 registered") for e in scenario["events"])


def test_a_broken_candidate_is_refused_by_the_gates(scenario: dict[str, Any]) -> None:
    refused = scenario["refused"]
    verdict = refused["last_verdict"]
    assert verdict["version"] == scenario["broken"] and verdict["decision"] == "refuse"
    assert verdict["numbers"]["t_stat"] < 0  # significantly worse than production
    assert refused["production_version"] == 2
    statuses = {v["version"]: v["status"] for v in scenario["versions"]}
    assert statuses[scenario["broken"]] == "refused"


def test_a_production_whose_edge_vanishes_is_rolled_back(scenario: dict[str, Any]) -> None:
    rolled = scenario["rolled_back"]
    assert rolled["production_version"] == 1
    assert scenario["bars"]["rolled_back"] > TREND  # only once the trend is gone
    statuses = {v["version"]: v["status"] for v in scenario["versions"]}
    assert statuses[1] == "production" and statuses[2] == "rolled_back"
    rollback = next(e for e in scenario["events"] if e.startswith("production is now v1"))
    assert "degraded" in rollback and "CUSUM" in rollback


def test_every_promotion_refusal_and_rollback_is_audited_with_its_numbers(
    scenario: dict[str, Any],
) -> None:
    actions = [(event.action, event.version) for event in reversed(scenario["audit"])]
    promoted = actions.index(("promoted", 2))
    refused = actions.index(("refused", scenario["broken"]))
    rolled = actions.index(("rolled_back", 1))  # back to v1; the event's ``previous`` is v2
    assert promoted < refused < rolled
    by_action = {(e.action, e.version): e for e in scenario["audit"]}
    assert by_action[("rolled_back", 1)].previous == 2
    assert "CUSUM" in by_action[("rolled_back", 1)].reason
    assert by_action[("promoted", 2)].evidence["t_stat"] > 2
    assert by_action[("refused", scenario["broken"])].evidence["t_stat"] < 0


def test_shadow_decisions_are_recorded_apart_and_never_trade(scenario: dict[str, Any]) -> None:
    service = scenario["service"]
    shadow_runs = service.store.shadow_runs("paper")
    assert "paper:shadow:v2" in shadow_runs
    shadowed = service.store.decisions("paper:shadow:v2", limit=None)
    assert shadowed and all(d["shadow"] is True and d["model_version"] == 2 for d in shadowed)
    assert service.store.counts("paper:shadow:v2")["orders"] == 0

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

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from learning_drive import RUN, TREND, WARMUP, drive, make_service, outcome

from tradebrain.api import create_app
from tradebrain.learning.registry import BundleRegistry

DRIVER = Path(__file__).with_name("learning_drive.py")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Serve the tape to a little past the rollback; keep what the API showed on the way."""
    home = tmp_path_factory.mktemp("learning")
    service = make_service(home)
    client = TestClient(create_app(service, token=None, require_token=False))
    seen: dict[str, Any] = {"home": home, "service": service, "bars": {}}

    def observe(bar: int) -> None:
        status = client.get("/api/ai/learning_status").json()
        if "start" not in seen:
            seen["start"] = status
            seen["start_versions"] = client.get("/models/versions").json()
        if "promoted" not in seen and status["production_version"] == 2:
            seen["promoted"], seen["bars"]["promoted"] = status, bar
        verdict = status.get("last_verdict") or {}
        if "refused" not in seen and verdict.get("decision") == "refuse" and "promoted" in seen:
            seen["refused"], seen["bars"]["refused"] = status, bar
        if "rolled_back" not in seen and "refused" in seen and status["production_version"] == 1:
            seen["rolled_back"], seen["bars"]["rolled_back"] = status, bar

    seen["stop_bar"] = drive(service, observe=observe)
    seen["versions"] = client.get("/models/versions").json()
    seen["events"] = [e.message for e in service.store.events(RUN, limit=None)[::-1]]
    loop = service.runner.learning
    assert loop is not None
    seen["audit"] = loop.registry.audit()
    seen["broken"] = max(v.version for v in loop.registry.versions() if v.status == "refused"
                         and v.lineage.source.startswith("deliberately broken"))  # fmt: skip
    seen["outcome"] = outcome(service)
    loop.close()
    return seen


def test_the_first_production_is_the_model_trained_on_the_warm_up(
    scenario: dict[str, Any],
) -> None:
    start = scenario["start"]
    assert start["enabled"] is True and start["production_version"] == 1
    assert start["candidate_version"] is None
    first = scenario["start_versions"][-1]
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


def test_kill_9_during_retraining_promotion_and_rollback_loses_and_duplicates_nothing(
    scenario: dict[str, Any], tmp_path: Path
) -> None:
    """The same script, killed with SIGKILL three times and restarted each time, ends where
    the uninterrupted run ended: the same trades, the same registry, the same production."""
    home = tmp_path / "crashed"
    stop = str(scenario["stop_bar"])
    for crash_at in ("retraining", "promotion", "rollback"):
        code, log = _child(home, stop, crash_at, tmp_path)
        assert code == -signal.SIGKILL, f"{crash_at}: exit {code}\n{log[-3000:]}"
        # after each kill the registry is whole: no half-made change is left pending
        assert BundleRegistry(home).recover() is None
    code, log = _child(home, stop, "", tmp_path)
    assert code == 0, log[-3000:]
    service = make_service(home)
    service.runner.prepare()
    try:
        resumed = outcome(service)
    finally:
        assert service.runner.learning is not None
        service.runner.learning.close()
    expected = scenario["outcome"]
    assert resumed["counts"] == expected["counts"]  # one row per candle: none lost, none twice
    assert resumed["trades"] == expected["trades"]
    assert resumed["versions"] == expected["versions"]
    assert resumed["production"] == expected["production"] == 1
    production = BundleRegistry(home).production()
    assert production is not None and production.version == resumed["production"]


def _child(home: Path, stop: str, crash_at: str, folder: Path) -> tuple[int, str]:
    """Run the driver in a child process; return its exit code and its output.

    The output goes to a file, not a pipe: waiting on a pipe would also wait for any process
    the child left holding it."""
    log = folder / f"child-{crash_at or 'finish'}.log"
    environment = {**os.environ, "PYTHONPATH": str(DRIVER.parent)}
    with log.open("w") as output:
        child = subprocess.run(
            [sys.executable, str(DRIVER), str(home), stop, *([crash_at] if crash_at else [])],
            env=environment, stdout=output, stderr=subprocess.STDOUT, timeout=600, check=False,
        )  # fmt: skip
    return child.returncode, log.read_text()

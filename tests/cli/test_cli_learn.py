"""``tradebrain learn`` and ``tradebrain models``: retrain, reproduce, tune, export, promote."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tradebrain.cli import app
from tradebrain.data.synthetic import SyntheticConfig, generate_market, write_market
from tradebrain.state import CandleRecord, FillRecord, StateStore, Step

runner = CliRunner()  # stdout is not a terminal: lists print tab-separated rows
BARS, NEWEST = 1_500, 1_200  # v2 learns from the newest 1,200 candles only
SMALL_MODELS = {
    "TRADEBRAIN_MODELS__ENABLED": '["logistic"]',
    "TRADEBRAIN_FEATURES__SETS": '["atomic"]',
}


class Outcome:
    """Exit code, output with rich's line wrapping undone, and stdout as printed."""

    def __init__(self, *args: str) -> None:
        result = runner.invoke(app, list(args))
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())
        self.stdout = result.stdout


@dataclass(frozen=True)
class Registered:
    """A home whose registry holds v1 (production, seed 42) and v2 (candidate, seed 5)."""

    home: Path
    data: Path
    other: Path
    first: Outcome
    second: Outcome


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """Retrain twice on one synthetic market (training is the slow part: done once here)."""
    folder = tmp_path_factory.mktemp("learn")
    data, other = folder / "btc.parquet", folder / "other.parquet"
    write_market(generate_market(SyntheticConfig(bars=BARS, seed=3, signal=0.3)), data)
    write_market(generate_market(SyntheticConfig(bars=BARS, seed=4, signal=0.3)), other)
    home = folder / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.delenv("TRADEBRAIN_CONFIG", raising=False)
        patch.setenv("TRADEBRAIN_HOME", str(home))
        for name, value in SMALL_MODELS.items():
            patch.setenv(name, value)
        first = Outcome("learn", "retrain", "--data", str(data), "--symbol", "BTC/USDT")
        patch.setenv("TRADEBRAIN_LEARNING__MAX_TRAIN_BARS", str(NEWEST))
        second = Outcome(
            "learn", "retrain", "--data", str(data), "--symbol", "BTC/USDT", "--seed", "5"
        )
    return Registered(home, data, other, first, second)


@pytest.fixture(autouse=True)
def _small_models(cli_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SMALL_MODELS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def home(registered: Registered, cli_home: Path) -> Path:
    """A copy of the registered home as this test's home (its changes stay here)."""
    shutil.copytree(registered.home, cli_home)
    return cli_home


def versions() -> list[dict[str, Any]]:
    listed = Outcome("models", "versions", "--json")
    assert listed.exit_code == 0, listed.output
    rows: list[dict[str, Any]] = json.loads(listed.stdout)
    return rows


def test_retrain_registers_the_first_version_as_production_and_the_next_as_candidate(
    registered: Registered,
) -> None:
    assert registered.first.exit_code == 0, registered.first.output
    assert "registered v1 (production) BTC/USDT 1h: 1,500 candles" in registered.first.output
    assert registered.second.exit_code == 0, registered.second.output
    # learning.max_train_bars keeps the newest candles: 2024-01-01 + 300 hours
    assert "registered v2 (candidate) BTC/USDT 1h: 1,200 candles 2024-01-13 12:00" in (
        registered.second.output
    )
    assert "tradebrain models promote 2 --reason TEXT" in registered.second.output


def test_versions_lists_both_newest_first_piped_and_as_json(home: Path) -> None:
    piped = Outcome("models", "versions")
    assert piped.exit_code == 0, piped.output
    header, newest, oldest = piped.stdout.splitlines()
    assert header.split("\t")[:4] == ["version", "status", "aliases", "created"]
    assert newest.split("\t")[:3] == ["2", "candidate", "candidate"]
    assert oldest.split("\t")[:3] == ["1", "production", "production"]
    rows = versions()
    assert [(r["version"], r["rows"], r["seed"], r["parent"]) for r in rows] == [
        (2, NEWEST, 5, 1),
        (1, BARS, 42, None),
    ]
    assert rows[0]["data_start"] == "2024-01-13T12:00:00+00:00"
    assert len(rows[0]["data_hash"]) == 64 and rows[0]["source"].endswith("btc.parquet")
    assert "train_seconds" in rows[0]["metrics"]


def test_promote_then_rollback_move_production_and_are_audited(home: Path) -> None:
    promoted = Outcome("models", "promote", "v2", "--reason", "beat v1 in shadow")
    assert promoted.exit_code == 0, promoted.output
    assert "promoted v2 to production (was v1, now archived)" in promoted.output
    assert {r["version"]: r["status"] for r in versions()} == {2: "production", 1: "archived"}
    rolled = Outcome("models", "rollback", "--reason", "degraded after promotion")
    assert rolled.exit_code == 0, rolled.output
    assert "rolled back production from v2 to v1" in rolled.output
    assert {r["version"]: r["status"] for r in versions()} == {1: "production", 2: "rolled_back"}
    audit = Outcome("models", "audit", "--json", "--limit", "2")
    events = json.loads(audit.stdout)
    assert [(e["action"], e["version"], e["previous"]) for e in events] == [
        ("rolled_back", 1, 2),
        ("promoted", 2, 1),
    ]
    assert events[0]["reason"] == "degraded after promotion"
    assert events[1]["evidence"]["via"] == "tradebrain cli"
    piped = Outcome("models", "audit")
    assert (
        len(piped.stdout.splitlines()) == 1 + 5
    )  # header; 2 registrations, 2 promotions, 1 rollback


def test_rollback_with_no_earlier_production_exits_1_and_names_the_fix(home: Path) -> None:
    rolled = Outcome("models", "rollback", "--reason", "no reason to stay")
    assert rolled.exit_code == 1
    assert "cannot roll back: version 1 is in production" in rolled.output
    assert "tradebrain models promote VERSION --reason TEXT" in rolled.output
    assert {r["version"]: r["status"] for r in versions()} == {2: "candidate", 1: "production"}


def test_retrain_fans_out_over_several_files_and_registers_each(
    registered: Registered, cli_home: Path
) -> None:
    data = ["--data", str(registered.data), "--data", str(registered.other)]
    mismatched = Outcome("learn", "retrain", *data, "--symbol", "BTC/USDT")
    assert mismatched.exit_code == 1
    assert "1 --symbol for 2 --data; give one --symbol per --data" in mismatched.output
    trained = Outcome("learn", "retrain", *data, "--executor", "serial")
    assert trained.exit_code == 0, trained.output
    assert "registered v1 (production) btc 1h" in trained.output
    assert "registered v2 (candidate) other 1h" in trained.output
    assert [(r["symbol"], r["source"]) for r in versions()] == [
        ("other", str(registered.other)),
        ("btc", str(registered.data)),
    ]
    assert not list((cli_home / "learning").iterdir())  # the training files are gone


def test_reproduce_on_the_same_data_gives_identical_predictions(
    registered: Registered, home: Path
) -> None:
    reproduced = Outcome("learn", "reproduce", "2", "--data", str(registered.data))
    assert reproduced.exit_code == 0, reproduced.output
    assert "retrained v2 on 1,200 candles 2024-01-13 12:00" in reproduced.output
    assert "(seed 5)" in reproduced.output
    assert "identical predictions" in reproduced.output


def test_reproduce_refuses_other_data(registered: Registered, home: Path) -> None:
    reproduced = Outcome("learn", "reproduce", "2", "--data", str(registered.other))
    assert reproduced.exit_code == 1
    assert "is not the data v2 learned from" in reproduced.output
    assert "pass the same candles" in reproduced.output
    assert "retrained" not in reproduced.output


def test_status_shows_production_candidate_and_the_registrys_last_changes(home: Path) -> None:
    shown = Outcome("learn", "status")
    assert shown.exit_code == 0, shown.output
    assert "production: v1 (production) BTC/USDT 1h, 1,500 candles" in shown.output
    assert "candidate: v2 (candidate) BTC/USDT 1h, 1,200 candles" in shown.output
    assert "registered v2" in shown.output and "trials in the ledger: 0" in shown.output
    report = json.loads(Outcome("learn", "status", "--json").stdout)
    assert (report["production"]["version"], report["candidate"]["version"]) == (1, 2)
    assert [e["action"] for e in report["audit"]] == ["registered", "promoted", "registered"]


def test_an_empty_home_has_nothing_recorded_and_no_registry_is_made(cli_home: Path) -> None:
    status = Outcome("learn", "status")
    assert status.exit_code == 0, status.output
    assert "nothing recorded yet" in status.output
    report = json.loads(Outcome("learn", "status", "--json").stdout)
    assert report["production"] is None and report["trials"] == 0
    assert set(report["experience"].values()) == {0}
    exported = Outcome("learn", "export")
    assert exported.exit_code == 0, exported.output
    assert "nothing recorded yet: no state store at" in exported.output
    named = Outcome("learn", "export", "--state", "elsewhere.db")
    assert named.exit_code == 1 and "--state elsewhere.db: no such file" in named.output
    assert "no model registered yet" in Outcome("models", "versions").output
    assert "nothing in the audit trail" in Outcome("models", "audit").output
    rolled = Outcome("models", "rollback", "--reason", "why not")
    assert rolled.exit_code == 1 and "no model is registered yet" in rolled.output
    assert not (cli_home / "mlflow.db").exists()


def test_a_version_that_is_not_a_number_is_refused() -> None:
    promoted = Outcome("models", "promote", "latest", "--reason", "x")
    assert promoted.exit_code == 1
    assert "'latest' is not a version number" in promoted.output


def test_export_copies_a_service_run_to_the_experience_log_once(cli_home: Path) -> None:
    start, hour = datetime(2024, 1, 1, tzinfo=UTC), timedelta(hours=1)
    with StateStore.for_path(cli_home / "serve" / "paper.db") as store:
        for i in range(3):
            at, price = start + i * hour, 100.0 + i
            decision = {"timestamp": at.isoformat(), "symbol": "BTC/USDT", "action": "buy"}
            fill = FillRecord(
                f"fill-{i}", f"order-{i}", "BTC/USDT", "buy", 0.5, price, 0.05, "taker",
                "entry", at + hour,
            )  # fmt: skip
            candle = CandleRecord("BTC/USDT", "1h", at, price, price + 2, price - 1, price, 1.0)
            store.record_step(
                Step("paper", "BTC/USDT", "1h", candle, decision=decision, fills=[fill])
            )
    exported = Outcome("learn", "export")
    assert exported.exit_code == 0, exported.output
    assert "3 new decisions, 0 new orders, 3 new fills, 0 new trades" in exported.output
    assert "read_parquet(" in exported.output and "/fills/date=*/*.parquet" in exported.output
    again = Outcome("learn", "export", "--state", str(cli_home / "serve" / "paper.db"))
    assert "0 new decisions, 0 new orders, 0 new fills" in again.output
    status = Outcome("learn", "status")
    assert "experience log: 3 decisions, 0 orders, 3 fills, 0 trades" in status.output


def test_tune_with_two_trials_prints_the_best_settings_and_the_ledger_count(
    registered: Registered, cli_home: Path
) -> None:
    tuned = Outcome("learn", "tune", "--data", str(registered.data), "--trials", "2")
    assert tuned.exit_code == 0, tuned.output
    assert "study 'tradebrain': 2 finished trial(s), 2 new" in tuned.output
    assert "brain.entry_cost_multiple =" in tuned.output
    assert "trials in the ledger (what the deflated Sharpe counts): 2" in tuned.output
    assert "TRADEBRAIN_BRAIN__ENTRY_COST_MULTIPLE=" in tuned.output
    assert len((cli_home / "trials.jsonl").read_text().splitlines()) == 2
    assert (cli_home / "optuna.db").is_file()


def test_train_evaluate_and_backtest_log_their_runs_to_mlflow_when_tracking_is_on(
    registered: Registered, cli_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tradebrain.learning.registry import BundleRegistry

    monkeypatch.setenv("TRADEBRAIN_LEARNING__TRACK_RUNS", "true")
    data = str(registered.data)
    trained = Outcome("train", "--data", data, "--out", str(tmp_path / "models"))
    backtested = Outcome("backtest", "--data", data, "--json", str(tmp_path / "bt.json"))
    assert trained.exit_code == 0 and backtested.exit_code == 0, trained.output
    assert "tracked the train run in MLflow" in trained.output
    assert "tracked the backtest run in MLflow" in backtested.output
    import mlflow

    client = mlflow.MlflowClient(BundleRegistry(cli_home).tracking_uri)
    for kind, metric in (("train", "rows"), ("backtest", "total_return")):
        experiment = client.get_experiment_by_name(f"tradebrain-{kind}")
        assert experiment is not None
        (run,) = client.search_runs([experiment.experiment_id])
        assert metric in run.data.metrics and run.data.params


def test_commands_log_nothing_to_mlflow_when_tracking_is_off(
    registered: Registered, cli_home: Path, tmp_path: Path
) -> None:
    trained = Outcome("train", "--data", str(registered.data), "--out", str(tmp_path / "m"))
    assert trained.exit_code == 0 and "tracked" not in trained.output
    assert not (cli_home / "mlflow.db").exists()

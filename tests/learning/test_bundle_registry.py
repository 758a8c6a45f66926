"""The bundle registry on a real MLflow store: lineage, promotions, audit and crash recovery."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from tradebrain import __version__
from tradebrain.config import Settings
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.evaluation.walk_forward import EvaluationSettings
from tradebrain.exceptions import ConfigError, NotFoundError, StoreError, UserInputError
from tradebrain.features import compute_features
from tradebrain.learning.bundle_training import train_bundle
from tradebrain.learning.registry import (
    CANDIDATE,
    PRODUCTION,
    REGISTERED_MODEL,
    AuditEvent,
    BundleRegistry,
    Lineage,
    code_version,
    frame_hash,
    public_settings,
)
from tradebrain.models.bundle import ModelBundle

EVIDENCE = {"sharpe_gain": 0.42, "t_stat": 2.7, "bars": 812, "gate": "shadow", "note": None}


@dataclass(frozen=True)
class Trained:
    """One small bundle, saved, with the candles and features it was trained on."""

    candles: pl.DataFrame
    features: pl.DataFrame
    folder: Path


class SimulatedCrashError(Exception):
    """Raised by a patched MLflow call: the process 'dies' at that step."""


@pytest.fixture(autouse=True)
def _no_mlflow_noise(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """MLflow stays quiet: no INFO lines or progress bars from the registry."""
    yield
    out, err = capfd.readouterr()
    assert " INFO " not in out + err and "Downloading artifacts" not in out + err, out + err


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    candles = generate_market(SyntheticConfig(bars=1_200, seed=3, signal=0.3)).candles
    features = compute_features(candles, ["atomic"])
    settings = EvaluationSettings(models=("logistic",), window=4)
    bundle = train_bundle(candles, features, settings, feature_sets=["atomic"], source="test")
    return Trained(candles, features, bundle.save(tmp_path_factory.mktemp("bundle")))


def make_lineage(candles: pl.DataFrame, *, seed: int = 7, parent: int | None = None) -> Lineage:
    return Lineage(
        symbol="BTC/USDT",
        timeframe="1h",
        source="synthetic",
        data_start=candles["timestamp"][0].isoformat(),
        data_end=candles["timestamp"][-1].isoformat(),
        data_hash=frame_hash(candles),
        rows=candles.height,
        feature_sets=("atomic",),
        settings=public_settings(Settings().model_dump(mode="json")),
        seed=seed,
        code_version=code_version(),
        parent=parent,
    )


@pytest.fixture(scope="module")
def blank_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty embedded store made by a registry; copying it spares each home the seconds
    MLflow spends creating its tables."""
    home = tmp_path_factory.mktemp("blank")
    BundleRegistry(home).recover()
    return home / "mlflow.db"


def new_home(folder: Path, blank_store: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(blank_store, folder / "mlflow.db")
    return folder


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, trained: Trained, blank_store: Path
) -> BundleRegistry:
    """A registry holding v1 (the first, so production) and v2 (a candidate, child of v1).

    Tests using it only read, or fail before writing anything.
    """
    registry = BundleRegistry(new_home(tmp_path_factory.mktemp("pair") / "home", blank_store))
    registry.register(trained.folder, make_lineage(trained.candles, seed=1), {"log_loss": 1.05})
    lineage = make_lineage(trained.candles, seed=2, parent=1)
    registry.register(trained.folder, lineage, {"log_loss": 1.01, "hit_rate": 0.53})
    return registry


@pytest.fixture
def fresh(tmp_path: Path, trained: Trained, blank_store: Path) -> BundleRegistry:
    """A registry of its own: v1 in production and v2 a candidate."""
    registry = BundleRegistry(new_home(tmp_path / "home", blank_store))
    registry.register(trained.folder, make_lineage(trained.candles, seed=1), {"log_loss": 1.05})
    registry.register(trained.folder, make_lineage(trained.candles, seed=2), {"log_loss": 1.0})
    return registry


# -- lineage and hashes (no MLflow) --------------------------------------------------------


def test_importing_the_registry_does_not_import_mlflow() -> None:
    script = (
        "import sys\n"
        "import tradebrain.learning.registry\n"
        "assert 'mlflow' not in sys.modules, 'mlflow imported with the registry module'\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_a_lineage_round_trips_through_its_tags_even_with_settings_longer_than_a_tag() -> None:
    lineage = Lineage(
        symbol="ETH/USDT", timeframe="5m", source="binance", data_start="2024-01-01T00:00:00",
        data_end="2024-02-01T00:00:00", data_hash="ab" * 32, rows=8_928,
        feature_sets=("atomic", "momentum"), settings={"models": {"names": ["x" * 50] * 400}},
        seed=11, code_version="0.1.0+gabc", parent=4,
    )  # fmt: skip
    tags = lineage.to_tags()
    assert all(key.startswith("lineage.") and isinstance(v, str) for key, v in tags.items())
    assert "lineage.settings.1" in tags and all(len(v) <= 8_000 for v in tags.values())
    assert Lineage.from_tags({**tags, "mlflow.runName": "x"}) == lineage
    assert Lineage.from_tags(replace(lineage, parent=None).to_tags()).parent is None


def test_tags_without_the_lineage_are_a_store_error_naming_the_missing_tags() -> None:
    with pytest.raises(StoreError, match=r"lineage\.data_hash"):
        Lineage.from_tags({"lineage.symbol": "BTC/USDT"})


def test_the_same_candles_hash_the_same_however_chunked_and_a_changed_price_does_not() -> None:
    candles = generate_market(SyntheticConfig(bars=300, seed=1)).candles
    chunked = pl.concat([candles.head(100), candles.tail(200)], rechunk=False)
    assert frame_hash(chunked) == frame_hash(candles) == frame_hash(candles.clone())
    changed = candles.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(1.0).otherwise(pl.col("close")).alias("close")
    )
    assert frame_hash(changed) != frame_hash(candles)
    assert frame_hash(candles.tail(200)) != frame_hash(candles)


def test_the_code_version_is_the_package_version_plus_the_commit_when_checked_out() -> None:
    version = code_version()
    assert version.startswith(__version__)
    if (Path(__file__).resolve().parents[2] / ".git").exists():
        assert version[len(__version__) :].startswith("+g")


def test_public_settings_drop_every_secret_at_any_depth() -> None:
    settings = {"api": {"token": "s3cret", "port": 8080}, "exchange": [{"api_key": "k"}]}
    assert public_settings(settings) == {"api": {"port": 8080}, "exchange": [{}]}


# -- registering and reading ---------------------------------------------------------------


def test_the_first_bundle_goes_to_production_because_there_is_no_incumbent(
    pair: BundleRegistry,
) -> None:
    first = pair.get(1)
    assert first is not None and first.status == PRODUCTION and first.aliases == (PRODUCTION,)
    events = [e for e in pair.audit() if e.version == 1]
    assert [e.action for e in events] == ["promoted", "registered"]
    assert events[0].reason == "first production: no incumbent" and events[0].previous is None


def test_a_later_bundle_is_a_candidate_and_leaves_production_alone(pair: BundleRegistry) -> None:
    second = pair.candidate()
    assert second is not None and second.version == 2 and second.status == CANDIDATE
    assert second.aliases == (CANDIDATE,)
    production = pair.production()
    assert production is not None and production.version == 1
    assert [v.version for v in pair.versions()] == [2, 1]


def test_a_registered_version_keeps_its_lineage_metrics_and_params(
    pair: BundleRegistry, trained: Trained
) -> None:
    second = pair.get("2")
    assert second is not None
    assert second.lineage == make_lineage(trained.candles, seed=2, parent=1)
    assert second.metrics == {"log_loss": 1.01, "hit_rate": 0.53}
    assert second.created_at.tzinfo is not None
    from mlflow import MlflowClient

    run = MlflowClient(pair.tracking_uri).get_run(second.run_id)
    assert run.data.params["seed"] == "2"
    assert run.data.params["risk.risk_per_trade"] == str(Settings().risk.risk_per_trade)
    assert "api.token" not in run.data.params


def test_an_unknown_version_or_alias_is_none(pair: BundleRegistry) -> None:
    assert pair.get(99) is None
    assert pair.get("shadow") is None


def test_a_loaded_version_predicts_exactly_what_the_saved_bundle_predicts(
    pair: BundleRegistry, trained: Trained
) -> None:
    rows = trained.features.tail(200)
    saved = ModelBundle.load(trained.folder).predict_proba(rows)
    loaded = pair.load(1).predict_proba(rows)
    assert saved.keys() == loaded.keys() == {"logistic"}
    for name in saved:
        assert np.array_equal(saved[name], loaded[name], equal_nan=True)


def test_a_bundle_is_downloaded_once_atomically_and_reused(
    pair: BundleRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    cache = pair.home / "registry_cache"
    real_download = MlflowClient.download_artifacts

    def dies_halfway(self: Any, run_id: str, path: str, dst_path: str | None = None) -> str:
        half = Path(str(dst_path)) / path
        half.mkdir(parents=True)
        (half / "manifest.json").write_text("{")
        raise SimulatedCrashError("network dropped mid-download")

    monkeypatch.setattr(MlflowClient, "download_artifacts", dies_halfway)
    with pytest.raises(SimulatedCrashError):
        pair.bundle_dir(2)
    assert not (cache / "v2").exists() and list(cache.iterdir()) in ([], [cache / "v1"])

    monkeypatch.setattr(MlflowClient, "download_artifacts", real_download)
    folder = pair.bundle_dir(2)
    assert folder == cache / "v2" and (folder / "manifest.json").is_file()
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]

    def must_not_download(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("the cached bundle should have been reused")

    monkeypatch.setattr(MlflowClient, "download_artifacts", must_not_download)
    assert pair.bundle_dir(2) == folder
    assert isinstance(pair.load(2), ModelBundle)


def test_a_downloaded_bundle_that_differs_from_the_registered_one_is_refused(
    pair: BundleRegistry, trained: Trained, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    reader = BundleRegistry(tmp_path, pair.tracking_uri)  # the same store, an empty cache
    real_download = MlflowClient.download_artifacts

    def tampered(self: Any, run_id: str, path: str, dst_path: str | None = None) -> str:
        folder = Path(real_download(self, run_id, path, dst_path))
        (folder / "manifest.json").write_text("{}")
        return str(folder)

    monkeypatch.setattr(MlflowClient, "download_artifacts", tampered)
    with pytest.raises(StoreError, match="not the one registered"):
        reader.bundle_dir(1)


def test_a_second_registry_on_the_same_home_sees_the_same_state(pair: BundleRegistry) -> None:
    other = BundleRegistry(pair.home)
    assert other.versions() == pair.versions()
    assert other.audit() == pair.audit()
    assert other.recover() is None


def test_register_refuses_a_folder_without_a_bundle_the_production_alias_and_bad_metrics(
    pair: BundleRegistry, trained: Trained, tmp_path: Path
) -> None:
    lineage = make_lineage(trained.candles)
    with pytest.raises(UserInputError, match="not a saved bundle"):
        pair.register(tmp_path, lineage, {})
    with pytest.raises(UserInputError, match="promote"):
        pair.register(trained.folder, lineage, {}, alias=PRODUCTION)
    with pytest.raises(UserInputError, match="alias 'v3' is not allowed"):
        pair.register(trained.folder, lineage, {}, alias="v3")
    with pytest.raises(UserInputError, match="must be a number"):
        pair.register(trained.folder, lineage, {"log_loss": "low"})  # type: ignore[dict-item]
    with pytest.raises(NotFoundError, match="registered: \\[1, 2\\]"):
        pair.register(trained.folder, replace(lineage, parent=42), {})
    assert [v.version for v in pair.versions()] == [2, 1]


def test_a_plain_run_is_tracked_in_its_own_experiment(pair: BundleRegistry) -> None:
    run_id = pair.log_run(
        "evaluate",
        params={"label": {"kind": "direction", "horizon": 12}, "models": ["logistic"]},
        metrics={"sharpe": 1.3},
        tags={"symbol": "BTC/USDT"},
    )
    from mlflow import MlflowClient

    client = MlflowClient(pair.tracking_uri)
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "tradebrain-evaluate"
    assert run.data.params == {"label.kind": "direction", "label.horizon": "12",
                               "models": '["logistic"]'}  # fmt: skip
    assert run.data.metrics == {"sharpe": 1.3} and run.data.tags["symbol"] == "BTC/USDT"
    with pytest.raises(UserInputError, match="run kind"):
        pair.log_run("Back Test!", params={}, metrics={})


# -- promoting, refusing, rolling back ----------------------------------------------------


def test_promoting_archives_the_former_production_and_clears_the_candidate_alias(
    fresh: BundleRegistry,
) -> None:
    event = fresh.promote(2, reason="beat production in shadow", evidence=EVIDENCE)
    assert (event.action, event.version, event.previous) == ("promoted", 2, 1)
    assert event.evidence == EVIDENCE
    statuses = {v.version: (v.status, v.aliases) for v in fresh.versions()}
    assert statuses == {2: (PRODUCTION, (PRODUCTION,)), 1: ("archived", ())}
    assert fresh.candidate() is None
    with pytest.raises(UserInputError, match="already in production"):
        fresh.promote(2, reason="again", evidence={})
    with pytest.raises(NotFoundError, match="version 9"):
        fresh.promote(9, reason="no such", evidence={})


def test_refusing_a_candidate_marks_it_and_production_cannot_be_refused(
    fresh: BundleRegistry,
) -> None:
    event = fresh.refuse(2, reason="worse than production", evidence={"p_value": 0.4})
    assert (event.action, event.version, event.previous) == ("refused", 2, 1)
    refused = fresh.get(2)
    assert refused is not None and refused.status == "refused" and refused.aliases == ()
    assert fresh.candidate() is None
    with pytest.raises(UserInputError, match="in production and cannot be refused"):
        fresh.refuse(1, reason="no", evidence={})
    with pytest.raises(UserInputError, match="evidence 'curve'"):
        fresh.refuse(2, reason="no", evidence={"curve": [1.0, 2.0]})
    with pytest.raises(UserInputError, match="reason is required"):
        fresh.refuse(2, reason=" ", evidence={})


def test_rollback_restores_each_earlier_production_then_refuses_when_none_is_left(
    fresh: BundleRegistry, trained: Trained
) -> None:
    fresh.register(trained.folder, make_lineage(trained.candles, seed=3), {})
    fresh.register(trained.folder, make_lineage(trained.candles, seed=4), {})
    fresh.promote(2, reason="better", evidence={})
    fresh.refuse(3, reason="worse", evidence={})
    fresh.promote(4, reason="better still", evidence={})

    event = fresh.rollback(reason="after-cost returns degraded", evidence={"cusum": 5.1})
    assert (event.action, event.version, event.previous) == ("rolled_back", 2, 4)
    statuses = {v.version: v.status for v in fresh.versions()}
    assert statuses == {4: "rolled_back", 3: "refused", 2: PRODUCTION, 1: "archived"}

    again = fresh.rollback(reason="still degraded", evidence={})
    assert (again.version, again.previous) == (1, 2)
    production = fresh.production()
    assert production is not None and production.version == 1
    with pytest.raises(UserInputError, match="no earlier production is left"):
        fresh.rollback(reason="degraded", evidence={})


def test_rollback_with_a_single_production_ever_is_refused(pair: BundleRegistry) -> None:
    with pytest.raises(UserInputError, match="cannot roll back: version 1"):
        pair.rollback(reason="degraded", evidence={})


def test_the_audit_lists_every_change_newest_first_with_its_evidence(
    fresh: BundleRegistry,
) -> None:
    fresh.promote(2, reason="beat production", evidence=EVIDENCE)
    fresh.rollback(reason="degraded", evidence={"cusum": 4.5, "monitor": "cusum"})
    events = fresh.audit()
    assert [(e.action, e.version) for e in events] == [
        ("rolled_back", 1), ("promoted", 2), ("registered", 2),
        ("promoted", 1), ("registered", 1),
    ]  # fmt: skip
    assert [e.at for e in events] == sorted((e.at for e in events), reverse=True)
    assert events[1].evidence == EVIDENCE and events[1].reason == "beat production"
    assert events[0].evidence == {"cusum": 4.5, "monitor": "cusum"}
    assert fresh.audit(limit=2) == events[:2]


# -- crash safety --------------------------------------------------------------------------


def test_a_pending_change_that_cannot_be_completed_stops_changes_with_what_to_do(
    fresh: BundleRegistry,
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(fresh.tracking_uri)
    client.set_registered_model_tag(REGISTERED_MODEL, "pending", "{half a record")
    with pytest.raises(StoreError, match=r"unreadable.*delete the registered-model tag"):
        BundleRegistry(fresh.home).promote(2, reason="better", evidence={})
    intent = {
        "id": "x",
        "action": "promoted",
        "version": 9,
        "previous": 1,
        "reason": "r",
        "evidence": {},
        "at": "2024-01-01T00:00+00:00",
        "extra": {"promotion": 2},
    }
    client.set_registered_model_tag(REGISTERED_MODEL, "pending", json.dumps(intent))
    with pytest.raises(StoreError, match=r"'promoted' change of version 9 .* cannot be completed"):
        fresh.recover()
    production = BundleRegistry(fresh.home).production()  # reading still works
    assert production is not None and production.version == 1


@pytest.fixture(scope="module")
def crashing(
    tmp_path_factory: pytest.TempPathFactory, trained: Trained, blank_store: Path
) -> BundleRegistry:
    home = new_home(tmp_path_factory.mktemp("crashing") / "home", blank_store)
    registry = BundleRegistry(home)
    registry.register(trained.folder, make_lineage(trained.candles), {"log_loss": 1.0})
    return registry


@pytest.mark.parametrize(
    "dies_in",
    [
        "set_model_version_tag",  # before any alias moved
        "set_registered_model_alias",  # status tag written, alias not moved
        "create_run",  # changes done, no audit run yet
        "set_terminated",  # audit run written but unfinished
        "delete_registered_model_tag",  # everything done but the intent not cleared
    ],
)
def test_a_promotion_killed_midway_is_completed_by_the_next_registry_with_one_audit_event(
    crashing: BundleRegistry, trained: Trained, monkeypatch: pytest.MonkeyPatch, dies_in: str
) -> None:
    from mlflow import MlflowClient

    incumbent = crashing.production()
    assert incumbent is not None
    version = crashing.register(trained.folder, make_lineage(trained.candles), {}).version

    def crash(*args: Any, **kwargs: Any) -> None:
        raise SimulatedCrashError(f"killed in {dies_in}")

    monkeypatch.setattr(MlflowClient, dies_in, crash)
    with pytest.raises(SimulatedCrashError):
        crashing.promote(version, reason="beat production", evidence=EVIDENCE)
    monkeypatch.undo()
    pending = (
        MlflowClient(crashing.tracking_uri).get_registered_model(REGISTERED_MODEL).tags["pending"]
    )
    assert json.loads(pending)["action"] == "promoted"  # the intent outlived the crash

    restarted = BundleRegistry(crashing.home)
    event = restarted.recover()
    assert event is not None and (event.action, event.version) == ("promoted", version)
    assert (event.previous, event.evidence) == (incumbent.version, EVIDENCE)
    assert restarted.recover() is None
    production = restarted.production()
    assert production is not None and production.version == version
    former = restarted.get(incumbent.version)
    assert former is not None and former.status == "archived"
    assert restarted.candidate() is None
    promotions = [e for e in restarted.audit() if e.action == "promoted" and e.version == version]
    assert promotions == [event]


_KILLED_REGISTRATION = """
import json, os, signal, sys
from pathlib import Path
from mlflow import MlflowClient
from tradebrain.learning.registry import BundleRegistry, Lineage

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

MlflowClient.set_registered_model_alias = die
lineage = Lineage(**{**json.loads(sys.argv[3]), "feature_sets": ("atomic",)})
BundleRegistry(Path(sys.argv[1])).register(Path(sys.argv[2]), lineage, {"log_loss": 1.0})
"""


def test_a_first_registration_killed_with_sigkill_is_completed_on_restart(
    tmp_path: Path, trained: Trained, blank_store: Path
) -> None:
    lineage = make_lineage(trained.candles)
    fields = asdict(lineage)
    home = new_home(tmp_path / "home", blank_store)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_REGISTRATION, str(home), str(trained.folder),
         json.dumps(fields)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    restarted = BundleRegistry(home)
    event = restarted.recover()
    assert isinstance(event, AuditEvent)
    assert (event.action, event.version, event.reason) == (
        "promoted", 1, "first production: no incumbent"
    )  # fmt: skip
    production = restarted.production()
    assert production is not None and production.version == 1 and production.lineage == lineage
    assert [(e.action, e.version) for e in restarted.audit()] == [
        ("promoted", 1), ("registered", 1)
    ]  # fmt: skip
    assert [v.version for v in restarted.versions()] == [1]


# -- where the store is --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_uri_that_is_not_an_mlflow_store_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an MLflow store URI"):
        BundleRegistry(tmp_path, "ftp://models.example/registry")
    with pytest.raises(ConfigError, match="registered model name"):
        BundleRegistry(tmp_path, name="no/slashes")


def test_an_unreachable_tracking_server_fails_fast_saying_how_to_fix_it(
    tmp_path: Path, loopback_only: None
) -> None:
    registry = BundleRegistry(tmp_path, f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(StoreError, match="cannot reach the MLflow tracking server"):
        registry.production()


def test_a_store_that_cannot_be_opened_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    registry = BundleRegistry(tmp_path, f"sqlite:///{tmp_path}/afile/mlflow.db")
    with pytest.raises(StoreError, match="cannot be used"):
        registry.versions()


def test_the_embedded_store_lives_in_home(pair: BundleRegistry) -> None:
    assert pair.tracking_uri == f"sqlite:///{(pair.home / 'mlflow.db').resolve()}"
    assert (pair.home / "mlflow.db").is_file() and (pair.home / "mlartifacts").is_dir()
    assert pair.name == REGISTERED_MODEL

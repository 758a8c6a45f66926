"""A bundle's RL agent travels with it through the registry, checked by the bundle's hash."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from builders import sizing_table, small_bundle

from tradebrain.config import Settings
from tradebrain.exceptions import StoreError
from tradebrain.learning.registry import (
    BundleRegistry,
    Lineage,
    code_version,
    frame_hash,
    public_settings,
)
from tradebrain.models.bundle import ModelBundle
from tradebrain.rl.agents import WEIGHTS_FILE, QTableSizer
from tradebrain.rl.saved import AGENT_FOLDER, bundle_agent, save_in_bundle
from tradebrain.strategies.agent_port import REGIMES, AgentView

BUNDLE_SHA = "bundle_sha256"


@dataclass(frozen=True)
class Registered:
    """A registry holding v1 (a bundle with an agent) and v2 (the same bundle without)."""

    registry: BundleRegistry
    agent: QTableSizer
    candles: pl.DataFrame


def views() -> list[AgentView]:
    return [
        AgentView(0.8, 0.0, edge, 0.7, drawdown, regime, True)
        for regime in range(len(REGIMES))
        for edge in (0.5, 1.5, 3.0, 6.0)
        for drawdown in (0.0, 0.03, 0.08, 0.2)
    ]


def lineage(candles: pl.DataFrame) -> Lineage:
    return Lineage(
        symbol="BTC/USDT", timeframe="1h", source="synthetic",
        data_start=candles["timestamp"][0].isoformat(),
        data_end=candles["timestamp"][-1].isoformat(), data_hash=frame_hash(candles),
        rows=candles.height, feature_sets=("atomic",),
        settings=public_settings(Settings().model_dump(mode="json")), seed=7,
        code_version=code_version(), parent=None,
    )  # fmt: skip


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    candles, bundle = small_bundle()
    root = tmp_path_factory.mktemp("registered")
    plain = bundle.save(root / "plain")
    with_agent = Path(shutil.copytree(plain, root / "with_agent"))
    agent = sizing_table(root / "agent")
    save_in_bundle(agent, with_agent)
    registry = BundleRegistry(root / "home")
    registry.register(with_agent, lineage(candles), {})
    registry.register(plain, lineage(candles), {})
    return Registered(registry, agent, candles)


def test_the_table_used_here_answers_both_ways(tmp_path: Path) -> None:
    answers = {sizing_table(tmp_path).adjust(view) for view in views()}
    assert answers == {0.5, 1.5}


def test_a_registered_bundle_gives_back_its_agent_from_the_registry(
    registered: Registered,
) -> None:
    folder = registered.registry.bundle_dir(1)
    assert folder.parent.name == "registry_cache"  # the downloaded copy, not the saved folder
    agent = bundle_agent(folder)
    assert isinstance(agent, QTableSizer)
    assert [agent.adjust(v) for v in views()] == [registered.agent.adjust(v) for v in views()]
    assert set(ModelBundle.load(folder).models) == {"logistic"}


def test_a_registered_bundle_without_an_agent_gives_back_none(registered: Registered) -> None:
    assert bundle_agent(registered.registry.bundle_dir(2)) is None


def test_the_bundles_hash_covers_its_agent(registered: Registered) -> None:
    one, two = registered.registry.get(1), registered.registry.get(2)
    assert one is not None and two is not None
    assert one.tags[BUNDLE_SHA] != two.tags[BUNDLE_SHA]  # the same models; only the agent


def test_a_bundle_whose_agent_was_changed_in_the_store_is_refused(
    registered: Registered, tmp_path: Path
) -> None:
    registry = registered.registry
    stored = [
        path
        for path in (registry.home / "mlartifacts").rglob(WEIGHTS_FILE)
        if path.parent.name == AGENT_FOLDER
    ]
    assert len(stored) == 1
    sizing_table(tmp_path / "other", large=0.5, small=1.5)
    shutil.copyfile(stored[0], tmp_path / "registered_weights")
    shutil.copyfile(tmp_path / "other" / WEIGHTS_FILE, stored[0])
    try:
        reader = BundleRegistry(tmp_path / "reader", registry.tracking_uri)  # an empty cache
        with pytest.raises(StoreError, match="not the one registered"):
            reader.bundle_dir(1)
    finally:  # the other tests read the store as it was registered
        shutil.copyfile(tmp_path / "registered_weights", stored[0])

"""The service trades with the bundle's RL agent only when brain.rl_agent says so; the agent
follows the bundle through promotions and rollbacks, and one given with --agent stays."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import sizing_table, small_bundle

from tradebrain.config import Settings
from tradebrain.rl.agents import QTableSizer
from tradebrain.rl.saved import AGENT_FOLDER, save_in_bundle
from tradebrain.service.feeds import synthetic_feed
from tradebrain.service.options import ServeOptions
from tradebrain.service.service import TradingService
from tradebrain.strategies.agent_port import REGIMES, AgentView

WARMUP = 600
SYMBOLS = ("BTC/USDT", "ETH/USDT")


def answers(agent: Any) -> list[float]:
    views = [
        AgentView(0.8, 0.0, edge, 0.7, 0.0, regime, True)
        for regime in range(len(REGIMES))
        for edge in (0.5, 6.0)
    ]
    return [agent.adjust(view) for view in views]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two small real bundles of the same model: ``with_agent`` holds a sizer, ``plain`` none."""
    _, bundle = small_bundle()
    root = tmp_path_factory.mktemp("bundles")
    plain = bundle.save(root / "plain")
    with_agent = Path(shutil.copytree(plain, root / "with_agent"))
    save_in_bundle(sizing_table(root / "sizer", large=1.5, small=0.5), with_agent)
    return {"plain": plain, "with_agent": with_agent}


@pytest.fixture
def bundle_sizer(bundles: dict[str, Path]) -> QTableSizer:
    return QTableSizer.load(bundles["with_agent"] / AGENT_FOLDER)


@pytest.fixture
def given_sizer(tmp_path: Path) -> QTableSizer:
    """An agent folder of its own (``--agent``), unlike the bundle's: it vetoes small edges."""
    return sizing_table(tmp_path / "given", large=1.0, small=0.0)


def service(
    home: Path, models: Path, *, rl_agent: str, agent: Path | None = None, learning: bool = False
) -> TradingService:
    settings = Settings.model_validate(
        {
            "home": home,
            "models": {"enabled": ["logistic"]},
            "brain": {"rl_agent": rl_agent},
            "learning": {"enabled": learning},
        }
    )
    feed = synthetic_feed(list(SYMBOLS), "1h", seed=12, warmup=WARMUP, speed=0, bars=WARMUP + 30)
    options = ServeOptions(
        warmup=WARMUP, speed=0, state=str(home / "state.db"), symbols=SYMBOLS, models=models,
        agent=agent,
    )  # fmt: skip
    return TradingService(options, settings, feed=feed)


@pytest.fixture
def prepared(tmp_path: Path) -> Iterator[Any]:
    """Build services on ``tmp_path`` and prepare them (no candle yet); close their loops."""
    made: list[TradingService] = []

    def prepare(models: Path, **options: Any) -> TradingService:
        made.append(service(tmp_path / f"home{len(made)}", models, **options))
        made[-1].runner.prepare()
        return made[-1]

    yield prepare
    for each in made:
        if each.runner.learning is not None:
            each.runner.learning.close()


def agents_of(trading: TradingService) -> list[Any]:
    return [run.strategy.agent for run in trading.runner.runs.values()]


def test_with_rl_agent_off_the_service_ignores_the_bundles_agent(
    bundles: dict[str, Path], prepared: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tradebrain.service.runner"):
        trading = prepared(bundles["with_agent"], rl_agent="off")
    assert agents_of(trading) == [None, None]
    assert "no RL agent" in caplog.text and "brain.rl_agent is off" in caplog.text


def test_with_rl_agent_bundle_every_symbol_trades_with_the_bundles_agent(
    bundles: dict[str, Path],
    bundle_sizer: QTableSizer,
    prepared: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="tradebrain.service.runner"):
        trading = prepared(bundles["with_agent"], rl_agent="bundle")
    first, second = agents_of(trading)
    assert isinstance(first, QTableSizer) and first is second
    assert answers(first) == answers(bundle_sizer)
    assert f"RL agent q_sizing from bundle {bundles['with_agent'] / AGENT_FOLDER}" in caplog.text
    runner = trading.runner
    for count, candle in enumerate(runner.feed.resume(runner.after, threading.Event())):
        runner.step(candle)  # the agent answers every decision the brain makes
        if count == 10:
            break
    assert trading.store.counts("paper")["decisions"] == 11


def test_with_rl_agent_bundle_a_bundle_without_an_agent_trades_the_brains_targets(
    bundles: dict[str, Path], prepared: Any
) -> None:
    trading = prepared(bundles["plain"], rl_agent="bundle")
    assert agents_of(trading) == [None, None]


@pytest.mark.parametrize("rl_agent", ["off", "bundle"])
def test_an_agent_given_with_agent_wins_over_the_bundles(
    bundles: dict[str, Path],
    given_sizer: QTableSizer,
    tmp_path: Path,
    prepared: Any,
    rl_agent: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="tradebrain.service.runner"):
        trading = prepared(bundles["with_agent"], rl_agent=rl_agent, agent=tmp_path / "given")
    for agent in agents_of(trading):
        assert answers(agent) == answers(given_sizer)
    assert f"from --agent {tmp_path / 'given'}" in caplog.text


def test_the_bundles_agent_follows_a_promotion_and_a_rollback(
    bundles: dict[str, Path], bundle_sizer: QTableSizer, prepared: Any
) -> None:
    trading = prepared(bundles["with_agent"], rl_agent="bundle", learning=True)
    runner = trading.runner
    loop = runner.learning
    assert loop is not None and loop.production == 1  # the service's bundle, registered
    assert runner.bundle_dir is not None and runner.bundle_dir.parent.name == "registry_cache"
    assert answers(agents_of(trading)[0]) == answers(bundle_sizer)  # from the registry's copy

    production = loop.registry.production()
    version = loop.registry.register(bundles["plain"], production.lineage, {}).version
    runner.learning_command("promote", version=version, reason="a test promotes the plain one")
    assert loop.production == version
    assert agents_of(trading) == [None, None]

    runner.learning_command("rollback", reason="a test rolls back")
    assert loop.production == 1
    first, second = agents_of(trading)
    assert first is second and answers(first) == answers(bundle_sizer)


def test_an_agent_given_with_agent_stays_through_a_promotion(
    bundles: dict[str, Path], given_sizer: QTableSizer, tmp_path: Path, prepared: Any
) -> None:
    trading = prepared(
        bundles["with_agent"], rl_agent="bundle", agent=tmp_path / "given", learning=True
    )
    runner = trading.runner
    loop = runner.learning
    assert loop is not None
    given = agents_of(trading)[0]
    production = loop.registry.production()
    version = loop.registry.register(bundles["plain"], production.lineage, {}).version
    runner.learning_command("promote", version=version, reason="a test promotes the plain one")
    assert loop.production == version
    assert all(agent is given for agent in agents_of(trading))


def test_a_promoted_bundle_with_a_broken_agent_is_traded_without_one_and_says_why(
    bundles: dict[str, Path], prepared: Any, tmp_path: Path
) -> None:
    broken = Path(shutil.copytree(bundles["with_agent"], tmp_path / "broken"))
    manifest = broken / AGENT_FOLDER / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"q_sizing"', '"oracle"'))
    trading = prepared(bundles["with_agent"], rl_agent="bundle", learning=True)
    runner = trading.runner
    loop = runner.learning
    assert loop is not None
    production = loop.registry.production()
    version = loop.registry.register(broken, production.lineage, {}).version
    runner.learning_command("promote", version=version, reason="a test promotes a broken one")
    assert loop.production == version
    assert agents_of(trading) == [None, None]
    said = [e.message for e in trading.store.events("paper", limit=None)]
    assert any("RL agent cannot be loaded" in m and "'oracle'" in m for m in said), said

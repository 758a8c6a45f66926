"""An agent saved inside a model bundle: found there, replaced at once, chosen by the setting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from builders import small_bundle

# The planted world of the env's tests, built once per process.
from test_agents import env_maker, random_views
from test_env import World, planted_world

from tradebrain.exceptions import UserInputError
from tradebrain.models.bundle import ModelBundle
from tradebrain.rl.agents import MANIFEST_FILE, QTableSizer
from tradebrain.rl.saved import (
    AGENT_FOLDER,
    bundle_agent,
    save_in_bundle,
    serving_agent,
)


@pytest.fixture(scope="module")
def world() -> World:
    return planted_world()


@pytest.fixture(scope="module")
def q_table(world: World) -> QTableSizer:
    return QTableSizer().train(env_maker(world, "qsizing"), seed=7, steps=100)


@pytest.fixture(scope="module")
def other_q_table(world: World) -> QTableSizer:
    return QTableSizer().train(env_maker(world, "qsizing"), seed=8, steps=60)


@pytest.fixture(scope="module")
def saved_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real bundle (one logistic model on the atomic features), saved once."""
    _, bundle = small_bundle()
    return bundle.save(tmp_path_factory.mktemp("bundle") / "models")


@pytest.fixture
def bundle_dir(saved_bundle: Path, tmp_path: Path) -> Path:
    """A copy of the saved bundle this test may change."""
    return Path(shutil.copytree(saved_bundle, tmp_path / "models"))


def answers(agent: QTableSizer) -> list[float]:
    return [agent.adjust(view) for view in random_views()]


def hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_bundle_without_an_agent_folder_has_no_agent(bundle_dir: Path) -> None:
    assert bundle_agent(bundle_dir) is None


def test_an_agent_saved_in_a_bundle_loads_back_with_the_same_answers(
    bundle_dir: Path, q_table: QTableSizer
) -> None:
    folder = save_in_bundle(q_table, bundle_dir)
    assert folder == bundle_dir / AGENT_FOLDER
    loaded = bundle_agent(bundle_dir)
    assert isinstance(loaded, QTableSizer)
    assert answers(loaded) == answers(q_table)
    assert hidden_leftovers(bundle_dir) == []
    assert set(ModelBundle.load(bundle_dir).models) == {"logistic"}  # the models are untouched
    mode = folder.stat().st_mode & 0o777
    assert mode == (bundle_dir / "logistic").stat().st_mode & 0o777  # readable as the models


def test_saving_again_replaces_the_bundles_agent_and_leaves_nothing_behind(
    bundle_dir: Path, q_table: QTableSizer, other_q_table: QTableSizer
) -> None:
    save_in_bundle(q_table, bundle_dir)
    save_in_bundle(other_q_table, bundle_dir)
    loaded = bundle_agent(bundle_dir)
    assert loaded is not None and loaded.training_["seed"] == 8
    assert answers(loaded) == answers(other_q_table)
    assert hidden_leftovers(bundle_dir) == []


def test_a_save_that_fails_midway_keeps_the_agent_that_was_there(
    bundle_dir: Path, q_table: QTableSizer
) -> None:
    save_in_bundle(q_table, bundle_dir)
    with pytest.raises(RuntimeError, match="not trained yet"):
        save_in_bundle(QTableSizer(), bundle_dir)  # an untrained agent fails to save
    loaded = bundle_agent(bundle_dir)
    assert loaded is not None and answers(loaded) == answers(q_table)
    assert hidden_leftovers(bundle_dir) == []


def test_saving_into_a_folder_that_holds_no_bundle_is_refused(
    tmp_path: Path, q_table: QTableSizer
) -> None:
    with pytest.raises(UserInputError, match="not a saved model bundle"):
        save_in_bundle(q_table, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_broken_agent_folder_in_a_bundle_raises_the_error_load_agent_raises(
    bundle_dir: Path, q_table: QTableSizer
) -> None:
    (bundle_dir / AGENT_FOLDER).mkdir()
    with pytest.raises(UserInputError, match="holds no saved agent"):
        bundle_agent(bundle_dir)
    save_in_bundle(q_table, bundle_dir)
    manifest = bundle_dir / AGENT_FOLDER / MANIFEST_FILE
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "name": "oracle"}))
    with pytest.raises(UserInputError, match="names the agent 'oracle'"):
        bundle_agent(bundle_dir)


def test_the_service_uses_the_bundles_agent_only_when_the_setting_says_bundle(
    bundle_dir: Path, q_table: QTableSizer
) -> None:
    save_in_bundle(q_table, bundle_dir)
    off = serving_agent("off", None, bundle_dir)
    assert (off.agent, off.source, off.follows_bundle) == (None, "none", False)
    on = serving_agent("bundle", None, bundle_dir)
    assert on.source == "bundle" and on.follows_bundle
    assert on.folder == bundle_dir / AGENT_FOLDER and answers(on.agent) == answers(q_table)
    assert "q_sizing" in on.describe() and str(bundle_dir) in on.describe()


def test_an_agent_given_on_the_command_line_wins_over_the_bundles(
    bundle_dir: Path, q_table: QTableSizer, other_q_table: QTableSizer, tmp_path: Path
) -> None:
    save_in_bundle(q_table, bundle_dir)
    given = other_q_table.save(tmp_path / "given")
    chosen = serving_agent("bundle", given, bundle_dir)
    assert chosen.source == "--agent" and not chosen.follows_bundle
    assert answers(chosen.agent) == answers(other_q_table)


def test_with_the_setting_on_a_bundle_without_an_agent_trades_the_brains_targets(
    bundle_dir: Path,
) -> None:
    chosen = serving_agent("bundle", None, bundle_dir)
    assert chosen.agent is None and chosen.follows_bundle
    assert "the bundle has none" in chosen.describe()

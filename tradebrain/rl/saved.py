"""Load a saved agent, whatever its kind, from its folder or from a model bundle.

An agent saved by ``tradebrain rl train --out FOLDER`` is a folder of its own; one saved by
``tradebrain rl train --bundle MODEL_DIR`` lives in the bundle's :data:`AGENT_FOLDER`, so it
travels with the bundle (the registry hashes and uploads every file of the bundle folder) and
``brain.rl_agent: bundle`` makes the service trade with it. :func:`serving_agent` is the
service's choice: ``--agent`` first, then the bundle's agent when the setting asks for it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tradebrain.exceptions import UserInputError

AGENT_FOLDER = "agent"
"""The sub-folder of a model bundle that holds its RL agent."""

AgentSource = Literal["--agent", "bundle", "none"]
"""Where the service's agent came from: ``"--agent"``, ``"bundle"`` or ``"none"``."""


def load_agent(folder: Path | str) -> Any:
    """Return the agent saved in ``folder`` (its ``manifest.json`` names the kind)."""
    from tradebrain.rl.agents import MANIFEST_FILE, DQNVeto, PPOSizer, QTableSizer

    path = Path(folder)
    manifest = path / MANIFEST_FILE
    if not manifest.is_file():
        raise UserInputError(
            f"{path} holds no saved agent ({MANIFEST_FILE} is missing); train one with "
            "`tradebrain rl train --data ... --out FOLDER` (or `--bundle MODEL_DIR`)"
        )
    name = json.loads(manifest.read_text()).get("name")
    kinds: dict[str, Any] = {"q_sizing": QTableSizer, "dqn_veto": DQNVeto, "ppo_sizing": PPOSizer}
    if name not in kinds:
        raise UserInputError(f"{manifest} names the agent {name!r}; known: {', '.join(kinds)}")
    return kinds[name].load(path)


def bundle_agent(model_dir: Path | str) -> Any | None:
    """Return the agent saved in the bundle ``model_dir``'s :data:`AGENT_FOLDER`, or None.

    None when the bundle has no agent folder; a broken agent folder raises the error
    :func:`load_agent` raises.
    """
    folder = Path(model_dir) / AGENT_FOLDER
    if not folder.exists():
        return None
    return load_agent(folder)


def save_in_bundle(agent: Any, model_dir: Path | str) -> Path:
    """Save ``agent`` as the bundle ``model_dir``'s agent, replacing the one there at once.

    The agent is saved into a temporary folder inside ``model_dir``, then renamed to
    :data:`AGENT_FOLDER`; an agent already there is first moved aside, and removed only once
    the rename succeeded (put back if it failed). A reader sees the old agent, the new one, or
    (for the instant between the two renames) none, never half an agent. Returns the folder.

    Raises
    ------
    UserInputError
        When ``model_dir`` holds no saved model bundle.
    """
    bundle = require_bundle(model_dir)
    target = bundle / AGENT_FOLDER
    # The agent's folder is made inside the temporary one, so it gets the usual permissions
    # (mkdtemp's own folder is private to this user).
    staging = Path(tempfile.mkdtemp(prefix=f".{AGENT_FOLDER}.", suffix=".tmp", dir=bundle))
    aside: Path | None = None
    try:
        agent.save(staging / AGENT_FOLDER)
        if target.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{AGENT_FOLDER}.", suffix=".old", dir=bundle))
            os.replace(target, aside / AGENT_FOLDER)
        try:
            os.replace(staging / AGENT_FOLDER, target)
        except OSError:
            if aside is not None:  # put the old agent back
                os.replace(aside / AGENT_FOLDER, target)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if aside is not None and target.exists():  # else the old agent stays aside, not lost
            shutil.rmtree(aside, ignore_errors=True)
    return target


def require_bundle(model_dir: Path | str) -> Path:
    """Return ``model_dir`` as a path; raise a clear error when it holds no saved bundle."""
    from tradebrain.models.bundle import MANIFEST

    bundle = Path(model_dir)
    if not (bundle / MANIFEST).is_file():
        raise UserInputError(
            f"{bundle} is not a saved model bundle ({MANIFEST} missing); give --bundle the "
            "folder of `tradebrain train --out MODEL_DIR` (or the service's models folder)"
        )
    return bundle


@dataclass(frozen=True)
class ServingAgent:
    """The agent a service trades with, and where it came from.

    Attributes
    ----------
    agent
        The agent, or None (the brain's targets as they are).
    source
        ``"--agent"`` (a folder given on the command line: it stays when bundles change),
        ``"bundle"`` (the bundle's agent: it follows the bundle) or ``"none"``.
    folder
        The folder the agent was loaded from (None without one).
    """

    agent: Any
    source: AgentSource
    folder: Path | None

    @property
    def follows_bundle(self) -> bool:
        """Whether a new bundle brings its own agent (``brain.rl_agent: bundle``)."""
        return self.source == "bundle"

    def describe(self) -> str:
        """Say in words which agent is used and from where (for the log)."""
        if self.agent is None:
            why = "the bundle has none" if self.follows_bundle else "brain.rl_agent is off"
            return f"no RL agent: trading the brain's targets ({why})"
        return f"RL agent {self.agent.name} from {self.source} {self.folder}"


def serving_agent(rl_agent: str, given: Path | None, bundle_dir: Path | None) -> ServingAgent:
    """Choose the agent a service trades with.

    Parameters
    ----------
    rl_agent
        The setting ``brain.rl_agent``: ``"off"`` or ``"bundle"``.
    given
        The folder of ``--agent``; it wins over the setting.
    bundle_dir
        The folder of the bundle the service trades with (None before one is loaded).
    """
    if given is not None:
        return ServingAgent(load_agent(given), "--agent", Path(given))
    if rl_agent == "bundle":
        agent = None if bundle_dir is None else bundle_agent(bundle_dir)
        folder = None if agent is None or bundle_dir is None else bundle_dir / AGENT_FOLDER
        return ServingAgent(agent, "bundle", folder)
    return ServingAgent(None, "none", None)

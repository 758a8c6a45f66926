"""Load a saved agent, whatever its kind, from the folder it was saved in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tradebrain.exceptions import UserInputError


def load_agent(folder: Path | str) -> Any:
    """Return the agent saved in ``folder`` (its ``manifest.json`` names the kind)."""
    from tradebrain.rl.agents import MANIFEST_FILE, DQNVeto, PPOSizer, QTableSizer

    path = Path(folder)
    manifest = path / MANIFEST_FILE
    if not manifest.is_file():
        raise UserInputError(
            f"{path} holds no saved agent ({MANIFEST_FILE} is missing); "
            "train one with `tradebrain rl train --data ... --out FOLDER`"
        )
    name = json.loads(manifest.read_text()).get("name")
    kinds: dict[str, Any] = {"q_sizing": QTableSizer, "dqn_veto": DQNVeto, "ppo_sizing": PPOSizer}
    if name not in kinds:
        raise UserInputError(f"{manifest} names the agent {name!r}; known: {', '.join(kinds)}")
    return kinds[name].load(path)

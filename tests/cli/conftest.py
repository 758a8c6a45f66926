"""Fixtures shared by the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in ``tmp_path`` with a fresh ``TRADEBRAIN_HOME`` and no settings file; return it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRADEBRAIN_CONFIG", raising=False)
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"

"""The model registry: the torch nets are declared at import and loaded on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tradebrain.models import MODEL_CLASSES
from tradebrain.models.base import ModelRegistry


def test_importing_the_models_does_not_load_torch_until_a_net_is_asked_for() -> None:
    script = (
        "import sys\n"
        "from tradebrain.models import MODEL_CLASSES\n"
        "assert 'torch' not in sys.modules, 'torch loaded at import'\n"
        "assert 'cnn' in MODEL_CLASSES and 'torch' not in sys.modules\n"
        "assert MODEL_CLASSES['cnn'].name == 'cnn' and 'torch' in sys.modules\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr


def test_listing_the_registry_names_every_model_nets_included() -> None:
    names = set(MODEL_CLASSES)
    assert {"logistic", "lightgbm", "xgboost", "cnn", "tcn", "lstm", "nhits"} <= names
    assert all(MODEL_CLASSES[name].name == name for name in names)


def test_an_undeclared_model_is_a_key_error_and_not_in_the_registry() -> None:
    registry = ModelRegistry()
    registry.declare("ghost", "tradebrain.models.nets")
    assert "ghost" in registry
    with pytest.raises(KeyError):
        registry["ghost"]  # the module registers no "ghost" into this registry
    assert "nothing" not in registry
    with pytest.raises(KeyError):
        registry["nothing"]

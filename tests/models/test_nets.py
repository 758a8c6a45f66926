"""The six torch nets: shapes, sizes, causality of the TCN, and learning a planted pattern."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tradebrain.models import MODEL_CLASSES
from tradebrain.models.nets import NET_MODELS, LSTMModel, NetModel
from tradebrain.models.nets.patchtst import patch_count
from tradebrain.models.nets.tcn import TemporalStack

NET_IDS = [net.name for net in NET_MODELS]


def planted_windows(
    n: int, seed: int, window: int = 16, features: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Noise windows; 'up' rows carry a +2.5 bump of 3 steps in feature 0 somewhere in the
    window, 'down' rows a -2.5 bump, 'flat' rows none (chance accuracy 1/3)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, window, features))
    y = rng.integers(0, 3, size=n)
    starts = rng.integers(0, window - 3, size=n)
    for row in np.flatnonzero(y != 1):
        X[row, starts[row] : starts[row] + 3, 0] += 2.5 if y[row] == 2 else -2.5
    return X, y


@pytest.mark.parametrize("net", NET_MODELS, ids=NET_IDS)
def test_every_net_is_registered_under_its_name(net: type[NetModel]) -> None:
    assert MODEL_CLASSES[net.name] is net
    assert net.input_kind == "sequence"


@pytest.mark.parametrize("net", NET_MODELS, ids=NET_IDS)
def test_every_net_maps_windows_to_three_logits_with_at_most_100k_parameters(
    net: type[NetModel],
) -> None:
    network = net().build_network(64, 40)
    network.eval()
    with torch.inference_mode():
        logits = network(torch.randn(5, 64, 40))
    assert logits.shape == (5, 3)
    assert torch.isfinite(logits).all()
    assert sum(p.numel() for p in network.parameters()) <= 100_000


@pytest.mark.parametrize("net", NET_MODELS, ids=NET_IDS)
@pytest.mark.parametrize("window", [1, 5, 16])
def test_every_net_builds_for_short_and_odd_windows(net: type[NetModel], window: int) -> None:
    network = net().build_network(window, 2)
    network.eval()
    with torch.inference_mode():
        assert network(torch.randn(3, window, 2)).shape == (3, 3)


def test_tcn_output_at_a_step_ignores_every_later_step() -> None:
    torch.manual_seed(0)
    stack = TemporalStack(n_features=4, channels=8, levels=4, kernel_size=3, dropout=0.0).eval()
    x = torch.randn(2, 4, 40)
    changed = x.clone()
    changed[:, :, 25:] = torch.randn(2, 4, 15) * 10
    with torch.inference_mode():
        before, after = stack(x), stack(changed)
    assert before.shape == (2, 8, 40)
    assert torch.equal(before[:, :, :25], after[:, :, :25])
    assert not torch.equal(before[:, :, 25:], after[:, :, 25:])


def test_tcn_reads_the_whole_default_window_at_its_last_step() -> None:
    torch.manual_seed(0)
    stack = TemporalStack(n_features=2, channels=8, levels=5, kernel_size=3, dropout=0.0).eval()
    x = torch.randn(1, 2, 64)
    changed = x.clone()
    changed[:, :, 0] += 5.0
    with torch.inference_mode():
        assert not torch.equal(stack(x)[:, :, -1], stack(changed)[:, :, -1])


def test_bidirectional_lstm_gives_three_logits_from_the_past_window() -> None:
    network = LSTMModel(bidirectional=True, hidden=40).build_network(64, 40)
    assert network(torch.randn(2, 64, 40)).shape == (2, 3)
    assert sum(p.numel() for p in network.parameters()) <= 100_000


def test_patch_count_covers_the_padded_window() -> None:
    assert patch_count(64, 16, 16) == 5
    assert patch_count(64, 8, 8) == 9
    assert patch_count(16, 8, 4) == 4


@pytest.mark.parametrize("net", NET_MODELS, ids=NET_IDS)
def test_every_net_learns_a_planted_pattern_well_above_chance(net: type[NetModel]) -> None:
    X, y = planted_windows(900, seed=1)
    model = net(max_epochs=8, patience=8, batch_size=64, learning_rate=3e-3, threads=1)
    model.fit(X[:600], y[:600])
    accuracy = float(np.mean(model.predict(X[600:]) == y[600:]))
    floor = 0.8 if net.name in ("cnn", "lstm") else 0.6
    assert accuracy > floor, f"{net.name}: accuracy {accuracy:.2f}, chance 0.33"

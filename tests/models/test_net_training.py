"""The shared net trainer: purged validation, early stopping, scaling, seeds, threads, save/load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tradebrain.exceptions import UserInputError
from tradebrain.models import NotFittedError, load_model
from tradebrain.models.nets import NET_MODELS, CNNModel, NetModel, net_model
from tradebrain.models.nets.training import FeatureScaler, validation_split

NET_IDS = [net.name for net in NET_MODELS]
FAST: dict[str, Any] = {"max_epochs": 3, "patience": 3, "batch_size": 64, "threads": 1}
"""Small settings; one thread, so that tests running in parallel do not oversubscribe."""


def noisy_windows(
    n: int = 300, seed: int = 0, window: int = 8, features: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Windows whose feature 0 at the last step weakly predicts the label (0, 1 or 2)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, window, features))
    y = np.digitize(X[:, -1, 0] + rng.normal(size=n), [-0.6, 0.6])
    return X, y


def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(proba[np.arange(len(y)), y])))


@pytest.fixture(scope="module")
def fitted() -> dict[str, NetModel]:
    """Every net fitted once on the same small data with the fast settings."""
    X, y = noisy_windows()
    return {net.name: net(**FAST).fit(X, y) for net in NET_MODELS}


def test_validation_split_leaves_a_purge_gap_before_the_validation_tail() -> None:
    assert validation_split(100, 0.2, purge=5) == (75, 80)
    assert validation_split(100, 0.0, purge=5) == (100, 100)
    assert validation_split(5, 0.2, purge=4) == (5, 5)  # too small: no validation


def test_scaler_is_fitted_on_training_rows_only_not_the_purge_or_validation_rows() -> None:
    X, y = noisy_windows(200)
    X[150:] += 1000.0  # purge and validation rows are far off
    model = CNNModel(**FAST, validation_fraction=0.25, purge=5).fit(X, y)
    train_end, _ = validation_split(200, 0.25, 5)
    assert train_end == 145
    expected = FeatureScaler.fit(X[:train_end])
    np.testing.assert_array_equal(model.scaler_.mean, expected.mean)
    np.testing.assert_array_equal(model.scaler_.scale, expected.scale)


def test_scaler_reads_each_row_of_sliding_windows_once() -> None:
    rows = np.arange(30.0).reshape(10, 3)
    windows = np.lib.stride_tricks.sliding_window_view(rows, 4, axis=0).transpose(0, 2, 1)
    scaler = FeatureScaler.fit(windows)
    np.testing.assert_allclose(scaler.mean, rows.mean(axis=0))
    np.testing.assert_allclose(scaler.scale, rows.std(axis=0))


def test_early_stopping_restores_the_best_epochs_weights() -> None:
    X, y = noisy_windows(600, seed=3)
    y = np.random.default_rng(3).permutation(y)  # nothing to learn: validation loss rises
    model = CNNModel(
        max_epochs=15,
        patience=2,
        batch_size=32,
        learning_rate=1e-2,
        validation_fraction=0.3,
        purge=4,
    ).fit(X, y)
    losses = model.validation_losses_
    assert len(losses) < 15, "expected an early stop"
    assert model.best_epoch_ == int(np.argmin(losses)) + 1
    assert len(losses) == model.best_epoch_ + 2
    _, validation_start = validation_split(600, 0.3, 4)
    tail = log_loss(model.predict_proba(X[validation_start:]), y[validation_start:])
    assert tail == pytest.approx(min(losses), abs=1e-6)


def test_an_explicit_validation_set_replaces_the_tail_and_all_rows_train() -> None:
    X, y = noisy_windows(300)
    X_val, y_val = noisy_windows(100, seed=9)
    model = CNNModel(**FAST).fit(X, y, info={"validation": (X_val, y_val)})
    np.testing.assert_array_equal(model.scaler_.mean, FeatureScaler.fit(X).mean)
    assert log_loss(model.predict_proba(X_val), y_val) == pytest.approx(
        min(model.validation_losses_), abs=1e-6
    )
    with pytest.raises(UserInputError, match="validation"):
        CNNModel(**FAST).fit(X, y, info={"validation": (X_val[:, :4], y_val)})


def test_no_validation_trains_every_epoch_and_keeps_the_last_weights() -> None:
    X, y = noisy_windows(200)
    model = CNNModel(**FAST, validation_fraction=0.0).fit(X, y)
    assert model.best_epoch_ == 3
    assert model.validation_losses_ == []
    assert len(model.train_losses_) == 3


@pytest.mark.parametrize("net", NET_MODELS, ids=NET_IDS)
def test_same_seed_gives_identical_predictions(
    net: type[NetModel], fitted: dict[str, NetModel]
) -> None:
    X, y = noisy_windows()
    X_new, _ = noisy_windows(50, seed=5)
    again = net(**FAST).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X_new), fitted[net.name].predict_proba(X_new))
    other = net(**FAST, seed=1).fit(X, y)
    assert not np.array_equal(other.predict_proba(X_new), again.predict_proba(X_new))


@pytest.mark.parametrize("net", NET_MODELS, ids=NET_IDS)
def test_save_and_load_give_bit_identical_predictions(
    net: type[NetModel], fitted: dict[str, NetModel], tmp_path: Path
) -> None:
    X_new, _ = noisy_windows(50, seed=5)
    model = fitted[net.name]
    loaded = load_model(model.save(tmp_path / net.name))
    assert type(loaded) is net
    assert loaded.record_.params == model.record_.params
    np.testing.assert_array_equal(loaded.predict_proba(X_new), model.predict_proba(X_new))
    assert loaded.best_epoch_ == model.best_epoch_


@pytest.mark.parametrize("net", NET_MODELS, ids=NET_IDS)
def test_probabilities_have_three_columns_that_sum_to_one(
    net: type[NetModel], fitted: dict[str, NetModel]
) -> None:
    X_new, _ = noisy_windows(50, seed=5)
    proba = fitted[net.name].predict_proba(X_new)
    assert proba.shape == (50, 3)
    assert proba.dtype == np.float64
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)


def test_a_class_missing_from_training_gets_probability_zero() -> None:
    X, y = noisy_windows(200)
    y = np.where(y == 1, 2, y)
    model = CNNModel(**FAST).fit(X, y)
    proba = model.predict_proba(X[:20])
    assert (proba[:, 1] == 0.0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert model.classes_.tolist() == [0, 2]


def test_non_finite_inputs_are_read_as_the_training_mean() -> None:
    X, y = noisy_windows(200)
    X[:10, 2, 1] = np.nan
    X[10:20, 3, 2] = np.inf
    model = CNNModel(**FAST).fit(X, y)
    assert np.isfinite(model.scaler_.mean).all()
    assert np.isfinite(model.predict_proba(X)).all()


def test_fit_and_predict_run_on_the_given_threads_and_restore_the_callers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, bool]] = []
    train = net_model.train_network  # type: ignore[attr-defined]

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append((torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()))
        return train(*args, **kwargs)

    monkeypatch.setattr(net_model, "train_network", spy)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        X, y = noisy_windows(100)
        model = CNNModel(**{**FAST, "threads": 2}).fit(X, y)
        assert seen == [(2, True)]
        assert torch.get_num_threads() == 1
        assert not torch.are_deterministic_algorithms_enabled()
        model.predict_proba(X)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


def test_fit_leaves_the_callers_torch_random_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    CNNModel(**FAST).fit(*noisy_windows(100))
    assert torch.equal(torch.rand(3), expected)


def test_predicting_before_fit_or_on_other_windows_fails_with_a_clear_message() -> None:
    X, y = noisy_windows(100)
    with pytest.raises(NotFittedError, match="call fit first"):
        CNNModel().predict_proba(X)
    model = CNNModel(**FAST).fit(X, y)
    with pytest.raises(UserInputError, match=r"\(n, 8, 3\)"):
        model.predict_proba(X[:, :4])

"""Feature selection inside a training window: strong, stable, one per cluster, capped."""

from __future__ import annotations

import numpy as np

from tradebrain.models.selection import FeatureSelection, rank_columns, select_features


def window(n: int = 4_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(0, 1, n)
    target = 0.3 * signal + rng.normal(0, 1, n)
    columns = {
        "signal": signal,
        "signal_twin": signal + rng.normal(0, 0.05, n),  # the same information
        "weak": 0.1 * target + rng.normal(0, 1, n),
        **{f"noise_{k}": rng.normal(0, 1, n) for k in range(20)},
    }
    return np.column_stack(list(columns.values())), target, tuple(columns)


def test_the_strong_feature_is_kept_first_and_its_twin_joins_its_cluster() -> None:
    X, target, names = window()
    chosen = select_features(X, target, names, max_features=3)
    assert chosen.names[0] in ("signal", "signal_twin")
    assert "weak" in chosen.names
    assert {"signal", "signal_twin"} - set(chosen.names) <= set(chosen.clusters[chosen.names[0]])
    assert not ({"signal", "signal_twin"} <= set(chosen.names))
    assert len(chosen.names) <= 3
    assert chosen.importance[chosen.names[0]] > 0.2 and chosen.stability[chosen.names[0]] == 1.0


def test_noise_features_are_mostly_left_out_and_the_cap_holds() -> None:
    X, target, names = window(seed=3)
    chosen = select_features(X, target, names, max_features=6)
    assert len(chosen.names) <= 6
    assert chosen.considered == len(names)
    assert all(chosen.stability[name] >= 0.5 for name in chosen.names)


def test_the_selection_reads_only_the_rows_it_is_given() -> None:
    X, target, names = window(seed=5)
    first = select_features(X[:2000], target[:2000], names, max_features=4)
    changed = X.copy()
    changed[2000:] = np.random.default_rng(9).normal(0, 1, changed[2000:].shape)
    again = select_features(changed[:2000], target[:2000], names, max_features=4)
    assert again == first


def test_a_selection_survives_a_round_trip_and_ranks_are_centred() -> None:
    X, target, names = window(n=500)
    chosen = select_features(X, target, names, max_features=4)
    assert FeatureSelection.from_dict(chosen.to_dict()) == chosen
    ranks = rank_columns(X)
    np.testing.assert_allclose(ranks.mean(axis=0), 0.0, atol=1e-9)

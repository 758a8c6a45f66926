"""Walk-forward splits: every fold purged, embargoed, in time order; checked for every fold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from tradebrain.evaluation.splits import Fold, WalkForwardSplitter, reindex_label_end
from tradebrain.exceptions import UserInputError
from tradebrain.labels import triple_barrier_labels


def assert_hygienic(
    folds: list[Fold], ends: np.ndarray, embargo: int, start: int, train_size: int | None
) -> None:
    """Check every rule of the splitter on every fold (see the module docstring of splits)."""
    rows = np.arange(ends.size)
    tests = np.concatenate([fold.test for fold in folds])
    np.testing.assert_array_equal(tests, np.arange(start, ends.size), "tests must tile the span")
    for k, fold in enumerate(folds):
        a, b = fold.test_start, fold.test_stop - 1
        np.testing.assert_array_equal(fold.test, np.arange(a, b + 1), "a test fold is contiguous")
        assert fold.index == k and fold.train.size > 0
        assert not np.intersect1d(fold.train, fold.test).size
        assert not np.intersect1d(fold.validation, fold.test).size
        assert not np.intersect1d(fold.train, fold.validation).size
        for name, part in (("train", fold.train), ("validation", fold.validation)):
            assert (np.diff(part) > 0).all(), f"{name} rows are sorted and unique"
            assert (ends[part] < a).all(), f"a {name} label reaches into test fold {k}"
        if fold.validation.size:
            assert (ends[fold.train] < fold.validation[0]).all(), "train reaches validation"
        embargoed = np.zeros(ends.size, dtype=bool)
        for earlier in folds[:k]:
            embargoed[earlier.test_stop : earlier.test_stop + embargo] = True
        assert not embargoed[fold.training_rows].any(), f"fold {k} trains on embargoed rows"
        usable = (rows < a) & (ends < a) & ~embargoed
        if fold.validation.size:
            usable &= ~np.isin(rows, fold.validation) & (ends < fold.validation[0])
        if train_size is not None:
            usable &= rows >= a - train_size
        np.testing.assert_array_equal(fold.train, rows[usable], "no row is dropped without cause")


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(100, 400),
    n_folds=st.integers(1, 5),
    horizon=st.integers(0, 6),
    random_ends=st.booleans(),
    embargo=st.one_of(st.none(), st.integers(0, 12)),
    validation=st.sampled_from([0, 2, 3, 0.2]),
    rolling=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_every_fold_is_purged_embargoed_and_in_time_order(
    n: int,
    n_folds: int,
    horizon: int,
    random_ends: bool,
    embargo: int | None,
    validation: int | float,
    rolling: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    rows = np.arange(n)
    ends = rows + (rng.integers(0, horizon + 1, n) if random_ends else horizon)
    train_size = int(rng.integers(3 * horizon + 12, 120)) if rolling else None
    splitter = WalkForwardSplitter(
        n_folds,
        mode="rolling" if rolling else "expanding",
        train_size=train_size,
        horizon=horizon,
        embargo=embargo,
        validation_size=validation,
    )
    try:
        folds = list(splitter.split(n, ends if random_ends else None))
    except UserInputError:
        reject()
    used_embargo = int(np.max(ends - rows)) if embargo is None else embargo
    assert used_embargo >= (horizon if embargo is None else 0)
    start = train_size if rolling and train_size is not None else n // (n_folds + 1)
    assert_hygienic(folds, ends, used_embargo, start, train_size)


def test_a_fold_purges_training_rows_whose_labels_reach_into_the_test_fold() -> None:
    (fold,) = WalkForwardSplitter(1, min_train=10, horizon=3).split(20)
    np.testing.assert_array_equal(fold.test, np.arange(10, 20))
    np.testing.assert_array_equal(fold.train, np.arange(0, 7))  # row 7's label ends at row 10


def test_rows_just_after_a_test_fold_are_embargoed_from_every_later_training_set() -> None:
    folds = list(WalkForwardSplitter(3, min_train=10, horizon=2).split(30))
    assert [(f.test_start, f.test_stop) for f in folds] == [(10, 17), (17, 24), (24, 30)]
    np.testing.assert_array_equal(folds[1].train, np.arange(0, 15))
    expected = np.setdiff1d(np.arange(0, 22), [17, 18])  # the 2 rows after fold 0's test
    np.testing.assert_array_equal(folds[2].train, expected)


def test_the_validation_tail_is_purged_against_the_test_and_the_rest_of_training() -> None:
    (fold,) = WalkForwardSplitter(1, min_train=40, horizon=4, validation_size=10).split(60)
    np.testing.assert_array_equal(fold.validation, np.arange(26, 36))  # ends 30..39 < 40
    np.testing.assert_array_equal(fold.train, np.arange(0, 22))  # ends 4..25 < 26
    np.testing.assert_array_equal(fold.training_rows, np.union1d(fold.train, fold.validation))


def test_a_rolling_window_trains_on_at_most_train_size_rows_before_each_test_fold() -> None:
    folds = list(WalkForwardSplitter(4, mode="rolling", train_size=50, horizon=5).split(250))
    assert folds[0].test_start == 50
    for fold in folds:
        assert fold.train[0] >= fold.test_start - 50
        assert fold.train.size <= 50 - 5


def test_barrier_label_ends_purge_exactly_the_rows_whose_trades_are_still_open() -> None:
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high, low = np.maximum(open_, close) * 1.002, np.minimum(open_, close) * 0.998
    labels, end = triple_barrier_labels(open_, high, low, close, 20, window=14)
    kept = np.flatnonzero(~np.isnan(labels))
    positions = reindex_label_end(end[kept], kept)
    folds = list(WalkForwardSplitter(4, horizon=20).split(kept.size, positions))
    for fold in folds:
        first_test_candle = kept[fold.test_start]
        assert (end[kept[fold.training_rows]] < first_test_candle).all()
    assert folds[1].train.size > folds[0].train.size


def test_reindexing_maps_a_dropped_end_row_to_the_next_kept_row() -> None:
    kept = np.array([0, 1, 2, 5, 6, 9])
    positions = reindex_label_end(np.array([2, 3, 4, 6, 8, 9]), kept)
    np.testing.assert_array_equal(positions, [2, 3, 3, 4, 5, 5])


def test_too_few_rows_for_the_folds_is_a_clear_error() -> None:
    with pytest.raises(UserInputError, match="too few"):
        list(WalkForwardSplitter(5, min_train=8).split(10))
    with pytest.raises(UserInputError, match="no training rows"):
        list(WalkForwardSplitter(2, min_train=3, horizon=5).split(20))


def test_invalid_settings_name_the_fix() -> None:
    with pytest.raises(UserInputError, match="train_size"):
        list(WalkForwardSplitter(2, mode="rolling").split(100))
    with pytest.raises(UserInputError, match="before its own row"):
        list(WalkForwardSplitter(2).split(5, np.array([1, 2, -1, 4, 5])))
    with pytest.raises(UserInputError, match="validation_size"):
        list(WalkForwardSplitter(2, validation_size=1.5).split(100))

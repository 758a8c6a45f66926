"""Walk-forward splits with purge, embargo and a purged validation tail.

Rows are positions ``0 .. n-1`` in time order. Row ``i``'s label reads candles ``i ..
label_end[i]`` (its *label interval*; ``label_end[i] = i + horizon`` for fixed-horizon
labels, the resolving candle for barrier labels). The evaluated span ``start .. n-1`` (after
the first training window of ``start`` rows) is cut into ``n_folds`` contiguous test folds, in
time order, that do not overlap and cover it. For the fold testing rows ``a .. b``:

- the *training window* is every row before ``a`` (``"expanding"``) or the ``train_size`` rows
  just before ``a`` (``"rolling"``);
- **purge**: a training row ``i`` is kept only if its label interval ends before the test fold
  begins, ``label_end[i] < a`` (closed intervals ``[i, label_end[i]]`` and ``[a, b]`` must not
  meet, and every training row precedes the fold);
- **embargo**: for every earlier test fold ``a' .. b'``, rows ``b' + 1 .. b' + embargo`` are
  dropped from this fold's training set (``embargo`` defaults to the longest label interval,
  ``max(label_end[i] - i)``, so at least ``h`` rows for horizon-``h`` labels);
- **validation tail** (``validation_size > 0``): the last ``validation_size`` rows of the purged
  training set become the fold's validation rows (early stopping, calibration); the remaining
  training rows are purged against them in turn, ``label_end[i] < validation[0]``.

>>> for fold in WalkForwardSplitter(n_folds=5, horizon=12).split(len(y)):
...     model.fit(X[fold.train], y[fold.train]); proba = model.predict_proba(X[fold.test])
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tradebrain.exceptions import UserInputError

Mode = Literal["expanding", "rolling"]


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: int64 row positions, each array sorted ascending.

    ``train`` excludes the validation rows and is purged against them; use
    :attr:`training_rows` to refit on training and validation rows together.
    """

    index: int
    train: np.ndarray
    test: np.ndarray
    validation: np.ndarray

    @property
    def training_rows(self) -> np.ndarray:
        """Return the training and validation rows together (all purged against the test)."""
        return np.union1d(self.train, self.validation)

    @property
    def test_start(self) -> int:
        """Return the first test row."""
        return int(self.test[0])

    @property
    def test_stop(self) -> int:
        """Return one past the last test row."""
        return int(self.test[-1]) + 1


class WalkForwardSplitter:
    """Cut rows in time order into walk-forward folds (see the module docstring).

    Parameters
    ----------
    n_folds
        Number of test folds (``>= 1``).
    mode
        ``"expanding"`` (train on all past rows) or ``"rolling"`` (the last ``train_size``).
    train_size
        Rows in the rolling training window, before purge and embargo (rolling mode only).
    min_train
        Rows before the first test fold. Defaults to ``train_size`` in rolling mode and to
        ``n // (n_folds + 1)`` in expanding mode.
    horizon
        Label interval length in rows when :meth:`split` is given no ``label_end``.
    embargo
        Rows dropped after each test fold from every later training set; defaults to the
        longest label interval.
    validation_size
        Rows (an int) or share of the purged training rows (a float in (0, 1)) held out as the
        validation tail; 0 for none.
    """

    def __init__(
        self,
        n_folds: int = 5,
        mode: Mode = "expanding",
        train_size: int | None = None,
        min_train: int | None = None,
        horizon: int = 1,
        embargo: int | None = None,
        validation_size: int | float = 0,
    ) -> None:
        self.n_folds = n_folds
        self.mode = mode
        self.train_size = train_size
        self.min_train = min_train
        self.horizon = horizon
        self.embargo = embargo
        self.validation_size = validation_size

    def test_spans(self, n_samples: int) -> list[tuple[int, int]]:
        """Return each test fold as ``(first row, one past the last row)``, in time order."""
        self._check_settings()
        start = self._first_test_row(n_samples)
        if n_samples - start < self.n_folds:
            raise UserInputError(
                f"{n_samples} rows leave {n_samples - start} after the first training window "
                f"of {start}: too few for {self.n_folds} test folds; use fewer folds, a smaller "
                "min_train or more data"
            )
        blocks = np.array_split(np.arange(start, n_samples), self.n_folds)
        return [(int(block[0]), int(block[-1]) + 1) for block in blocks]

    def split(self, n_samples: int, label_end: np.ndarray | None = None) -> Iterator[Fold]:
        """Yield the folds over ``n_samples`` rows, in time order.

        Parameters
        ----------
        n_samples
            Number of rows, all labelled (drop unlabelled rows first and re-index the label
            ends with :func:`reindex_label_end`).
        label_end
            (n_samples,) int: the last row each label reads (``>=`` its own row). Defaults to
            ``row + horizon``.
        """
        ends = self._label_end(n_samples, label_end)
        longest = int(np.max(ends - np.arange(n_samples))) if n_samples else 0
        embargo = longest if self.embargo is None else int(self.embargo)
        if embargo < 0:
            raise UserInputError(f"embargo must be >= 0 rows; got {embargo}")
        spans = self.test_spans(n_samples)
        rows = np.arange(n_samples)
        embargoed = np.zeros(n_samples, dtype=bool)
        for index, (a, b) in enumerate(spans):
            first = 0 if self.mode == "expanding" else max(0, a - int(self.train_size or 0))
            window = rows[first:a]
            train = window[(ends[first:a] < a) & ~embargoed[first:a]]
            train, validation = self._validation_tail(train, ends)
            if train.size == 0:
                raise UserInputError(
                    f"fold {index} (test rows {a}..{b - 1}) has no training rows left after "
                    f"purge ({longest} rows), embargo ({embargo}) and validation; use a larger "
                    "min_train or train_size, or fewer folds"
                )
            yield Fold(index, train.astype(np.int64), rows[a:b].astype(np.int64), validation)
            embargoed[b : b + embargo] = True

    def _validation_tail(
        self, train: np.ndarray, ends: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        size = self.validation_size
        count = round(size * train.size) if isinstance(size, float) else int(size)
        if count <= 0:
            return train, np.empty(0, dtype=np.int64)
        if count >= train.size:
            raise UserInputError(
                f"a validation tail of {count} rows leaves no training rows out of {train.size}; "
                "use a smaller validation_size or a larger training window"
            )
        validation = train[-count:]
        rest = train[:-count]
        return rest[ends[rest] < validation[0]], validation.astype(np.int64)

    def _label_end(self, n_samples: int, label_end: np.ndarray | None) -> np.ndarray:
        rows = np.arange(n_samples, dtype=np.int64)
        if label_end is None:
            if int(self.horizon) != self.horizon or self.horizon < 0:
                raise UserInputError(f"horizon must be a whole number >= 0; got {self.horizon}")
            return rows + int(self.horizon)
        ends = np.asarray(label_end)
        if ends.shape != (n_samples,):
            raise UserInputError(f"label_end has shape {ends.shape}; expected ({n_samples},)")
        if not np.issubdtype(ends.dtype, np.integer):
            raise UserInputError("label_end must hold integer row positions")
        if (ends < rows).any():
            bad = int(np.flatnonzero(ends < rows)[0])
            raise UserInputError(
                f"label_end[{bad}] = {int(ends[bad])} is before its own row; rows without a "
                "label (end -1) must be dropped before splitting"
            )
        return ends.astype(np.int64)

    def _first_test_row(self, n_samples: int) -> int:
        if self.min_train is not None:
            start = int(self.min_train)
        elif self.mode == "rolling":
            start = int(self.train_size or 0)
        else:
            start = n_samples // (self.n_folds + 1)
        if start < 1:
            raise UserInputError(f"the first training window must hold >= 1 row; got {start}")
        return start

    def _check_settings(self) -> None:
        if int(self.n_folds) != self.n_folds or self.n_folds < 1:
            raise UserInputError(f"n_folds must be a whole number >= 1; got {self.n_folds}")
        if self.mode not in ("expanding", "rolling"):
            raise UserInputError(f"mode must be 'expanding' or 'rolling'; got {self.mode!r}")
        if self.mode == "rolling" and (self.train_size is None or self.train_size < 1):
            raise UserInputError("rolling mode needs train_size >= 1 (rows per training window)")
        if self.mode == "expanding" and self.train_size is not None:
            raise UserInputError("train_size applies to rolling mode only; set mode='rolling'")
        size = self.validation_size
        if size < 0 or (isinstance(size, float) and size >= 1):
            raise UserInputError(
                f"validation_size must be rows (an int >= 0) or a share in [0, 1); got {size}"
            )


def reindex_label_end(label_end: np.ndarray, kept_rows: np.ndarray) -> np.ndarray:
    """Map label ends from original rows to positions among ``kept_rows``.

    Parameters
    ----------
    label_end
        (k,) int label ends, in original row numbers, of the kept rows.
    kept_rows
        (k,) int original row numbers that were kept, ascending.

    Returns
    -------
    numpy.ndarray
        (k,) int64: the position of the first kept row at or after each end. When the end row
        itself was dropped, the next kept row stands for it, which can only purge more.
    """
    kept = np.asarray(kept_rows, dtype=np.int64)
    if kept.size > 1 and (np.diff(kept) <= 0).any():
        raise UserInputError("kept_rows must be strictly ascending row numbers")
    return np.searchsorted(kept, np.asarray(label_end, dtype=np.int64), side="left").astype(
        np.int64
    )

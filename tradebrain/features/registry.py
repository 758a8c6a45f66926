"""The feature registry: named features, grouped by the function that computes them.

A :class:`Feature` is a name, the set it belongs to, a warm-up and the inputs it reads. Related
features share one compute function (a :class:`FeatureGroup`), so MACD's line, signal and
histogram, or the 29 Alpha158 operators over five windows, come out of one pass over the data.

A group's compute function has the signature ``compute(bars, start) -> {name: values}``:

- ``bars`` maps input names (``"open"``, ``"close"``, ``"timestamp"``, or any extra column
  aggregated per candle, such as ``"buy_volume"`` or ``"funding_rate"``) to 1-D numpy arrays of
  equal length ``n``, oldest first; prices and volumes are float64, ``timestamp`` is int64
  microseconds since the epoch (UTC, candle open time).
- ``start`` is the first row whose values are wanted. Batch asks for every row (``start=0``);
  the live engine asks for the newest row only (``start=n-1``) of a rolling tail of history.
- It returns one float64 array of length ``n - start`` per feature of the group, for rows
  ``start .. n-1``. A value at row ``t`` may read rows ``<= t`` only.

The same function serves batch and live, which is what makes them agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from tradebrain.exceptions import UserInputError

Bars = Mapping[str, np.ndarray]
"""Input columns of one symbol, oldest first: name -> 1-D array of length ``n``."""

ComputeFn = Callable[[Bars, int], Mapping[str, np.ndarray]]
"""``compute(bars, start)`` -> one float64 array of length ``n - start`` per feature."""

CANDLE_INPUTS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Feature:
    """One named feature column.

    Attributes
    ----------
    name
        Column name in the output frame, unique across all sets (``"rsi_14"``).
    set
        Name of the feature set it belongs to (``"indicators"``).
    warmup
        Bars of history needed before the first valid value: rows ``0 .. warmup-1`` of any
        history are null, and from row ``warmup`` on the value no longer depends on where the
        history started (for recursive smoothers: to better than about 1e-10 relative).
    inputs
        Input columns read (``("high", "low", "close")``).
    description
        One line in the trader's words.
    group
        Name of the :class:`FeatureGroup` whose function computes it.
    """

    name: str
    set: str
    warmup: int
    inputs: tuple[str, ...]
    description: str
    group: str


@dataclass(frozen=True)
class FeatureGroup:
    """Features computed together by one function, in one pass over the data.

    Attributes
    ----------
    name
        Unique group name (``"indicators.macd"``).
    set
        Feature set of every feature in the group.
    inputs
        Input columns the function reads.
    compute
        ``compute(bars, start) -> {feature name: values for rows start..n-1}``.
    features
        The features it returns, in output order.
    """

    name: str
    set: str
    inputs: tuple[str, ...]
    compute: ComputeFn
    features: tuple[Feature, ...] = field(default=())

    @property
    def warmup(self) -> int:
        """Largest warm-up of the group's features, in bars."""
        return max((feature.warmup for feature in self.features), default=0)


FEATURE_SETS: dict[str, list[FeatureGroup]] = {}
"""Every registered feature set: set name -> its groups, in registration order."""


def register_group(
    set_name: str,
    group_name: str,
    inputs: Iterable[str],
    columns: Mapping[str, tuple[int, str]],
    compute: ComputeFn,
) -> FeatureGroup:
    """Register a group of features computed by one function, and return it.

    Parameters
    ----------
    set_name
        Feature set the features belong to; created when new.
    group_name
        Short name of the group, unique within its set.
    inputs
        Input columns ``compute`` reads.
    columns
        Feature name -> ``(warmup in bars, one-line description)``, in output order.
    compute
        The group's function; see the module docstring for its contract.

    Raises
    ------
    UserInputError
        When a feature name is already registered, or a warm-up is negative.
    """
    taken = {feature.name for feature in all_features()}
    full_name = f"{set_name}.{group_name}"
    input_names = tuple(inputs)
    features = []
    for name, (warmup, description) in columns.items():
        if name in taken:
            raise UserInputError(f"feature {name!r} is already registered; choose another name")
        if warmup < 0:
            raise UserInputError(f"feature {name!r} has a negative warm-up {warmup}")
        features.append(Feature(name, set_name, int(warmup), input_names, description, full_name))
    group = FeatureGroup(full_name, set_name, input_names, compute, tuple(features))
    FEATURE_SETS.setdefault(set_name, []).append(group)
    return group


def feature_group(
    set_name: str,
    inputs: Iterable[str],
    columns: Mapping[str, tuple[int, str]],
    *,
    name: str | None = None,
) -> Callable[[ComputeFn], ComputeFn]:
    """Decorate a compute function to register it as a feature group.

    See :func:`register_group` for the parameters.
    """

    def decorate(compute: ComputeFn) -> ComputeFn:
        register_group(set_name, name or compute.__name__.lstrip("_"), inputs, columns, compute)
        return compute

    return decorate


def unregister_set(set_name: str) -> None:
    """Remove a feature set and all its features (for sets added at run time, e.g. in tests)."""
    FEATURE_SETS.pop(set_name, None)


def all_features() -> list[Feature]:
    """Return every registered feature, set by set, in registration order."""
    return [feature for groups in FEATURE_SETS.values() for g in groups for feature in g.features]


def select_groups(sets: Iterable[str] | None, available: Iterable[str]) -> list[FeatureGroup]:
    """Return the groups of ``sets``; by default every set whose inputs are all ``available``.

    Raises
    ------
    UserInputError
        When a named set is unknown, or needs an input column that is not available.
    """
    have = set(available)
    if sets is None:
        return [
            group
            for groups in FEATURE_SETS.values()
            if all(set(group.inputs) <= have for group in groups)
            for group in groups
        ]
    chosen: list[FeatureGroup] = []
    for set_name in sets:
        if set_name not in FEATURE_SETS:
            known = ", ".join(FEATURE_SETS)
            raise UserInputError(f"unknown feature set {set_name!r}; known sets: {known}")
        for group in FEATURE_SETS[set_name]:
            missing = sorted(set(group.inputs) - have)
            if missing:
                raise UserInputError(
                    f"feature set {set_name!r} needs columns {missing} that the data lacks; "
                    f"found {sorted(have)}"
                )
            chosen.append(group)
    return chosen


def list_features(sets: Iterable[str] | None = None) -> list[dict[str, object]]:
    """Describe registered features, one row per feature.

    Parameters
    ----------
    sets
        Feature sets to list; all when ``None``.

    Returns
    -------
    list of dict
        Rows with keys ``name``, ``set``, ``warmup`` (bars), ``inputs`` (comma-separated
        column names) and ``description``, in output-column order.
    """
    wanted = None if sets is None else set(sets)
    return [
        {
            "name": feature.name,
            "set": feature.set,
            "warmup": feature.warmup,
            "inputs": ",".join(feature.inputs),
            "description": feature.description,
        }
        for feature in all_features()
        if wanted is None or feature.set in wanted
    ]

"""Features: named, leak-free functions of past candles; one definition for batch and live.

Importing this package registers the candle feature sets (``atomic``, ``indicators``, ``momentum``,
``alpha158``, ``alphas``, ``patterns``, ``regime``, ``multi_timeframe``) and the sets that also
need trades, book snapshots or funding rates put on the candle grid by
:func:`orderflow_columns` (``orderflow``, ``sentiment``).

>>> from tradebrain.features import compute_features, LiveFeatureEngine, list_features
"""

from tradebrain.features import (  # noqa: F401 - importing a set module registers it
    alpha158,
    alphas,
    atomic,
    indicators,
    momentum,
    multi_timeframe,
    orderflow,
    patterns,
    regime,
    sentiment,
)
from tradebrain.features.compute import compute_features
from tradebrain.features.live import LiveFeatureEngine
from tradebrain.features.orderflow_inputs import ORDERFLOW_COLUMNS, orderflow_columns
from tradebrain.features.registry import (
    CANDLE_INPUTS,
    FEATURE_SETS,
    Bars,
    ComputeFn,
    Feature,
    FeatureGroup,
    all_features,
    feature_group,
    list_features,
    register_group,
    unregister_set,
)

CANDLE_SETS = (
    "atomic",
    "indicators",
    "momentum",
    "alpha158",
    "alphas",
    "patterns",
    "regime",
    "multi_timeframe",
)
"""The feature sets computed from candles alone."""

__all__ = [
    "CANDLE_INPUTS",
    "CANDLE_SETS",
    "FEATURE_SETS",
    "ORDERFLOW_COLUMNS",
    "Bars",
    "ComputeFn",
    "Feature",
    "FeatureGroup",
    "LiveFeatureEngine",
    "all_features",
    "compute_features",
    "feature_group",
    "list_features",
    "orderflow_columns",
    "register_group",
    "unregister_set",
]

"""Models: one interface (scikit-learn conventions), three classes (down, flat, up).

Importing this package registers every built-in model in :data:`MODEL_CLASSES` (the torch nets
are declared there and imported on first use).
"""

from tradebrain.models.base import (
    CLASS_NAMES,
    CLASSES,
    MODEL_CLASSES,
    Model,
    NotFittedError,
    TrainingRecord,
    load_model,
    make_windows,
    register_model,
)

# Each module below registers its models on import; keep them after the base imports.
from tradebrain.models.baselines import LogisticModel, MomentumRuleModel, PatternRuleModel
from tradebrain.models.boosting import LightGBMModel, XGBoostModel
from tradebrain.models.calibration import CalibratedModel, TemperatureCalibrator

# The torch nets are declared, not imported: torch takes seconds to load, and most runs use
# none of them. MODEL_CLASSES["cnn"] imports tradebrain.models.nets (see ModelRegistry).
for _net in ("cnn", "tcn", "lstm", "transformer", "patchtst", "nhits"):
    MODEL_CLASSES.declare(_net, "tradebrain.models.nets")

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "MODEL_CLASSES",
    "CalibratedModel",
    "LightGBMModel",
    "LogisticModel",
    "Model",
    "MomentumRuleModel",
    "NotFittedError",
    "PatternRuleModel",
    "TemperatureCalibrator",
    "TrainingRecord",
    "XGBoostModel",
    "load_model",
    "make_windows",
    "register_model",
]

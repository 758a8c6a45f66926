"""Models: one interface (scikit-learn conventions), three classes (down, flat, up).

Importing this package registers every built-in model in :data:`MODEL_CLASSES`.
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
from tradebrain.models.nets import NET_MODELS

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "MODEL_CLASSES",
    "NET_MODELS",
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

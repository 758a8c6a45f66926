"""Models: one interface (scikit-learn conventions), three classes (down, flat, up)."""

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

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "MODEL_CLASSES",
    "Model",
    "NotFittedError",
    "TrainingRecord",
    "load_model",
    "make_windows",
    "register_model",
]

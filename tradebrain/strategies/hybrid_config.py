"""How a hybrid run retrains and what it learns from: segments, history, models, features.

Backtests, ablations, stress tests, the demo and the trading service all build their
:class:`HybridConfig` from the settings (:meth:`HybridConfig.from_settings`), so one setting has
one effect everywhere; a command-line flag overrides the setting for that run. A research run
carries it inside its :class:`~tradebrain.research.hybrid_request.HybridRequest` (the market and
every other setting of the run).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from tradebrain.config import FeatureSettings, LearningSettings, ModelSettings, Settings
from tradebrain.exceptions import UserInputError
from tradebrain.labels import LabelKind
from tradebrain.models.forecast import ForecastSettings

# The defaults are the settings' own (one source): a HybridConfig() equals
# HybridConfig.from_settings(Settings()) apart from the forecast's costs and bars.
_LEARNING, _MODELS = LearningSettings(), ModelSettings()
DEFAULT_HYBRID_MODELS = tuple(_MODELS.enabled)
DEFAULT_HYBRID_SETS = tuple(FeatureSettings().sets)


@dataclass(frozen=True)
class HybridConfig:
    """How the hybrid strategy retrains: segments, history, models, features and forecast.

    Attributes
    ----------
    retrain_every
        Candles between retrains (each retrain starts a segment).
    min_train
        Candles of history before the first trade.
    max_train
        Most candles a retrain learns from (the newest; None: all history before it).
    models, feature_sets
        Models trained, and the feature sets offered to them (the brain reads its own
        regime features besides).
    label, label_parameters
        Targets the classifiers learn, at each horizon the forecast tries.
    window, seed, model_params
        Sequence-model window, seed of every model, constructor overrides per model.
    forecast
        Horizons, feature selection and the costs the horizon is valued with.
    """

    retrain_every: int = _LEARNING.retrain_every_bars
    min_train: int = _LEARNING.min_train_bars
    max_train: int | None = _LEARNING.max_train_bars
    models: tuple[str, ...] = DEFAULT_HYBRID_MODELS
    feature_sets: tuple[str, ...] = DEFAULT_HYBRID_SETS
    label: LabelKind = "direction"
    label_parameters: dict[str, Any] = field(default_factory=lambda: {"dead_zone": 0.0})
    window: int = _MODELS.window
    seed: int = _MODELS.seed
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    forecast: ForecastSettings = field(default_factory=ForecastSettings)

    def __post_init__(self) -> None:
        if self.retrain_every < 1 or self.min_train < 1:
            raise UserInputError("--retrain-every and --min-train must be at least 1")
        if self.max_train is not None and self.max_train < 500:
            raise UserInputError(f"max_train must be at least 500 candles; got {self.max_train}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> HybridConfig:
        """Return the configuration the settings ask for; ``overrides`` that are not None win."""
        models, learning, execution, brain = (
            settings.models,
            settings.learning,
            settings.execution,
            settings.brain,
        )
        forecast = ForecastSettings(
            horizons=tuple(models.horizons),
            max_features=models.max_features,
            cost_per_side=execution.taker_fee + execution.slippage_bps / 1e4,
            entry_cost_multiple=brain.entry_cost_multiple,
            exit_cost_multiple=brain.exit_cost_multiple,
        )
        config = cls(
            retrain_every=learning.retrain_every_bars,
            min_train=learning.min_train_bars,
            max_train=learning.max_train_bars,
            models=tuple(models.enabled),
            feature_sets=tuple(settings.features.sets),
            window=models.window,
            seed=models.seed,
            model_params=_thread_params(models.enabled, models.torch_threads),
            forecast=forecast,
        )
        chosen = {key: value for key, value in overrides.items() if value is not None}
        if "horizons" in chosen:
            forecast = replace(forecast, horizons=tuple(chosen.pop("horizons")))
            chosen["forecast"] = forecast
        return replace(config, **chosen)

    def evaluation_settings(self) -> Any:
        """Return the :class:`EvaluationSettings` each segment's models are trained with."""
        from tradebrain.evaluation.walk_forward import EvaluationSettings
        from tradebrain.labels import LabelSettings

        return EvaluationSettings(
            label=LabelSettings(
                self.label, min(self.forecast.horizons), dict(self.label_parameters)
            ),
            models=self.models,
            window=self.window,
            seed=self.seed,
            model_params=self.model_params,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-ready dict, for reports."""
        return {
            "retrain_every": self.retrain_every,
            "min_train": self.min_train,
            "max_train": self.max_train,
            "models": list(self.models),
            "feature_sets": list(self.feature_sets),
            "horizons": list(self.forecast.horizons),
            "max_features": self.forecast.max_features,
            "seed": self.seed,
        }


def _thread_params(models: list[str], threads: int) -> dict[str, dict[str, Any]]:
    """Return the thread count of every model that takes one (``models.torch_threads``)."""
    from tradebrain.models.base import MODEL_CLASSES

    return {
        name: {"threads": threads}
        for name in models
        if name in MODEL_CLASSES and MODEL_CLASSES[name].takes_torch_threads
    }

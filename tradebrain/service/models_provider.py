"""The model provider: the bundle a service trades with, loaded or trained once.

:meth:`ModelProvider.provide` loads the bundle ``--models`` names, else the service's own bundle
saved beside its state, else trains one on the warm-up history and saves it there (so a
restart loads it instead of training again).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from tradebrain.config import Settings


class ModelProvider:
    """Loads or trains the model bundle of a service.

    Parameters
    ----------
    models
        A bundle folder to load (``--models``), or None.
    model_dir
        The service's own bundle folder (beside its state).
    settings
        The application settings (what to train when there is nothing to load).
    source
        Names the training data in the bundle's manifest (the feed's name).
    progress
        Told what is happening (loading, training).

    Attributes
    ----------
    bundle_dir
        Where the bundle provided is saved (prediction workers load it), None before.
    trained_at
        The end of the bundle's training data (ISO text), None before.
    """

    def __init__(
        self,
        models: Path | None,
        model_dir: Path,
        settings: Settings,
        *,
        source: str,
        progress: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.models = models
        self.model_dir = model_dir
        self.settings = settings
        self.source = source
        self.progress = progress
        self.bundle_dir: Path | None = None
        self.trained_at: str | None = None

    def provide(self, history: pl.DataFrame) -> Any:
        """Return the bundle (a :class:`~tradebrain.models.bundle.ModelBundle`)."""
        from tradebrain.models.bundle import ModelBundle

        if self.models is not None:
            self.progress(f"loading models from {self.models}")
            return self._loaded(ModelBundle.load(self.models), self.models)
        if (self.model_dir / "manifest.json").exists():
            self.progress(f"loading the service's models from {self.model_dir}")
            return self._loaded(ModelBundle.load(self.model_dir), self.model_dir)
        return self._train(history)

    def _loaded(self, bundle: Any, folder: Path) -> Any:
        self.trained_at = str(bundle.manifest.get("data_end"))
        self.bundle_dir = folder
        return bundle

    def _train(self, history: pl.DataFrame) -> Any:
        from tradebrain.features import compute_features
        from tradebrain.learning.forecaster import train_forecaster
        from tradebrain.strategies.hybrid_config import HybridConfig

        config = HybridConfig.from_settings(self.settings)
        self.progress(f"training {', '.join(config.models)} on {history.height} warm-up candles")
        features = compute_features(history, list(config.feature_sets))
        bundle = train_forecaster(
            history, features, config.evaluation_settings(), config.forecast,
            feature_sets=list(config.feature_sets), source=f"{self.source} warm-up",
        )  # fmt: skip
        bundle.save(self.model_dir)
        return self._loaded(bundle, self.model_dir)

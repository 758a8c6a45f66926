"""Learning: training the models a strategy trades with, and keeping track of them.

Modules (import them directly; this package imports none of them):

- :mod:`~tradebrain.learning.forecaster`: train one window's forecast (:func:`train_forecaster`).
- :mod:`~tradebrain.learning.bundle_training`: train a plain, uncalibrated model bundle quickly.
- :mod:`~tradebrain.learning.registry`: the MLflow model registry of bundles, promotion, audit.
- :mod:`~tradebrain.learning.lineage`: a bundle's lineage (data hash, settings, seed, code).
- :mod:`~tradebrain.learning.experience`: the experience log of a run, exported as Parquet.
- :mod:`~tradebrain.learning.dataset`: training sets from what a run lived through, no lookahead.
- :mod:`~tradebrain.learning.executor`: where fan-out work runs (process pool, Ray, or inline).
- :mod:`~tradebrain.learning.fan_out`: retrain many symbols at once, one job per symbol.
- :mod:`~tradebrain.learning.study`: hyper-parameter studies (Optuna TPE), judged after costs.
"""

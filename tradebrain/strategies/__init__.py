"""Strategies: the built-in reference strategies and the ``hybrid`` (features -> models -> brain).

A strategy satisfies :class:`~tradebrain.engine.strategy.Strategy`; the engine runs it.
:mod:`~tradebrain.strategies.builtin` holds the registry that finds a strategy by name,
:mod:`~tradebrain.strategies.hybrid` the hybrid (and :mod:`~tradebrain.strategies.hybrid_fast`
its compiled twin), :mod:`~tradebrain.strategies.live_signals` its live inputs and
:mod:`~tradebrain.strategies.hybrid_config` how a hybrid run retrains
(the walk-forward part of :class:`~tradebrain.research.hybrid_request.HybridRequest`).
"""

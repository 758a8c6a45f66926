"""Research on the engine: walk-forward hybrid backtests, ablation, stress tests and reports.

These run the engine (never the other way round), each on one
:class:`~tradebrain.research.hybrid_request.HybridRequest` (the market and the settings of the
run, built from the settings): :mod:`~tradebrain.research.walk_forward_backtest`
retrains segment by segment, :mod:`~tradebrain.research.ablation` prices each part of the brain
in money, :mod:`~tradebrain.research.stress` forces crashes and cost shocks,
:mod:`~tradebrain.research.bundle_replay` replays one trained bundle, and
:mod:`~tradebrain.research.backtest_report` writes the report.
"""

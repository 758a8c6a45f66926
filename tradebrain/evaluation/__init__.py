"""Honest evaluation: walk-forward splits, classification metrics, and overfitting statistics.

>>> from tradebrain.evaluation import WalkForwardSplitter, classification_report
"""

from tradebrain.evaluation.metrics import (
    accuracy,
    balanced_accuracy,
    brier_score,
    classification_report,
    directional_accuracy,
    expected_calibration_error,
    information_coefficient,
    log_loss,
    macro_auc,
    naive_baselines,
)
from tradebrain.evaluation.splits import Fold, WalkForwardSplitter, reindex_label_end
from tradebrain.evaluation.statistics import (
    BacktestOverfitting,
    SharpeStatistics,
    TrialLedger,
    config_hash,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    minimum_track_record_length,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_statistics,
)

__all__ = [
    "BacktestOverfitting",
    "Fold",
    "SharpeStatistics",
    "TrialLedger",
    "WalkForwardSplitter",
    "accuracy",
    "balanced_accuracy",
    "brier_score",
    "classification_report",
    "config_hash",
    "deflated_sharpe_ratio",
    "directional_accuracy",
    "expected_calibration_error",
    "expected_maximum_sharpe",
    "information_coefficient",
    "log_loss",
    "macro_auc",
    "minimum_track_record_length",
    "naive_baselines",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "reindex_label_end",
    "sharpe_statistics",
]

"""Three-class metrics agree with scikit-learn, stay NaN-safe, and baselines never peek ahead."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as sk

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
    rank_ic,
    reliability_table,
)
from tradebrain.exceptions import UserInputError


def random_predictions(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (n, 3) probabilities and (n,) labels that are somewhat related."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3)) + 0.8 * np.eye(3)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return proba, y


def test_metrics_agree_with_scikit_learn() -> None:
    proba, y = random_predictions(500, seed=0)
    predicted = proba.argmax(axis=1)
    assert accuracy(proba, y) == pytest.approx(sk.accuracy_score(y, predicted))
    assert balanced_accuracy(proba, y) == pytest.approx(sk.balanced_accuracy_score(y, predicted))
    assert macro_auc(proba, y) == pytest.approx(
        sk.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert log_loss(proba, y) == pytest.approx(sk.log_loss(y, proba))
    one_hot = np.eye(3)[y]
    assert brier_score(proba, y) == pytest.approx(np.mean(np.sum((proba - one_hot) ** 2, 1)))


def test_perfect_predictions_score_perfectly() -> None:
    y = np.array([0, 1, 2, 2, 0, 1])
    proba = np.eye(3)[y]
    report = classification_report(proba, y)
    assert report["accuracy"] == report["balanced_accuracy"] == report["auc"] == 1.0
    assert report["brier"] == 0.0 and report["ece"] == 0.0
    assert report["log_loss"] < 1e-12
    assert report["directional_accuracy"] == 1.0 and report["n_directional"] == 4.0


def test_a_class_absent_from_the_labels_is_left_out_not_scored_as_zero() -> None:
    proba, _ = random_predictions(60, seed=1)
    y = np.resize([0, 2], 60)  # no flat row
    expected_auc = np.mean(
        [sk.roc_auc_score(y == k, proba[:, k]) for k in (0, 2)]
    )  # flat has no positive rows to rank
    assert macro_auc(proba, y) == pytest.approx(expected_auc)
    recalls = [np.mean(proba.argmax(1)[y == k] == k) for k in (0, 2)]
    assert balanced_accuracy(proba, y) == pytest.approx(np.mean(recalls))
    only_flat = np.ones(60, dtype=np.int64)
    assert math.isnan(macro_auc(proba, only_flat))
    assert math.isnan(directional_accuracy(proba, only_flat)["directional_accuracy"])


def test_no_rows_give_nan_metrics_and_zero_counts() -> None:
    report = classification_report(np.empty((0, 3)), np.empty(0, dtype=np.int64))
    assert report["n"] == 0.0 and report["n_directional"] == 0.0
    assert all(math.isnan(v) for k, v in report.items() if not k.startswith("n"))


def test_expected_calibration_error_weighs_each_bin_by_its_rows() -> None:
    proba = np.array([[0.9, 0.05, 0.05]] * 4 + [[0.2, 0.2, 0.6]] * 6)
    y = np.array([0, 0, 0, 1, 2, 2, 2, 0, 0, 0])
    # bin 0.9: accuracy 0.75 vs 0.9 -> 0.15 over 4 rows; bin 0.6: 0.5 vs 0.6 -> 0.1 over 6
    assert expected_calibration_error(proba, y) == pytest.approx(0.4 * 0.15 + 0.6 * 0.1)


def test_a_confidence_of_one_falls_in_the_top_bin() -> None:
    assert expected_calibration_error(np.array([[0.0, 0.0, 1.0]]), np.array([1])) == 1.0


def test_information_coefficient_ranks_the_up_minus_down_score_against_returns() -> None:
    proba = np.array([[0.6, 0.2, 0.2], [0.3, 0.4, 0.3], [0.1, 0.3, 0.6], [0.2, 0.2, 0.6]])
    returns = np.array([-0.02, 0.0, 0.01, np.nan])
    assert information_coefficient(proba, returns) == pytest.approx(1.0)
    assert math.isnan(information_coefficient(proba, np.zeros(4)))


def test_directional_accuracy_scores_up_down_calls_on_moving_rows_and_ties_as_half() -> None:
    proba = np.array(
        [[0.1, 0.2, 0.7], [0.1, 0.8, 0.1], [0.5, 0.0, 0.5], [0.6, 0.1, 0.3], [0.3, 0.4, 0.3]]
    )
    y = np.array([2, 0, 2, 2, 1])  # row 1 leans neither way; row 4 is flat and left out
    result = directional_accuracy(proba, y)
    assert result["n_directional"] == 4.0
    assert result["directional_accuracy"] == pytest.approx((1 + 0.5 + 0.5 + 0) / 4)
    assert result["directional_accuracy_se"] == pytest.approx(math.sqrt(0.5 * 0.5 / 4))


def test_persistence_predicts_with_the_label_known_h_rows_earlier_not_the_previous_one() -> None:
    y_test = np.array([2, 2, 0, 0, 2, 2, 0, 0])
    y_before = np.array([0, 0])
    baselines = naive_baselines(np.array([1, 1, 2]), y_test, horizon=2, y_before_test=y_before)
    # predictions: 0 0 2 2 0 0 2 2 -> all wrong; a previous-row forecast would score 4/8
    assert baselines["persistence"]["accuracy"] == 0.0
    assert baselines["majority"]["accuracy"] == pytest.approx(0.0)  # majority is flat
    # the prior (0, 2/3, 1/3) gives up rows 1/3 and down rows nothing (clipped to 1e-15)
    expected_log_loss = (math.log(3) - math.log(1e-15)) / 2
    assert baselines["majority"]["log_loss"] == pytest.approx(expected_log_loss)


def test_persistence_without_earlier_labels_falls_back_to_the_majority_class() -> None:
    baselines = naive_baselines(np.array([2, 2, 1]), np.array([2, 0, 0]), horizon=1)
    assert baselines["persistence"]["accuracy"] == pytest.approx(2 / 3)  # 2, then 2, then 0
    assert set(baselines["majority"]) == set(classification_report(np.eye(3)[[0]], np.array([0])))


def test_metrics_refuse_inputs_that_are_not_probabilities_or_labels() -> None:
    with pytest.raises(UserInputError, match="sum to 1"):
        accuracy(np.full((2, 3), 0.5), np.array([0, 1]))
    with pytest.raises(UserInputError, match=r"\(n, 3\)"):
        accuracy(np.full((2, 2), 0.5), np.array([0, 1]))
    with pytest.raises(UserInputError, match="NaN"):
        accuracy(np.eye(3)[[0, 1]], np.array([0.0, np.nan]))
    with pytest.raises(UserInputError, match="rows"):
        accuracy(np.eye(3)[[0, 1]], np.array([0]))


@given(seed=st.integers(0, 10_000), n=st.integers(1, 300), bins=st.integers(1, 12))
def test_the_reliability_table_adds_up_to_the_calibration_error(
    seed: int, n: int, bins: int
) -> None:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet((1.0, 1.0, 1.0), n)
    y = rng.integers(0, 3, n)
    table = reliability_table(proba, y, bins)
    assert sum(row["count"] for row in table) == n
    gaps = sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in table) / n
    assert gaps == pytest.approx(expected_calibration_error(proba, y, bins), abs=1e-12)
    assert all(1 / 3 - 1e-12 <= row["confidence"] <= 1.0 for row in table)


def test_rank_ic_leaves_out_missing_rows_and_is_nan_without_spread() -> None:
    score = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    returns = np.array([0.1, 0.2, 0.3, np.nan, 0.5])
    assert rank_ic(score, returns) == pytest.approx(1.0)
    assert math.isnan(rank_ic(np.ones(5), returns))

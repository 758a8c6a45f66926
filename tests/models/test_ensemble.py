"""The ensemble: confident models count more; consensus decides whether to act."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tradebrain.exceptions import UserInputError
from tradebrain.models.ensemble import EnsembleManager

UP = np.array([[0.1, 0.2, 0.7]])
DOWN = np.array([[0.7, 0.2, 0.1]])
FLAT = np.array([[0.2, 0.6, 0.2]])
UNSURE_DOWN = np.array([[0.36, 0.32, 0.32]])


def test_most_models_agreeing_gives_high_consensus_and_their_action() -> None:
    result = EnsembleManager().combine({"a": UP, "b": UP, "c": DOWN})
    assert result.consensus[0] == "high"
    assert result.action[0] == 2
    assert result.confidence[0] == pytest.approx(result.proba[0, 2])


def test_an_even_split_gives_medium_consensus_and_half_the_confidence() -> None:
    result = EnsembleManager().combine({"a": UP, "b": DOWN})
    assert result.consensus[0] == "medium"
    assert result.confidence[0] == pytest.approx(0.5 * result.proba[0, result.action[0]])


def test_no_agreement_means_hold() -> None:
    result = EnsembleManager().combine({"a": UP, "b": DOWN, "c": FLAT})
    assert result.consensus[0] == "none"
    assert result.action[0] == 1
    assert result.confidence[0] == 0.0


def test_a_barely_convinced_model_hardly_moves_the_average() -> None:
    result = EnsembleManager().combine({"sure": UP, "unsure": UNSURE_DOWN})
    plain_average = (0.7 + 0.32) / 2
    assert result.proba[0, 2] > 0.65 > plain_average  # close to the sure model's 0.7


def test_weights_shift_the_average_toward_the_trusted_model() -> None:
    trusted_up = EnsembleManager({"a": 10.0, "b": 1.0}).combine({"a": UP, "b": DOWN})
    assert trusted_up.proba[0, 2] > trusted_up.proba[0, 0]


def test_bad_inputs_are_refused_with_a_reason() -> None:
    with pytest.raises(UserInputError, match="at least one model"):
        EnsembleManager().combine({})
    with pytest.raises(UserInputError, match=r"\(n, 3\)"):
        EnsembleManager().combine({"a": np.ones((4, 2)) / 2})
    with pytest.raises(UserInputError, match=">= 0"):
        EnsembleManager({"a": -1.0}).combine({"a": UP})


def _probabilities(rows: int) -> st.SearchStrategy[np.ndarray]:
    raw = arrays(np.float64, (rows, 3), elements=st.floats(0.01, 1.0))
    return raw.map(lambda a: a / a.sum(axis=1, keepdims=True))


@settings(max_examples=50, deadline=None)
@given(models=st.integers(1, 5), data=st.data())
def test_the_ensemble_always_gives_probabilities_and_a_valid_action(
    models: int, data: st.DataObject
) -> None:
    probas = {f"m{i}": data.draw(_probabilities(6)) for i in range(models)}
    result = EnsembleManager().combine(probas)
    assert np.allclose(result.proba.sum(axis=1), 1.0)
    assert ((result.proba >= 0) & (result.proba <= 1)).all()
    assert set(result.action) <= {0, 1, 2}
    assert ((result.confidence >= 0) & (result.confidence <= 1)).all()
    unanimous = EnsembleManager().combine({f"m{i}": probas["m0"] for i in range(models)})
    assert (unanimous.action == probas["m0"].argmax(axis=1)).all()

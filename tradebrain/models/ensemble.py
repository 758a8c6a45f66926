"""The ensemble manager: confidence-weighted voting with consensus rules.

Each model votes for its most probable class. Its probabilities count in the average in
proportion to its weight (set by the caller, e.g. from validation skill) times its confidence,
``(max p - 1/3) / (2/3)``: a model that barely prefers a class barely counts. Consensus is read
from the votes:

- **high** — most models (more than half) vote for the same class;
- **medium** — an even split: the largest group holds exactly half of the votes;
- **none** — no class has half of the votes; the ensemble holds (action = flat).

The ensemble's probabilities are the confidence-weighted average in every case, so they stay
proper probabilities for log loss and calibration; the consensus rule acts on the action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tradebrain.exceptions import UserInputError
from tradebrain.models.base import FLAT

CONSENSUS_LEVELS = ("none", "medium", "high")
_MIN_WEIGHT = 1e-6  # keeps the average defined when every model is indifferent


@dataclass(frozen=True)
class EnsembleResult:
    """The ensemble's view of ``n`` rows.

    Attributes
    ----------
    proba
        (n, 3) confidence-weighted average probabilities (down, flat, up).
    action
        (n,) class to act on: the most probable class, or flat without consensus.
    confidence
        (n,) probability of ``action`` scaled by the consensus: 1× high, 0.5× medium, 0× none.
    consensus
        (n,) ``"high"``, ``"medium"`` or ``"none"``.
    votes
        Model name -> (n,) class each model voted for.
    """

    proba: np.ndarray
    action: np.ndarray
    confidence: np.ndarray
    consensus: np.ndarray
    votes: dict[str, np.ndarray]


class EnsembleManager:
    """Combine the probabilities of several models into one decision per row.

    Parameters
    ----------
    weights
        Model name -> non-negative weight; models not named weigh 1.
    """

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        self.weights = dict(weights or {})

    def combine(self, probas: Mapping[str, np.ndarray]) -> EnsembleResult:
        """Combine ``{model name: (n, 3) probabilities}`` row by row."""
        if not probas:
            raise UserInputError("the ensemble needs the predictions of at least one model")
        names = list(probas)
        stack = np.stack([np.asarray(probas[name], dtype=np.float64) for name in names])
        if stack.ndim != 3 or stack.shape[2] != 3:
            raise UserInputError(
                f"each model must give (n, 3) probabilities; got {stack.shape[1:]}"
            )
        weights = np.array([self.weights.get(name, 1.0) for name in names], dtype=np.float64)
        if (weights < 0).any():
            raise UserInputError(f"ensemble weights must be >= 0; got {self.weights}")

        confidence = (stack.max(axis=2) - 1.0 / 3.0) / (2.0 / 3.0)  # (m, n) in [0, 1]
        strength = weights[:, None] * np.clip(confidence, 0.0, 1.0) + _MIN_WEIGHT
        proba = (strength[:, :, None] * stack).sum(axis=0) / strength.sum(axis=0)[:, None]

        votes = stack.argmax(axis=2)  # (m, n)
        counts = np.stack([(votes == c).sum(axis=0) for c in range(3)], axis=1)  # (n, 3)
        share = counts.max(axis=1) / len(names)
        consensus = np.where(share > 0.5, "high", np.where(share == 0.5, "medium", "none"))
        action = np.where(consensus == "none", FLAT, proba.argmax(axis=1))
        scale = np.select([consensus == "high", consensus == "medium"], [1.0, 0.5], 0.0)
        chosen = proba[np.arange(proba.shape[0]), action]
        return EnsembleResult(
            proba=proba,
            action=action.astype(np.int64),
            confidence=chosen * scale,
            consensus=consensus,
            votes={name: votes[i] for i, name in enumerate(names)},
        )

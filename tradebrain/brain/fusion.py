"""The meta-reasoner: fuse model votes with weights that adapt to the regime.

Families and their weights
--------------------------
Every vote belongs to a family, named by the model (``FAMILY_KEYWORDS``, first match wins):

===========  ==========================================  ===================================
family       models                                      configured weight (BrainSettings)
===========  ==========================================  ===================================
sequence     lstm, tcn, transformer, patchtst, nhits     ``sequence`` (0.25), shared with
                                                         tabular
tabular      logistic, lightgbm, xgboost, and any model  ``sequence`` (0.25), shared with
             whose name matches no family                sequence
cnn          cnn                                         ``cnn`` (0.20)
order_flow   orderflow / order_flow models, or the vote  ``order_flow`` (0.30)
             the brain derives from order-flow features
rl           rl, ppo, dqn                                ``rl`` (0.15)
risk         the brain's own vote for flat, as confident ``risk`` (0.10)
             as the market is dangerous
===========  ==========================================  ===================================

Tabular and sequence models do the same job — forecast the next move from past candles — so
they draw on one budget, the ``sequence`` weight: when both are present each family gets half
of it, when one is present it gets all of it. The risk family votes flat with a confidence
equal to the danger in [0, 1] (:func:`risk_vote`); in a calm market (danger 0) it is silent and
takes nothing from the models.

Each family weight is multiplied by the regime's tilt (``REGIME_TILTS``: trend -> sequence x2,
range -> order flow x2, high volatility -> CNN and RL x2, breakout -> order flow x2) and by the
confidence ``(max p - 1/3) / (2/3)`` of the family's average vote, then the weights of the
families that voted are scaled to sum to 1. Within a family, models also count in proportion to
their confidence. This is the ensemble manager's rule — a vote that barely prefers a class
barely counts — so a family with nothing to say (an order book in balance) does not drag the
others toward indifference; among equally confident families the configured weights hold
exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from tradebrain.brain.regime import Regime
from tradebrain.config import FusionWeights

Vote = tuple[float, float, float]
"""(p_down, p_flat, p_up)."""

FAMILIES = ("sequence", "tabular", "cnn", "order_flow", "rl", "risk")
FAMILY_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("order_flow", ("orderflow", "order_flow")),
    ("sequence", ("lstm", "tcn", "transformer", "patchtst", "nhits", "gru")),
    ("cnn", ("cnn",)),
    ("rl", ("ppo", "dqn", "rl_", "_rl", "qlearn")),
    ("tabular", ("logistic", "lightgbm", "lgbm", "xgboost", "xgb", "forest")),
)
REGIME_TILTS: dict[Regime, dict[str, float]] = {
    Regime.TRENDING_UP: {"sequence": 2.0},
    Regime.TRENDING_DOWN: {"sequence": 2.0},
    Regime.RANGING: {"order_flow": 2.0},
    Regime.BREAKOUT: {"order_flow": 2.0},
    Regime.HIGH_VOLATILITY: {"cnn": 2.0, "rl": 2.0},
}
"""Multipliers of family weights by regime; a family not named keeps x1."""
_MIN_STRENGTH = 1e-6  # keeps a family's average defined when every member is indifferent


def family_of(model: str) -> str:
    """Return the family of a model from its name (case-insensitive; ``tabular`` if unknown)."""
    name = model.lower()
    if name == "rl":
        return "rl"
    for family, keywords in FAMILY_KEYWORDS:
        if any(word in name for word in keywords):
            return family
    return "tabular"


def clean_vote(vote: object) -> Vote | None:
    """Return ``vote`` as probabilities summing to 1, or None when it is not a usable vote."""
    try:
        values = [float(p) for p in vote]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    if len(values) != 3 or not all(math.isfinite(p) and p >= 0 for p in values):
        return None
    total = sum(values)
    if total <= 0:
        return None
    return (values[0] / total, values[1] / total, values[2] / total)


def risk_vote(danger: float) -> Vote:
    """Return the risk family's vote: flat with confidence ``danger`` (uniform at 0, flat at 1)."""
    return ((1.0 - danger) / 3.0, (1.0 + 2.0 * danger) / 3.0, (1.0 - danger) / 3.0)


def vote_confidence(vote: Vote) -> float:
    """Return how far a vote is from indifference: ``(max p - 1/3) / (2/3)`` in [0, 1]."""
    return min(1.0, max(0.0, (max(vote) - 1.0 / 3.0) * 1.5))


@dataclass(frozen=True, slots=True)
class Fusion:
    """The fused view of one candle.

    Attributes
    ----------
    proba
        (p_down, p_flat, p_up), summing to 1.
    family_weights
        Family -> weight actually used: configured x regime tilt x confidence, scaled to sum
        to 1 over the families that voted.
    family_votes
        Family -> the confidence-weighted average vote of its members.
    reasons
        Plain-language account of the weights and the result.
    tilt
        Family -> multiplier the regime applied to its weight (empty when none).
    """

    proba: Vote
    family_weights: dict[str, float]
    family_votes: dict[str, Vote]
    reasons: tuple[str, ...]
    tilt: dict[str, float] = field(default_factory=dict)

    @property
    def edge(self) -> float:
        """p_up - p_down, in [-1, 1]."""
        return self.proba[2] - self.proba[0]


def base_family_weights(weights: FusionWeights, present: set[str]) -> dict[str, float]:
    """Return the configured weight of each family, with tabular sharing the sequence budget."""
    shared = weights.sequence / (2 if {"sequence", "tabular"} <= present else 1)
    return {
        "sequence": shared,
        "tabular": shared,
        "cnn": weights.cnn,
        "order_flow": weights.order_flow,
        "rl": weights.rl,
        "risk": weights.risk,
    }


def fuse(
    votes: Mapping[str, Vote],
    regime: Regime,
    weights: FusionWeights,
    *,
    danger: float = 0.0,
    adapt_to_regime: bool = True,
) -> Fusion:
    """Fuse the votes of several models into one probability triple.

    Parameters
    ----------
    votes
        Model name -> (p_down, p_flat, p_up); already cleaned (see :func:`clean_vote`).
    regime
        The candle's regime, which tilts the family weights (``REGIME_TILTS``).
    weights
        The configured family weights (they sum to 1).
    danger
        In [0, 1]: how dangerous the market is; the risk family votes flat with this
        confidence (absent at 0).
    adapt_to_regime
        False keeps the configured weights whatever the regime (for ablations).

    Returns
    -------
    Fusion
        Uniform probabilities (1/3 each) when no model voted and danger is 0.
    """
    members: dict[str, list[tuple[float, Vote]]] = {}
    for model, vote in votes.items():
        members.setdefault(family_of(model), []).append((vote_confidence(vote), vote))
    danger = min(1.0, max(0.0, danger))
    if danger > 0:
        members.setdefault("risk", []).append((danger, risk_vote(danger)))
    family_votes = {family: _average(group) for family, group in members.items()}
    base = base_family_weights(weights, set(family_votes))
    tilt = REGIME_TILTS.get(regime, {}) if adapt_to_regime else {}
    tilt = {family: m for family, m in tilt.items() if family in family_votes}
    raw = {
        family: base[family] * tilt.get(family, 1.0) * (vote_confidence(vote) + _MIN_STRENGTH)
        for family, vote in family_votes.items()
    }
    total = sum(raw.values())
    if total <= 0:
        return Fusion(
            (1 / 3, 1 / 3, 1 / 3),
            {},
            family_votes,
            ("fusion: no family with weight voted; uniform view",),
        )
    used = {family: w / total for family, w in sorted(raw.items())}
    proba = tuple(sum(used[f] * family_votes[f][k] for f in used) for k in range(3))
    fused: Vote = (proba[0], proba[1], proba[2])
    tilt_words = ", ".join(f"{family} x{m:g}" for family, m in tilt.items()) if tilt else "none"
    reasons = (
        f"fusion ({regime.value} tilt: {tilt_words}): weights "
        + ", ".join(f"{family} {w:.2f}" for family, w in used.items())
        + f" -> p_down {fused[0]:.2f}, p_flat {fused[1]:.2f}, p_up {fused[2]:.2f}",
    )
    return Fusion(fused, used, family_votes, reasons, tilt)


def _average(group: list[tuple[float, Vote]]) -> Vote:
    strengths = [confidence + _MIN_STRENGTH for confidence, _ in group]
    total = sum(strengths)
    mean = [
        sum(s * vote[k] for s, (_, vote) in zip(strengths, group, strict=True)) / total
        for k in range(3)
    ]
    return (mean[0], mean[1], mean[2])


ORDER_FLOW_SIGNALS: tuple[tuple[str, float], ...] = (
    ("cvd_ratio_20", 0.2),
    ("book_imbalance_10", 0.2),
    ("pressure_imbalance_300s", 0.8),
)
"""Order-flow features and their typical size (about the 95th percentile of |value|)."""


def order_flow_vote(row: Mapping[str, float]) -> tuple[Vote, str] | None:
    """Derive a vote from order-flow features, or None when none of them is present.

    The score ``s`` in [-1, 1] is the mean of ``tanh(value / typical size)`` over
    ``cvd_ratio_20`` (taker buying minus selling), ``book_imbalance_10`` (resting bids minus
    asks) and ``pressure_imbalance_300s`` (recent taker pressure). The vote moves at most half
    of the probability mass toward the side of ``s``::

        p_up = 1/3 + s+/3 - s-/6,   p_down = 1/3 + s-/3 - s+/6,   p_flat = 1/3 - |s|/6

    so a unanimous order book gives at most 2/3 to one side.
    """
    parts = []
    for name, scale in ORDER_FLOW_SIGNALS:
        value = row.get(name)
        if value is not None and math.isfinite(float(value)):
            parts.append(math.tanh(float(value) / scale))
    if not parts:
        return None
    score = sum(parts) / len(parts)
    buying, selling = max(score, 0.0), max(-score, 0.0)
    vote: Vote = (
        1 / 3 + selling / 3 - buying / 6,
        1 / 3 - abs(score) / 6,
        1 / 3 + buying / 3 - selling / 6,
    )
    return vote, f"order-flow vote from {len(parts)} features: score {score:+.2f}"

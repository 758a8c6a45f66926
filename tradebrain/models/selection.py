"""Feature selection inside one training window: clustered, stable, single-feature importance.

A weak edge drowns when hundreds of features are offered to a model trained on a few thousand
rows: each noisy feature earns a few splits by chance. :func:`select_features` keeps a short
list, looking only at the training rows it is given (callers pass rows purged against whatever
they test on):

1. **Single-feature importance (SFI).** Each feature's rank correlation with the target (the
   forward return in units of volatility) over the training rows — its information
   coefficient, measured one feature at a time so correlated features do not share credit
   (López de Prado, *Advances in Financial Machine Learning*, ch. 8).
2. **Stability.** The rows are cut into ``blocks`` consecutive blocks; a feature whose IC has
   the same sign as its overall IC in fewer than half of them is dropped as unstable. The
   reported stability is the share of blocks that agree.
3. **Clusters.** Features correlated above ``cluster_corr`` (absolute Spearman) with a stronger
   feature join its cluster and are not kept: ten versions of the same momentum count once.
4. **A cap** of ``max_features``, strongest clusters first.

The result names every kept feature, its IC, its stability and the features of its cluster,
for the report and the model bundle's manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradebrain.exceptions import UserInputError


@dataclass(frozen=True)
class FeatureSelection:
    """The features kept in one training window, and why.

    Attributes
    ----------
    names
        Kept features, strongest first.
    importance
        Kept feature -> its information coefficient (rank correlation with the target).
    stability
        Kept feature -> share of training blocks whose IC has the same sign.
    clusters
        Kept feature -> the features it stands for (correlated above the threshold).
    considered
        How many features were offered.
    dropped
        Feature left out -> why (``"unstable"``, ``"no signal"``, ``"cluster of X"`` or
        ``"beyond the cap"``); not saved with :meth:`to_dict`.
    """

    names: tuple[str, ...]
    importance: dict[str, float]
    stability: dict[str, float]
    clusters: dict[str, list[str]] = field(default_factory=dict)
    considered: int = 0
    dropped: dict[str, str] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the selection as a JSON-ready dict (kept features in order)."""
        return {
            "considered": self.considered,
            "kept": [
                {
                    "feature": name,
                    "ic": self.importance[name],
                    "stability": self.stability[name],
                    "cluster": self.clusters.get(name, []),
                }
                for name in self.names
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSelection:
        """Rebuild a selection saved with :meth:`to_dict`."""
        kept = data.get("kept", [])
        return cls(
            names=tuple(row["feature"] for row in kept),
            importance={row["feature"]: float(row["ic"]) for row in kept},
            stability={row["feature"]: float(row["stability"]) for row in kept},
            clusters={row["feature"]: list(row["cluster"]) for row in kept},
            considered=int(data.get("considered", len(kept))),
        )


def rank_columns(X: np.ndarray) -> np.ndarray:
    """Return the ranks of each column of ``X`` (n, f), scaled to mean 0 (ties: order kept)."""
    ranks = np.argsort(np.argsort(X, axis=0, kind="stable"), axis=0, kind="stable")
    centred: np.ndarray = ranks.astype(np.float64) - (X.shape[0] - 1) / 2.0
    return centred


def _correlations(ranks: np.ndarray, target: np.ndarray) -> np.ndarray:
    spread = np.sqrt((ranks**2).sum(axis=0) * (target**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        ic = ranks.T @ target / spread
    return np.where(np.isfinite(ic), ic, 0.0)


def select_features(
    X: np.ndarray,
    target: np.ndarray,
    names: tuple[str, ...],
    *,
    max_features: int = 16,
    cluster_corr: float = 0.9,
    blocks: int = 4,
) -> FeatureSelection:
    """Choose at most ``max_features`` columns of ``X`` for predicting ``target``.

    Parameters
    ----------
    X
        (n, f) training features without NaN (impute first).
    target
        (n,) what the models will learn, e.g. forward returns in units of volatility; NaN rows
        are ignored.
    names
        The f column names.
    max_features
        Most features kept (>= 1).
    cluster_corr
        Absolute rank correlation above which a feature joins a stronger feature's cluster.
    blocks
        Consecutive blocks of rows for the stability check.
    """
    if X.ndim != 2 or X.shape[1] != len(names) or X.shape[0] != target.shape[0]:
        raise UserInputError(
            f"feature selection needs X (n, {len(names)}) and a target (n,); "
            f"got {X.shape} and {target.shape}"
        )
    if max_features < 1:
        raise UserInputError(f"max_features must be at least 1; got {max_features}")
    known = np.isfinite(target)
    X, target = X[known], target[known]
    n, f = X.shape
    if n < 4 * blocks or f == 0:
        return FeatureSelection(tuple(names[:max_features]), {}, {}, {}, f)
    ranks = rank_columns(X)
    target_ranks = rank_columns(target[:, None])[:, 0]
    ic = _correlations(ranks, target_ranks)
    agree = np.zeros(f)
    for part in np.array_split(np.arange(n), blocks):
        part_ic = _correlations(ranks[part] - ranks[part].mean(axis=0),
                                target_ranks[part] - target_ranks[part].mean())  # fmt: skip
        agree += np.sign(part_ic) == np.sign(ic)
    stability = agree / blocks
    dropped: dict[str, str] = {}
    candidates = []
    for j in np.argsort(-np.abs(ic), kind="stable").tolist():
        if abs(ic[j]) == 0.0:
            dropped[names[j]] = "no signal"
        elif stability[j] < 0.5:
            dropped[names[j]] = f"unstable (IC sign held in {stability[j]:.0%} of blocks)"
        else:
            candidates.append(j)
    scale = np.sqrt((ranks**2).sum(axis=0))
    scale[scale == 0] = 1.0
    kept: list[int] = []
    clusters: dict[int, list[str]] = {}
    for j in candidates:
        leader = None
        for k in kept:
            corr = float(ranks[:, j] @ ranks[:, k] / (scale[j] * scale[k]))
            if abs(corr) >= cluster_corr:
                leader = k
                break
        if leader is not None:
            clusters[leader].append(names[j])
            dropped[names[j]] = f"cluster of {names[leader]}"
        elif len(kept) < max_features:
            kept.append(j)
            clusters[j] = []
        else:
            dropped[names[j]] = "beyond the cap"
    if not kept:  # nothing stable: keep the strongest so a model can still be trained
        kept = [int(np.argmax(np.abs(ic)))]
        clusters[kept[0]] = []
        dropped.pop(names[kept[0]], None)
    return FeatureSelection(
        names=tuple(names[j] for j in kept),
        importance={names[j]: float(ic[j]) for j in kept},
        stability={names[j]: float(stability[j]) for j in kept},
        clusters={names[j]: clusters[j] for j in kept},
        considered=f,
        dropped=dropped,
    )

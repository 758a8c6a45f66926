"""The panic-exit model: three transparent heads that say "get out now".

Each head scores one view of the market in [0, 1] from robust z-scores of its features against
a rolling history of past candles that the model keeps itself (the current candle is scored
before it joins the history, so nothing looks ahead):

=================  ====================================================================
head               features (direction that means panic)
=================  ====================================================================
micro-structure    ``spread_bps`` (up), ``price_impact_20`` (up, as log1p),
                   ``panic_proxy_20`` (up), ``depth_ratio_20`` (down: a thin book)
order flow         ``cvd_ratio_5`` (down: aggressive selling), ``volume_delta_share``
                   (down), ``vpin_50`` (up: toxic flow), ``trade_intensity_20`` (up)
sentiment          ``fear_proxy_24`` (up), ``funding_z_72`` (down: shorts paying)
=================  ====================================================================

A feature's z-score is ``(x - median) / (1.4826 * MAD)`` over the last ``window`` candles
(robust: one crash does not blind the model to the next); the median and MAD are refreshed
every ``refresh_every`` (10) candles, which keeps a candle's cost to a few microseconds. It scores
``clip((z - 2) / (5 - 2), 0, 1)`` — nothing within 2 robust sigmas, full at 5. A head is the
mean of its two strongest features (one extreme feature alone is half a head), and the panic
score is the weighted mean of the heads (micro-structure 0.5, order flow 0.35, sentiment 0.15).
At or above ``threshold`` (0.5) the brain exits everything.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

HEADS: dict[str, tuple[tuple[str, int], ...]] = {
    "micro-structure": (
        ("spread_bps", 1),
        ("price_impact_20", 1),
        ("panic_proxy_20", 1),
        ("depth_ratio_20", -1),
    ),
    "order flow": (
        ("cvd_ratio_5", -1),
        ("volume_delta_share", -1),
        ("vpin_50", 1),
        ("trade_intensity_20", 1),
    ),
    "sentiment": (("fear_proxy_24", 1), ("funding_z_72", -1)),
}
"""Head -> (feature, sign): sign +1 when a high value means panic, -1 when a low one does."""
_LOG_SCALED = frozenset({"price_impact_20"})  # heavy-tailed ratios, compared as log1p
_FEATURES = tuple(name for head in HEADS.values() for name, _ in head)
_SIGNS = np.array([sign for head in HEADS.values() for _, sign in head], dtype=np.float64)
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class PanicSettings:
    """The panic model's knobs (see the module docstring for why these values)."""

    window: int = 500
    min_history: int = 100
    z_start: float = 2.0
    z_full: float = 5.0
    head_weights: tuple[float, float, float] = (0.5, 0.35, 0.15)
    threshold: float = 0.5
    strongest: int = 2
    refresh_every: int = 10


@dataclass(frozen=True, slots=True)
class PanicReading:
    """The panic model's view of one candle.

    Attributes
    ----------
    score
        Weighted mean of the head scores, in [0, 1].
    heads
        Head name -> score in [0, 1].
    fired
        Whether ``score >= threshold``: exit everything.
    reasons
        One sentence for the combined score and one per head that scored, with its z-scores.
    """

    score: float
    heads: dict[str, float] = field(default_factory=dict)
    fired: bool = False
    reasons: tuple[str, ...] = ()


class PanicExitModel:
    """Score each candle for panic against the model's own rolling history of past candles.

    Parameters
    ----------
    settings
        Window, thresholds and head weights; the documented defaults when None.
    """

    def __init__(self, settings: PanicSettings | None = None) -> None:
        self.settings = settings or PanicSettings()
        self._history = np.full((self.settings.window, len(_FEATURES)), np.nan)
        self._count = 0
        self._median = np.zeros(len(_FEATURES))
        self._scale = np.zeros(len(_FEATURES))

    def update(self, row: Mapping[str, float]) -> PanicReading:
        """Score this candle's features, then add them to the history.

        Parameters
        ----------
        row
            Feature name -> value for one candle; missing features count as calm.

        Returns
        -------
        PanicReading
            Score 0 (and a reason saying so) until ``min_history`` candles have been seen.
        """
        values = np.array([_value(row, name) for name in _FEATURES], dtype=np.float64)
        s = self.settings
        if self._count < s.min_history:
            reading = PanicReading(
                0.0, reasons=(f"panic model warming up: {self._count} of {s.min_history} candles",)
            )
        else:
            reading = self._score(values)
        self._history[self._count % s.window] = values
        self._count += 1
        return reading

    def _score(self, values: np.ndarray) -> PanicReading:
        s = self.settings
        if (self._count - s.min_history) % s.refresh_every == 0:
            self._refresh_statistics()
        with np.errstate(all="ignore"):
            z = np.where(self._scale > 0, _SIGNS * (values - self._median) / self._scale, 0.0)
        z = np.nan_to_num(z, nan=0.0)
        points = np.clip((z - s.z_start) / (s.z_full - s.z_start), 0.0, 1.0)
        heads: dict[str, float] = {}
        head_reasons: list[str] = []
        start = 0
        for head, members in HEADS.items():
            stop = start + len(members)
            strongest = np.sort(points[start:stop])[::-1][: s.strongest]
            heads[head] = float(strongest.sum() / s.strongest)
            if heads[head] > 0:
                listed = ", ".join(
                    f"{name} z {sign * z[start + i]:+.1f}"
                    for i, (name, sign) in enumerate(members)
                    if points[start + i] > 0
                )
                head_reasons.append(f"{head} head {heads[head]:.2f} ({listed})")
            start = stop
        score = float(np.dot(s.head_weights, list(heads.values())))
        fired = score >= s.threshold
        verdict = "exit everything" if fired else "no panic"
        summary = f"panic score {score:.2f} {'>=' if fired else '<'} {s.threshold:g}: {verdict}"
        return PanicReading(score, heads, fired, (summary, *head_reasons))

    def _refresh_statistics(self) -> None:
        seen = self._history[: min(self._count, self.settings.window)]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column still all NaN
            median = np.nanmedian(seen, axis=0)
            scale = _MAD_TO_SIGMA * np.nanmedian(np.abs(seen - median), axis=0)
        self._median = np.nan_to_num(median, nan=0.0)
        self._scale = np.nan_to_num(scale, nan=0.0)


def _value(row: Mapping[str, float], name: str) -> float:
    raw = row.get(name)
    if raw is None:
        return math.nan
    value = float(raw)
    if not math.isfinite(value):
        return math.nan
    return math.log1p(max(value, 0.0)) if name in _LOG_SCALED else value

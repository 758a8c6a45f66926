"""The planted edge of the synthetic market, and the oracle that knows it.

The planted edge (``signal = rho``) has four kinds (``edge``). With ``r[t]`` the
close-to-close log return of candle ``t`` (``r[0] = log(close[0] / open[0])``) and ``vol[t]`` an
EWMA volatility known at the close of ``t``::

    v2[t]   = 0.94 * v2[t-1] + 0.06 * r[t]**2           v2[-1] = sigma_base**2,  vol = sqrt(v2)
    r[t+1]  = m[t] + drift[regime] + sigma[t+1] * eps[t+1] + crash[t+1]

* ``reversal`` (the default): a one-candle reversal, too short-lived to pay a round trip::

      R[t] = r[t-k+1] + ... + r[t]  (k = signal_lookback)
      m[t] = -rho * vol * tanh(R / (vol * sqrt(k)))

* ``shock``: a one-candle *continuation* after a surprising candle (a structure unlike the
  reversal: opposite sign, and nearly nothing after an ordinary candle)::

      z[t] = r[t] / vol[t],      m[t] = rho * vol * tanh(z * |z| / 2)

* ``trend``: a persistent drift that follows the recent trend (time-series momentum). With
  ``a = 1 - 2**(-1 / half_life)`` and ``c = sqrt(a / (2 - a))`` (the spread of an EMA of unit
  noise)::

      s[t] = (1 - a) * s[t-1] + a * r[t] / vol[t],       m[t] = rho * vol * tanh(s[t] / c)

* ``revert``: a persistent pull back toward a slow average of the price. With ``p[t]`` the log
  price and ``L[t] = (1 - a) * L[t-1] + a * p[t]``::

      m[t] = -rho * vol * tanh((p[t] - L[t]) / (vol * sqrt(half_life)))

  A ``trend`` or ``revert`` drift keeps its sign for tens of candles, so a position held while it
  lasts earns many times the cost of trading; ``half_life`` (candles) sets how slowly it moves.

``m[t]`` is a function of the closes up to ``t`` only; :func:`oracle_expected_returns`
recomputes it from a candle frame. It is the ``oracle_expected_return`` column of
:attr:`~tradebrain.data.synthetic.SyntheticMarket.regimes`: the mean of the NEXT candle's log
return that an oracle who knows the formula can predict. The latent regime drift is not part of
it (it is tiny, and the oracle does not see the regime). With ``signal = 0`` the column is zero
and no strategy can beat a directional accuracy of 0.5 (apart from the few rebound candles after
a flash crash).

:class:`PlantedEdge` computes ``m[t]`` one candle at a time for the generator
(:func:`~tradebrain.data.synthetic.generate_market`) and for :func:`oracle_expected_returns`;
:func:`oracle_report` scores the oracle on a generated market.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from tradebrain.data.synthetic import SyntheticConfig

_VOL_EWMA_DECAY = 0.94
EdgeKind = Literal["reversal", "shock", "trend", "revert"]
EDGE_KINDS: tuple[EdgeKind, ...] = ("reversal", "shock", "trend", "revert")
"""Kinds of planted edge: one-candle reversal or shock continuation; persistent trend or
reversion."""
ONE_CANDLE_EDGES: tuple[EdgeKind, ...] = ("reversal", "shock")
_VOLATILITY = "v2[t] = 0.94*v2[t-1] + 0.06*r[t]^2 (v2[-1] = sigma_base^2), vol[t] = sqrt(v2[t]); "
_NEXT = "r[t+1] = oracle_expected_return[t] + regime drift + sigma[t+1]*eps[t+1] + crash[t+1]"
_FORMULAS: dict[str, str] = {
    "reversal": _VOLATILITY + "R[t] = sum of the last k log returns r up to t; "
    "oracle_expected_return[t] = -rho * vol[t] * tanh(R[t] / (vol[t] * sqrt(k))); " + _NEXT,
    "shock": _VOLATILITY
    + "z[t] = r[t] / vol[t]; oracle_expected_return[t] = rho * vol[t] * tanh(z[t] * |z[t]| / 2); "
    + _NEXT,
    "trend": _VOLATILITY
    + "a = 1 - 2^(-1/half_life), c = sqrt(a/(2-a)); s[t] = (1-a)*s[t-1] + a*r[t]/vol[t]; "
    "oracle_expected_return[t] = rho * vol[t] * tanh(s[t] / c); " + _NEXT,
    "revert": _VOLATILITY
    + "a = 1 - 2^(-1/half_life); p[t] = log price; L[t] = (1-a)*L[t-1] + a*p[t]; "
    "oracle_expected_return[t] = -rho * vol[t] * tanh((p[t] - L[t]) / (vol[t] * "
    "sqrt(half_life))); " + _NEXT,
}


def oracle_expected_returns(candles: pl.DataFrame, config: SyntheticConfig) -> np.ndarray:
    """Recompute the planted component from candles alone (see the module docstring).

    Parameters
    ----------
    candles
        ``(n, 6)`` candle frame in time order; only ``open`` of the first row and ``close``
        are read.
    config
        Supplies ``signal`` (rho), ``edge``, ``signal_lookback`` (k), ``half_life`` and the
        base sigma.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64: at row ``t``, the expected log return of candle ``t + 1`` as known at
        the close of candle ``t``. Row ``t`` depends on rows ``0..t`` only.
    """
    close = candles["close"].to_numpy()
    log_close = np.log(np.concatenate(([candles["open"][0]], close)))
    edge = PlantedEdge(config)
    return np.array([edge.update(r) for r in np.diff(log_close).tolist()], dtype=np.float64)


class PlantedEdge:
    """The planted expected return, one closed candle at a time (past-only by construction).

    :meth:`update` folds in the log return of the candle that just closed and returns the
    expected log return of the next one; the generator and :func:`oracle_expected_returns`
    share it, so both compute the same numbers.
    """

    def __init__(self, config: SyntheticConfig) -> None:
        self.rho = config.signal
        self.kind = config.edge
        self.lookback = config.signal_lookback
        self.half_life = config.half_life
        self.variance = config.sigma_base**2
        self.log_price = 0.0
        self._past = deque([0.0], maxlen=config.signal_lookback + 1)
        self._alpha = 1.0 - 2.0 ** (-1.0 / config.half_life)
        self._noise = math.sqrt(self._alpha / (2.0 - self._alpha))
        self._level = 0.0  # trend: EMA of r / vol; revert: EMA of the log price

    def update(self, r: float) -> float:
        """Fold in the log return ``r`` of the candle that just closed; return the next mean."""
        self.variance = _VOL_EWMA_DECAY * self.variance + (1.0 - _VOL_EWMA_DECAY) * r * r
        self.log_price += r
        vol = math.sqrt(self.variance)
        alpha = self._alpha
        if self.kind == "reversal":
            self._past.append(self.log_price)
        if not self.rho:
            return 0.0
        if self.kind == "reversal":
            trailing = self.log_price - self._past[0]
            return -self.rho * vol * math.tanh(trailing / (vol * math.sqrt(self.lookback)))
        if self.kind == "shock":
            z = r / vol if vol > 0 else 0.0
            return self.rho * vol * math.tanh(z * abs(z) / 2.0)
        if self.kind == "trend":
            self._level = (1.0 - alpha) * self._level + alpha * (r / vol if vol > 0 else 0.0)
            return self.rho * vol * math.tanh(self._level / self._noise)
        self._level = (1.0 - alpha) * self._level + alpha * self.log_price
        distance = self.log_price - self._level
        return -self.rho * vol * math.tanh(distance / (vol * math.sqrt(self.half_life)))


def oracle_report(
    config: SyntheticConfig, candles: pl.DataFrame, regimes: pl.DataFrame
) -> dict[str, Any]:
    """Score the oracle: how often sign(expected next return) == sign(next return)."""
    close = candles["close"].to_numpy()
    log_close = np.log(np.concatenate(([candles["open"][0]], close)))
    next_return = np.diff(log_close)[1:]
    expected = regimes["oracle_expected_return"].to_numpy()[:-1]
    scored = (next_return != 0) & (expected != 0)
    count = int(scored.sum())
    if config.signal == 0 or count == 0:
        accuracy, count = 0.5, int((next_return != 0).sum())
        note = "no planted signal: the best possible directional accuracy is 0.5"
    else:
        accuracy = float(np.mean(np.sign(expected[scored]) == np.sign(next_return[scored])))
        note = "directional accuracy of the oracle on candles with a nonzero next return"
    stderr = math.sqrt(0.25 / max(count, 1))
    settings = asdict(config) | {"start": config.start.isoformat()}
    return {
        "formula": _FORMULAS[config.edge],
        "edge": config.edge,
        "half_life": None if config.edge in ONE_CANDLE_EDGES else config.half_life,
        "rho": config.signal,
        "seed": config.seed,
        "bars": config.bars,
        "timeframe": config.timeframe,
        "sigma_base": config.sigma_base,
        "accuracy": accuracy,
        "accuracy_count": count,
        "accuracy_stderr": stderr,
        "accuracy_z": (accuracy - 0.5) / stderr,
        "best_possible_accuracy_without_signal": 0.5,
        "note": note,
        "flash_crashes": _count_runs(regimes["flash_crash"].to_numpy()),
        "config": settings,
    }


def _count_runs(flag: np.ndarray) -> int:
    """Return the number of runs of consecutive True values in ``(n,)`` bool ``flag``."""
    return int(np.count_nonzero(flag[1:] & ~flag[:-1]) + flag[:1].sum())

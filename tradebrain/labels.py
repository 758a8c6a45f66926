"""Training targets: direction with a volatility dead zone, triple barrier, forward return, meta.

Every function takes float64 numpy arrays of candles, oldest first, and returns numpy arrays of
the same length. The label of row ``t`` describes what happens *after the close of candle t*:
its entry price is ``close[t]`` and it reads candles ``t + 1 .. t + horizon`` only. The scale
it is measured against (rolling σ of log returns, or ATR) reads candles up to ``t`` only.

Missing labels are ``NaN`` (labels are float64 arrays; classes are 0.0 down, 1.0 flat, 2.0
up), and their end index is ``-1``. A label is missing when its row lacks a full horizon of
future candles (the last ``horizon`` rows) or a full window of past candles for its scale
(the first ``window`` rows). A label is never made up: a row near the end of the data whose
barrier happens to be touched early is still missing, so the labelled rows are not a subset
biased towards barrier touches.

The end index ``t1`` of a label is the candle at which it resolved (``t + horizon`` for
direction and forward-return labels; the first touching candle, or ``t + horizon``, for
barrier labels). The walk-forward splitter purges with it.

>>> y, end = LabelSettings(kind="direction", horizon=12).compute(open_, high, low, close)
>>> known = ~np.isnan(y)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tradebrain.core.market import true_range
from tradebrain.exceptions import UserInputError

LabelKind = Literal["direction", "triple_barrier", "forward_return"]
Scale = Literal["atr", "sigma"]
TimeLimitRule = Literal["flat", "sign"]

DOWN, FLAT, UP = 0.0, 1.0, 2.0
_CHUNK_ROWS = 65_536
_PARAMETERS: dict[str, dict[str, Any]] = {
    "direction": {"dead_zone": 0.5, "vol_window": 100},
    "triple_barrier": {
        "take_profit": 2.0,
        "stop": 2.0,
        "scale": "atr",
        "window": 14,
        "on_time_limit": "flat",
        "time_limit_dead_zone": 0.0,
    },
    "forward_return": {"log": True},
}


@dataclass(frozen=True)
class LabelSettings:
    """How labels were made: the kind, the horizon in candles and the kind's parameters.

    Parameters left out take the defaults of the labelling function; :meth:`to_dict` lists
    them all, so a model's training record says exactly which labels it learned.
    """

    kind: LabelKind = "direction"
    horizon: int = 12
    parameters: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in _PARAMETERS:
            raise UserInputError(f"unknown label kind {self.kind!r}; known: {sorted(_PARAMETERS)}")
        _check_horizon(self.horizon)
        unknown = sorted(set(self.parameters) - set(_PARAMETERS[self.kind]))
        if unknown:
            raise UserInputError(
                f"{self.kind} labels take no parameter {unknown}; "
                f"known: {sorted(_PARAMETERS[self.kind])}"
            )

    def resolved_parameters(self) -> dict[str, Any]:
        """Return every parameter of this kind, defaults filled in."""
        return {**_PARAMETERS[self.kind], **self.parameters}

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready description: ``{"kind", "horizon", "parameters"}``."""
        return {
            "kind": self.kind,
            "horizon": int(self.horizon),
            "parameters": self.resolved_parameters(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelSettings:
        """Rebuild settings written by :meth:`to_dict`."""
        return cls(data["kind"], int(data["horizon"]), dict(data.get("parameters", {})))

    def compute(
        self, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(labels, end)`` for candles given as four (n,) float64 arrays.

        ``labels`` is (n,) float64 with NaN where missing; ``end`` is (n,) int64, the candle at
        which each label resolved, ``-1`` where missing.
        """
        p = self.resolved_parameters()
        if self.kind == "triple_barrier":
            return triple_barrier_labels(open_, high, low, close, self.horizon, **p)
        if self.kind == "direction":
            labels = direction_labels(close, self.horizon, **p)
        else:
            labels = forward_returns(close, self.horizon, **p)
        return labels, fixed_horizon_end(labels, self.horizon)


def direction_labels(
    close: np.ndarray, horizon: int, dead_zone: float = 0.5, vol_window: int = 100
) -> np.ndarray:
    """Label the direction of the next ``horizon`` candles, with a volatility dead zone.

    The forward log return ``log(close[t + h] / close[t])`` is compared with
    ``dead_zone * sigma[t] * sqrt(h)``, where ``sigma[t]`` is the sample standard deviation of
    the ``vol_window`` one-candle log returns ending at ``t`` (past data only).

    Parameters
    ----------
    close
        (n,) float64 close prices, oldest first.
    horizon
        Candles ahead, ``h >= 1``.
    dead_zone
        Half-width of the flat band in units of the expected h-candle move (``k >= 0``).
    vol_window
        Log returns in the volatility estimate (``>= 2``).

    Returns
    -------
    numpy.ndarray
        (n,) float64: 0.0 down, 1.0 flat, 2.0 up; NaN for the first ``vol_window`` rows and the
        last ``horizon`` rows.
    """
    close = _prices(close=close)["close"]
    _check_horizon(horizon)
    _check_window(vol_window, "vol_window")
    if dead_zone < 0:
        raise UserInputError(f"dead_zone must be >= 0; got {dead_zone}")
    forward = forward_returns(close, horizon, log=True)
    threshold = dead_zone * rolling_sigma(close, vol_window) * np.sqrt(horizon)
    return _classify(forward, threshold, threshold)


def forward_returns(close: np.ndarray, horizon: int, log: bool = True) -> np.ndarray:
    """Return the return from ``close[t]`` to ``close[t + horizon]`` (the regression target).

    Parameters
    ----------
    close
        (n,) float64 close prices, oldest first.
    horizon
        Candles ahead, ``h >= 1``.
    log
        Log return when true, simple return (a fraction, 0.01 = 1 %) otherwise.

    Returns
    -------
    numpy.ndarray
        (n,) float64, NaN for the last ``horizon`` rows.
    """
    close = _prices(close=close)["close"]
    _check_horizon(horizon)
    out = np.full(close.shape[0], np.nan)
    if close.shape[0] > horizon:
        ratio = close[horizon:] / close[:-horizon]
        out[:-horizon] = np.log(ratio) if log else ratio - 1.0
    return out


def fixed_horizon_end(labels: np.ndarray, horizon: int) -> np.ndarray:
    """Return the end index ``t + horizon`` of each label, ``-1`` where the label is missing."""
    end = np.arange(labels.shape[0], dtype=np.int64) + horizon
    end[np.isnan(labels)] = -1
    return end


def triple_barrier_labels(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    horizon: int,
    take_profit: float = 2.0,
    stop: float = 2.0,
    scale: Scale = "atr",
    window: int = 14,
    on_time_limit: TimeLimitRule = "flat",
    time_limit_dead_zone: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Label a long entered at ``close[t]`` by which barrier candles ``t+1 .. t+h`` touch first.

    The upper (profit-take) barrier lies ``take_profit`` scales above the entry, the lower
    (stop) barrier ``stop`` scales below it. The scale is the mean true range of the last
    ``window`` candles (``"atr"``, in price units: barrier = entry ± m·ATR) or the sample σ of
    the last ``window`` one-candle log returns (``"sigma"``: barrier = entry·exp(±m·σ)), both
    up to ``t``. They are per-candle scales: a multiple near ``sqrt(h)`` matches a typical
    h-candle move. A candle touches the upper barrier when its high reaches it and the lower
    one when its low reaches it; when one candle touches both, the stop counts as hit first.

    Parameters
    ----------
    open_, high, low, close
        (n,) float64 candles, oldest first (``open_`` is checked but not used: the entry is
        the close, and a gap through a barrier still touches it).
    horizon
        Time limit in candles, ``h >= 1``.
    take_profit, stop
        Barrier distances in scales (``> 0``).
    scale
        ``"atr"`` or ``"sigma"``.
    window
        Candles in the scale estimate (``>= 2``).
    on_time_limit
        When neither barrier is touched: ``"flat"`` labels the row flat; ``"sign"`` labels it
        by the sign of the h-candle log return beyond ``time_limit_dead_zone`` scales.
    time_limit_dead_zone
        Half-width of the flat band at the time limit, in scales (used with ``"sign"``).

    Returns
    -------
    labels : numpy.ndarray
        (n,) float64: 2.0 profit-take first, 0.0 stop first, time limit by ``on_time_limit``;
        NaN for the first ``window`` rows and the last ``horizon`` rows.
    end : numpy.ndarray
        (n,) int64: the candle at which the label resolved (``t + 1 .. t + h``), -1 if missing.
    """
    prices = _prices(open_=open_, high=high, low=low, close=close)
    close = prices["close"]
    _check_horizon(horizon)
    if on_time_limit not in ("flat", "sign"):
        raise UserInputError(f"on_time_limit must be 'flat' or 'sign'; got {on_time_limit!r}")
    width = _scale(prices, scale, window)
    side = np.ones_like(close)
    hit_target, hit_stop, end = _barrier_outcome(
        prices, side, horizon, take_profit, stop, scale, width
    )
    labels = np.where(hit_target, UP, np.where(hit_stop, DOWN, FLAT))
    timed_out = ~hit_target & ~hit_stop
    if on_time_limit == "sign":
        band = time_limit_dead_zone * width
        if scale == "atr":
            band = np.log1p(band / close)
        ahead = forward_returns(close, horizon, log=True)
        labels = np.where(timed_out, _classify(ahead, band, band), labels)
    labels[end < 0] = np.nan
    return labels, end


def meta_labels(
    primary_side: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    horizon: int,
    take_profit: float = 2.0,
    stop: float = 2.0,
    scale: Scale = "atr",
    window: int = 14,
) -> tuple[np.ndarray, np.ndarray]:
    """Label whether each trade of a primary signal hit its target before its stop.

    A trade is entered at ``close[t]`` on the side ``primary_side[t]``; target and stop lie
    ``take_profit`` and ``stop`` scales away, as in :func:`triple_barrier_labels` (for a short
    the target is below and the stop above). A candle touching both counts as a stop.

    Parameters
    ----------
    primary_side
        (n,) +1 long, -1 short, 0 or NaN no trade. From class predictions (0 down, 1 flat,
        2 up) use ``prediction - 1``.
    open_, high, low, close, horizon, take_profit, stop, scale, window
        As in :func:`triple_barrier_labels`.

    Returns
    -------
    labels : numpy.ndarray
        (n,) float64: 1.0 target hit first, 0.0 stop hit first or time limit reached; NaN where
        there is no trade, no full horizon or no full scale window.
    end : numpy.ndarray
        (n,) int64: the candle at which the trade resolved, -1 where the label is missing.
    """
    prices = _prices(open_=open_, high=high, low=low, close=close)
    _check_horizon(horizon)
    side = np.asarray(primary_side, dtype=np.float64)
    if side.shape != prices["close"].shape:
        raise UserInputError(
            f"primary_side has shape {side.shape}; the candles have {prices['close'].shape}"
        )
    side = np.nan_to_num(side, nan=0.0)
    if not np.isin(side, (-1.0, 0.0, 1.0)).all():
        raise UserInputError("primary_side must hold -1 (short), 0 (no trade) or +1 (long)")
    width = _scale(prices, scale, window)
    hit_target, _, end = _barrier_outcome(prices, side, horizon, take_profit, stop, scale, width)
    labels = np.where(hit_target, 1.0, 0.0)
    labels[end < 0] = np.nan
    return labels, end


def rolling_sigma(close: np.ndarray, window: int) -> np.ndarray:
    """Return the sample σ of the ``window`` one-candle log returns ending at each row.

    (n,) float64, NaN for rows ``t < window`` (the first return is at row 1).
    """
    returns = np.full(close.shape[0], np.nan)
    returns[1:] = np.log(close[1:] / close[:-1])
    return _rolling(returns, window, lambda w: np.std(w, axis=1, ddof=1))


def average_true_range(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int
) -> np.ndarray:
    """Return the mean true range of the ``window`` candles ending at each row (price units).

    (n,) float64, NaN for rows ``t < window`` (the first true range is at row 1).
    """
    return _rolling(true_range(high, low, close), window, lambda w: np.mean(w, axis=1))


def _barrier_outcome(
    prices: dict[str, np.ndarray],
    side: np.ndarray,
    horizon: int,
    take_profit: float,
    stop: float,
    scale: Scale,
    width: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (target hit first, stop hit first, end index) of trades entered at the close.

    ``side`` is +1 long, -1 short, 0 no trade; ``width`` the (n,) scale (NaN: no label).
    """
    if take_profit <= 0 or stop <= 0:
        raise UserInputError(f"take_profit and stop must be > 0; got {take_profit}, {stop}")
    close, high, low = prices["close"], prices["high"], prices["low"]
    n = close.shape[0]
    if scale == "atr":
        upper = close + np.where(side > 0, take_profit, stop) * width
        lower = close - np.where(side > 0, stop, take_profit) * width
    else:
        upper = close * np.exp(np.where(side > 0, take_profit, stop) * width)
        lower = close * np.exp(-np.where(side > 0, stop, take_profit) * width)
    never = horizon + 1
    first_upper = np.full(n, never, dtype=np.int64)
    first_lower = np.full(n, never, dtype=np.int64)
    for k in range(1, min(horizon, n - 1) + 1):
        rows = slice(0, n - k)
        first_upper[rows] = np.where(
            (first_upper[rows] == never) & (high[k:] >= upper[rows]), k, first_upper[rows]
        )
        first_lower[rows] = np.where(
            (first_lower[rows] == never) & (low[k:] <= lower[rows]), k, first_lower[rows]
        )
    first_target = np.where(side > 0, first_upper, first_lower)
    first_stop = np.where(side > 0, first_lower, first_upper)
    hit_stop = first_stop <= np.minimum(first_target, horizon)
    hit_target = (first_target <= horizon) & ~hit_stop
    steps = np.where(hit_stop, first_stop, np.where(hit_target, first_target, horizon))
    end = np.arange(n, dtype=np.int64) + steps
    missing = (side == 0) | np.isnan(width) | (np.arange(n) + horizon > n - 1)
    end[missing] = -1
    return hit_target & ~missing, hit_stop & ~missing, end


def _scale(prices: dict[str, np.ndarray], scale: Scale, window: int) -> np.ndarray:
    _check_window(window, "window")
    if scale == "atr":
        return average_true_range(prices["high"], prices["low"], prices["close"], window)
    if scale == "sigma":
        return rolling_sigma(prices["close"], window)
    raise UserInputError(f"scale must be 'atr' or 'sigma'; got {scale!r}")


def _classify(value: np.ndarray, up_above: np.ndarray, down_below: np.ndarray) -> np.ndarray:
    """Return 2.0 where value > up_above, 0.0 where value < -down_below, 1.0 else; NaN kept."""
    labels = np.where(value > up_above, UP, np.where(value < -down_below, DOWN, FLAT))
    labels[np.isnan(value) | np.isnan(up_above) | np.isnan(down_below)] = np.nan
    return labels


def _rolling(values: np.ndarray, window: int, reduce: Any) -> np.ndarray:
    """Apply ``reduce`` to each full window ending at a row, chunk by chunk (bounded memory)."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    first = window  # values[0] is NaN: the first full window ends at row ``window``
    for begin in range(first, n, _CHUNK_ROWS):
        stop = min(n, begin + _CHUNK_ROWS)
        block = values[begin - window + 1 : stop]
        out[begin:stop] = reduce(np.lib.stride_tricks.sliding_window_view(block, window))
    return out


def _prices(**arrays: np.ndarray) -> dict[str, np.ndarray]:
    """Return the arrays as 1-D float64, checked to share a length and be finite and > 0."""
    out: dict[str, np.ndarray] = {}
    for name, values in arrays.items():
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1:
            raise UserInputError(f"{name} must be a 1-D array; got shape {array.shape}")
        if not np.isfinite(array).all() or (array <= 0).any():
            raise UserInputError(f"{name} must hold finite prices > 0 (drop or repair bad rows)")
        out[name] = array
    lengths = {name: a.shape[0] for name, a in out.items()}
    if len(set(lengths.values())) > 1:
        raise UserInputError(f"candle arrays differ in length: {lengths}")
    return out


def _check_horizon(horizon: int) -> None:
    if int(horizon) != horizon or horizon < 1:
        raise UserInputError(f"horizon must be a whole number of candles >= 1; got {horizon}")


def _check_window(window: int, name: str) -> None:
    if int(window) != window or window < 2:
        raise UserInputError(f"{name} must be a whole number >= 2; got {window}")

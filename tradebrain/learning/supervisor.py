"""The model supervisor: each model's live skill, calibration and bias on resolved decisions.

Every decision the service stores carries the vote of each model, ``[p_down, p_flat, p_up]``.
Once the decision's horizon has passed, the move it voted on is known, and each model can be
judged on what it said: :func:`supervise` scores every model on its newest resolved votes and
weighs a failing one to zero; :func:`retrain_wanted` turns failing models into a retrain
trigger.

>>> health = supervise(store.decisions("live-1", "BTC/USDT", limit=None),
...                    store.candles("live-1", "BTC/USDT", "1h"), timeframe="1h")
>>> weights = {model: judged.weight for model, judged in health.items()}
>>> reason = retrain_wanted(health)  # "" when every model is healthy or warming up

Rules, with ``s = p_up - p_down`` a model's signal and ``r`` the forward log return:

- A vote resolves as in :func:`~tradebrain.learning.dataset.decision_outcomes`: the decision
  stamped ``t`` (the open time of its candle, row ``i``) is judged on ``r = log(close[i + h] /
  close[i])``, ``h`` the decision's ``horizon`` (``settings.horizon`` when it has none), and
  only once that last candle has closed by ``as_of`` (``timestamp[i + h] + timeframe <=
  as_of``). Nothing after ``as_of`` is read, and decisions made after it (``t + timeframe >
  as_of``) change nothing, not even the list of models.
- Only the newest ``settings.window`` resolved votes of a model are judged, and none before it
  has ``settings.min_resolved`` of them (``"warming_up"``, full weight).
- Skill is the Spearman rank correlation of ``s`` with ``r`` (the information coefficient).
  Its t statistic ``sqrt(n - 2) IC / sqrt(1 - IC^2)`` is divided by ``sqrt(overlap)``, the
  number of votes whose horizons cover an average candle (``h`` when deciding on every candle,
  1 when the decisions are ``h`` candles apart), since overlapping returns are not independent.
- A model is ``biased`` when the share of its votes saying up (``p_up > p_down``) differs from
  the share of moves that were up by more than :data:`BIAS_MARGIN` and significantly (a
  two-sided normal test of a binomial share at ``alpha``, on ``n / overlap`` votes): a model
  that says "up" whatever happens.
- A model is ``failing``, weight 0, when its t is below ``-z(alpha)`` (skill significantly
  negative) or when it is biased; otherwise its weight is 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl

from tradebrain.data.timeframes import timeframe_delta
from tradebrain.exceptions import ConfigError, UserInputError

WARMING_UP = "warming_up"
HEALTHY = "healthy"
FAILING = "failing"
BIAS_MARGIN = 0.15
"""The least gap between the share of up votes and of up moves that can make a model biased."""
CALIBRATION_BINS = 10
PRICE_TOLERANCE = 0.05
"""The most a decision's ``price`` may differ (in log) from its candle's close: beyond it the
candles are taken to be another market's."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TIME = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class SupervisorSettings:
    """How the supervisor judges the models; validated on construction.

    Attributes
    ----------
    horizon
        Candles ahead a vote is judged on when its decision has no ``horizon`` (>= 1).
    min_resolved
        Resolved votes a model needs before it is judged (>= 3); it is warming up before.
    window
        The newest resolved votes judged (>= ``min_resolved``).
    alpha
        Significance level of the failing test (one-sided) and the bias test (two-sided),
        in (0, 0.5).
    """

    horizon: int = 12
    min_resolved: int = 200
    window: int = 2000
    alpha: float = 0.01

    def __post_init__(self) -> None:
        for name, least in (("horizon", 1), ("min_resolved", 3), ("window", 3)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"{name} must be a whole number >= {least}; got {value!r}")
        if self.window < self.min_resolved:
            raise ConfigError(
                f"window ({self.window}) must be >= min_resolved ({self.min_resolved}), or no "
                "model would ever be judged"
            )
        if isinstance(self.alpha, bool) or not (
            isinstance(self.alpha, int | float) and 0.0 < self.alpha < 0.5
        ):
            raise ConfigError(f"alpha must be in (0, 0.5), e.g. 0.01; got {self.alpha!r}")


@dataclass(frozen=True)
class ModelHealth:
    """How one model's votes fared on the moves that followed them.

    Attributes
    ----------
    model
        The model's name, as in the decisions' ``votes``.
    resolved
        Its votes whose horizon had closed by ``as_of`` (the newest ``window`` are judged).
    information_coefficient
        Spearman rank correlation of ``p_up - p_down`` with the forward log return, in
        [-1, 1]; 0 when either never varies; NaN without resolved votes.
    ic_t_stat
        Its t statistic, corrected for overlapping horizons.
    hit_rate
        Share of non-zero moves whose sign ``p_up - p_down`` called (a neutral vote counts
        half).
    brier
        Mean of ``(p_up - [move > 0])**2``: 0 is perfect, 0.25 a coin.
    calibration_error
        Expected calibration error of ``p_up`` over 10 equal bins of [0, 1].
    up_share, realised_up_share
        Share of votes saying up (``p_up > p_down``), and of moves that were up.
    biased, failing
        See the module's rules; both False while warming up.
    weight
        1.0 healthy or warming up, 0.0 failing: the factor to weigh the model's vote by.
    reasons
        Plain-English sentences with the numbers behind the verdict.
    status
        ``"warming_up"``, ``"healthy"`` or ``"failing"``.
    """

    model: str
    resolved: int
    information_coefficient: float
    ic_t_stat: float
    hit_rate: float
    brier: float
    calibration_error: float
    up_share: float
    realised_up_share: float
    biased: bool
    failing: bool
    weight: float
    reasons: tuple[str, ...]
    status: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``reasons`` as a list, NaN as None)."""
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return {
            name: None if isinstance(value, float) and not math.isfinite(value) else value
            for name, value in data.items()
        }


@dataclass(frozen=True)
class _Votes:
    """One model's resolved votes, oldest first: ``(n,)`` arrays."""

    row: np.ndarray  # candle row of the decision
    horizon: np.ndarray  # candles ahead
    forward_return: np.ndarray  # log return over the horizon
    p_down: np.ndarray
    p_up: np.ndarray

    @classmethod
    def of(cls, votes: list[tuple[int, int, int, float, float, float]]) -> _Votes:
        """Return ``(time, row, horizon, forward_return, p_down, p_up)`` rows, oldest first
        whatever their order."""
        table = np.array(sorted(votes), dtype=np.float64)  # times in us are exact below 2**53
        return cls(
            table[:, 1].astype(np.int64),
            table[:, 2].astype(np.int64),
            table[:, 3],
            table[:, 4],
            table[:, 5],
        )

    def newest(self, count: int) -> _Votes:
        """Return the newest ``count`` votes."""
        return _Votes(
            self.row[-count:],
            self.horizon[-count:],
            self.forward_return[-count:],
            self.p_down[-count:],
            self.p_up[-count:],
        )


# -- checking the input ----------------------------------------------------------------------


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _instant(value: Any, what: str) -> int:
    """Return ``value`` (ISO text or an aware datetime) in microseconds since 1970 UTC."""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise UserInputError(
                f"{what} {value!r} is not an ISO time such as '2024-01-01T00:00:00+00:00'"
            ) from None
    if not isinstance(moment, datetime):
        raise UserInputError(f"{what} is {value!r}; give ISO text or a UTC datetime")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise UserInputError(
            f"{what} {moment.isoformat()} has no time zone; give a UTC instant such as "
            "datetime(2024, 1, 1, tzinfo=UTC) or '2024-01-01T00:00:00+00:00'"
        )
    return _micros(moment)


def _checked_candles(candles: pl.DataFrame, step: int, timeframe: str) -> pl.DataFrame:
    """Return ``timestamp`` (int64 microseconds) and ``close`` of one market's candles."""
    missing = [name for name in ("timestamp", "close") if name not in candles.columns]
    if missing:
        raise UserInputError(f"the candles lack the column(s) {missing}; found {candles.columns}")
    if "symbol" in candles.columns and candles["symbol"].n_unique() > 1:
        raise UserInputError(
            f"the candles hold {candles['symbol'].n_unique()} symbols; give the decided "
            "market's candles only (filter them by symbol first)"
        )
    dtype = candles.schema["timestamp"]
    if not isinstance(dtype, pl.Datetime) or dtype.time_zone is None:
        raise UserInputError(
            f"the candles' timestamp is {dtype}, not a UTC datetime; convert it, e.g. "
            "pl.col('timestamp').dt.replace_time_zone('UTC')"
        )
    if candles["timestamp"].null_count() or candles["close"].null_count():
        raise UserInputError("some candles have no timestamp or no close; drop or fill them")
    frame = candles.select(
        pl.col("timestamp").dt.convert_time_zone("UTC").cast(_TIME).cast(pl.Int64),
        pl.col("close").cast(pl.Float64),
    )
    steps = frame["timestamp"].diff().slice(1).to_numpy()
    bad = np.flatnonzero((steps <= 0) | (steps % step != 0))
    if bad.size:
        row = int(bad[0]) + 1
        raise UserInputError(
            f"candle row {row} opens {steps[row - 1] / 1e6:g} s after row {row - 1}: the "
            f"candles must be sorted, unique and a whole number of {timeframe} candles apart; "
            "sort them with frame.sort('timestamp'), or give their real timeframe"
        )
    close = frame["close"].to_numpy()
    broken = np.flatnonzero(~np.isfinite(close) | (close <= 0))
    if broken.size:
        raise UserInputError(
            f"candle row {int(broken[0])} has close {close[broken[0]]!r}, not a positive "
            "price; repair or drop that candle"
        )
    return frame


def _probabilities(vote: Any, model: str, what: str) -> tuple[float, float]:
    """Return ``(p_down, p_up)`` of one vote ``[p_down, p_flat, p_up]``."""
    if isinstance(vote, str | bytes) or not isinstance(vote, Sequence) or len(vote) != 3:
        raise UserInputError(
            f"{what}: the vote of {model!r} is {vote!r}; a vote is [p_down, p_flat, p_up]"
        )
    try:
        p_down, p_flat, p_up = (float(p) for p in vote)
    except (TypeError, ValueError):
        raise UserInputError(f"{what}: the vote of {model!r} ({vote!r}) is not numbers") from None
    if not all(0.0 <= p <= 1.0 for p in (p_down, p_flat, p_up)):
        raise UserInputError(
            f"{what}: the vote of {model!r} ({vote!r}) holds a probability outside [0, 1]"
        )
    return p_down, p_up


def _horizon(value: Any, default: int, what: str) -> int:
    """Return a decision's horizon: ``default`` for None or 0 (a decision without a forecast)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserInputError(f"{what}: horizon {value!r} is not a whole number of candles >= 0")
    return value if value > 0 else default


def _check_symbols(decisions: Sequence[Mapping[str, Any]], candles: pl.DataFrame) -> None:
    symbols = {
        str(d["symbol"])
        for d in decisions
        if isinstance(d, Mapping) and d.get("symbol") is not None
    }
    if "symbol" in candles.columns and not candles.is_empty():
        symbols.add(str(candles["symbol"][0]))
    if len(symbols) > 1:
        raise UserInputError(
            f"the decisions and candles are of {len(symbols)} symbols ({sorted(symbols)}); "
            "judge one market at a time, e.g. store.decisions(run, symbol=...) with that "
            "symbol's candles"
        )


# -- resolving the votes ---------------------------------------------------------------------


def _read_decision(
    index: int,
    decision: Any,
    candles: tuple[np.ndarray, np.ndarray],
    step: int,
    default_horizon: int,
) -> tuple[int, int, int, dict[str, tuple[float, float]]]:
    """Return a checked decision's time (microseconds), candle row (-1 outside the candles),
    horizon and votes ``{model: (p_down, p_up)}``; ``candles`` are (times, closes)."""
    times, close = candles
    what = f"decision {index}"
    if not isinstance(decision, Mapping):
        raise UserInputError(f"{what} is a {type(decision).__name__}, not a mapping")
    if "timestamp" not in decision:
        raise UserInputError(f"{what} has no 'timestamp'; found {sorted(decision)}")
    stamp = _instant(decision["timestamp"], f"{what}: timestamp")
    what = f"the decision at {decision['timestamp']}"
    horizon = _horizon(decision.get("horizon"), default_horizon, what)
    row = _candle_row(times, stamp, step, what)
    _check_price(decision.get("price"), close, row, what)
    votes = decision.get("votes") or {}
    if not isinstance(votes, Mapping):
        raise UserInputError(f"{what}: votes is {votes!r}, not {{model: [p_down, p_flat, p_up]}}")
    probabilities = {}
    for model, vote in votes.items():
        if not isinstance(model, str):
            raise UserInputError(f"{what}: model name {model!r} is not text")
        if vote is not None:  # None: the model gave no signal
            probabilities[model] = _probabilities(vote, model, what)
    return stamp, row, horizon, probabilities


def _resolve(
    decisions: Sequence[Mapping[str, Any]],
    market: pl.DataFrame,
    step: int,
    as_of: int | None,
    default_horizon: int,
) -> tuple[set[str], dict[str, _Votes]]:
    """Return the models that voted by ``as_of`` and each one's resolved votes."""
    times = market["timestamp"].to_numpy()
    close = market["close"].to_numpy()
    seen: dict[int, int] = {}
    known: set[str] = set()
    resolved: dict[str, list[tuple[int, int, int, float, float, float]]] = {}
    for index, decision in enumerate(decisions):
        stamp, row, horizon, votes = _read_decision(
            index, decision, (times, close), step, default_horizon
        )
        if stamp in seen:
            raise UserInputError(
                f"the decision at {decision['timestamp']} appears twice (decisions "
                f"{seen[stamp]} and {index}); give one run's decisions of one symbol"
            )
        seen[stamp] = index
        if as_of is None or stamp + step <= as_of:  # made by as_of
            known.update(votes)
        end = row + horizon
        if row < 0 or end >= times.size or (as_of is not None and times[end] + step > as_of):
            continue  # not resolved by as_of
        forward = math.log(close[end] / close[row])
        for model, (p_down, p_up) in votes.items():
            resolved.setdefault(model, []).append((stamp, row, horizon, forward, p_down, p_up))
    return known, {model: _Votes.of(votes) for model, votes in resolved.items()}


def _candle_row(times: np.ndarray, stamp: int, step: int, what: str) -> int:
    """Return the row of the candle stamped ``stamp``, or -1 outside the candles' span."""
    if times.size == 0:
        return -1
    if (stamp - int(times[0])) % step:
        raise UserInputError(
            f"{what} is not on the candles' grid (every {timedelta(microseconds=step)} from "
            f"{datetime.fromtimestamp(times[0] / 1e6, UTC).isoformat()}); a decision is "
            "stamped with the open time of its candle: give the candles it was made on"
        )
    if not times[0] <= stamp <= times[-1]:
        return -1
    row = int(np.searchsorted(times, stamp))
    if times[row] != stamp:
        raise UserInputError(
            f"{what} has no candle stamped at that time although the candles span it; give "
            "the candles it was made on (fill the gap)"
        )
    return row


def _check_price(price: Any, close: np.ndarray, row: int, what: str) -> None:
    if row < 0 or isinstance(price, bool) or not isinstance(price, int | float):
        return
    if not (price > 0 and abs(math.log(price / close[row])) <= PRICE_TOLERANCE):
        raise UserInputError(
            f"{what} was made at price {price!r} but its candle closed at {close[row]:g}; "
            "are these the candles of the decision's symbol and timeframe?"
        )


# -- judging a model -------------------------------------------------------------------------


def _ranks(values: np.ndarray) -> np.ndarray:
    """Return the ranks of ``values``, ties sharing their average rank."""
    order = np.argsort(values, kind="stable")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(first + (counts - 1) / 2.0, counts)
    return ranks


def _spearman(signal: np.ndarray, forward: np.ndarray) -> float:
    """Return the rank correlation, 0 when either side never varies (no rank information)."""
    x, y = _ranks(signal), _ranks(forward)
    x, y = x - x.mean(), y - y.mean()
    scale = math.sqrt(float(x @ x) * float(y @ y))
    return float(np.clip((x @ y) / scale, -1.0, 1.0)) if scale > 0 else 0.0


def _overlap(votes: _Votes) -> float:
    """Return how many judged horizons cover an average candle of their span, in [1, max h]."""
    span = int((votes.row + votes.horizon).max() - votes.row.min())
    covered = float(votes.horizon.sum()) / span
    return min(max(covered, 1.0), float(votes.horizon.max()))


def _calibration_error(p_up: np.ndarray, went_up: np.ndarray) -> float:
    bins = np.minimum((p_up * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    error = 0.0
    for b in np.unique(bins):
        inside = bins == b
        error += inside.mean() * abs(p_up[inside].mean() - went_up[inside].mean())
    return float(error)


def _warming_up(resolved: int, settings: SupervisorSettings) -> str:
    return (
        f"warming up: {resolved} of the {settings.min_resolved} resolved votes needed before "
        "judging; its vote keeps full weight meanwhile"
    )


def _unjudged(model: str, settings: SupervisorSettings) -> ModelHealth:
    """Return the health of a model without a resolved vote: warming up, no numbers."""
    return ModelHealth(
        model=model,
        resolved=0,
        information_coefficient=math.nan,
        ic_t_stat=math.nan,
        hit_rate=math.nan,
        brier=math.nan,
        calibration_error=math.nan,
        up_share=math.nan,
        realised_up_share=math.nan,
        biased=False,
        failing=False,
        weight=1.0,
        reasons=(_warming_up(0, settings),),
        status=WARMING_UP,
    )


def _hit_rate(signal: np.ndarray, forward: np.ndarray) -> float:
    """Return the share of non-zero moves whose sign ``signal`` called, a neutral call half."""
    moved = forward != 0
    called, move = np.sign(signal[moved]), np.sign(forward[moved])
    scores = np.where(called == 0, 0.5, (called == move).astype(np.float64))
    return float(scores.mean()) if scores.size else math.nan


def _judge(model: str, votes: _Votes, settings: SupervisorSettings) -> ModelHealth:
    """Return the health of ``model`` from its resolved ``votes`` (at least one)."""
    resolved = votes.row.size
    judged = votes.newest(settings.window)
    n = judged.row.size
    signal = judged.p_up - judged.p_down
    forward = judged.forward_return
    overlap = _overlap(judged)
    ic = _spearman(signal, forward)
    t_stat = math.sqrt(max(n - 2, 0)) * ic / math.sqrt(max(1.0 - ic * ic, 1e-12))
    t_stat /= math.sqrt(overlap)
    hit_rate = _hit_rate(signal, forward)
    went_up = (forward > 0).astype(np.float64)
    brier = float(np.mean((judged.p_up - went_up) ** 2))
    calibration = _calibration_error(judged.p_up, went_up)
    up_share = float(np.mean(judged.p_up > judged.p_down))
    realised = float(went_up.mean())
    null_share = min(max(realised, 0.5 / n), 1.0 - 0.5 / n)
    bias_z = (up_share - realised) / math.sqrt(null_share * (1.0 - null_share) * overlap / n)

    z_fail = NormalDist().inv_cdf(1.0 - settings.alpha)
    z_bias = NormalDist().inv_cdf(1.0 - settings.alpha / 2.0)
    warming = resolved < settings.min_resolved
    biased = not warming and abs(up_share - realised) > BIAS_MARGIN and abs(bias_z) > z_bias
    negative = not warming and t_stat < -z_fail
    failing = biased or negative

    reasons = []
    if warming:
        reasons.append(_warming_up(resolved, settings))
    reasons.append(
        f"skill: rank IC {ic:+.3f} with the forward return, t {t_stat:+.2f} (corrected for "
        f"{overlap:.1f} overlapping horizons) on the newest {n} of {resolved} resolved votes"
        + ("; its signal p_up - p_down never changes" if np.ptp(signal) == 0 else "")
    )
    reasons.append(
        f"hit rate {hit_rate:.1%} on non-zero moves; Brier {brier:.3f}; calibration error "
        f"{calibration:.3f}; says up on {up_share:.0%} of votes, {realised:.0%} of moves were up"
    )
    if negative:
        reasons.append(
            f"failing: its skill is significantly negative (t {t_stat:+.2f} < "
            f"-{z_fail:.2f}, alpha {settings.alpha:g}): its votes point the wrong way"
        )
    if biased:
        reasons.append(
            f"failing: biased, it says up on {up_share:.0%} of votes while {realised:.0%} of "
            f"moves were up ({up_share - realised:+.0%}, beyond ±{BIAS_MARGIN:.0%}; z "
            f"{bias_z:+.1f} beyond ±{z_bias:.2f}, alpha {settings.alpha:g})"
        )
    if failing:
        reasons.append("its vote is weighed to zero until it recovers or is retrained")
    elif not warming:
        reasons.append("healthy: no significantly negative skill and no bias; full weight")
    return ModelHealth(
        model=model,
        resolved=resolved,
        information_coefficient=ic,
        ic_t_stat=t_stat,
        hit_rate=hit_rate,
        brier=brier,
        calibration_error=calibration,
        up_share=up_share,
        realised_up_share=realised,
        biased=biased,
        failing=failing,
        weight=0.0 if failing else 1.0,
        reasons=tuple(reasons),
        status=WARMING_UP if warming else FAILING if failing else HEALTHY,
    )


# -- the public functions --------------------------------------------------------------------


def supervise(
    decisions: Sequence[Mapping[str, Any]],
    candles: pl.DataFrame,
    *,
    timeframe: str,
    as_of: datetime | None = None,
    settings: SupervisorSettings = SupervisorSettings(),
) -> dict[str, ModelHealth]:
    """Judge every model that voted in ``decisions`` on the moves that followed its votes.

    Parameters
    ----------
    decisions
        One market's decision documents, in any order (e.g. ``StateStore.decisions(run,
        symbol, limit=None)``, newest first): ``timestamp`` (ISO text or a UTC datetime, the
        open time of the candle decided on) and ``votes`` ({model: [p_down, p_flat, p_up]});
        ``horizon`` (candles; None or 0 for ``settings.horizon``), ``price`` (checked against
        the candle's close) and ``symbol`` are used when present. A vote of None is skipped.
    candles
        The market's candles, oldest first: ``timestamp`` (UTC open time) and ``close``.
    timeframe
        One candle's length, e.g. ``"1h"``.
    as_of
        The moment of judgement (UTC); None for the close of the newest candle.
    settings
        The horizon, thresholds and window of the judgement.

    Returns
    -------
    dict[str, ModelHealth]
        Model name -> its health, sorted by name: every model with a vote in a decision made
        by ``as_of``.

    Raises
    ------
    UserInputError
        An unknown timeframe; a decision whose timestamp is missing, naive, off the candles'
        grid, duplicated or inside the candles' span without a candle; a malformed vote or
        horizon; a price far from its candle's close; decisions and candles of several
        symbols; candles unsorted, duplicated, off the timeframe or with a bad close; a naive
        ``as_of``.
    """
    if not isinstance(settings, SupervisorSettings):
        raise UserInputError(f"settings must be a SupervisorSettings; got {settings!r}")
    if isinstance(decisions, str | bytes | pl.DataFrame) or not isinstance(decisions, Sequence):
        raise UserInputError(
            "decisions must be a list of decision dicts (StateStore.decisions, or "
            f"frame.to_dicts() with votes as dicts); got a {type(decisions).__name__}"
        )
    step = timeframe_delta(timeframe) // _MICROSECOND
    moment = None if as_of is None else _instant(as_of, "as_of")
    _check_symbols(decisions, candles)
    market = _checked_candles(candles, step, timeframe)
    if moment is None and not market.is_empty():
        moment = int(market["timestamp"][-1]) + step
    known, resolved = _resolve(decisions, market, step, moment, settings.horizon)
    return {
        model: _judge(model, resolved[model], settings)
        if model in resolved
        else _unjudged(model, settings)
        for model in sorted(known)
    }


def retrain_wanted(health: Mapping[str, ModelHealth]) -> str:
    """Return why the models should be retrained, or ``""`` when none is failing.

    The reason names every failing model (sorted) with what failed, e.g. ``"retrain: 1 model
    failing on live decisions (trend_gbm): trend_gbm: failing: its skill is ..."``.
    """
    failing = sorted(name for name, judged in health.items() if judged.failing)
    if not failing:
        return ""
    details = "; ".join(
        f"{name}: " + " and ".join(r for r in health[name].reasons if r.startswith("failing"))
        for name in failing
    )
    plural = "model" if len(failing) == 1 else "models"
    return (
        f"retrain: {len(failing)} {plural} failing on live decisions "
        f"({', '.join(failing)}): {details}"
    )


__all__ = [
    "BIAS_MARGIN",
    "FAILING",
    "HEALTHY",
    "WARMING_UP",
    "ModelHealth",
    "SupervisorSettings",
    "retrain_wanted",
    "supervise",
]

"""A synthetic market whose planted edge changes: phases of different worlds, end to end.

A model trained on one phase meets another: the test bed of a learning loop (retrain, shadow,
promote, roll back). Each phase is a :class:`~tradebrain.data.synthetic.SyntheticConfig`
generated on its own; its prices are scaled so that it opens where the previous phase closed,
and its candles follow the previous phase's last candle without a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import polars as pl

from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.exceptions import ConfigError

_PRICES = ("open", "high", "low", "close")


def shifting_market(phases: Sequence[SyntheticConfig]) -> pl.DataFrame:
    """Return the candles of ``phases`` one after another (the candle schema, sorted).

    Every phase must have the timeframe of the first; its ``start`` and ``start_price`` are
    set from the phase before it.

    Raises
    ------
    ConfigError
        When no phase is given or the phases' timeframes differ.
    """
    if not phases:
        raise ConfigError("a shifting market needs at least one phase")
    timeframe = phases[0].timeframe
    odd = [n for n, phase in enumerate(phases) if phase.timeframe != timeframe]
    if odd:
        raise ConfigError(
            f"every phase must be on the first phase's timeframe {timeframe}; phase(s) {odd} "
            "are not"
        )
    step = timedelta(seconds=timeframe_seconds(timeframe))
    frames: list[pl.DataFrame] = []
    start, price = phases[0].start, phases[0].start_price
    for phase in phases:
        candles = generate_market(replace(phase, start=start, start_price=price)).candles
        scale = price / float(candles["open"][0])
        candles = candles.with_columns(pl.col(c) * scale for c in _PRICES)
        frames.append(candles)
        start = candles["timestamp"][-1] + step
        price = float(candles["close"][-1])
    return pl.concat(frames)


__all__ = ["shifting_market"]

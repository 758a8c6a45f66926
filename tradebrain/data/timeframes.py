"""Timeframes: parse ``"5m"``-style strings into durations, and check grid alignment."""

from __future__ import annotations

import re
from datetime import timedelta

from tradebrain.exceptions import UserInputError

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^(\d+)([smhdw])$")

#: Timeframes in the order the resampler climbs them.
STANDARD_TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "4h", "8h", "1d")


def timeframe_seconds(timeframe: str) -> int:
    """Return the length of one candle of ``timeframe`` in seconds.

    Parameters
    ----------
    timeframe
        A count and a unit: ``s``, ``m``, ``h``, ``d`` or ``w`` (``"1m"``, ``"4h"``, ``"1d"``).
    """
    match = _PATTERN.match(timeframe.strip())
    if match is None or int(match.group(1)) == 0:
        raise UserInputError(
            f"timeframe {timeframe!r} is not understood; write a positive count and a unit "
            "(s, m, h, d, w), for example '1m', '15m', '4h' or '1d'"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def timeframe_delta(timeframe: str) -> timedelta:
    """Return one candle of ``timeframe`` as a :class:`datetime.timedelta`."""
    return timedelta(seconds=timeframe_seconds(timeframe))


def polars_duration(timeframe: str) -> str:
    """Return ``timeframe`` in polars' duration language (``"5m"`` -> ``"300s"``)."""
    return f"{timeframe_seconds(timeframe)}s"

"""JSON-ready answers: dataclasses and numpy scalars as plain data, NaN and infinity as None."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeVar

_T = TypeVar("_T")


def plain(value: Any) -> Any:
    """Return ``value`` as JSON-ready data (dataclasses and numpy scalars included)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def finite(value: _T) -> _T:
    """Return ``value`` with every NaN or infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]  # type: ignore[return-value]
    return value

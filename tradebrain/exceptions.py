"""Exceptions, grouped by what the operator has to do about them.

::

    TradebrainError
    ├── UserInputError            fix your input, then run again
    │   ├── ConfigError           a setting is missing, malformed or out of range
    │   ├── DataFormatError       a file cannot be read as the kind of data asked for
    │   └── DataValidationError   the data was read but breaks a rule (carries the report)
    ├── TemporaryError            wait and retry; nothing is wrong on our side
    │   └── ExchangeUnavailableError   network down, HTTP 429/5xx after all retries
    └── OperationalError          stop and call a human
        └── StoreError            the data store cannot be read or written safely

Every message says what was wrong, where, and how to fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradebrain.data.validation import ValidationReport


class TradebrainError(Exception):
    """Base class of every error tradebrain raises on purpose."""


class UserInputError(TradebrainError):
    """The user's input (a file, a flag, a setting) is wrong; fixing it fixes the run."""


class ConfigError(UserInputError):
    """A configuration value is missing, malformed or out of its allowed range."""


class NotFoundError(UserInputError, LookupError):
    """The user named something that does not exist (a symbol not served, an unknown model)."""


class DataFormatError(UserInputError):
    """A file cannot be read as the requested kind of market data."""


class DataValidationError(UserInputError):
    """Market data was read but breaks one or more validation rules."""

    def __init__(self, message: str, report: ValidationReport) -> None:
        super().__init__(message)
        self.report = report


class TemporaryError(TradebrainError):
    """A temporary condition (network, rate limit); retrying later may succeed."""


class ExchangeUnavailableError(TemporaryError):
    """The exchange could not be reached, or kept failing after every retry."""


class OperationalError(TradebrainError):
    """Something is broken in the installation or the machine; a human must look."""


class StoreError(OperationalError):
    """The data store cannot be read or written safely."""


class StoreFullError(StoreError):
    """The disk (or the database's size limit) is full: nothing of the write was kept, and the
    same write succeeds once space is freed."""

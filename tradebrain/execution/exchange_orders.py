"""Pieces of the exchange broker: client order ids, tracked orders, venue calls, fills.

- :func:`client_id_for` makes the deterministic client order id (Binance ``newClientOrderId``)
  of an intent, so a runner can store the order as open *before* the HTTP request, and the
  same decision sent twice is one order on the venue.
- :class:`TrackedOrder` is what the broker knows about one order it follows on the venue.
- :class:`VenueCalls` calls ccxt with retries of temporary trouble (HTTP 429, 5xx, timeouts)
  and tells what an error means for an order: refused, or *uncertain* (the venue may have
  accepted it). Every message it makes is scrubbed of the API key, the secret and signatures.
- :func:`fill_from_trade` turns one ccxt trade into a :class:`~tradebrain.core.orders.Fill`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import ccxt

from tradebrain.core.orders import Fill, Liquidity, OrderIntent
from tradebrain.data.exchanges import RetryPolicy
from tradebrain.exceptions import ExchangeUnavailableError

logger = logging.getLogger("tradebrain.execution.exchange_broker")
_T = TypeVar("_T")
_PREFIX = re.compile(r"^[A-Za-z0-9_]{1,8}$")
STOP_SUFFIX = "-sl"
TARGET_SUFFIX = "-tp"
# Binance codes whose outcome is unknown (internal error, backend timeout): not a refusal.
_UNKNOWN_OUTCOME = re.compile(r'"code"\s*:\s*-(1001|1003|1006|1007|1008)\b')
_DUPLICATE = re.compile(r"Duplicate order sent|ClientOrderId is duplicated|-4116\b")
_SIGNATURE = re.compile(r"(signature=)[0-9a-fA-F]+")
_API_KEY_HEADER = re.compile(r"""(X-MBX-APIKEY['"]?\s*[:=]\s*['"]?)[^'",\s}]+""", re.IGNORECASE)


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start a Binance client order id, else raise ValueError."""
    if not _PREFIX.match(prefix):
        raise ValueError(
            f"client id prefix {prefix!r} must be 1 to 8 letters, digits or underscores "
            "(Binance accepts [.A-Z:/a-z0-9_-]{1,36} for the whole id), for example 'tb'"
        )
    return prefix


def client_id_for(prefix: str, intent: OrderIntent, sequence: int) -> str:
    """Return the deterministic client order id of ``intent``: ``{prefix}-{sequence}-{digest}``.

    The digest (12 hex digits) covers every field that makes the order what it is (time,
    symbol, side, size, type, prices, tag), so the same intent with the same ``sequence``
    always gets the same id and the venue refuses to open it twice; at most 32 characters,
    which leaves room for the ``-sl`` / ``-tp`` suffixes of its protective orders.
    """
    if sequence < 0 or sequence >= 10**10:
        raise ValueError(f"sequence must be in [0, 1e10), got {sequence}")
    fields = (
        intent.timestamp.isoformat(),
        intent.symbol,
        intent.side.value,
        repr(intent.quantity),
        intent.order_type.value,
        repr(intent.limit_price),
        repr(intent.trigger_price),
        repr(intent.stop_price),
        repr(intent.target_price),
        repr(intent.reduce_only),
        intent.tag,
        repr(intent.equity_fraction),
    )
    digest = hashlib.blake2b("|".join(fields).encode(), digest_size=6).hexdigest()
    return f"{prefix}-{sequence}-{digest}"


def role_of(client_id: str) -> str:
    """Return ``"stop"``, ``"target"`` or ``"order"`` from the suffix of ``client_id``."""
    if client_id.endswith(STOP_SUFFIX):
        return "stop"
    if client_id.endswith(TARGET_SUFFIX):
        return "target"
    return "order"


@dataclass
class TrackedOrder:
    """One order the broker follows on the venue until it is filled, cancelled or expired.

    Attributes
    ----------
    conditional
        A perp stop: a Binance algo order, looked up by ``clientAlgoId``.
    venue_id
        The venue's order id once known; for a triggered algo order, the id of the market
        order it became (fills are listed under that id).
    triggered
        The algo order fired: follow the order ``venue_id`` from now on.
    confirmed
        The venue has acknowledged the order at least once.
    sent_here
        This broker sent it (rather than adopting it in a reconcile).
    reported
        Base quantity of the venue's trades already seen (reported or skipped).
    skip
        Base quantity a runner had already recorded before a restart: not reported again.
    cancel_reason, lost_reason
        Why the order ends if the venue cancels it, or if the venue turns out never to have
        received it.
    net_filled
        Base quantity the fills put into (or took out of) the account, net of fees paid in
        the base asset.
    """

    client_id: str
    intent: OrderIntent
    venue_symbol: str
    conditional: bool = False
    venue_id: str | None = None
    triggered: bool = False
    confirmed: bool = False
    sent_here: bool = False
    reported: float = 0.0
    skip: float = 0.0
    net_filled: float = 0.0
    cancel_reason: str = ""
    lost_reason: str = ""
    trade_ids: set[str] = field(default_factory=set)

    @property
    def role(self) -> str:
        """``"stop"``, ``"target"`` (protective orders) or ``"order"``."""
        return role_of(self.client_id)


class SecretScrubber(logging.Filter):
    """Masks API keys, secrets and signatures in log records (ccxt logs request headers)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = scrub(text, self.secrets)
        if masked != text:
            record.msg, record.args = masked, None
        return True


_SCRUBBER = SecretScrubber()


def guard_logs(*secrets: object) -> None:
    """Mask ``secrets`` (and any API-key header or signature) in ccxt's and our log records."""
    _SCRUBBER.secrets.update(str(secret) for secret in secrets if secret)
    for name in ("ccxt.base.exchange", logger.name):
        target = logging.getLogger(name)
        if _SCRUBBER not in target.filters:
            target.addFilter(_SCRUBBER)


def scrub(text: str, secrets: set[str]) -> str:
    """Return ``text`` with ``secrets``, API-key headers and request signatures masked."""
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _API_KEY_HEADER.sub(r"\1***", text)
    return _SIGNATURE.sub(r"\1***", text)


class VenueRefusal(Exception):  # noqa: N818 - a verdict of the venue, not a failure
    """The venue refused a request; ``reason`` is its answer, scrubbed of secrets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VenueCalls:
    """Calls into a ccxt exchange with retries, error triage and scrubbed messages."""

    def __init__(
        self,
        exchange: ccxt.Exchange,
        retry: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.exchange = exchange
        self.retry = retry
        self.sleep = sleep

    def call(self, action: str, fetch: Callable[[], _T]) -> _T:
        """Return ``fetch()``; retry network trouble, raise :class:`VenueRefusal` on a refusal.

        For reads and for requests that are safe to repeat (set leverage, cancel). After the
        last retry it raises :class:`~tradebrain.exceptions.ExchangeUnavailableError`.
        """
        last: BaseException | None = None
        for attempt in range(self.retry.retries + 1):
            if attempt > 0:
                self.sleep(self.retry.delay_s(attempt - 1))
            try:
                return fetch()
            except ccxt.BaseError as error:
                if self.outcome(error) == "refused":
                    raise VenueRefusal(self.describe(error)) from None
                last = error
                logger.warning("%s: %s; retrying", action, self.describe(error))
        raise ExchangeUnavailableError(
            f"{self.exchange.id} kept failing to {action} after {self.retry.retries + 1} "
            f"attempts; last error: {self.describe(last)}; the venue is down or limits "
            "requests: wait and poll again"
        ) from None

    def outcome(self, error: BaseException) -> str:
        """Tell what ``error`` means for a request that may change the account.

        ``"refused"``: the venue looked at it and said no (nothing happened); ``"rejected
        before processing"`` is ``"busy"`` (HTTP 429: safe to resend); ``"duplicate"``: the
        client id is taken by an open order; ``"unknown"``: it may have happened (timeouts,
        dropped connections, HTTP 5xx, Binance -1001/-1007), so look before resending.
        """
        text = str(error)
        if isinstance(error, ccxt.DDoSProtection):
            return "busy"
        if _DUPLICATE.search(text):
            return "duplicate"
        if isinstance(error, ccxt.OperationFailed) or _UNKNOWN_OUTCOME.search(text):
            return "unknown"
        return "refused"

    def describe(self, error: BaseException | None) -> str:
        """Return ``error`` as one line without the API key, the secret or signatures."""
        if error is None:
            return "none"
        return self.scrub(f"{type(error).__name__}: {error}")[:400]

    def scrub(self, text: str) -> str:
        """Return ``text`` with the exchange's credentials and request signatures masked."""
        secrets = {str(secret) for secret in (self.exchange.apiKey, self.exchange.secret) if secret}
        return scrub(text, secrets)


def fill_from_trade(
    trade: dict[str, Any], order: TrackedOrder, quantity: float, base: str, quote: str
) -> Fill:
    """Return the :class:`Fill` of ``quantity`` base units of one ccxt ``trade`` of ``order``.

    The fee is converted to quote currency (Binance charges spot buys in the base asset);
    a fee in a third asset (BNB) is reported as 0 and logged.
    """
    price = float(trade["price"])
    share = quantity / float(trade["amount"]) if trade["amount"] else 1.0
    fee_cost, fee_currency = _fee(trade)
    if fee_currency == quote:
        fee = fee_cost * share
    elif fee_currency == base:
        fee = fee_cost * share * price
    else:
        if fee_cost:
            logger.warning("fee of %s %s on trade %s not converted", fee_cost, fee_currency, trade)
        fee = 0.0
    intent = order.intent
    when = trade.get("timestamp")
    timestamp = datetime.fromtimestamp(when / 1000, UTC) if when else datetime.now(UTC)
    maker = trade.get("takerOrMaker") == "maker"
    return Fill(
        timestamp=timestamp,
        order_id=order.client_id,
        symbol=intent.symbol,
        side=intent.side,
        quantity=quantity,
        price=price,
        fee=fee,
        liquidity=Liquidity.MAKER if maker else Liquidity.TAKER,
        tag=intent.tag,
        reasons=intent.reasons,
        trade_id=str(trade.get("id") or ""),
    )


def base_fee(trade: dict[str, Any], base: str) -> float:
    """Return the part of ``trade``'s fee paid in the ``base`` asset (base units)."""
    cost, currency = _fee(trade)
    return cost if currency == base else 0.0


def _fee(trade: dict[str, Any]) -> tuple[float, str | None]:
    fee = trade.get("fee") or {}
    return float(fee.get("cost") or 0.0), fee.get("currency")

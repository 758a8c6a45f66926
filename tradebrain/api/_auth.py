"""Bearer-token check for every route but ``/health`` and the dashboard page.

Two more guards stand beside the check itself:

- :func:`token_weakness` says why a token is too weak to guard real money (live mode refuses
  such a token; see ``tradebrain serve``).
- :class:`AuthThrottle` limits how fast one address may guess: after ``limit`` missing or wrong
  tokens within ``window`` seconds, that address gets 429 with ``Retry-After`` (its token is
  not even compared) until the oldest failure leaves the window. Every refusal is counted in
  ``tradebrain_auth_failures_total{reason}`` and ``tradebrain_auth_throttled_total``.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependency's annotations at
# run time, and one of them names a local (the bearer scheme).
import math
import secrets
import string
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tradebrain.exceptions import UserInputError
from tradebrain.service.prometheus import ServiceMetrics

TOKEN_HELP = (
    "set the environment variable TRADEBRAIN_API__TOKEN, or api.token in the config file "
    "(tradebrain.yaml), to a long random string, e.g. the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
)
MIN_TOKEN_LENGTH = 24
MIN_TOKEN_BITS = 128
MIN_DISTINCT_CHARACTERS = 10
AUTH_FAILURES_ALLOWED = 10
AUTH_WINDOW_S = 60.0

BearerCheck = Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[None]]


def check_token(token: str | None, *, require_token: bool) -> str | None:
    """Return the token the API will demand, or None for an open API.

    Raises
    ------
    UserInputError
        When a token is required and missing, or the token is blank.
    """
    if token is None:
        if require_token:
            raise UserInputError(
                f"the API needs a bearer token and none is configured; {TOKEN_HELP}"
            )
        return None
    if not token.strip():
        raise UserInputError(f"the API token is blank; {TOKEN_HELP}")
    return token


def token_bits(token: str) -> float:
    """Return an upper estimate of the token's entropy in bits: its length times log2 of the
    alphabet its character classes span (lower, upper, digits, other printable)."""
    classes = (
        (string.ascii_lowercase, 26),
        (string.ascii_uppercase, 26),
        (string.digits, 10),
    )
    alphabet = sum(size for chars, size in classes if any(c in chars for c in token))
    if any(not c.isascii() or not c.isalnum() for c in token):
        alphabet += 33
    return len(token) * math.log2(alphabet) if alphabet > 1 else 0.0


def token_weakness(token: str) -> str | None:
    """Return why ``token`` is too weak to guard live trading, or None when it is strong.

    Strong: at least 24 characters, at least 10 different ones, not one short chunk repeated,
    and at least 128 bits by :func:`token_bits`. ``secrets.token_urlsafe(32)`` (43 characters,
    about 256 bits) and ``secrets.token_hex(16)`` both pass. The token itself is never quoted.
    """
    if len(token) < MIN_TOKEN_LENGTH:
        return f"has {len(token)} characters; at least {MIN_TOKEN_LENGTH} are needed"
    if len(set(token)) < MIN_DISTINCT_CHARACTERS:
        return (
            f"uses only {len(set(token))} different characters; at least "
            f"{MIN_DISTINCT_CHARACTERS} are needed"
        )
    for size in range(1, len(token) // 2 + 1):
        if token == (token[:size] * (len(token) // size + 1))[: len(token)]:
            return f"repeats a chunk of {size} characters"
    bits = token_bits(token)
    if bits < MIN_TOKEN_BITS:
        return f"holds about {bits:.0f} bits of entropy; at least {MIN_TOKEN_BITS} are needed"
    return None


class AuthThrottle:
    """Count missing or wrong tokens per client address in a sliding window.

    Parameters
    ----------
    limit
        Failures an address may make within ``window`` seconds; the next request is refused.
    window
        Seconds a failure is remembered.
    clock
        Monotonic seconds (tests pass their own).
    max_clients
        Addresses remembered at most (the oldest are forgotten first), so a flood of addresses
        cannot exhaust memory.
    """

    def __init__(
        self,
        limit: int = AUTH_FAILURES_ALLOWED,
        window: float = AUTH_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float | None:
        """Return the seconds ``client`` must wait before it may try again, or None."""
        with self._lock:
            failures = self._recent(client)
            if failures is None or len(failures) < self.limit:
                return None
            return max(failures[0] + self.window - self.clock(), 0.0)

    def failed(self, client: str) -> None:
        """Remember one missing or wrong token from ``client``."""
        with self._lock:
            failures = self._recent(client) or deque()
            failures.append(self.clock())
            self._failures[client] = failures
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s failures (it knows the token)."""
        with self._lock:
            self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        horizon = self.clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures


def bearer_check(
    token: str, metrics: ServiceMetrics | None = None, throttle: AuthThrottle | None = None
) -> BearerCheck:
    """Return a FastAPI dependency that answers 401 unless the request carries ``token``,
    and 429 to an address that sent too many missing or wrong tokens (see the module notes)."""
    expected = token.encode()
    guard = throttle or AuthThrottle()
    scheme = HTTPBearer(
        auto_error=False,
        description="The service's API token (TRADEBRAIN_API__TOKEN or api.token).",
    )

    async def require_bearer(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(scheme)],
    ) -> None:
        client = request.client.host if request.client is not None else "unknown"
        wait = guard.retry_after(client)
        if wait is not None:
            if metrics is not None:
                metrics.auth_throttled.inc()
            seconds = max(1, math.ceil(wait))
            raise HTTPException(
                status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                detail=(
                    f"too many requests with a missing or wrong bearer token from {client}; "
                    f"try again in {seconds} s with the right token"
                ),
                headers={"Retry-After": str(seconds)},
            )
        given = b"" if credentials is None else credentials.credentials.encode()
        # compare_digest on bytes: constant time, and no TypeError on non-ASCII input.
        if not secrets.compare_digest(given, expected):
            reason = "missing" if credentials is None else "wrong"
            guard.failed(client)
            if metrics is not None:
                metrics.auth_failures.labels(reason=reason).inc()
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail=f"{reason} bearer token; send the header 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        guard.succeeded(client)

    return require_bearer

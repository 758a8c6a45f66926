"""Bearer-token check for every route but ``/health`` and the dashboard page."""

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tradebrain.exceptions import UserInputError

TOKEN_HELP = (
    "set the environment variable TRADEBRAIN_API__TOKEN, or api.token in the config file "
    "(tradebrain.yaml), to a long random string, e.g. the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
)

BearerCheck = Callable[[HTTPAuthorizationCredentials | None], Awaitable[None]]


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


def bearer_check(token: str) -> BearerCheck:
    """Return a FastAPI dependency that answers 401 unless the request carries ``token``."""
    expected = token.encode()
    scheme = HTTPBearer(
        auto_error=False,
        description="The service's API token (TRADEBRAIN_API__TOKEN or api.token).",
    )

    async def require_bearer(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(scheme)],
    ) -> None:
        given = b"" if credentials is None else credentials.credentials.encode()
        # compare_digest on bytes: constant time, and no TypeError on non-ASCII input.
        if not secrets.compare_digest(given, expected):
            reason = "missing" if credentials is None else "wrong"
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail=f"{reason} bearer token; send the header 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_bearer

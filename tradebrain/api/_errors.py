"""How failures become HTTP answers.

- :class:`~tradebrain.exceptions.UserInputError` from the service: 422 with its message, or 404
  when it is also a :class:`LookupError` (an unknown symbol or model).
- A body that is not JSON: 400 saying where it stops parsing.
- A malformed request: 422 with the list of problems, each naming its field (``loc``).
- :class:`~tradebrain.exceptions.TemporaryError`: 429 when the prediction pool is full, else
  503; both with ``Retry-After``.
- Anything else: a 500 with a generic message; the traceback goes to the log and
  ``tradebrain_errors{kind="api"}`` counts it. A response the service shaped wrongly is such a
  failure too (FastAPI checks every response against its model).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from tradebrain.api.schemas import ErrorBody, Problem
from tradebrain.exceptions import TemporaryError, UserInputError
from tradebrain.service.prediction_pool import PredictionsBusyError

log = logging.getLogger("tradebrain.api")

INTERNAL_ERROR = "internal error; the service log has the details"

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def status_of(error: UserInputError) -> int:
    """Return 404 for an unknown name (a UserInputError that is a LookupError), else 422."""
    if isinstance(error, LookupError):
        return status.HTTP_404_NOT_FOUND
    return status.HTTP_422_UNPROCESSABLE_CONTENT


async def user_input_error(request: Request, error: Exception) -> Response:
    """Answer a UserInputError the service raised with 422 (or 404) and its message."""
    assert isinstance(error, UserInputError)
    log.info("%s %s rejected: %s", request.method, request.url.path, error)
    return JSONResponse({"detail": str(error)}, status_code=status_of(error))


async def temporary_error(request: Request, error: Exception) -> Response:
    """Answer a full prediction pool with 429, any other temporary failure with 503; both
    with ``Retry-After`` in seconds."""
    assert isinstance(error, TemporaryError)
    busy = isinstance(error, PredictionsBusyError)
    wait = error.retry_after if isinstance(error, PredictionsBusyError) else 5
    log.warning("%s %s refused for now: %s", request.method, request.url.path, error)
    return JSONResponse(
        {"detail": str(error)},
        status_code=(
            status.HTTP_429_TOO_MANY_REQUESTS if busy else status.HTTP_503_SERVICE_UNAVAILABLE
        ),
        headers={"Retry-After": str(wait)},
    )


async def invalid_request(request: Request, error: Exception) -> Response:
    """Answer a body that is not JSON with 400, and a request that breaks a rule with 422
    and, per broken rule, where (loc) and what (msg).

    The offending input is not echoed back: it may hold values JSON cannot carry (Infinity).
    """
    assert isinstance(error, RequestValidationError)
    for issue in error.errors():
        if issue["type"] == "json_invalid":  # not a rule broken: the body cannot be read
            where = issue["loc"][-1] if len(issue["loc"]) > 1 else 0
            why = issue.get("ctx", {}).get("error", "unreadable")
            return JSONResponse(
                {
                    "detail": f"the request body is not valid JSON ({why} at character {where}); "
                    "send a UTF-8 JSON object with Content-Type: application/json"
                },
                status_code=status.HTTP_400_BAD_REQUEST,
            )
    issues = [
        {"loc": list(issue["loc"]), "msg": issue["msg"], "type": issue["type"]}
        for issue in error.errors()
    ]
    return JSONResponse({"detail": issues}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


class GuardedRoute(APIRoute):
    """A route whose unexpected failures become a logged, counted 500 with a generic body."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (StarletteHTTPException, RequestValidationError, UserInputError, TemporaryError):
                raise
            except Exception:
                log.exception("%s %s failed", request.method, request.url.path)
                try:
                    request.app.state.service.metrics.count_error("api")
                except Exception:  # counting must never turn a 500 into a crash
                    log.exception("could not count an API error")
                return JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)

        return guarded


def _doc(model: type, description: str) -> dict[str, Any]:
    return {"model": model, "description": description}


UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: _doc(ErrorBody, "Missing or wrong bearer token (with `WWW-Authenticate: Bearer`)."),
    429: _doc(
        ErrorBody,
        "Too many missing or wrong tokens from this address; wait `Retry-After` seconds.",
    ),
}
SERVER_ERROR: dict[int | str, dict[str, Any]] = {
    500: _doc(ErrorBody, "Unexpected failure; details are in the service log, not here."),
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: _doc(Problem, "The request breaks a rule; `detail` names the field and the rule."),
}
BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: _doc(ErrorBody, "The body cannot be read (not UTF-8 JSON)."),
}
BUSY: dict[int | str, dict[str, Any]] = {
    429: _doc(
        ErrorBody,
        "Every prediction worker is busy and the queue is full; wait `Retry-After` seconds.",
    ),
    503: _doc(ErrorBody, "The prediction worker died or overran; retry after `Retry-After`."),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _doc(ErrorBody, "No such model or symbol; `detail` says which exist."),
}


def json_errors_of_text_route(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Document the JSON error bodies of a route whose success answer is not JSON.

    FastAPI would list an error model under the route's own media type (text/plain).
    """
    reasons = {**UNAUTHORIZED, **SERVER_ERROR}
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    return {
        code: {
            "description": reasons[code]["description"],
            "content": {"application/json": {"schema": ref}},
        }
        for code in codes
    }

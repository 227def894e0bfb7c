"""The API's error envelope: ``{"error": {"code", "message"}}`` for every 4xx/5xx."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "API_KEY_CHALLENGE",
    "CHALLENGES",
    "ERROR_DESCRIPTIONS",
    "SESSION_CHALLENGE",
    "ApiError",
    "ErrorDetail",
    "ErrorEnvelope",
    "OrjsonResponse",
    "bad_request",
    "envelope",
    "error_responses",
    "install_error_handlers",
    "not_found",
]

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 412: "precondition_failed", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "invalid_parameter", 429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


#: ``WWW-Authenticate`` challenges (RFC 9110 section 11.6.1) of a 401: an app key in ``X-API-Key``
#: (a scheme of this API), or a dispatcher session token as ``Authorization: Bearer`` (or cookie).
API_KEY_CHALLENGE = 'ApiKey realm="its", header="X-API-Key"'
SESSION_CHALLENGE = 'Bearer realm="its"'
#: Every 401 carries a challenge; one that names none gets both.
CHALLENGES = f"{API_KEY_CHALLENGE}, {SESSION_CHALLENGE}"

#: What each error status means on this API (the OpenAPI document's response descriptions).
ERROR_DESCRIPTIONS = {
    400: "Malformed request body.",
    401: "No or an invalid credential: a bad or revoked `X-API-Key`, or no valid dispatcher session.",
    403: "The session's role may not do this, or the `X-CSRF-Token` header is missing or wrong.",
    404: "Unknown id (the message names the kind of thing).",
    412: "`If-Match` or `If-Unmodified-Since` does not hold for the current representation.",
    413: "Request body larger than the API accepts.",
    422: "Invalid parameter or body (the message names the field).",
    429: "Rate limit or key quota exceeded; retry after `Retry-After` seconds.",
    503: "Not ready: the state is still loading, or a store or the road network is unavailable.",
}


class ErrorDetail(BaseModel):
    """What went wrong: a stable machine-readable code and a human-readable message."""

    code: str = Field(description="Stable error code, e.g. `not_found`, `invalid_parameter`, `rate_limited`, "
                                  "`unauthorized`, `forbidden`, `unavailable`.", examples=["not_found"])
    message: str = Field(description="Human-readable explanation (never echoes long input).",
                         examples=["unknown stop 'no-such-id'"])


class ErrorEnvelope(BaseModel):
    """The body of every 4xx/5xx answer of the API."""

    error: ErrorDetail


def error_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting ``statuses`` with the error envelope.

    ``descriptions`` overrides the text per status, keyed ``s404="unknown stop"``.
    """
    return {s: {"model": ErrorEnvelope, "description": descriptions.get(f"s{s}", ERROR_DESCRIPTIONS.get(s, "Error."))}
            for s in statuses}


class OrjsonResponse(JSONResponse):
    """JSON rendered by orjson (numpy scalars and datetimes included); the API's default response."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class ApiError(Exception):
    """An error the API reports to the client as-is."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def not_found(what: str, ident: object) -> ApiError:
    """404 naming the kind of thing and its id (truncated, never echoed raw at length)."""
    shown = str(ident)
    if len(shown) > 80:
        shown = shown[:80] + "…"
    return ApiError(404, "not_found", f"unknown {what} {shown!r}")


def bad_request(message: str, status: int = 422) -> ApiError:
    return ApiError(status, "invalid_parameter", message)


def envelope(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> OrjsonResponse:
    """The error envelope as a response; a 401 always carries ``WWW-Authenticate`` (:data:`CHALLENGES`
    unless ``headers`` name one)."""
    if status == 401 and not any(k.lower() == "www-authenticate" for k in headers or {}):
        headers = {**(headers or {}), "WWW-Authenticate": CHALLENGES}
    return OrjsonResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as the JSON envelope; never leak internals."""

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> OrjsonResponse:
        return envelope(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req: Request, exc: StarletteHTTPException) -> OrjsonResponse:
        message = exc.detail if isinstance(exc.detail, str) else _CODES.get(exc.status_code, "error")
        return envelope(exc.status_code, _CODES.get(exc.status_code, "error"), message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_req: Request, exc: RequestValidationError) -> OrjsonResponse:
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body", "header"))
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        return envelope(422, "invalid_parameter", "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> OrjsonResponse:
        log.exception("unhandled error")
        return envelope(500, "internal_error", "internal error")

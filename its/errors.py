"""The API's error envelope: ``{"error": {"code", "message"}}`` for every 4xx/5xx."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ApiError", "OrjsonResponse", "bad_request", "install_error_handlers", "not_found"]

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "invalid_parameter", 429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


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


def envelope(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> OrjsonResponse:
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

"""HTTP behaviour every route shares, as pure ASGI middleware: HEAD, compression, CORS.

- :class:`HeadAsGet`: ``HEAD`` is answered on every ``GET`` route (RFC 9110 section 9.3.2):
  the request is routed as ``GET`` and only the status and headers are sent (``Content-Length``
  as for ``GET``). An event stream is ended right after its headers (the handler is told the
  client left), so a ``HEAD`` never holds a stream open.
- :class:`Compression`: gzip (Starlette's ``GZipMiddleware``) for answers of at least
  :data:`GZIP_MIN_BYTES` to clients that accept it. ``text/event-stream`` is never compressed
  (a compressor buffers, events must leave at once), nor are zip archives and images. A
  compressed answer's strong ``ETag`` becomes weak (``W/``): the bytes differ from the identity
  representation the tag names, and ``If-None-Match`` compares weakly anyway.
- :func:`cors_options`: the ``CORSMiddleware`` arguments for ``ITS_CORS_ORIGINS``: every method
  the API has, the request headers browser apps send (``X-API-Key``, ``Authorization``,
  ``X-CSRF-Token``, the conditional headers, ``Last-Event-ID``), the response headers they may
  read (``ETag``, ``Last-Modified``, ``Retry-After``, ``WWW-Authenticate``); no credentials
  mode (cookies never cross origins: other origins use app keys or a bearer token).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
from starlette.middleware.gzip import GZipMiddleware

__all__ = ["CORS_ALLOW_HEADERS", "CORS_EXPOSE_HEADERS", "GZIP_MIN_BYTES", "Compression", "HeadAsGet", "cors_options"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Smaller answers are sent as they are, bytes.
GZIP_MIN_BYTES = 1000
#: zlib level: 6 compresses the congestion map within a few percent of 9 at a fraction of the time.
GZIP_LEVEL = 6
CORS_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORS_ALLOW_HEADERS = ("X-API-Key", "Authorization", "X-CSRF-Token", "Content-Type", "If-None-Match",
                      "If-Modified-Since", "If-Match", "If-Unmodified-Since", "Last-Event-ID", "Cache-Control")
CORS_EXPOSE_HEADERS = ("ETag", "Last-Modified", "Retry-After", "WWW-Authenticate", "Content-Disposition")
CORS_MAX_AGE_S = 600
_END: Message = {"type": "http.response.body", "body": b"", "more_body": False}


class HeadAsGet:
    """Answer ``HEAD`` as the ``GET`` of the same route, without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        started = anyio.Event()
        state = {"request_read": False, "finished": False}

        async def head_receive() -> Message:
            if not state["request_read"]:  # the (empty) request body
                message = await receive()
                state["request_read"] = True
                return message
            await started.wait()  # once the headers are out, the "client" has what it asked for
            return {"type": "http.disconnect"}

        async def head_send(message: Message) -> None:
            if state["finished"]:
                return
            if message["type"] == "http.response.start":
                await send(message)
                started.set()
            elif message["type"] == "http.response.body":
                state["finished"] = True  # the first body message ends a HEAD answer
                await send(dict(_END))

        # a copy: the server keeps its own scope (method HEAD), so it expects no body bytes
        await self.app({**scope, "method": "GET"}, head_receive, head_send)
        if started.is_set() and not state["finished"]:
            await send(dict(_END))


class Compression:
    """gzip for answers of at least ``minimum_size`` bytes; strong ETags of compressed answers weakened."""

    def __init__(self, app: ASGIApp, minimum_size: int = GZIP_MIN_BYTES, compresslevel: int = GZIP_LEVEL) -> None:
        self.app = app
        # Starlette's defaults exclude text/event-stream, zip, gzip, images, audio and video
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=compresslevel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def weaken(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if any(bytes(k).lower() == b"content-encoding" for k, _ in headers):
                    message = {**message, "headers": [
                        (k, b"W/" + bytes(v) if bytes(k).lower() == b"etag" and bytes(v).startswith(b'"') else v)
                        for k, v in headers]}
            await send(message)

        await self.gzip(scope, receive, weaken)


def cors_options(origins: list[str]) -> dict[str, Any] | None:
    """Keyword arguments of Starlette's ``CORSMiddleware`` for ``origins`` (``["*"]``: any), or
    None when the list is empty (CORS off: browsers on other origins get no access)."""
    if not origins:
        return None
    return {
        "allow_origins": ["*"] if "*" in origins else list(origins),
        "allow_methods": list(CORS_METHODS),
        "allow_headers": list(CORS_ALLOW_HEADERS),
        "expose_headers": list(CORS_EXPOSE_HEADERS),
        "allow_credentials": False,
        "max_age": CORS_MAX_AGE_S,
    }

"""Limits on what one HTTP request may cost, before the application sees it.

:class:`HttpLimits` is a pure ASGI middleware (no ``BaseHTTPMiddleware`` overhead):

- **Body size**: a ``Content-Length`` above ``ITS_MAX_BODY_BYTES`` is answered 413 before a
  byte of the body is read; a chunked body is counted as it streams and cut at the limit
  (413). Either way the connection is closed, so the rest is never read.
- **Body pace**: each chunk of a body must arrive within ``ITS_HTTP_BODY_TIMEOUT_S`` (408).
- **Server-sent-event streams**: a response of type ``text/event-stream`` beyond
  ``ITS_MAX_STREAMS`` in all or ``ITS_MAX_STREAMS_PER_CLIENT`` for one client IP is replaced
  by 503 with ``Retry-After`` and the handler is told the client left, so it stops at once.
  Streams are recognised by their content type, so every present and future SSE route is
  covered without a list of paths.
- **Dates**: :func:`query_time` bounds the date-time parameters routes accept (422 outside
  1970-2100 instead of an overflow deep in a handler).

Errors use the API's JSON envelope. Header size, header count and idle/slow-header timeouts
are the HTTP server's business: :mod:`its.http_server`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import anyio
import orjson

from its.auth import client_address, parse_networks
from its.errors import ApiError
from its.settings import Settings

__all__ = ["EARLIEST", "LATEST", "HttpLimits", "aware_query_time", "error_body", "query_time"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The range of date-times a query may name (anything outside is a typo or a probe).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
STREAM_RETRY_S = 30
_DISCONNECT: Message = {"type": "http.disconnect"}


def query_time(value: datetime, name: str) -> datetime:
    """A date-time query parameter as aware UTC (naive = UTC), refused outside 1970-2100.

    Raises
    ------
    ApiError
        422 ``invalid_parameter`` naming the parameter.
    """
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        moment = EARLIEST.replace(year=1)  # outside the range: refused below
    if not EARLIEST <= moment < LATEST:
        raise ApiError(422, "invalid_parameter",
                       f"{name}: dates must lie between {EARLIEST.year} and {LATEST.year}")
    return moment


def aware_query_time(value: datetime | None, name: str) -> datetime | None:
    """An optional date-time query parameter that must carry its time zone, as aware UTC.

    Raises
    ------
    ApiError
        422 ``invalid_parameter`` naming the parameter: no time zone, or outside 1970-2100.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        raise ApiError(422, "invalid_parameter", f"{name}: give a time zone (e.g. Z)")
    return query_time(value, name)


def error_body(code: str, message: str) -> bytes:
    """The API's error envelope, serialised."""
    return orjson.dumps({"error": {"code": code, "message": message}})


async def _answer(send: Send, status: int, code: str, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = error_body(code, message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *extra]})
    await send({"type": "http.response.body", "body": body})


class _Exchange:
    """One request/response as the middleware watches it: wraps ``receive`` and ``send``."""

    __slots__ = ("body_done", "client", "limits", "received", "refusal", "replaced", "stream",
                 "upstream_receive", "upstream_send")

    def __init__(self, limits: HttpLimits, receive: Receive, send: Send, has_body: bool, client: tuple[str, str | None]) -> None:
        self.limits = limits
        self.upstream_receive, self.upstream_send = receive, send
        self.body_done = not has_body
        self.client = client  # (peer, X-Forwarded-For): resolved only when a stream opens
        self.received = 0
        self.refusal: tuple[int, str, str] | None = None
        self.replaced = False
        self.stream: str | None = None

    async def receive(self) -> Message:
        if self.refusal is not None or self.replaced:
            return _DISCONNECT
        if self.body_done:
            return await self.upstream_receive()
        limits = self.limits
        message: Message = _DISCONNECT
        with anyio.move_on_after(limits.body_timeout_s):
            message = await self.upstream_receive()
        if message is _DISCONNECT:
            self.refusal = (408, "request_timeout", f"no request body data for {limits.body_timeout_s:g} s")
            return _DISCONNECT
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > limits.max_body:
                self.refusal = (413, "payload_too_large", f"request body larger than {limits.max_body} bytes")
                return _DISCONNECT
            self.body_done = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if self.refusal is not None:  # whatever the handler made of a cut body
                self.replaced = True
                await _answer(self.upstream_send, *self.refusal)
                return
            if _is_stream(message) and not self.limits.open_stream(self):
                self.replaced = True
                await _answer(self.upstream_send, 503, "unavailable", "too many event streams; retry later",
                              ((b"retry-after", str(STREAM_RETRY_S).encode()),))
                return
        elif self.replaced:
            return
        await self.upstream_send(message)


class HttpLimits:
    """Pure ASGI middleware enforcing the body and stream limits of ``settings``.

    Parameters
    ----------
    app : ASGI application
    settings : Settings
        ``max_body_bytes``, ``http_body_timeout_s``, ``max_streams``,
        ``max_streams_per_client``, ``trusted_proxies``.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.body_timeout_s = settings.http_body_timeout_s
        self.max_streams = settings.max_streams
        self.max_per_client = settings.max_streams_per_client
        self.trusted = parse_networks(settings.trusted_proxies)
        self.streams: dict[str, int] = {}

    @property
    def open_streams(self) -> int:
        """Server-sent-event streams open now."""
        return sum(self.streams.values())

    def __getattr__(self, name: str) -> Any:  # ``state``, ``routes``... of the wrapped app
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, chunked, forwarded = None, False, None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
        if length is not None and length > self.max_body:
            await _answer(send, 413, "payload_too_large", f"request body larger than {self.max_body} bytes")
            return
        peer = scope["client"][0] if scope.get("client") else "unknown"
        ex = _Exchange(self, receive, send, bool(length) or chunked, (peer, forwarded))
        try:
            await self.app(scope, ex.receive, ex.send)
        finally:
            if ex.stream is not None:
                left = self.streams.get(ex.stream, 1) - 1
                if left > 0:
                    self.streams[ex.stream] = left
                else:
                    self.streams.pop(ex.stream, None)

    def open_stream(self, ex: _Exchange) -> bool:
        """Count a new stream of ``ex``'s client, or return False when a cap is reached."""
        client = client_address(*ex.client, self.trusted)
        mine = self.streams.get(client, 0)
        if mine >= self.max_per_client or self.open_streams >= self.max_streams:
            return False
        self.streams[client] = mine + 1
        ex.stream = client
        return True


def _is_stream(message: Message) -> bool:
    for name, value in message.get("headers", ()):
        if name == b"content-type" or name.lower() == b"content-type":
            return bytes(value[:17]).lower() == b"text/event-stream"
    return False

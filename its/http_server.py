"""The HTTP server's own limits: header size and count, idle and slow-header timeouts.

uvicorn's httptools protocol accepts any number and size of headers and keeps a connection
that never sends a request open indefinitely (its keep-alive timer only runs after a first
response). :func:`uvicorn_options` serves the API with a subclass of that protocol which

- answers 431 and closes when the request line plus headers exceed
  ``ITS_HTTP_MAX_HEADER_BYTES`` or the header fields exceed ``ITS_HTTP_MAX_HEADERS``, as soon
  as the parser reaches the limit (nothing beyond it is buffered);
- closes a connection whose request head is not complete ``ITS_HTTP_HEADER_TIMEOUT_S`` after
  it opened or after the head began (silent clients, slowloris);

and sets uvicorn's keep-alive timeout (``ITS_HTTP_KEEPALIVE_S``), its concurrency limit
(``ITS_HTTP_MAX_CONNECTIONS``, 503 beyond) and turns off its own ``X-Forwarded-For``
handling (which trusts 127.0.0.1 by default): the client IP is resolved by :mod:`its.auth`
from ``ITS_TRUSTED_PROXIES`` only. Without httptools, uvicorn's h11 protocol runs with
``h11_max_incomplete_event_size`` as the header limit (no header count or header timeout).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from its.http_limits import error_body
from its.settings import Settings

__all__ = ["limited_protocol", "uvicorn_options"]

log = logging.getLogger(__name__)


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a refused request."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """httptools protocol with header limits and a deadline for each request head
    (limits are class attributes: `limited_protocol` makes a subclass per settings)."""

    max_headers = 100
    max_bytes = 16_384
    timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = False
        self._head_fields = 0
        self._head_bytes = 0
        self._refused = False

    # deadline for the request head
    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.timeout_s, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _idle(self) -> bool:
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _head_timeout(self) -> None:
        self._head_timer = None
        if (self._in_head or self._idle()) and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._head_timer is None and self._idle():
            self._arm()  # bytes after a response (keep-alive) must make a head in time
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if not self._refused:
            super().send_400_response(msg)

    # parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_fields, self._head_bytes = True, 0, 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(0, len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(1, len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        super().on_headers_complete()

    def _count(self, fields: int, size: int) -> None:
        self._head_fields += fields
        self._head_bytes += size
        if self._head_fields > self.max_headers or self._head_bytes > self.max_bytes:
            self._refuse()

    def _refuse(self) -> None:
        what = f"more than {self.max_headers} header fields" if self._head_fields > self.max_headers \
            else f"request head larger than {self.max_bytes} bytes"
        body = error_body("header_too_large", what)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
        self._refused = True
        self._disarm()
        self.transport.close()
        raise _Refused(what)


def limited_protocol(settings: Settings) -> type[asyncio.Protocol]:
    """The httptools protocol class enforcing the header limits and timeout of ``settings``."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {
        "max_headers": settings.http_max_headers, "max_bytes": settings.http_max_header_bytes,
        "timeout_s": settings.http_header_timeout_s})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` serving the API."""
    return {
        "http": limited_protocol(settings),
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        "timeout_keep_alive": settings.http_keepalive_s,
        "limit_concurrency": settings.http_max_connections,
        "proxy_headers": False,
        "server_header": False,
        "log_level": "warning",
        "access_log": False,
    }

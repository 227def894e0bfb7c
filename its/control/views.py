"""Server side of the control-centre UI: the live alert event hub and the SSE frames it sends.

:class:`AlertHub` listens to the app's :class:`~its.alerts.AlertSink` (whose listeners run on
whatever thread raised the alert) and hands each change to every connected browser's asyncio
queue through ``loop.call_soon_threadsafe``; :func:`event_stream` turns one queue into
``text/event-stream`` frames with a periodic heartbeat carrying the server time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from its.alerts import Alert, AlertSink

__all__ = ["HEARTBEAT_S", "QUEUE_LIMIT", "AlertHub", "event_stream", "sse_frame"]

HEARTBEAT_S = 5.0
"""Seconds between heartbeat events on an idle stream (the client calls it stale after 15 s)."""
QUEUE_LIMIT = 1000
"""Pending events per browser before it is told to reload (a slow client must not grow memory)."""

Event = tuple[str, dict[str, Any]]


def sse_frame(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    """One server-sent event: ``event:`` name, optional ``id:`` and one JSON ``data:`` line."""
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.overflowed = False

    def offer(self, item: Event) -> None:  # runs on the loop's thread
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.overflowed = True
            return
        self.queue.put_nowait(item)


class AlertHub:
    """Fan-out of alert changes from an :class:`AlertSink` to connected browsers."""

    def __init__(self, sink: AlertSink) -> None:
        self.sink = sink
        self._subscribers: set[_Subscriber] = set()
        self._lock = threading.Lock()
        sink.listen(self._on_alert)

    def _on_alert(self, event: str, alert: Alert) -> None:
        item: Event = ("alert", {"event": event, "alert": alert.to_json(), "version": self.sink.version})
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            try:
                sub.loop.call_soon_threadsafe(sub.offer, item)
            except RuntimeError:  # that browser's loop has closed
                self._drop(sub)

    def subscribe(self) -> _Subscriber:
        """Register the calling coroutine's loop; call :meth:`unsubscribe` when done."""
        sub = _Subscriber(asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: _Subscriber) -> None:
        self._drop(sub)

    def _drop(self, sub: _Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    @property
    def listeners(self) -> int:
        """Browsers currently connected."""
        with self._lock:
            return len(self._subscribers)


async def event_stream(
    hub: AlertHub, is_disconnected: Callable[[], Any], heartbeat_s: float = HEARTBEAT_S,
) -> AsyncGenerator[bytes, None]:
    """SSE frames for one browser: the active alerts first, then changes and heartbeats.

    Parameters
    ----------
    hub : the app's alert hub.
    is_disconnected : awaitable factory telling whether the client has gone (``Request.is_disconnected``).
    heartbeat_s : seconds between ``heartbeat`` events when nothing else is sent.
    """
    sub = hub.subscribe()
    seq = 0
    try:
        seq += 1
        yield b"retry: 2000\n" + sse_frame("snapshot", {
            "alerts": [a.to_json() for a in hub.sink.active()], "version": hub.sink.version,
            "server_time": datetime.now(UTC).isoformat()}, seq)
        while True:
            try:
                name, data = await asyncio.wait_for(sub.queue.get(), timeout=heartbeat_s)
            except TimeoutError:
                if await is_disconnected():
                    return
                name, data = "heartbeat", {"server_time": datetime.now(UTC).isoformat(), "version": hub.sink.version}
            if sub.overflowed:  # the client fell behind: tell it to reload the whole state
                yield sse_frame("resync", {"reason": "client fell behind"})
                return
            seq += 1
            yield sse_frame(name, data, seq)
    finally:
        hub.unsubscribe(sub)

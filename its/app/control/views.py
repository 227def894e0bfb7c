"""Server side of the control-centre UI: the live alert event hub and the SSE frames it sends.

:class:`AlertHub` listens to the app's :class:`~its.alerts.AlertSink` (whose listeners run on
whatever thread raised the alert) and hands each change to every connected browser's asyncio
queue through ``loop.call_soon_threadsafe``; :func:`event_stream` turns one queue into
``text/event-stream`` frames with a periodic heartbeat carrying the server time.

Every alert change gets an id from the hub's :class:`its.sse.EventBuffer` (the last
``REPLAY_EVENTS`` are kept): a browser reconnecting with ``Last-Event-ID`` gets the changes
after that id; when they are gone (or the id is not this process's) it gets a ``reset`` event
and a fresh ``snapshot``. The snapshot's id is the buffer's cursor (the state is current to
it); heartbeats carry no id.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from its.alerts import Alert, AlertSink
from its.sse import RESET_EVENT, EventBuffer, reset_data
from its.sse import Event as BufferedEvent

__all__ = ["HEARTBEAT_S", "QUEUE_LIMIT", "AlertHub", "event_stream", "sse_frame"]

HEARTBEAT_S = 5.0
"""Seconds between heartbeat events on an idle stream (the client calls it stale after 15 s)."""
QUEUE_LIMIT = 1000
"""Pending events per browser before it is told to reload (a slow client must not grow memory)."""



def sse_frame(event: str, data: dict[str, Any], event_id: int | str | None = None) -> bytes:
    """One server-sent event: ``event:`` name, optional ``id:`` and one JSON ``data:`` line."""
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


def _buffered_frame(item: BufferedEvent) -> bytes:
    """A buffered event (its ``data`` already one JSON line) as a frame with its id."""
    return f"event: {item.event}\nid: {item.id}\ndata: {item.data}\n\n".encode()


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[BufferedEvent] = asyncio.Queue()
        self.overflowed = False

    def offer(self, item: BufferedEvent) -> None:  # runs on the loop's thread
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.overflowed = True
            return
        self.queue.put_nowait(item)


class AlertHub:
    """Fan-out of alert changes from an :class:`AlertSink` to connected browsers."""

    def __init__(self, sink: AlertSink) -> None:
        self.sink = sink
        self.buffer = EventBuffer()
        self._subscribers: set[_Subscriber] = set()
        self._lock = threading.Lock()
        sink.listen(self._on_alert)

    def _on_alert(self, event: str, alert: Alert) -> None:
        data = orjson.dumps({"event": event, "alert": alert.to_json(), "version": self.sink.version}).decode()
        with self._lock:  # ids in the order subscribers see them
            item = self.buffer.append("alert", data)
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
    last_event_id: str | None = None,
) -> AsyncGenerator[bytes, None]:
    """SSE frames for one browser: the active alerts first (or the changes after ``last_event_id``),
    then changes and heartbeats.

    Parameters
    ----------
    hub : the app's alert hub.
    is_disconnected : awaitable factory telling whether the client has gone (``Request.is_disconnected``).
    heartbeat_s : seconds between ``heartbeat`` events when nothing else is sent.
    last_event_id : the ``Last-Event-ID`` a reconnecting browser sent, if any.
    """
    sub = hub.subscribe()  # before reading the buffer: nothing published meanwhile is missed
    try:
        replay = hub.buffer.since(last_event_id) if last_event_id else None
        head = b"retry: 2000\n"
        if replay is None:
            if last_event_id:
                yield head + f"event: {RESET_EVENT}\ndata: {reset_data(last_event_id, 'unknown_last_event_id')}\n\n".encode()
                head = b""
            cursor = hub.buffer.cursor  # before reading the alerts: the snapshot is current to it at least
            seen = hub.buffer.seq_of(cursor) or 0
            yield head + sse_frame("snapshot", {
                "alerts": [a.to_json() for a in hub.sink.active()], "version": hub.sink.version,
                "server_time": datetime.now(UTC).isoformat()}, cursor)
        else:
            seen = hub.buffer.seq_of(last_event_id or "") or 0
            yield head + b"".join(_buffered_frame(item) for item in replay)
            seen = replay[-1].seq if replay else seen
        while True:
            try:
                item = await asyncio.wait_for(sub.queue.get(), timeout=heartbeat_s)
            except TimeoutError:
                if await is_disconnected():
                    return
                yield sse_frame("heartbeat", {"server_time": datetime.now(UTC).isoformat(), "version": hub.sink.version})
                continue
            if sub.overflowed:  # the client fell behind: tell it to reload the whole state
                yield sse_frame("resync", {"reason": "client fell behind"})
                return
            if item.seq <= seen:  # already in the replay
                continue
            seen = item.seq
            yield _buffered_frame(item)
    finally:
        hub.unsubscribe(sub)

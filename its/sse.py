"""Server-sent events that survive a reconnect: per-event ids and ``Last-Event-ID`` replay.

:class:`EventBuffer` is a bounded, thread-safe log of the events a stream publishes; each
event gets the id ``<epoch>-<n>``: ``n`` counts up from 1 and ``epoch`` is random per buffer,
so an id from another process or from before a restart is never mistaken for one of ours.
A browser's ``EventSource`` sends the id of the last event it received back in the
``Last-Event-ID`` header when it reconnects; :meth:`EventBuffer.since` gives the events after
it, or None when it cannot (unknown epoch, malformed, or fallen out of the buffer). The
stream then sends a :data:`RESET_EVENT` saying so and a fresh snapshot instead.

A stream's snapshot (the state when it starts) is sent without ids except on its last event,
which carries the buffer's :attr:`EventBuffer.cursor`: a client that drops mid-snapshot
reconnects without an id and gets the whole snapshot again, one that got it all resumes at
the first change after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import threading
from collections import deque
from dataclasses import dataclass

import orjson

__all__ = ["REPLAY_EVENTS", "RESET_EVENT", "Event", "EventBuffer", "reset_data"]

#: Events kept for replay per buffer (a reconnect further behind gets a fresh snapshot).
REPLAY_EVENTS = 2048
#: Name of the event that announces a fresh snapshot instead of a replay.
RESET_EVENT = "reset"
_MAX_ID_CHARS = 64


@dataclass(frozen=True)
class Event:
    """One published event: its position ``seq``, its SSE ``id``, name and ``data`` (one JSON line)."""

    seq: int
    id: str
    event: str
    data: str


class EventBuffer:
    """The last ``capacity`` events of a stream, with ids, for ``Last-Event-ID`` replay.

    Parameters
    ----------
    capacity : int
        Events kept; older ones are dropped (a client that far behind gets a snapshot).
    """

    def __init__(self, capacity: int = REPLAY_EVENTS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.epoch = secrets.token_hex(4)
        self._events: deque[Event] = deque(maxlen=capacity)
        self._next = 1
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def append(self, event: str, data: str) -> Event:
        """Publish one event (from any thread); return it with its id. Streams waiting in
        :meth:`wait` wake at once."""
        with self._lock:
            item = Event(self._next, f"{self.epoch}-{self._next}", event, data)
            self._next += 1
            self._events.append(item)
            waiters = list(self._waiters)
        for loop, woken in waiters:
            with contextlib.suppress(RuntimeError):  # that stream's loop has closed
                loop.call_soon_threadsafe(woken.set)
        return item

    async def wait(self, after: str, timeout_s: float) -> bool:
        """Wait until an event newer than the id ``after`` is published (pushed by
        :meth:`append`, no polling) or ``timeout_s`` passed; True when there is one.

        An id this buffer cannot place (another epoch, malformed) counts as behind: True at once.
        """
        woken = asyncio.Event()
        waiter = (asyncio.get_running_loop(), woken)
        with self._lock:
            seq = self._seq(after)
            if seq is None or seq < self._next - 1:
                return True
            self._waiters.add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout_s)
        finally:
            with self._lock:
                self._waiters.discard(waiter)
        return woken.is_set()

    @property
    def cursor(self) -> str:
        """The id of the last event published (``<epoch>-0`` before the first): a snapshot taken
        now is up to date to here."""
        with self._lock:
            return f"{self.epoch}-{self._next - 1}"

    def seq_of(self, last_event_id: str) -> int | None:
        """The position of an id of this buffer (0 for the cursor before the first event), else None."""
        return self._seq(last_event_id)

    def _seq(self, last_event_id: str) -> int | None:
        epoch, _, number = last_event_id.strip().partition("-")
        if epoch != self.epoch or not number.isdigit() or len(number) > 18:
            return None
        return int(number)

    def since(self, last_event_id: str | None) -> list[Event] | None:
        """The events after ``last_event_id`` (oldest first; ``[]`` when it is the last one), or
        None when they cannot be replayed: no id, another buffer's or malformed, later than the
        last event, or older than the oldest kept."""
        if last_event_id is None or len(last_event_id) > _MAX_ID_CHARS:
            return None
        seq = self._seq(last_event_id)
        if seq is None:
            return None
        with self._lock:
            first = self._events[0].seq if self._events else self._next
            if seq >= self._next or seq < first - 1:
                return None
            return list(itertools.islice(self._events, seq - first + 1, None))


def reset_data(last_event_id: str | None, reason: str) -> str:
    """The ``data`` of a :data:`RESET_EVENT`: why there is no replay and which id was asked for."""
    shown = None if last_event_id is None else last_event_id[:_MAX_ID_CHARS]
    return orjson.dumps({"reason": reason, "last_event_id": shown,
                         "message": "the events after this id are not available: a fresh snapshot follows"}).decode()

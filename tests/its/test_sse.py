"""The server-sent-event replay buffer: ids per event, replay after an id, what cannot be replayed."""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
import pytest

from its.sse import EventBuffer, reset_data


def test_ids_count_up_within_an_epoch() -> None:
    buffer = EventBuffer(capacity=5)
    assert buffer.cursor == f"{buffer.epoch}-0" and buffer.since(buffer.cursor) == []
    events = [buffer.append("availability", f'{{"n":{i}}}') for i in range(3)]
    assert [e.id for e in events] == [f"{buffer.epoch}-{i}" for i in (1, 2, 3)]
    assert buffer.cursor == events[-1].id and buffer.seq_of(events[1].id) == 2
    assert EventBuffer().epoch != buffer.epoch


def test_replay_after_an_id() -> None:
    buffer = EventBuffer(capacity=5)
    events = [buffer.append("alert", str(i)) for i in range(4)]
    assert buffer.since(f"{buffer.epoch}-0") == events
    assert buffer.since(events[1].id) == events[2:]
    assert buffer.since(events[-1].id) == []
    assert buffer.since(f" {events[1].id} ") == events[2:]  # header whitespace


@pytest.mark.parametrize("asked", [None, "", "5", "abc", "-3", "deadbeef-1", "x" * 100])
def test_foreign_or_malformed_ids_cannot_be_replayed(asked: str | None) -> None:
    buffer = EventBuffer()
    buffer.append("alert", "1")
    assert buffer.since(asked) is None


def test_ids_that_fell_out_or_lie_ahead_cannot_be_replayed() -> None:
    buffer = EventBuffer(capacity=3)
    events = [buffer.append("alert", str(i)) for i in range(6)]  # 1-3 dropped, 4-6 kept
    assert buffer.since(events[2].id) == events[3:]  # the last one dropped: the rest is complete
    assert buffer.since(events[1].id) is None  # event 3 is gone: a replay would have a hole
    assert buffer.since(f"{buffer.epoch}-7") is None  # ahead of the log (e.g. another process's count)
    assert buffer.since(f"{buffer.epoch}-0") is None


def test_concurrent_appends_get_distinct_ordered_ids() -> None:
    buffer = EventBuffer(capacity=10_000)

    def publish() -> None:
        for i in range(500):
            buffer.append("x", str(i))

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [e.seq for e in buffer.since(f"{buffer.epoch}-0") or []]
    assert seqs == list(range(1, 2001))


def test_reset_data() -> None:
    data = orjson.loads(reset_data("x" * 500, "unknown_last_event_id"))
    assert data["reason"] == "unknown_last_event_id" and len(data["last_event_id"]) == 64
    with pytest.raises(ValueError):
        EventBuffer(0)


def test_a_waiting_stream_wakes_when_another_thread_appends() -> None:
    """Pushed, not polled: a wait with an hour's timeout returns as soon as a thread appends."""
    buffer = EventBuffer()
    cursor = buffer.cursor

    async def run() -> tuple[bool, float]:
        timer = threading.Timer(0.2, buffer.append, ("availability", "{}"))
        started = time.monotonic()
        timer.start()
        woke = await asyncio.wait_for(buffer.wait(cursor, timeout_s=3600.0), timeout=30.0)
        return woke, time.monotonic() - started

    woke, waited_s = asyncio.run(run())
    assert woke and waited_s < 29.0
    assert [e.data for e in buffer.since(cursor) or []] == ["{}"]


def test_wait_returns_at_once_when_the_client_is_behind_and_times_out_when_nothing_comes() -> None:
    buffer = EventBuffer()
    first = buffer.cursor
    buffer.append("alert", "1")
    assert asyncio.run(buffer.wait(first, timeout_s=3600.0)) is True  # an event after the id exists
    assert asyncio.run(buffer.wait("not-ours", timeout_s=3600.0)) is True  # cannot place it: go and look
    assert asyncio.run(buffer.wait(buffer.cursor, timeout_s=0.05)) is False
    assert not buffer._waiters  # no waiter left behind

"""The alert hub and SSE framing without a server: thread hand-off, overflow, framing."""

from __future__ import annotations

import asyncio
import threading

import orjson

from its.alerts import AlertSink
from its.control.views import QUEUE_LIMIT, AlertHub, event_stream, sse_frame


def parse(frame: bytes) -> tuple[str, dict]:
    lines = frame.decode().strip().split("\n")
    name = next(line[7:] for line in lines if line.startswith("event: "))
    data = next(line[6:] for line in lines if line.startswith("data: "))
    return name, orjson.loads(data)


def test_sse_frame_is_one_event_with_one_json_line() -> None:
    frame = sse_frame("alert", {"message": "two\nlines", "n": 1}, 7)
    assert frame.endswith(b"\n\n") and frame.count(b"\n") == 4
    assert frame.startswith(b"event: alert\nid: 7\ndata: ")
    assert parse(frame) == ("alert", {"message": "two\nlines", "n": 1})


def test_alerts_raised_on_other_threads_reach_the_stream_in_order() -> None:
    sink = AlertSink()
    hub = AlertHub(sink)

    async def run() -> list[tuple[str, dict]]:
        async def never() -> bool:
            return False

        stream = event_stream(hub, never, heartbeat_s=0.2)
        got = [parse(await anext(stream))]
        assert hub.listeners == 1

        def raiser() -> None:
            for i in range(5):
                sink.raise_alert("gap", f"route-{i}", f"gap on route {i}")

        threading.Thread(target=raiser).start()
        got += [parse(await anext(stream)) for _ in range(6)]
        await stream.aclose()
        assert hub.listeners == 0
        return got

    got = asyncio.run(run())
    assert got[0] == ("snapshot", {"alerts": [], "version": 0, "server_time": got[0][1]["server_time"]})
    assert [d["alert"]["subject"] for _, d in got[1:6]] == [f"route-{i}" for i in range(5)]
    assert got[6][0] == "heartbeat" and got[6][1]["version"] == 5


def test_a_browser_that_falls_behind_is_told_to_resync() -> None:
    sink = AlertSink()
    hub = AlertHub(sink)

    async def run() -> list[str]:
        async def never() -> bool:
            return False

        stream = event_stream(hub, never, heartbeat_s=5)
        names = [parse(await anext(stream))[0]]
        done = threading.Event()

        def flood() -> None:
            for i in range(QUEUE_LIMIT + 50):
                sink.raise_alert("stale_vehicle", f"v{i}", "silent")
            done.set()

        threading.Thread(target=flood).start()
        while not done.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # let the loop run the queued hand-offs
        names += [parse(frame)[0] async for frame in stream]
        return names

    names = asyncio.run(run())
    assert names == ["snapshot", "resync"]  # the backlog is dropped, not buffered without bound
    assert len(sink.active()) == QUEUE_LIMIT + 50

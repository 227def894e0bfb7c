"""The alert hub and SSE framing without a server: thread hand-off, overflow, framing."""

from __future__ import annotations

import asyncio
import threading

import orjson

from its.alerts import AlertSink
from its.app.control.views import QUEUE_LIMIT, AlertHub, event_stream, sse_frame


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


def parse_all(frames: bytes) -> list[tuple[str, str | None, dict]]:
    """Every event of ``frames``: (name, id or None, data)."""
    out = []
    for block in frames.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if "event" in fields:
            out.append((fields["event"], fields.get("id"), orjson.loads(fields["data"])))
    return out


def test_a_reconnect_gets_the_alerts_after_its_last_event_id() -> None:
    sink = AlertSink()
    hub = AlertHub(sink)

    async def never() -> bool:
        return False

    async def first(last_event_id: str | None, n: int = 1) -> list[tuple[str, str | None, dict]]:
        stream = event_stream(hub, never, heartbeat_s=5, last_event_id=last_event_id)
        got: list[tuple[str, str | None, dict]] = []
        while len(got) < n:
            got += parse_all(await anext(stream))
        await stream.aclose()
        return got

    sink.raise_alert("gap", "route-0", "gap on route 0")  # before anyone listens: in the buffer all the same
    [(name, snap_id, snap)] = asyncio.run(first(None))
    assert name == "snapshot" and snap_id == hub.buffer.cursor and len(snap["alerts"]) == 1
    for i in range(1, 4):
        sink.raise_alert("gap", f"route-{i}", f"gap on route {i}")
    sink.clear("gap", "route-1")
    # the browser saw the snapshot, then lost the connection: it comes back with the snapshot's id
    replay = asyncio.run(first(snap_id, 4))
    assert [(n, d["event"], d["alert"]["subject"]) for n, _, d in replay] == [
        ("alert", "raised", "route-1"), ("alert", "raised", "route-2"), ("alert", "raised", "route-3"),
        ("alert", "cleared", "route-1")]
    ids = [i for _, i, _ in replay]
    assert len(set(ids)) == 4 and all(i and i.startswith(hub.buffer.epoch) for i in ids)  # an id per event
    # from the middle: only what came after
    assert [d["alert"]["subject"] for _, _, d in asyncio.run(first(ids[1], 2))] == ["route-3", "route-1"]

    async def live() -> list[tuple[str, str | None, dict]]:
        stream = event_stream(hub, never, heartbeat_s=5, last_event_id=ids[-1])  # up to date: nothing replayed
        head = parse_all(await anext(stream))
        threading.Thread(target=sink.raise_alert, args=("gap", "route-9", "gap on route 9")).start()
        got = head + parse_all(await anext(stream))
        await stream.aclose()
        return got

    assert [(n, d["alert"]["subject"]) for n, _, d in asyncio.run(live())] == [("alert", "route-9")]


def test_an_unknown_or_lost_id_gets_a_reset_and_a_fresh_snapshot() -> None:
    sink = AlertSink()
    hub = AlertHub(sink)
    hub.buffer = type(hub.buffer)(capacity=3)  # a short memory, to lose events

    async def never() -> bool:
        return False

    async def first(last_event_id: str) -> list[tuple[str, str | None, dict]]:
        stream = event_stream(hub, never, heartbeat_s=5, last_event_id=last_event_id)
        got = parse_all(await anext(stream)) + parse_all(await anext(stream))
        await stream.aclose()
        return got

    sink.raise_alert("gap", "a", "gap a")
    old = hub.buffer.cursor
    for s in "bcde":
        sink.raise_alert("gap", s, f"gap {s}")
    for asked, reason in ((old, "unknown_last_event_id"), ("deadbeef-1", "unknown_last_event_id")):
        (reset, _, why), (snap, snap_id, data) = asyncio.run(first(asked))
        assert (reset, why["reason"], why["last_event_id"]) == ("reset", reason, asked)
        assert snap == "snapshot" and snap_id == hub.buffer.cursor and len(data["alerts"]) == 5

"""``/v1/parking/stream`` resumes: an id per event, ``Last-Event-ID`` replay from the bounded buffer,
a ``reset`` and a fresh snapshot when the id is unknown or fell out, over the real service (real
database and broker), through the app and directly on the change log."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request

from its.sse import EventBuffer
from parking.api import AvailabilityEvents
from parking.ingest import count_topic
from parking.service import ParkingService
from tests.parking.conftest import Served

SITES = 36
STREAM = "/v1/parking/stream"


def count(service: ParkingService, site: str, occupied: int, ago_s: float = 0.0) -> None:
    ts = datetime.now(UTC) - timedelta(seconds=ago_s)
    service._on_count(count_topic(site), orjson.dumps({"ts": ts.timestamp(), "occupied": occupied}))


def events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """SSE events ``{"event", "id", "data"}`` of a line iterator (comments and pings skipped)."""
    fields: dict[str, Any] = {}
    for line in lines:
        if not line:
            if "event" in fields:
                yield {"id": None, **fields, "data": orjson.loads(fields["data"])}
            fields = {}
        elif not line.startswith(":") and ": " in line:
            name, value = line.split(": ", 1)
            fields[name] = value


def take(stream: Iterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [next(stream) for _ in range(n)]


def test_a_reconnect_replays_the_changes_after_its_last_event_id(parking: Served) -> None:
    client, service, _ = parking
    with client.stream("GET", STREAM) as response:
        stream = events(response.iter_lines())
        snapshot = take(stream, SITES)
        assert [e["event"] for e in snapshot] == ["availability"] * SITES
        assert all(e["id"] is None for e in snapshot[:-1]) and snapshot[-1]["id"]  # the cursor on the last one
        count(service, "CNS-CENTRAL", 77)
        first = next(stream)
        count(service, "CNS-CENTRAL", 78, ago_s=-1)
        second = next(stream)
    assert (first["data"]["site_id"], first["data"]["occupied"], second["data"]["occupied"]) == ("CNS-CENTRAL", 77, 78)
    assert len({snapshot[-1]["id"], first["id"], second["id"]}) == 3  # an id per event
    count(service, "CNS-HOSPITAL", 120)  # while no stream is open
    with client.stream("GET", STREAM, headers={"Last-Event-ID": first["id"]}) as response:
        stream = events(response.iter_lines())
        replay = take(stream, 2)
    assert [(e["data"]["site_id"], e["data"]["occupied"]) for e in replay] == [("CNS-CENTRAL", 78), ("CNS-HOSPITAL", 120)]
    assert replay[0]["id"] == second["id"] and replay[1]["id"] not in (first["id"], second["id"])
    # from the snapshot's cursor: every change since, and nothing else
    with client.stream("GET", STREAM, headers={"Last-Event-ID": snapshot[-1]["id"]}) as response:
        stream = events(response.iter_lines())
        assert [e["id"] for e in take(stream, 3)] == [first["id"], second["id"], replay[1]["id"]]


def test_an_unknown_id_gets_a_reset_then_a_snapshot(parking: Served) -> None:
    client, service, _ = parking
    with client.stream("GET", STREAM, headers={"Last-Event-ID": "0123abcd-5"}) as response:
        stream = events(response.iter_lines())
        reset = next(stream)
        snapshot = take(stream, SITES)
        count(service, "CNS-CENTRAL", 33)
        change = next(stream)
    assert reset["event"] == "reset" and reset["id"] is None
    assert reset["data"]["reason"] == "unknown_last_event_id" and reset["data"]["last_event_id"] == "0123abcd-5"
    assert {e["data"]["site_id"] for e in snapshot} == set(service.state.sites)
    assert change["data"]["occupied"] == 33 and change["id"] != snapshot[-1]["id"]


def test_a_client_further_behind_than_the_buffer_gets_a_reset(parking: Served) -> None:
    """The change log itself, with a buffer of 4 events: 10 sites change between two polls."""
    _, service, _ = parking
    changes = AvailabilityEvents(service)
    changes.buffer = EventBuffer(capacity=4)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def run() -> list[dict[str, str]]:
        scope = {"type": "http", "method": "GET", "path": STREAM, "query_string": b"", "headers": []}
        stream = changes.stream(Request(scope, receive))
        got = [await anext(stream) for _ in range(SITES)]
        for i, site in enumerate(sorted(service.state.sites)[:10]):
            count(service, site, i + 1, ago_s=-2)
        got += [await anext(stream) for _ in range(1 + SITES)]
        await stream.aclose()
        return got

    got = asyncio.run(run())
    reset = got[SITES]
    assert reset["event"] == "reset" and orjson.loads(reset["data"])["reason"] == "fell_behind"
    assert orjson.loads(reset["data"])["last_event_id"] == got[SITES - 1]["id"]
    assert [e["event"] for e in got[SITES + 1:]] == ["availability"] * SITES  # the fresh snapshot


class _Client(Request):
    """A connected client that counts how often its stream checks on it (a polling stream would)."""

    checks = 0

    async def is_disconnected(self) -> bool:
        type(self).checks += 1
        return False


def test_streams_are_pushed_on_change_not_polled(parking: Served, monkeypatch: Any) -> None:
    """200 idle streams do nothing until a site changes (the idle timeout set to an hour), then each
    gets the change at once."""
    _, service, _ = parking
    monkeypatch.setattr("parking.api.STREAM_IDLE_S", 3600.0)
    changes = AvailabilityEvents(service)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def run() -> tuple[int, list[dict[str, str]]]:
        scope = {"type": "http", "method": "GET", "path": STREAM, "query_string": b"", "headers": []}
        streams = [changes.stream(_Client(scope, receive)) for _ in range(200)]
        for stream in streams:
            for _ in range(SITES):
                await anext(stream)
        nexts = [asyncio.ensure_future(anext(stream)) for stream in streams]
        await asyncio.sleep(1.0)
        idle_checks = _Client.checks
        assert not any(f.done() for f in nexts)
        await asyncio.get_running_loop().run_in_executor(None, count, service, "CNS-CENTRAL", 55, -3.0)
        got = await asyncio.wait_for(asyncio.gather(*nexts), timeout=30.0)
        for stream in streams:
            await stream.aclose()
        return idle_checks, got

    idle_checks, got = asyncio.run(run())
    assert idle_checks == 0  # nobody woke while nothing changed
    assert {(orjson.loads(e["data"])["site_id"], orjson.loads(e["data"])["occupied"]) for e in got} == {("CNS-CENTRAL", 55)}
    assert len({e["id"] for e in got}) == 1

"""GTFS-realtime polled over HTTP into the ingest path: real Minneapolis snapshots served by a
local HTTP server (with ETag), a real broker, a real collector and PostgreSQL."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from google.transit import gtfs_realtime_pb2

from its.app.registry import domain_routes
from its.collector import Collector
from its.db import Database
from its.mqtt import connect
from its.settings import Settings
from telematics.gtfsrt_poll import (
    GtfsrtPoller,
    PollConfig,
    PollOutcome,
    backoff_s,
    select_new_positions,
)
from tests.its.helpers import wait_for


@dataclass
class Served:
    body: bytes = b""
    delay_s: float = 0.0
    status: int = 200
    requests: int = 0
    not_modified: int = 0


@pytest.fixture
def feed_server() -> Iterator[tuple[str, Served]]:
    served = Served()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests += 1
            time.sleep(served.delay_s)
            etag = '"' + hashlib.sha256(served.body).hexdigest()[:16] + '"'
            if served.status != 200:
                self.send_response(served.status)
                self.end_headers()
                return
            if self.headers.get("If-None-Match") == etag:
                served.not_modified += 1
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/vehicle-positions.pb", served
    finally:
        server.shutdown()
        server.server_close()


def _snapshots(snapshots: list[Path], now: float) -> list[gtfs_realtime_pb2.FeedMessage]:
    """The three snapshots (real Minneapolis ones when shared), times shifted so the first is ``now``."""
    feeds = []
    for path in snapshots:
        feed = gtfs_realtime_pb2.FeedMessage()
        feed.ParseFromString(path.read_bytes())
        feeds.append(feed)
    shift = int(now) - int(feeds[0].header.timestamp)
    for feed in feeds:
        feed.header.timestamp += shift
        for e in feed.entity:
            if e.HasField("vehicle") and e.vehicle.timestamp:
                e.vehicle.timestamp += shift
    return feeds


def _unique_positions(feeds: list[gtfs_realtime_pb2.FeedMessage]) -> set[tuple[str, int]]:
    out = set()
    for feed in feeds:
        for e in feed.entity:
            if e.HasField("vehicle"):
                vp = e.vehicle
                out.add((vp.vehicle.id or vp.vehicle.label or e.id, int(vp.timestamp or feed.header.timestamp)))
    return out


def test_only_new_positions_are_selected(gtfsrt_snapshots: list[Path]) -> None:
    first, second, _third = _snapshots(gtfsrt_snapshots, time.time())
    new, state = select_new_positions(first, {})
    assert len(new.entity) == sum(e.HasField("vehicle") for e in first.entity) and new.header == first.header
    again, same = select_new_positions(first, state)
    assert len(again.entity) == 0 and same == state
    changed, _ = select_new_positions(second, state)
    assert {(e.vehicle.vehicle.id, e.vehicle.timestamp) for e in changed.entity} == \
        _unique_positions([second]) - _unique_positions([first])


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    waits = [backoff_s(n, 2.0, 60.0, rng) for n in range(0, 10)]
    assert waits[0] == 0.0
    assert all(1.0 <= w <= 2.0 for w in waits[1:2]) and all(waits[n] <= 60.0 for n in range(10))
    assert min(backoff_s(8, 2.0, 60.0, rng) for _ in range(20)) >= 30.0  # capped at 60 x jitter >= 0.5


def test_polled_feed_is_stored_through_the_collector(gtfsrt_snapshots: list[Path], settings: Settings, db: Database,
                                                     feed_server: tuple[str, Served]) -> None:
    url, served = feed_server
    feeds = _snapshots(gtfsrt_snapshots, time.time())
    collector = Collector(settings, db, domain_routes(), client_id="test-gtfsrt-collector")
    collector.start()
    conn = connect(settings.mqtt_url or "", "test-gtfsrt-poller")
    poller = GtfsrtPoller(PollConfig(url=url, agency="metro", interval_s=0.1, timeout_s=1.0, max_feed_age_s=3600,
                                     backoff_base_s=0.05, backoff_max_s=0.5),
                          lambda topic, payload: conn.publish(topic, payload, qos=1).wait_for_publish(10), seed=0)
    try:
        results = []
        for feed in feeds:
            served.body = feed.SerializeToString()
            results.append(poller.poll_once())
            results.append(poller.poll_once())  # unchanged body: the ETag gives a 304
        assert [r.outcome for r in results[1::2]] == [PollOutcome.NOT_MODIFIED] * 3
        assert served.not_modified == 3
        expected = _unique_positions(feeds)
        assert sum(r.published for r in results) == len(expected)
        assert wait_for(lambda: db.fetchall("SELECT count(*) FROM vehicle_positions")[0][0] == len(expected), 30)
        stored = {(v, int(t)) for v, t in db.fetchall(
            "SELECT vehicle_id, extract(epoch FROM time)::bigint FROM vehicle_positions WHERE agency = 'metro'")}
        assert stored == expected

        # a truncated body: nothing published, an error counted, and the poller backs off
        served.body = feeds[-1].SerializeToString()[: len(served.body) // 2]
        bad = poller.poll_once()
        assert bad.outcome is PollOutcome.ERROR and bad.published == 0 and "decode" in bad.detail
        first_wait = poller.next_wait_s()
        poller.poll_once()
        assert poller.failures == 2 and poller.next_wait_s() <= 0.5 and first_wait <= 0.05
        # a slow feed times out; a server error is an error too
        served.delay_s = 1.5
        assert poller.poll_once().detail.startswith("timeout")
        served.delay_s, served.status = 0.0, 503
        assert poller.poll_once().status == 503 and poller.failures == 4
        # a stale feed (header an hour and a half old) is skipped
        served.status = 200
        stale = _snapshots(gtfsrt_snapshots, time.time() - 5400)[0]
        served.body = stale.SerializeToString()
        result = poller.poll_once()
        assert result.outcome is PollOutcome.STALE and result.published == 0 and poller.failures == 0
        time.sleep(0.5)
        assert db.fetchall("SELECT count(*) FROM vehicle_positions")[0][0] == len(expected)
        assert db.fetchall("SELECT count(*) FROM rejected_messages")[0][0] == 0
    finally:
        poller.close()
        conn.close()
        collector.stop()


def test_metrics_are_exported(feed_server: tuple[str, Served]) -> None:
    url, _served = feed_server
    from prometheus_client import generate_latest

    text = generate_latest().decode()
    for name in ("its_gtfsrt_fetch_seconds", "its_gtfsrt_feed_age_seconds", "its_gtfsrt_entities_total",
                 "its_gtfsrt_errors_total"):
        assert name in text
    assert httpx.get(url, timeout=5).status_code == 200


def test_cli_polls_once_and_refuses_a_bad_header(gtfsrt_snapshots: list[Path], broker_url: str,
                                                 feed_server: tuple[str, Served]) -> None:
    from typer.testing import CliRunner

    from its.app.cli import app

    url, served = feed_server
    served.body = _snapshots(gtfsrt_snapshots, time.time())[0].SerializeToString()
    runner = CliRunner()
    done = runner.invoke(app, ["gtfsrt", "poll", url, "--agency", "metro", "--once", "--broker", broker_url,
                               "--header", "X-Api-Key: secret"])
    assert done.exit_code == 0, done.output
    assert "1 fetches" in done.output and "published to its/v1/vehicles/metro/gtfsrt/position/gtfsrt" in done.output
    bad = runner.invoke(app, ["gtfsrt", "poll", url, "--agency", "metro", "--once", "--broker", broker_url,
                              "--header", "no-colon"])
    assert bad.exit_code == 2

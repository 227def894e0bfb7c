"""GTFS-realtime as integrators check it, over a real HTTP server: the feeds and the static GTFS
they refer to (``/gtfs/static.zip``), their validators and 304s, and MobilityData's rules (the
``gtfs-rt-validator`` package, pure Python) over a sequence of TripUpdates + VehiclePositions
snapshots of a replayed fleet, which must give 0 errors.

A feed is imported into a real database; the arrivals service runs in the real app on a real
uvicorn; its clock follows a replay of position messages (each through the JSON ingestion parser,
as the collector sees it): the Cairns feed with the demo's simulated fleet (fast), and WMATA's
real AVL (slow: the validator reads WMATA's 10 MB of stop times in ~40 s).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from google.transit import gtfs_realtime_pb2

from its.alerts import AlertSink
from its.app.factory import create_app
from its.conditional import http_date
from its.db import Database
from its.service import Context
from its.settings import load_settings
from telematics.config import TelematicsSettings
from telematics.gtfs import read_feed
from telematics.gtfs.database import import_feed_file, load_feed
from telematics.ingest import parse_json_position
from telematics.service import ArrivalsService
from telematics.simulator import FleetSimulation, fleet_messages
from tests.its.helpers import wait_for
from tests.its.served import uvicorn_server

SNAPSHOTS = 6
TU, VP = "/gtfs-rt/trip-updates", "/gtfs-rt/vehicle-positions"
MONDAY = date(2014, 6, 2)  # a weekday the Cairns feed runs
SIM_START = "2014-06-01T22:00:00Z"  # 08:00 in Cairns: the morning peak
WMATA_WARM_UP = "2026-02-16T16:20:00Z"


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Replay:
    """The arrivals service, its clock and the position messages ``(t, topic, payload)`` not yet
    replayed; the API's base URL."""

    service: ArrivalsService
    messages: list[tuple[float, str, bytes]]
    agency: str
    url: str = ""
    now_s: float = 0.0
    done: int = 0

    def clock(self) -> float:
        return self.now_s

    def advance(self, to_s: float) -> None:
        """Replay the messages up to ``to_s`` (each through the JSON ingestion parser, as the
        collector parses it) and rebuild the served snapshot at ``to_s``."""
        rows = []
        while self.done < len(self.messages) and self.messages[self.done][0] <= to_s:
            _t, topic, payload = self.messages[self.done]
            rows += parse_json_position(topic, payload)
            self.done += 1
        self.now_s = to_s
        self.service.observe(rows)
        self.service.refresh(to_s)


@contextmanager
def _served(db: Database, feed: Path, agency: str, messages: list[tuple[float, str, bytes]],
            start_s: float) -> Iterator[Replay]:
    """The feed imported, the arrivals service in the real app on a real uvicorn, its clock at
    ``start_s`` with the messages before it replayed."""
    import_feed_file(db, feed, agency)
    settings = load_settings(database_url=db.url, mqtt_url=None)
    ctx = Context(settings=settings, db=db, read_db=db, alerts=AlertSink(db))
    service = ArrivalsService(TelematicsSettings(recent_positions_min=0, history_days=0), background=False)
    r = Replay(service, messages, agency, now_s=start_s)
    service.clock = r.clock
    app = create_app(settings, [service], context=ctx)
    with TestClient(app) as client:
        assert wait_for(lambda: service.ready() or "errors" in client.get("/readyz").json(), 300)
        assert service.ready(), client.get("/readyz").json()
        with uvicorn_server(app, settings) as port:
            r.url = f"http://127.0.0.1:{port}"
            r.advance(start_s)
            yield r
    service.stop()


@pytest.fixture(scope="module")
def cairns(module_db: Database, cairns_zip: Path) -> Iterator[Replay]:
    """Cairns with a simulated fleet (what ``its simulate fleet`` publishes in the demo: a ping every
    10 s per bus), 10 minutes replayed before the first snapshot."""
    sim = FleetSimulation(read_feed(cairns_zip), MONDAY, seed=11)
    start = _epoch(SIM_START)
    messages = [m for m in fleet_messages(sim, "cairns", start - 600, 10.0) if m[0] <= start + 600]
    with _served(module_db, cairns_zip, "cairns", messages, start) as r:
        yield r


def _validate(replay: Replay, tmp_path: Path, snapshots: int, step_s: float) -> dict[str, Any]:
    """Take ``snapshots`` TripUpdates + VehiclePositions pairs ``step_s`` apart over HTTP, run the
    validator over the sequence (its clock: each snapshot's time) against ``/gtfs/static.zip``;
    return its report (``report.json``), having required 0 errors."""
    from gtfs_rt_validator.api import (
        VERSION,
        Inputs,
        Mode,
        Request,
        SortBy,
        resolve_roles,
        validate,
    )

    assert VERSION == "0.3.0"
    with httpx.Client(base_url=replay.url, timeout=60) as http:
        static = http.get("/gtfs/static.zip")
        assert static.status_code == 200 and static.headers["content-type"] == "application/zip"
        gtfs = tmp_path / "gtfs.zip"
        gtfs.write_bytes(static.content)
        cycles = []
        entities = 0
        for _ in range(snapshots):
            at = replay.now_s + step_s
            replay.advance(at)
            stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H-%M-%SZ")  # the validator's clock
            paths = {}
            for role, route, name in (("tu", TU, "TripUpdates"), ("vp", VP, "VehiclePositions")):
                res = http.get(route)
                assert res.status_code == 200 and res.headers["content-type"] == "application/x-protobuf"
                msg = gtfs_realtime_pb2.FeedMessage()
                msg.ParseFromString(res.content)
                assert msg.header.timestamp == int(at)
                entities += len(msg.entity)
                paths[role] = tmp_path / f"{name}-{stamp}.pb"
                paths[role].write_bytes(res.content)
            cycles.append(resolve_roles({role: str(p) for role, p in paths.items()}).cycles[0])
    assert entities > snapshots * 40, entities  # a real fleet: dozens of vehicles and trips in every snapshot
    started = time.monotonic()
    result = validate(Request(mode=Mode.MODERN, gtfs=gtfs, inputs=Inputs(tuple(cycles), True), sort_by=SortBy.NAME))
    report: dict[str, Any] = orjson.loads(result.write(tmp_path / "report").report.read_bytes())
    errors = [n for n in report["notices"] if n["severity"] == "ERROR"]
    warnings = {n["code"]: n["totalNotices"] for n in report["notices"] if n["severity"] != "ERROR"}
    print(f"gtfs-rt-validator {VERSION} ({replay.agency}): {report['summary']['messagesValidated']} messages, "
          f"{entities} entities, {len(report['summary']['rulesRun'])} rules, {time.monotonic() - started:.1f} s; "
          f"warnings {warnings}")
    assert report["summary"]["messagesValidated"] == 2 * snapshots
    assert not result.run.system_errors.rule_ids(), "the validator could not read a message"
    assert not errors and not result.has_errors(), orjson.dumps(errors, option=orjson.OPT_INDENT_2).decode()[:4000]
    return report


def test_validator_finds_no_error_with_a_simulated_fleet(cairns: Replay, tmp_path: Path) -> None:
    """Six snapshots 30 s apart (the validator warns above 35 s between messages, W007)."""
    report = _validate(cairns, tmp_path, SNAPSHOTS, 30.0)
    assert len(report["summary"]["rulesRun"]) == 121


@pytest.mark.slow
def test_validator_finds_no_error_in_a_real_avl_replay(db: Database, wmata_dir: Path, tmp_path: Path) -> None:
    """WMATA's real AVL (~30 buses, pings every ~30 s), eight snapshots 90 s apart after 20 minutes."""
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False).sort_values(
        "timestamp", kind="stable")
    messages = []
    for r in avl.to_dict("records"):
        payload: dict[str, Any] = {"ts": r["timestamp"], "lat": float(r["lat"]), "lon": float(r["lon"]),
                                   "trip_id": r["trip_id"], "start_date": r["start_date"]}
        if r["speed_mps"]:
            payload["speed_mps"] = float(r["speed_mps"])
        messages.append((_epoch(r["timestamp"]), f"its/v1/vehicles/wmata/{r['vehicle_id']}/position",
                         orjson.dumps(payload)))
    with _served(db, wmata_dir / "wmata_gtfs.zip", "wmata", messages, _epoch(WMATA_WARM_UP)) as replay:
        _validate(replay, tmp_path, 8, 90.0)


def test_static_zip_is_the_feed_the_platform_runs_on(cairns: Replay, module_db: Database, tmp_path: Path) -> None:
    with httpx.Client(base_url=cairns.url, timeout=30, headers={"Accept-Encoding": "identity"}) as http:
        res = http.get("/gtfs/static.zip")
        assert res.status_code == 200 and res.headers["content-type"] == "application/zip"
        tag, modified = res.headers["etag"], res.headers["last-modified"]
        assert tag.startswith('"') and "attachment" in res.headers["content-disposition"]
        assert http.get("/gtfs/static.zip", headers={"If-None-Match": tag}).status_code == 304
        assert http.get("/gtfs/static.zip", headers={"If-Modified-Since": modified}).status_code == 304
        assert http.get("/gtfs/static.zip", params={"agency": "cairns"}).content == res.content
        head = http.head("/gtfs/static.zip")
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(res.content))
        unknown = http.get("/gtfs/static.zip", params={"agency": "nope"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
        # zips are never gzipped again
        assert "content-encoding" not in http.get("/gtfs/static.zip", headers={"Accept-Encoding": "gzip"}).headers
    path = tmp_path / "served.zip"
    path.write_bytes(res.content)
    served, stored = read_feed(path), load_feed(module_db, "cairns")
    for name in ("agency", "routes", "stops", "trips", "stop_times", "calendar", "calendar_dates", "shapes"):
        want, got = getattr(stored, name), getattr(served, name)
        assert len(want) == len(got) and set(want.columns) <= set(got.columns), name
        for column in want.columns:  # the database gives some optional fields typed, the reader as text
            a, b = want[column].reset_index(drop=True), got[column].reset_index(drop=True)
            if a.dtype.kind in "if" or b.dtype.kind in "if":
                a, b = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
            else:
                a, b = a.astype(str), b.astype(str)
            pd.testing.assert_series_equal(a, b, check_dtype=False, obj=f"{name}.{column}")


def test_feeds_have_validators_and_answer_304(cairns: Replay) -> None:
    replay = cairns
    replay.advance(replay.now_s + 30)
    with httpx.Client(base_url=replay.url, timeout=30, headers={"Accept-Encoding": "identity"}) as http:
        first = http.get(TU)
        tag, modified = first.headers["etag"], first.headers["last-modified"]
        assert tag.startswith('"') and modified == http_date(replay.now_s)
        assert first.headers["cache-control"] == "no-cache"
        same = http.get(TU, headers={"If-None-Match": tag})
        assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == tag
        assert http.get(TU, headers={"If-None-Match": f'"other", W/{tag}'}).status_code == 304  # weak comparison
        assert http.get(TU, headers={"If-None-Match": "*"}).status_code == 304
        assert http.get(TU, headers={"If-Modified-Since": modified}).status_code == 304
        # If-None-Match wins over If-Modified-Since
        assert http.get(TU, headers={"If-None-Match": '"other"', "If-Modified-Since": modified}).status_code == 200
        assert http.get(TU, headers={"If-Match": '"other"'}).status_code == 412
        js = http.get(TU, params={"format": "json"})
        assert js.headers["etag"] not in (tag, f"W/{tag}") and int(js.json()["header"]["timestamp"]) == int(replay.now_s)
        assert http.get(TU, params={"format": "json"}, headers={"If-None-Match": js.headers["etag"]}).status_code == 304
        # compressed: the same content, a weak tag that still revalidates
        zipped = http.get(VP, headers={"Accept-Encoding": "gzip"})
        plain = http.get(VP, headers={"Accept-Encoding": "identity"})
        assert zipped.headers["content-encoding"] == "gzip" and zipped.content == plain.content
        assert zipped.headers["etag"] == "W/" + plain.headers["etag"]
        assert len(gzip.compress(plain.content)) < len(plain.content)
        assert http.get(VP, headers={"If-None-Match": zipped.headers["etag"]}).status_code == 304
        assert http.head(VP).status_code == 200
        replay.advance(replay.now_s + 5)  # a new snapshot: new content, new validators
        after = http.get(TU, headers={"If-None-Match": tag, "If-Modified-Since": modified})
        assert after.status_code == 200 and after.headers["etag"] != tag
        assert http.get(TU, headers={"If-Modified-Since": modified}).status_code == 200


def test_static_zip_404_when_no_feed_is_imported(db: Database) -> None:
    settings = load_settings(database_url=db.url, mqtt_url=None)
    ctx = Context(settings=settings, db=db, read_db=db, alerts=AlertSink(db))
    service = ArrivalsService(TelematicsSettings(recent_positions_min=0, history_days=0), background=False)
    with TestClient(create_app(settings, [service], context=ctx)) as client:
        assert wait_for(service.ready, 60)
        res = client.get("/gtfs/static.zip")
        assert res.status_code == 404 and res.headers["content-type"] == "application/json"
        assert res.json()["error"] == {"code": "not_found",
                                       "message": "no GTFS feed is imported (`its gtfs import FEED.zip`)"}
    service.stop()

"""Camera routes of the API over the live service state, with real auth and database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from its.app.control import control_routers
from its.app.factory import build_context, create_app
from its.auth import create_user
from its.db import Database, copy_rows
from its.settings import Settings
from video.annotate import encode_jpeg
from video.ingest import COUNT_COLUMNS, PEOPLE_COLUMNS, parse_counts, parse_people
from video.schemas import CameraDetail
from video.service import CameraService
from video.worker import snapshot_path


def _minute(offset: int = 0) -> datetime:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=2 - offset)


def _payload(start: datetime, count: int, cls: str = "car", direction: str = "in") -> bytes:
    return orjson.dumps({"interval_start": start.isoformat(), "interval_s": 60, "line_id": "north",
                         "direction": direction, "vehicle_class": cls, "count": count, "mean_speed_kmh": 50.0})


def _zone(start: datetime, zone: str, mean: float, peak: float) -> dict[str, object]:
    return {"interval_start": start.isoformat(), "interval_s": 60, "zone_id": zone, "people_mean": mean,
            "people_max": peak, "samples": 120}


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[tuple[TestClient, CameraService]]:
    with db.connection() as conn:  # what the collector stored before the API started
        copy_rows(conn, "traffic_counts", COUNT_COLUMNS, parse_counts("its/v1/cameras/stored/counts", _payload(_minute(0), 9)))
        people = [parse_people("its/v1/cameras/mall-1/people", orjson.dumps(p))[0] for p in (
            _zone(_minute(-1), "all", 20.0, 25.0), _zone(_minute(0), "all", 30.5, 41.0), _zone(_minute(0), "entrance", 4.0, 6.0))]
        copy_rows(conn, "people_counts", PEOPLE_COLUMNS, people)
    service = CameraService()
    ctx = build_context(settings)
    app = create_app(settings, [service], context=ctx, extra_routers=control_routers())
    with TestClient(app) as c:
        for _ in range(100):
            if service.ready():
                break
            import time

            time.sleep(0.05)
        yield c, service
    if ctx.live:
        ctx.live.close()
    ctx.db.close()


def test_counts_status_and_snapshot(client: tuple[TestClient, CameraService], db: Database, settings: Settings) -> None:
    http, service = client
    assert http.get("/v1/cameras/stored").json()["counts"][0]["count"] == 9  # rebuilt from the store
    service.on_counts("its/v1/cameras/cam-1/counts", _payload(_minute(0), 4))
    service.on_counts("its/v1/cameras/cam-1/counts", _payload(_minute(1), 7))
    service.on_counts("its/v1/cameras/cam-1/counts", _payload(_minute(1), 2, "truck_bus"))
    service.on_counts("its/v1/cameras/cam-1/counts", b"{bad json")
    service.on_status("its/v1/devices/camera/cam-1/status", b'{"online": true}')
    cams = http.get("/v1/cameras").json()["cameras"]
    assert [c["camera_id"] for c in cams] == ["cam-1", "mall-1", "stored"]  # mall-1: pedestrians only
    assert cams[0]["online"] is True and cams[0]["lines"] == ["north"] and cams[0]["stale"] is False
    one = http.get("/v1/cameras/cam-1").json()
    assert one["interval_start"].startswith(_minute(1).strftime("%Y-%m-%dT%H:%M"))
    assert {(c["vehicle_class"], c["count"]) for c in one["counts"]} == {("car", 7), ("truck_bus", 2)}
    assert one["counts"][0]["mean_speed_kmh"] == pytest.approx(50.0)
    missing = http.get("/v1/cameras/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert http.get("/v1/cameras/bad%20id").status_code == 422
    # snapshots are for dispatchers
    assert http.get("/v1/cameras/cam-1/snapshot.jpg").status_code == 401
    create_user(db, "dora", "correct horse", "dispatcher")
    assert http.post("/v1/auth/login", json={"username": "dora", "password": "correct horse"}).status_code == 200
    assert http.get("/v1/cameras/cam-1/snapshot.jpg").status_code == 404
    assert http.get("/v1/cameras/cam-1").json()["snapshot_at"] is None  # the UI asks for none
    import numpy as np

    jpeg = encode_jpeg(np.zeros((24, 32, 3), np.uint8))
    path = snapshot_path(settings.data_dir, "cam-1")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg)  # written by a worker on this host
    r = http.get("/v1/cameras/cam-1/snapshot.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content == jpeg
    assert http.get("/v1/cameras/cam-1").json()["snapshot_at"] is not None  # the file's time
    newer = encode_jpeg(np.full((24, 32, 3), 200, np.uint8))
    service.on_snapshot("its/v1/cameras/cam-1/snapshot", newer)  # retained MQTT copy wins
    assert http.get("/v1/cameras/cam-1/snapshot.jpg").content == newer


def test_cameras_carry_the_position_of_their_counting_lines(client: tuple[TestClient, CameraService],
                                                             db: Database) -> None:
    http, service = client
    service.on_counts("its/v1/cameras/cam-1/counts", _payload(_minute(1), 3))
    with db.connection() as conn, conn.cursor() as cur:  # where traffic placed cam-1's two lines
        cur.executemany(
            "INSERT INTO traffic_camera_links (camera_id, line_id, direction, network, edge, lon, lat, heading_deg)"
            " VALUES (%s, %s, %s, 'city', %s, %s, %s, %s)",
            [("cam-1", "north", "in", 4, 145.7700, -16.9200, 10.0), ("cam-1", "north", "out", 5, 145.7700, -16.9200, 190.0),
             ("cam-1", "south", "in", 6, 145.7702, -16.9204, 10.0)])
    cams = {c["camera_id"]: c for c in http.get("/v1/cameras").json()["cameras"]}
    assert cams["cam-1"]["lat"] == pytest.approx(-16.92013, abs=1e-5)  # mean over lines and directions
    assert cams["cam-1"]["lon"] == pytest.approx(145.77007, abs=1e-5)
    assert cams["stored"]["lat"] is None and cams["stored"]["lon"] is None  # not placed on the map
    one = http.get("/v1/cameras/cam-1").json()
    assert (one["lat"], one["lon"]) == (cams["cam-1"]["lat"], cams["cam-1"]["lon"]) and one["counts"]
    none = http.get("/v1/cameras/stored").json()
    assert none["lat"] is None and none["counts"][0]["count"] == 9


def test_pedestrians_are_served_apart_from_vehicles(client: tuple[TestClient, CameraService]) -> None:
    http, service = client
    stored = http.get("/v1/cameras/mall-1").json()  # rebuilt from people_counts: the latest interval only
    CameraDetail.model_validate(stored)
    assert stored["counts"] == [] and stored["interval_start"] is None  # no vehicles
    people = stored["people"]
    assert people["interval_start"].startswith(_minute(0).strftime("%Y-%m-%dT%H:%M"))
    assert people["zones"] == [{"zone_id": "all", "people_mean": 30.5, "people_max": 41.0, "samples": 120},
                               {"zone_id": "entrance", "people_mean": 4.0, "people_max": 6.0, "samples": 120}]
    assert people["lines"] == [] and people["crossings_measured"] is False  # zone-only
    assert stored["stale"] is False and stored["observed_at"] is not None  # people keep a camera fresh
    # live: a newer interval with a people line; bad messages are ignored
    for body in (_zone(_minute(1), "all", 12.0, 15.0),
                 {"interval_start": _minute(1).isoformat(), "interval_s": 60, "line_id": "doors", "direction": "in",
                  "crossings": 7.5},
                 {"interval_start": _minute(1).isoformat(), "interval_s": 60, "line_id": "doors", "direction": "out",
                  "crossings": 2.25}):
        service.on_people("its/v1/cameras/mall-1/people", orjson.dumps(body))
    service.on_people("its/v1/cameras/mall-1/people", b'{"interval_s": 60}')
    service.on_counts("its/v1/cameras/mall-1/counts", _payload(_minute(1), 3))  # vehicles on the same camera
    live = http.get("/v1/cameras/mall-1").json()
    CameraDetail.model_validate(live)
    assert live["people"]["crossings_measured"] is True
    assert live["people"]["zones"] == [{"zone_id": "all", "people_mean": 12.0, "people_max": 15.0, "samples": 120}]
    assert live["people"]["lines"] == [{"line_id": "doors", "direction": "in", "crossings": 7.5},
                                       {"line_id": "doors", "direction": "out", "crossings": 2.25}]
    assert [(c["vehicle_class"], c["count"]) for c in live["counts"]] == [("car", 3)]
    assert http.get("/v1/cameras/stored").json()["people"] is None

"""A camera worker counting generated pedestrians: people per zone and crossings per line go out
on their own MQTT topic through a real Mosquitto, and the platform collector stores them in
PostgreSQL (bad people messages become dead letters with their reason)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from its.collector import Collector
from its.db import Database
from its.mqtt import connect
from its.settings import Settings
from video.config import CameraConfig, VideoSettings
from video.ingest import ROUTES
from video.people import PeopleCrossings, PeopleRecord, fit_people_model
from video.people_features import CellGrid, PeopleConfig, to_grey
from video.worker import CameraWorker, _MqttPublisher, snapshot_path

from .people_synth import Scene, SceneSource
from .test_worker import _wait

FIRST, LAST = 120, 319  # calibration on frames 0-119 (15 s), counting on 120-319 (25 s at 8 frames/s)



@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene(seconds=40, seed=4)


@pytest.fixture(scope="module")
def model_path(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = PeopleConfig()
    grid = CellGrid.for_frame((320, 240), config)
    greys = np.stack([to_grey(scene.image(i), grid) for i in range(FIRST)])
    heads = [scene.heads(i) for i in range(FIRST)]
    model = fit_people_model(greys, grid, [len(h) for h in heads], heads, None, config, rounds=80)
    return model.save(tmp_path_factory.mktemp("people") / "walkers.npz")


def test_worker_publishes_people_and_the_collector_stores_them(
    settings: Settings, db: Database, scene: Scene, model_path: Path
) -> None:
    collector = Collector(settings, db, list(ROUTES), client_id="test-people-collector")
    collector.start()
    camera = CameraConfig.model_validate({
        "id": "walkway", "source": "generated", "interval_s": 10, "people_model": str(model_path),
        "people_every_s": 0.1,  # every frame (8 frames/s)
        "zones": [{"id": "north", "polygon": [[0, 0], [320, 0], [320, 120], [0, 120]]},
                  {"id": "south", "polygon": [[0, 120], [320, 120], [320, 240], [0, 240]]}],
        "people_lines": [{"id": "gate", "points": [200, 0, 200, 240]}],  # drawn downwards: `in` = moving left
    })
    assert settings.mqtt_url
    publisher = _MqttPublisher(settings.mqtt_url, camera.id)
    wall0 = time.time() // 10 * 10 - 60  # the collector stores recent rows only
    worker = CameraWorker(camera, publisher, settings.data_dir, VideoSettings(snapshot_interval_s=60),
                          source_factory=lambda: SceneSource(scene, FIRST, LAST, wall0))
    try:
        worker.run(threading.Event())
        bad = connect(settings.mqtt_url, "test-people-bad")
        bad.publish("its/v1/cameras/walkway/people", orjson.dumps({"interval_start": wall0, "interval_s": 10,
                                                                   "zone_id": "north", "line_id": "gate"}), qos=1)
        bad.close()
        assert worker.crossings is True and worker.records_published == 0  # no vehicle lines: no vehicle counts
        records = list(worker.people_records)
        zones = [r for r in records if isinstance(r, PeopleRecord)]
        lines = [r for r in records if isinstance(r, PeopleCrossings)]
        # 15 s - 40 s of stream: intervals from 10, 20 and 30 s, each with (all, north, south) and (in, out)
        assert len(zones) == 3 * 3 and len(lines) == 3 * 2
        assert worker.people_published == len(records)
        # people present: every frame estimated, close to the generated walkers (a model fitted on 15 s of
        # them; its accuracy on real frames is measured on the Mall camera, test_people.py)
        whole = [r for r in zones if r.zone_id == "all"]
        assert sum(r.samples for r in whole) == LAST - FIRST + 1
        truth = np.mean([len(scene.heads(i)) for i in range(FIRST, LAST + 1)])
        estimated = sum(r.mean * r.samples for r in whole) / (LAST - FIRST + 1)
        assert estimated == pytest.approx(truth, rel=0.15)
        # crossings: the walkers whose head crossed x = 200, by direction
        left, right = scene.crossings(200, FIRST, LAST)
        got = {d: sum(r.people for r in lines if r.direction == d) for d in ("in", "out")}
        assert left + right >= 12
        assert got["in"] + got["out"] == pytest.approx(left + right, rel=0.2)
        assert got["in"] == pytest.approx(left, abs=max(2.0, 0.25 * left))
        assert got["out"] == pytest.approx(right, abs=max(2.0, 0.25 * right))
        # the snapshot shows the people line (green) with its running crossings, and no vehicle boxes
        import cv2

        snap = cv2.imdecode(np.frombuffer(snapshot_path(settings.data_dir, "walkway").read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        line = snap[40:230, 199:202].reshape(-1, 3).astype(int)
        assert np.mean((line[:, 1] > 180) & (line[:, 2] < 120)) > 0.5
        assert worker.crossed[("gate", "in")] == pytest.approx(got["in"]) and worker.crossed[("gate", "out")] == pytest.approx(got["out"])
        # stored by the collector, one row per message, the same numbers
        assert _wait(lambda: db.fetchall("SELECT count(*) FROM people_counts")[0][0] == len(records))
        stored = db.fetchall("SELECT measure, sum(people_mean * samples), sum(samples), sum(crossings)"
                             " FROM people_counts WHERE camera_id = 'walkway' AND place_id IN ('all', 'gate')"
                             " GROUP BY measure ORDER BY measure")
        assert [m for m, *_ in stored] == ["in", "out", "present"]
        assert stored[0][3] == pytest.approx(got["in"], abs=0.02) and stored[1][3] == pytest.approx(got["out"], abs=0.02)
        assert stored[2][1] == pytest.approx(estimated * (LAST - FIRST + 1), rel=1e-3) and stored[2][2] == LAST - FIRST + 1
        assert _wait(lambda: db.fetchall("SELECT count(*) FROM rejected_messages WHERE topic LIKE '%/people'")[0][0] == 1)
        reason = db.fetchall("SELECT reason FROM rejected_messages WHERE topic = 'its/v1/cameras/walkway/people'")[0][0]
        assert "exactly one of fields 'zone_id'" in reason
    finally:
        publisher.close()
        collector.stop()


def test_worker_says_zone_only_when_frames_are_too_far_apart(scene: Scene, model_path: Path, tmp_path: Path) -> None:
    class Sent:
        def __init__(self) -> None:
            self.topics: list[str] = []

        def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
            self.topics.append(topic)

    camera = CameraConfig.model_validate({
        "id": "walkway", "source": "generated", "interval_s": 10, "people_model": str(model_path),
        "stride": 1, "people_lines": [{"id": "gate", "points": [200, 0, 200, 240]}],
    })
    sent = Sent()

    class EveryThird(SceneSource):  # 8 frames/s decimated to 2.7 frames/s: 0.375 s apart
        def __iter__(self):  # type: ignore[no-untyped-def]
            return (f for f in super().__iter__() if f.index % 3 == 0)

    worker = CameraWorker(camera, sent, tmp_path, VideoSettings(snapshot_interval_s=60),
                          source_factory=lambda: EveryThird(scene, FIRST, LAST))
    worker.run(threading.Event())
    assert worker.crossings is False
    records = list(worker.people_records)
    assert records and all(isinstance(r, PeopleRecord) for r in records)
    assert sent.topics.count("its/v1/cameras/walkway/people") == len(records)

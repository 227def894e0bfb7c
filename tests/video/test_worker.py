"""A camera worker against a real Mosquitto, with the platform collector storing its counts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from its.collector import Collector
from its.db import Database
from its.devices import DEVICE_STATUS_ROUTE
from its.settings import Settings
from video.config import CameraConfig, VideoSettings
from video.ingest import ROUTES
from video.people import PeopleCrossings, PeopleRecord
from video.people_data import calibrate, load_annotated, read_roi
from video.sources import FrameSource, TarFramesSource, VideoSource
from video.worker import CameraWorker, _MqttPublisher, snapshot_path

from .test_sources import DiesAfter


def _wait(predicate, timeout_s: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_worker_survives_a_dead_source_and_its_counts_reach_the_database(
    settings: Settings, db: Database, clip2: Path
) -> None:
    collector = Collector(settings, db, [*ROUTES, DEVICE_STATUS_ROUTE], client_id="test-video-collector")
    collector.start()
    camera = CameraConfig.model_validate({
        "id": "cam-a", "source": str(clip2), "interval_s": 5,
        "lines": [{"id": "l150", "points": [30, 150, 300, 150]}],
    })
    opened: list[int] = []

    def factory() -> FrameSource:
        opened.append(1)
        return DiesAfter(clip2, 120) if len(opened) == 1 else VideoSource(str(clip2))

    assert settings.mqtt_url
    publisher = _MqttPublisher(settings.mqtt_url, camera.id)
    worker = CameraWorker(camera, publisher, settings.data_dir,
                          VideoSettings(reconnect_initial_s=0.2, snapshot_interval_s=0.5), source_factory=factory)
    stop = threading.Event()
    try:
        worker.run(stop)  # a non-looping file: returns at its end
        assert len(opened) == 2 and worker.status_history == [True, False, True, False]
        assert worker.pipeline is not None and worker.pipeline.frames == 120 + 750
        totals = worker.pipeline.counts()["l150"]
        assert totals["in"] + totals["out"] >= 20
        expected_rows = worker.records_published
        assert expected_rows % 6 == 0 and expected_rows >= 6 * 6  # 1 line x 2 dirs x 3 classes per 5 s
        assert _wait(lambda: db.fetchall("SELECT count(*) FROM traffic_counts")[0][0] == expected_rows)
        stored = db.fetchall("SELECT sum(count), count(DISTINCT interval_start), min(interval_s), max(interval_s)"
                             " FROM traffic_counts WHERE camera_id = 'cam-a'")[0]
        assert stored[0] == totals["in"] + totals["out"]
        assert stored[1] == expected_rows // 6 and stored[2:] == (5, 5)
        assert _wait(lambda: db.fetchall(
            "SELECT count(*) FROM device_status WHERE device_id = 'cam-a' AND kind = 'camera'")[0][0] >= 4)
        snap = snapshot_path(settings.data_dir, "cam-a")
        image = cv2.imdecode(np.frombuffer(snap.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (240, 320, 3) and worker.snapshots >= 2
    finally:
        publisher.close()
        collector.stop()


def test_run_cameras_in_two_processes_and_cli_config_errors(settings: Settings, clip1: Path, clip2: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from its.app.cli import app
    from its.mqtt import connect
    from video.config import CamerasFile
    from video.worker import run_cameras

    cams = CamerasFile.model_validate({"interval_s": 10, "cameras": [
        {"id": f"cam-{i}", "source": str(clip), "stride": 3, "lines": [{"id": "l", "points": [30, 150, 300, 150]}]}
        for i, clip in enumerate([clip1, clip2])
    ]})
    assert settings.mqtt_url
    run_cameras(cams, settings.mqtt_url, settings.data_dir, VideoSettings(processes=2))
    for i in range(2):
        assert snapshot_path(settings.data_dir, f"cam-{i}").stat().st_size > 1000
    statuses: dict[str, bytes] = {}
    sub = connect(settings.mqtt_url, "test-status-reader",
                  on_message=lambda _c, _u, m: statuses.__setitem__(m.topic, bytes(m.payload)))
    sub.subscribe("its/v1/devices/camera/+/status")
    try:
        assert _wait(lambda: len(statuses) == 2, 10)
    finally:
        sub.close()
    assert all(b'"online":false' in v for v in statuses.values())  # retained final status
    bad = tmp_path / "cameras.yaml"
    bad.write_text("cameras:\n  - {id: east, source: x.avi, lines: [{id: l, points: [0, 0, 1]}]}\n")
    result = CliRunner().invoke(app, ["video", "run", "--config", str(bad)])
    assert result.exit_code == 2 and "camera 'east' (cameras[0]) field lines[0].points" in result.output


def test_annotated_snapshot_draws_lines_and_tracks(clip1: Path) -> None:
    from video.annotate import annotate
    from video.pipeline import CountingPipeline, LineSpec, PipelineConfig

    pipeline = CountingPipeline(PipelineConfig(lines=(LineSpec("l", (300, 150, 30, 150)),)))
    with VideoSource(str(clip1)) as src:
        for frame in src:  # past the background's first 60 frames, the first frame with a vehicle
            pipeline.process(frame)
            if frame.index >= 60 and pipeline.last is not None and len(pipeline.last.detections):
                break
    assert pipeline.last is not None and len(pipeline.last.detections) > 0
    drawn = annotate(frame.image, pipeline)
    changed = np.any(drawn != frame.image, axis=2)
    assert changed[150, 100:250].all()  # the line
    x1, y1, x2, _ = pipeline.last.detections.xyxy[0].astype(int)
    assert changed[y1, x1:x2].mean() > 0.5  # a box edge


def test_worker_reports_people_per_interval_and_zone(broker_url: str, mall: Path, tmp_path: Path) -> None:
    train = load_annotated(mall / "frames.tar", mall / "counts.csv", None, (1, 100))
    model_path = calibrate(train, read_roi(mall / "roi.png")).save(tmp_path / "mall.npz")
    camera = CameraConfig.model_validate({
        "id": "mall-1", "source": str(mall / "frames.tar"), "fps": 2, "interval_s": 10,
        "zones": [{"id": "left", "polygon": [[0, 0], [320, 0], [320, 480], [0, 480]]},
                  {"id": "right", "polygon": [[320, 0], [640, 0], [640, 480], [320, 480]]}],
        "people_model": str(model_path), "people_every_s": 0.5,
        "people_lines": [{"id": "walkway", "points": [0, 240, 640, 240]}],
    })

    def frames() -> FrameSource:  # frames 101-160: 30 s of stream at 2 frames/s, never fitted on
        return TarFramesSource(mall / "frames.tar", fps=2.0, first=101, last=160)

    from its.mqtt import connect
    from video.ingest import parse_people

    received: list[PeopleRecord | PeopleCrossings] = []
    messages: list[tuple[str, bytes]] = []
    sub = connect(broker_url, "test-people-reader", on_message=lambda _c, _u, m: messages.append((m.topic, bytes(m.payload))))
    sub.subscribe("its/v1/cameras/+/people", qos=1)
    publisher = _MqttPublisher(broker_url, camera.id)
    worker = CameraWorker(camera, publisher, tmp_path / "data", VideoSettings(snapshot_interval_s=60),
                          source_factory=frames, people_sink=received.extend)
    try:
        worker.run(threading.Event())
        assert _wait(lambda: len(messages) == len(received), 10)
    finally:
        publisher.close()
        sub.close()
    records = list(worker.people_records)
    assert records == received and worker.records_published == 0  # no vehicle lines: no vehicle counts
    # 2 frames/s is too sparse to follow people across the walkway line: zones only, and it says so
    assert worker.crossings is False and all(isinstance(r, PeopleRecord) for r in records)
    rows = [row for topic, body in messages for row in parse_people(topic, body)]
    assert {r.camera_id for r in rows} == {"mall-1"} and {r.measure for r in rows} == {"present"}
    assert sorted((r.place_id, r.interval_start, r.people_mean) for r in rows) == sorted(
        (r.zone_id, r.interval_start, round(r.mean, 2)) for r in records if isinstance(r, PeopleRecord))
    whole = [r for r in records if isinstance(r, PeopleRecord) and r.zone_id == "all"]
    assert sum(r.samples for r in whole) == 60 and 3 <= len(whole) <= 4  # every frame, 10-s intervals
    for r in whole:
        left, right = (next(x for x in records if isinstance(x, PeopleRecord) and x.zone_id == z
                            and x.interval_start == r.interval_start) for z in ("left", "right"))
        assert left.mean + right.mean == pytest.approx(r.mean, rel=1e-3) and r.max >= r.mean
    test = load_annotated(mall / "frames.tar", mall / "counts.csv", None, (101, 160))
    estimated = sum(r.mean * r.samples for r in whole) / 60
    assert estimated == pytest.approx(test.counts.mean(), rel=0.15)


def test_an_unpaced_recording_is_stamped_as_past_and_the_collector_keeps_every_count(
        settings: Settings, db: Database, clip2: Path) -> None:
    """A file counted as fast as possible used to be stamped from when it was opened onwards,
    so its later intervals lay ahead of the clock and the collector refused them. It is now
    stamped as a recording that ended when it was opened: with the collector allowing only
    1 s of clock skew, every count is stored and none is dead-lettered."""
    strict = settings.model_copy(update={"ingest_max_future_s": 1.0})
    collector = Collector(strict, db, [*ROUTES, DEVICE_STATUS_ROUTE], client_id=f"test-video-recorded-{time.time_ns()}")
    collector.start()
    camera = CameraConfig.model_validate({"id": "cam-r", "source": str(clip2), "interval_s": 5, "stride": 3,
                                          "lines": [{"id": "l150", "points": [30, 150, 300, 150]}]})
    assert settings.mqtt_url
    publisher = _MqttPublisher(settings.mqtt_url, camera.id)
    worker = CameraWorker(camera, publisher, settings.data_dir, VideoSettings(snapshot_interval_s=60))
    opened = time.time()
    try:
        worker.run(threading.Event())
        assert worker.recorded and worker.records_published >= 6 * 5
        assert _wait(lambda: db.fetchall("SELECT count(*) FROM traffic_counts")[0][0] == worker.records_published)
    finally:
        publisher.close()
        collector.stop()
    assert db.fetchall("SELECT count(*) FROM rejected_messages")[0][0] == 0
    first, last = db.fetchall("SELECT extract(epoch FROM min(interval_start)), extract(epoch FROM max(interval_start))"
                              " FROM traffic_counts WHERE camera_id = 'cam-r'")[0]
    assert opened - 30.0 - 5.0 <= float(first) and float(last) + 5.0 <= opened + 5.0  # the 30 s clip, ending at opening

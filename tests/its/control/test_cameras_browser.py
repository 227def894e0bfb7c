"""Camera panel: the latest snapshot and the counts per interval, published like a camera worker
does (``its/v1/cameras/{id}/snapshot`` JPEG and ``.../counts``) and served by the video service."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import orjson
import pytest
from playwright.sync_api import expect

from its.db import Database
from its.mqtt import connect
from its.settings import Settings

from .browser import PageOpener, log_in, screenshot
from .server import LiveServer, close_server, start_server

video_service = pytest.importorskip("video.service", reason="video service not landed yet")

pytestmark = pytest.mark.browser
CAMERA = "cam-haar-1"


@pytest.fixture
def camera_server(settings: Settings, db: Database) -> Iterator[LiveServer]:
    service = video_service.create_service()
    server = start_server(settings, db, [service])
    deadline = time.monotonic() + 30
    while not service.ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield server
    close_server(server)


def first_frame_jpeg(clip: Path) -> bytes:
    capture = cv2.VideoCapture(str(clip))
    ok, frame = capture.read()
    capture.release()
    assert ok, f"cannot read {clip}"
    ok, jpeg = cv2.imencode(".jpg", frame)
    assert ok
    return bytes(jpeg.tobytes())


def publish(broker_url: str, topic: str, payload: bytes) -> None:
    pub = connect(broker_url, f"ui-test-camera-{time.time_ns()}")
    pub.client.publish(topic, payload, qos=1, retain=topic.endswith("snapshot")).wait_for_publish(10)
    pub.close()


def counts(interval_start: float, cars: int, trucks: int) -> list[bytes]:
    return [orjson.dumps({"interval_start": interval_start, "interval_s": 60, "line_id": "line-0", "direction": d,
                          "vehicle_class": c, "count": n}) for d, c, n in (("in", "car", cars), ("out", "truck_bus", trucks))]


def test_camera_snapshot_and_counts_per_interval(camera_server: LiveServer, broker_url: str, shared_data: Path,
                                                 open_page: PageOpener) -> None:
    jpeg = first_frame_jpeg(shared_data / "video" / "haar_video1.avi")
    publish(broker_url, f"its/v1/cameras/{CAMERA}/snapshot", jpeg)
    start = (time.time() // 60 - 2) * 60
    for msg in counts(start, 12, 3):
        publish(broker_url, f"its/v1/cameras/{CAMERA}/counts", msg)
    page, console = open_page(1920, 1080)
    log_in(page, camera_server.url)
    panel = page.locator("#cameras")
    expect(panel.locator("#camera-select")).to_have_value(CAMERA, timeout=15_000)
    image = panel.locator("img.snapshot")
    expect(image).to_be_visible()
    page.wait_for_function("() => { const i = document.querySelector('#cameras img.snapshot');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    assert page.evaluate("() => document.querySelector('#cameras img.snapshot').naturalWidth") == jpeg_width(jpeg)
    expect(panel).to_contain_text("counts per 60 s interval")
    # the next interval arrives: the chart gets its second bar
    for msg in counts(start + 60, 20, 1):
        publish(broker_url, f"its/v1/cameras/{CAMERA}/counts", msg)
    page.wait_for_function("() => window.itsControl.panels[2].series.get('cam-haar-1').size === 2", timeout=25_000)
    totals = page.evaluate("() => [...window.itsControl.panels[2].series.get('cam-haar-1').values()]")
    assert totals == [15, 21]
    screenshot(page, "cameras-1920x1080")
    assert console.errors == []


def jpeg_width(jpeg: bytes) -> int:
    image = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return int(image.shape[1])

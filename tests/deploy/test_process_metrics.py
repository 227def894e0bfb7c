"""The metrics added for the dashboard move with what they measure: camera frames and
online status (video.worker), the traffic estimator's update time (traffic.service)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from prometheus_client import REGISTRY


def _sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_camera_frames_and_online_follow_the_worker(sample_data: Path, tmp_path: Path) -> None:
    from tests.conftest import shared_data_path
    from tests.video.conftest import stand_in
    from video.config import CameraConfig, VideoSettings
    from video.worker import CameraWorker, _MqttPublisher

    url = os.environ.get("ITS_MQTT_URL", "mqtt://127.0.0.1:1883")
    clip = shared_data_path() / "video" / "haar_video2.avi"  # 750 frames; else its rendered stand-in
    if not clip.is_file():
        clip = stand_in("haar_video2.avi", tmp_path)
    camera = CameraConfig.model_validate({
        "id": "metrics-cam", "source": str(clip),
        "lines": [{"id": "l150", "points": [30, 150, 300, 150]}],
    })
    before = _sample("its_camera_frames_total", camera="metrics-cam")
    publisher = _MqttPublisher(url, camera.id)
    worker = CameraWorker(camera, publisher, tmp_path, VideoSettings(snapshot_interval_s=60))
    seen_online: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen_online.append(_sample("its_camera_online", camera="metrics-cam"))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        watcher.start()
        worker.run(threading.Event())  # a non-looping file: returns at its end
        done.set()
        watcher.join()
    finally:
        publisher.close()
    assert worker.pipeline is not None
    assert _sample("its_camera_frames_total", camera="metrics-cam") - before == worker.pipeline.frames == 750
    assert 1.0 in seen_online  # online while frames came
    assert _sample("its_camera_online", camera="metrics-cam") == 0.0  # offline once the source ended


def test_traffic_updates_are_timed() -> None:
    from traffic.config import TrafficSettings
    from traffic.service import TrafficService

    interval_s = 0.05
    service = TrafficService(TrafficSettings(update_interval_s=interval_s))
    before = _sample("its_estimator_update_seconds_count", estimator="traffic")
    loop = threading.Thread(target=service._loop, daemon=True)
    loop.start()
    time.sleep(20 * interval_s)
    service._stop.set()
    loop.join(5)
    updates = _sample("its_estimator_update_seconds_count", estimator="traffic") - before
    assert 5 <= updates <= 21
    assert _sample("its_estimator_update_seconds_sum", estimator="traffic") >= 0.0

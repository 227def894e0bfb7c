"""The demo's people camera: a rendered walkway whose true pedestrians are known, counted by the
camera worker with a model calibrated on another rendered scene, labelled synthetic."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from its.app.demo import synthetic_camera_config, with_people_camera
from its.settings import Settings
from video.config import VideoSettings, load_cameras
from video.people import PeopleCrossings, PeopleRecord
from video.synthetic_people import WalkerScene
from video.worker import CameraWorker, _MqttPublisher


def test_a_periodic_walkway_loops_seamlessly_and_knows_its_truth() -> None:
    scene = WalkerScene(seconds=30.0, seed=5, periodic=True)
    assert np.array_equal(scene.image(0), scene.image(scene.n))  # one period later: the same frame
    truth = scene.truth()
    # every walker crosses every vertical line once per loop, whatever the line
    assert scene.crossings(160, 0, scene.n) == scene.crossings(40, 0, scene.n) == (truth["left"], truth["right"])
    assert truth["left"] > 0 and truth["right"] > 0
    assert np.mean([len(scene.heads(i)) for i in range(scene.n)]) == pytest.approx(truth["mean_present"], rel=0.02)


def test_demo_people_camera_is_labelled_and_counts_its_walkers(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(with_people_camera(synthetic_camera_config(tmp_path), tmp_path))
    cameras = {c.id: c for c in load_cameras(path).cameras}
    assert list(cameras) == ["freeway-1", "walkway-1"]  # the vehicle camera stays, the people camera joins it
    cam = cameras["walkway-1"]
    assert cam.synthetic and cam.loop and "not real footage" in (cam.description or "")
    assert cam.people_model and Path(cam.people_model).is_file() and [p.id for p in cam.people_lines] == ["gate"]
    assert with_people_camera(path.read_text(), tmp_path) == path.read_text()  # once, files reused
    truth = WalkerScene(seconds=60.0, seed=5, periodic=True).truth()
    assert f"{truth['left']} walkers cross 'gate' in" in (cam.description or "")

    assert settings.mqtt_url
    publisher = _MqttPublisher(settings.mqtt_url, cam.id)
    worker = CameraWorker(cam.model_copy(update={"loop": False}), publisher, tmp_path, VideoSettings(snapshot_interval_s=60))
    try:
        worker.run(threading.Event())  # one loop of the clip: 60 s, 480 frames
    finally:
        publisher.close()
    records = list(worker.people_records)
    assert worker.crossings is True and worker.people_published == len(records) > 0
    whole = [r for r in records if isinstance(r, PeopleRecord) and r.zone_id == "all"]
    frames = sum(r.samples for r in whole)
    assert frames >= 470
    present = sum(r.mean * r.samples for r in whole) / frames
    got = {d: sum(r.people for r in records if isinstance(r, PeopleCrossings) and r.direction == d) for d in ("in", "out")}
    # measured: see the README (people present and crossings of the demo walkway)
    assert present == pytest.approx(truth["mean_present"], rel=0.15)
    assert got["in"] == pytest.approx(truth["left"], rel=0.3) and got["out"] == pytest.approx(truth["right"], rel=0.3)
    print(f"walkway: present {present:.2f} (true {truth['mean_present']}), in {got['in']:.1f} (true {truth['left']}),"
          f" out {got['out']:.1f} (true {truth['right']})")

"""Vehicle speeds: a rendered clip of known geometry and speeds, encoded to a real file and run
through the real pipeline; the demo camera's calibration on the real freeway clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from video.calibration import from_local_metres
from video.config import CameraConfig, load_cameras
from video.speeds import TrackSpeeds, clip_speeds

FPS = 25.0
SIZE = (320, 240)
PX_PER_M = 10.0  # resolution of the top-down road raster
X_RANGE, Y_RANGE = (-10.0, 10.0), (0.0, 150.0)  # raster extent, m (x across the road, y along it)
ORIGIN = (-16.924556, 145.776212)
HEADING = np.radians(51.7)  # the road's +y direction on the map


def _camera_homography(f: float = 300.0, height: float = 8.0, tilt_deg: float = 15.0) -> np.ndarray:
    """Road metres (x, y) → image pixels of a pinhole camera ``height`` m above x = 0, looking along +y."""
    t = np.radians(tilt_deg)
    forward = np.array([0.0, np.cos(t), -np.sin(t)])
    right = np.array([1.0, 0.0, 0.0])
    down = np.cross(forward, right)
    rot = np.stack([right, down, forward])
    k = np.array([[f, 0, SIZE[0] / 2], [0, f, SIZE[1] / 2], [0, 0, 1]])
    trans = -rot @ np.array([0.0, 0.0, height])
    return np.asarray(k @ np.column_stack([rot[:, 0], rot[:, 1], trans]))


def _raster_to_road() -> np.ndarray:
    """Raster pixels (u right, v down) → road metres (x = u / 10 - 10, y = 150 - v / 10)."""
    return np.array([[1 / PX_PER_M, 0, X_RANGE[0]], [0, -1 / PX_PER_M, Y_RANGE[1]], [0, 0, 1]])


def _road_raster(rng: np.random.Generator) -> np.ndarray:
    w, h = int((X_RANGE[1] - X_RANGE[0]) * PX_PER_M), int((Y_RANGE[1] - Y_RANGE[0]) * PX_PER_M)
    noise = cv2.GaussianBlur(rng.normal(0, 14, (h, w)).astype(np.float32), (0, 0), 2.0)
    road = np.clip(105 + noise, 0, 255).astype(np.uint8)
    raster = cv2.merge([road, road, road])

    def u(x: float) -> int:
        return round((x - X_RANGE[0]) * PX_PER_M)

    for x in (-5.25, 5.25):  # solid edge lines
        cv2.rectangle(raster, (u(x) - 1, 0), (u(x) + 1, h - 1), (225, 225, 225), -1)
    for x in (-1.75, 1.75):  # 3 m dashes, 9 m gaps
        for y0 in np.arange(0.0, Y_RANGE[1], 12.0):
            v0, v1 = int((Y_RANGE[1] - y0) * PX_PER_M), int((Y_RANGE[1] - y0 - 3.0) * PX_PER_M)
            cv2.rectangle(raster, (u(x) - 1, v1), (u(x) + 1, v0), (225, 225, 225), -1)
    return raster


def _vehicle(raster: np.ndarray, x: float, y: float, color: tuple[int, int, int]) -> None:
    """A 1.8 m x 4.5 m flat vehicle centred on (x, y) m."""
    u0, u1 = int((x - 0.9 - X_RANGE[0]) * PX_PER_M), int((x + 0.9 - X_RANGE[0]) * PX_PER_M)
    v0, v1 = int((Y_RANGE[1] - y - 2.25) * PX_PER_M), int((Y_RANGE[1] - y + 2.25) * PX_PER_M)
    cv2.rectangle(raster, (u0, v0), (u1, v1), color, -1)


#: lanes of the rendered clip: (lane centre x m, speed m/s along +y (negative: toward the camera), first y m)
LANES = ((0.0, 25.0, 2.0), (-3.5, -20.0, 110.0))
LAUNCH_S = (2.0, 4.0, 6.0, 8.0)


def _render(path: Path, seconds: float = 14.0) -> np.ndarray:
    """Write the clip (MJPG .avi); return the homography road metres → image pixels."""
    rng = np.random.default_rng(7)
    base = _road_raster(rng)
    h_img = _camera_homography()
    warp = h_img @ _raster_to_road()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    assert writer.isOpened()
    colors = [(60, 200, 240), (240, 240, 240), (80, 80, 230), (230, 180, 60)]
    for i in range(int(seconds * FPS)):
        t = i / FPS
        raster = base.copy()
        for lane, (x, v, y0) in enumerate(LANES):
            for k, launch in enumerate(LAUNCH_S):
                if t >= launch:
                    _vehicle(raster, x, y0 + v * (t - launch), colors[(k + lane) % len(colors)])
        frame = cv2.warpPerspective(raster, warp, SIZE, flags=cv2.INTER_LINEAR)
        frame = np.clip(frame.astype(np.int16) + rng.normal(0, 2, frame.shape).astype(np.int16), 0, 255).astype(np.uint8)
        writer.write(frame)
    writer.release()
    return h_img


def _calibrated_camera(path: Path, h_img: np.ndarray) -> CameraConfig:
    road = np.array([[x, y] for y in (14.0, 25.0, 45.0) for x in (-5.25, 0.0, 5.25)])
    hom = np.column_stack([road, np.ones(len(road))]) @ h_img.T
    image = hom[:, :2] / hom[:, 2:]
    # road frame → east/north: +y along the heading, +x to its right
    east = road[:, 0] * np.cos(HEADING) + road[:, 1] * np.sin(HEADING)
    north = -road[:, 0] * np.sin(HEADING) + road[:, 1] * np.cos(HEADING)
    latlon = from_local_metres(np.column_stack([east, north]), ORIGIN)
    return CameraConfig.model_validate({
        "id": "synthetic", "source": str(path), "interval_s": 60,
        # drawn left to right: `in` = moving down the image = toward the camera
        "lines": [{"id": "near", "points": [10, 150, 310, 150]}, {"id": "far", "points": [10, 100, 310, 100]}],
        "calibration": {"image_points": np.round(image, 2).tolist(), "world_points": np.round(latlon, 8).tolist()},
    })


def test_speeds_on_a_rendered_clip_of_known_geometry(tmp_path: Path) -> None:
    clip = tmp_path / "synthetic.avi"
    h_img = _render(clip)
    assert clip.stat().st_size > 100_000
    camera = _calibrated_camera(clip, h_img)
    result = clip_speeds(camera)
    true_kmh = {"out": abs(LANES[0][1]) * 3.6, "in": abs(LANES[1][1]) * 3.6}  # 90 km/h away, 72 km/h toward
    by_dir: dict[str, list[float]] = {"in": [], "out": []}
    for v in result["vehicles"]:
        by_dir[v["direction"]].append(v["kmh"])
    for direction, want in true_kmh.items():
        got = np.array(by_dir[direction])
        assert len(got) >= 2 * len(LAUNCH_S) - 1, (direction, got)  # each vehicle on both lines, at most one missed
        assert np.all(np.abs(got / want - 1) < 0.10), (direction, want, got)
    # per-interval means, as published in the counts messages
    means = {(r["line_id"], r["direction"]): r for r in result["intervals"]}
    assert means, result["intervals"]
    for (_line, direction), rec in means.items():
        assert rec["mean_speed_kmh"] == pytest.approx(true_kmh[direction], rel=0.10)


def test_track_speeds_need_enough_observations_and_break_at_jumps() -> None:
    speeds = TrackSpeeds(window_s=1.0, min_span_s=0.3, min_points=3, forget_s=2.0)
    for i in range(6):  # track 1 at 20 m/s east, with one position 1 m off; track 2 seen once
        speeds.update([1], [[20.0 * i * 0.1 + (1.0 if i == 3 else 0.0), 0.0]], i * 0.1)
    speeds.update([2, 3], [[0.0, 0.0], [np.nan, np.nan]], 0.5)
    got = speeds.speed_kmh([1, 2, 3, 99])
    assert got[0] == pytest.approx(72.0) and np.isnan(got[1:]).all()  # the median slope ignores the stray point
    speeds.update([1], [[60.0, 0.0]], 0.6)  # jumped to another blob (500 m/s): no speed until it is tracked again
    assert np.isnan(speeds.speed_kmh([1])[0])
    for i in range(1, 5):
        speeds.update([1], [[60.0 + 2.0 * i, 0.0]], 0.6 + 0.1 * i)
    assert speeds.speed_kmh([1])[0] == pytest.approx(72.0)
    speeds.update([1], [[80.0, 0.0]], 1.4)  # after a 0.4 s gap (coasting) only the new observation counts
    assert np.isnan(speeds.speed_kmh([1])[0])
    speeds.update([4], [[0.0, 0.0]], 5.0)
    assert len(speeds) == 1  # tracks 1 and 2 forgotten


@pytest.mark.eval
def test_demo_camera_speeds_on_the_real_freeway_clip_are_plausible(shared_data: Path) -> None:
    clip2 = shared_data / "video" / "haar_video2.avi"
    example = Path(__file__).resolve().parents[2] / "video" / "data" / "cameras.example.yaml"
    demo = next(c for c in load_cameras(example).cameras if c.id == "freeway-1")
    result = clip_speeds(demo.model_copy(update={"source": str(clip2), "loop": False}))
    kmh = np.array([v["kmh"] for v in result["vehicles"]])
    assert len(kmh) >= 30  # ~25 vehicles on the near carriageway, most measured on both lines
    assert np.all((kmh >= 40) & (kmh <= 150)), sorted(kmh)
    assert 80 <= np.median(kmh) <= 120
    # the same vehicle measured at rows 150 and 100 (about 30 m apart) agrees
    at = {(v["line_id"], v["track_id"]): v["kmh"] for v in result["vehicles"] if v["direction"] == "in"}
    pairs = np.array([(s, at[("lanes-100", tid)]) for (line, tid), s in at.items() if line == "lanes-150" and ("lanes-100", tid) in at])
    assert len(pairs) >= 8
    assert np.median(np.abs(pairs[:, 1] / pairs[:, 0] - 1)) < 0.05


def test_calibration_made_for_another_frame_size_is_refused(clip2: Path, tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "video" / "data" / "cameras.example.yaml"
    demo = next(c for c in load_cameras(example).cameras if c.id == "freeway-1")
    cap = cv2.VideoCapture(str(clip2))
    odd = tmp_path / "odd.avi"
    writer = cv2.VideoWriter(str(odd), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (334, 198))
    for _ in range(5):
        ok, image = cap.read()
        assert ok
        writer.write(cv2.resize(image, (334, 198)))
    writer.release()
    cap.release()
    with pytest.raises(ValueError, match=r"camera 'freeway-1' field calibration\.image_points\[0\]: \(43\.3, 217\.5\) "
                                         r"lies outside the 334x198 frames"):
        clip_speeds(demo.model_copy(update={"source": str(odd), "loop": False}))
    one = tmp_path / "one.avi"
    writer = cv2.VideoWriter(str(one), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    writer.write(np.zeros((SIZE[1], SIZE[0], 3), np.uint8))
    writer.release()
    result = clip_speeds(demo.model_copy(update={"source": str(one), "loop": False}))
    assert result["frames"] == 1 and result["vehicles"] == []
    with pytest.raises(ValueError, match="points"):
        CameraConfig.model_validate({"id": "x", "source": "a.avi", "lines": [{"id": "l", "points": ["nan", 1, 2, 3]}]})

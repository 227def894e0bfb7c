"""Ground calibration: a known homography is recovered from map points; degenerate sets are refused
with an error that names the file, camera and field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from video.calibration import (
    CalibrationError,
    GroundCalibration,
    check_general_position,
    from_local_metres,
    local_metres,
)
from video.config import CameraConfigError, load_cameras

ORIGIN = (-16.924556, 145.776212)
# image -> road metres of a camera 9 m up looking down a road (a perspective, not affine, map)
H_TRUE = np.array([[0.05, -0.002, -8.0], [0.001, -0.02, 12.0], [0.0001, -0.004, 1.0]])


def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    hom = np.column_stack([pts, np.ones(len(pts))]) @ h.T
    return np.asarray(hom[:, :2] / hom[:, 2:])


def _pairs(image: np.ndarray) -> np.ndarray:
    return from_local_metres(_apply(H_TRUE, image), ORIGIN)


def test_local_projection_round_trips_and_has_true_distances() -> None:
    pts = np.array([[-16.9240, 145.7760], [-16.9250, 145.7770], [-16.9245, 145.7765]])
    xy, origin = local_metres(pts)
    assert np.allclose(from_local_metres(xy, origin), pts, atol=1e-10)
    # 0.001 deg of latitude is 111.19 m everywhere; of longitude, times cos(latitude)
    assert np.hypot(*(xy[1] - xy[0])) == pytest.approx(np.hypot(111.195, 111.195 * np.cos(np.radians(-16.9245))), rel=1e-4)


def test_fit_recovers_the_homography_from_four_or_more_points() -> None:
    image = np.array([[40.0, 220], [280, 225], [120, 110], [220, 112], [160, 160], [60, 180]])
    cal = GroundCalibration.fit(image, _pairs(image))
    assert cal.rms_error_m < 1e-3
    probe = np.array([[100.0, 200], [200, 130], [150, 150]])
    want, _ = local_metres(from_local_metres(_apply(H_TRUE, probe), ORIGIN), cal.origin)
    assert np.allclose(cal.to_metres(probe), want, atol=1e-3)
    assert np.allclose(cal.to_latlon(probe), from_local_metres(_apply(H_TRUE, probe), ORIGIN), atol=1e-8)
    four = GroundCalibration.fit(image[:4], _pairs(image[:4]))
    assert np.allclose(four.to_latlon(probe), cal.to_latlon(probe), atol=1e-8)


def test_pixels_beyond_the_horizon_map_to_nan() -> None:
    image = np.array([[40.0, 220], [280, 225], [120, 110], [220, 112]])
    cal = GroundCalibration.fit(image, _pairs(image))
    # the true horizon is where 0.0001 x - 0.004 y + 1 = 0, i.e. y ~ 250 + x / 40
    out = cal.to_metres(np.array([[160.0, 300.0], [160.0, 150.0]]))
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()


@pytest.mark.parametrize(("image", "message"), [
    ([[0, 0], [10, 10], [20, 20], [30, 30]], "image_points: degenerate"),  # all on one line
    ([[0, 0], [100, 0], [200, 0.5], [50, 80]], "image_points: degenerate"),  # three of four on a line
    ([[0, 0], [100, 0], [100, 100]], "at least 4 points"),
    ([[0, 0], [0, 0], [100, 100], [0, 100]], "image_points: degenerate"),  # a repeated point
])
def test_degenerate_point_sets_are_refused(image: list[list[float]], message: str) -> None:
    with pytest.raises(CalibrationError, match=message):
        check_general_position(image, "image_points")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 320), st.floats(0, 240)), min_size=4, max_size=8))
def test_points_on_one_line_are_always_degenerate(raw: list[tuple[float, float]]) -> None:
    t = np.array([p[0] for p in raw])
    pts = np.column_stack([t, 0.5 * t + 3.0])  # every point on y = x / 2 + 3
    with pytest.raises(CalibrationError):
        check_general_position(pts)


def test_swapped_pairs_and_collinear_map_points_are_refused() -> None:
    image = np.array([[40.0, 220], [280, 225], [120, 110], [220, 112], [160, 160]])
    world = _pairs(image)
    with pytest.raises(CalibrationError, match="check the order of the pairs"):
        GroundCalibration.fit(image, world[[1, 0, 2, 3, 4]])
    more = np.array([*image, [60, 180], [250, 170], [160, 120]])
    xy, origin = local_metres(_pairs(more))
    xy[4] += (20.0, 0.0)  # one map point 20 m off: no homography explains it
    with pytest.raises(CalibrationError, match="disagree: RMS residual"):
        GroundCalibration.fit(more, from_local_metres(xy, origin))
    line = from_local_metres(np.column_stack([np.arange(5.0) * 10, np.arange(5.0) * 10]), ORIGIN)
    with pytest.raises(CalibrationError, match="world_points: degenerate"):
        GroundCalibration.fit(image, line)
    with pytest.raises(CalibrationError, match="pair up"):
        GroundCalibration.fit(image, world[:4])
    with pytest.raises(CalibrationError, match=r"\[lat, lon\]"):
        GroundCalibration.fit(image, world[:, ::-1])  # lon, lat: |lat| > 90


def _yaml(tmp_path: Path, calibration: str) -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras:\n  - id: east\n    source: x.avi\n    lines: [{id: l, points: [0, 100, 300, 100]}]\n"
                    f"    calibration: {calibration}\n")
    return path


def test_config_errors_name_the_file_camera_and_field(tmp_path: Path) -> None:
    world = "[[-16.9246, 145.7760], [-16.9245, 145.7761], [-16.9244, 145.7762], [-16.9243, 145.7763]]"
    path = _yaml(tmp_path, f"{{image_points: [[0, 0], [10, 10], [20, 20], [30, 30]], world_points: {world}}}")
    with pytest.raises(CameraConfigError) as err:
        load_cameras(path)
    text = str(err.value)
    assert f"{path}: camera 'east' (cameras[0]) field calibration.image_points" in text and "degenerate" in text
    assert "field calibration.world_points" in text  # those four map points lie on a line too
    path = _yaml(tmp_path, "{image_points: [[0, 0], [10, 0], [0, 10]], world_points: [[-16.9, 145.7], [-16.9, 145.8], [-16.8, 145.7]]}")
    with pytest.raises(CameraConfigError, match=r"field calibration.image_points: .*at least 4 points"):
        load_cameras(path)
    path = _yaml(tmp_path, "{image_points: [[0, 0], [300, 0], [300, 200], [0, 200]]}")
    with pytest.raises(CameraConfigError, match=r"field calibration: .*go together"):
        load_cameras(path)


def test_example_config_carries_a_real_calibration() -> None:
    example = Path(__file__).resolve().parents[2] / "video" / "data" / "cameras.example.yaml"
    cams = load_cameras(example)
    demo = cams.cameras[0]
    ground = demo.calibration.ground()
    assert demo.id == "freeway-1" and ground is not None and not demo.calibration.speed_traps
    assert ground.rms_error_m < 0.2 and ground.spread_m > 30
    img = np.asarray(demo.calibration.image_points)
    metres = ground.to_metres(img)
    # dash ends along the centre line: 3.00 m dashes and a 4.33 m period (T3) on the fitted plane
    centre = metres[1::4], metres[3::4]
    assert np.allclose(np.hypot(*(centre[1] - centre[0]).T), 3.0, atol=0.3)  # least squares spreads 0.1 m RMS
    assert np.allclose(np.hypot(*np.diff(centre[0], axis=0).T), 3 * 4.33, atol=0.3)
    # 3.50 m lanes: left edge, centre and right edge lines at the first row of points
    assert np.hypot(*(metres[1] - metres[0])) == pytest.approx(3.5, abs=0.15)
    assert np.hypot(*(metres[2] - metres[1])) == pytest.approx(3.5, abs=0.15)
    assert all(not c.calibration.speed_traps for c in cams.cameras)  # no placeholder distances left

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from maps.geometry import (
    Projector,
    angle_diff_deg,
    haversine_m,
    polyline_lengths,
    project_points_to_polylines,
    resample_polylines,
    segment_bearing_deg,
)


def test_projection_round_trip_and_scale() -> None:
    proj = Projector.for_bbox(24.9, 60.1, 25.0, 60.2)
    lon = np.array([24.9, 24.95, 25.0])
    lat = np.array([60.1, 60.15, 60.2])
    x, y = proj.to_xy(lon, lat)
    lon2, lat2 = proj.to_lonlat(x, y)
    np.testing.assert_allclose(lon2, lon, atol=1e-9)
    np.testing.assert_allclose(lat2, lat, atol=1e-9)
    metric = np.hypot(x[2] - x[0], y[2] - y[0])
    assert metric == pytest.approx(haversine_m(lon[0], lat[0], lon[2], lat[2]), rel=3e-3)


def test_invalid_bbox_rejected() -> None:
    with pytest.raises(ValueError, match="invalid bbox"):
        Projector.for_bbox(25.0, 60.0, 24.0, 61.0)


def test_polyline_lengths_ignore_boundaries() -> None:
    coords = np.array([[0, 0], [3, 4], [100, 100], [100, 110], [100, 130]], dtype=float)
    np.testing.assert_allclose(polyline_lengths(coords, np.array([0, 2, 5])), [5.0, 30.0])


def test_bearing_and_angle_difference() -> None:
    assert segment_bearing_deg(0, 0, 0, 1) == pytest.approx(0.0)
    assert segment_bearing_deg(0, 0, 1, 0) == pytest.approx(90.0)
    assert segment_bearing_deg(0, 0, -1, 0) == pytest.approx(270.0)
    np.testing.assert_allclose(angle_diff_deg([350, 10, 90], [10, 350, 270]), [20, 20, 180])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_projection_matches_shapely(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_lines = 5
    sizes = rng.integers(2, 7, n_lines)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    coords = rng.uniform(0, 100, (offsets[-1], 2))
    px, py = rng.uniform(-20, 120, 50), rng.uniform(-20, 120, 50)
    li = rng.integers(0, n_lines, 50)
    res = project_points_to_polylines(px, py, coords, offsets, li)
    lines = [shapely.LineString(coords[offsets[i]:offsets[i + 1]]) for i in range(n_lines)]
    for k in range(50):
        line, pt = lines[li[k]], shapely.Point(px[k], py[k])
        assert res.distance_m[k] == pytest.approx(line.distance(pt), abs=1e-7)
        q = line.interpolate(res.offset_m[k])
        assert q.distance(pt) == pytest.approx(res.distance_m[k], abs=1e-6)
        assert np.hypot(res.x[k] - q.x, res.y[k] - q.y) < 1e-6


def test_resample_keeps_vertices_and_limits_step() -> None:
    coords = np.array([[0, 0], [10, 0], [10, 25], [50, 50], [50, 51]], dtype=float)
    offsets = np.array([0, 3, 5])
    dense, off = resample_polylines(coords, offsets, 4.0)
    np.testing.assert_allclose(polyline_lengths(dense, off), polyline_lengths(coords, offsets))
    steps = np.hypot(*np.diff(dense[off[0]:off[1]], axis=0).T)
    assert steps.max() <= 4.0 + 1e-9
    assert off.tolist() == [0, off[1], len(dense)]
    assert {tuple(p) for p in coords} <= {tuple(p) for p in dense}

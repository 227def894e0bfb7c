"""The spatial index's nearest projection gives `project_points`' broadcast answer bit for bit:
random paths (retraced out-and-back roads, whose segments tie exactly, loops, zero-length
steps), points on, near and far from them, and non-finite points; and real WMATA shapes
with the day's pings (the stand-in's Cairns shapes without ``../shared``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from telematics.avl import read_avl
from telematics.gtfs import TripPaths
from telematics.matching import INDEX_CELLS, Polyline, broadcast_projection, project_points
from telematics.nearest import nearest_projection
from tests.telematics.core_fixtures import (  # noqa: F401  (fixtures by name)
    wmata_fixture,
    wmata_paths_fixture,
)


def _same(line: Polyline, pts: np.ndarray) -> None:
    want = broadcast_projection(line, pts)
    along, offset, found = nearest_projection(line.index, pts)
    finite = np.isfinite(pts).all(axis=1)
    assert found.tolist() == finite.tolist()
    np.testing.assert_array_equal(along[found], want[0][found])
    np.testing.assert_array_equal(offset[found], want[1][found])
    got = project_points(line, pts) if len(pts) * (len(line.xy) - 1) >= INDEX_CELLS else (along, offset)
    if found.all():
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 60), st.booleans(), st.integers(1, 80))
def test_index_projection_equals_the_broadcast_one(seed: int, vertices: int, retraced: bool, points: int) -> None:
    rng = np.random.default_rng(seed)
    xy = np.cumsum(rng.normal(0, 200, (vertices, 2)), axis=0).round(rng.integers(0, 3))
    if retraced:  # out and back on the same road: every segment has an exact twin
        xy = np.vstack([xy, xy[::-1][1:]])
    line = Polyline(xy=xy, cum_m=np.r_[0.0, np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])  # zero steps kept
    near = xy[rng.integers(0, len(xy), points)] + rng.normal(0, rng.choice([0.0, 5.0, 500.0]), (points, 2))
    pts = np.vstack([near, xy[: min(3, len(xy))], (xy[:1] + xy[1:2]) / 2.0])  # vertices, a segment's middle
    _same(line, pts)


def test_non_finite_points_fall_back_to_the_broadcast_answer() -> None:
    line = Polyline.from_xy(np.c_[np.arange(400.0), np.sin(np.arange(400.0) / 9.0) * 30.0])
    pts = np.array([[10.0, 5.0], [np.nan, 0.0], [np.inf, 3.0], [250.0, -40.0]] * 20)
    _same(line, pts)
    along, offset = project_points(line, pts)
    want = broadcast_projection(line, pts)
    np.testing.assert_array_equal(along, want[0])
    np.testing.assert_array_equal(offset, want[1])


def test_real_shapes_and_pings(wmata_dir: Path, wmata_paths: TripPaths) -> None:
    avl = read_avl(wmata_dir / "wmata_avl.csv")
    xy = wmata_paths.projection.to_xy(avl["lat"].to_numpy(), avl["lon"].to_numpy())[::7]
    for line in list(wmata_paths.paths.values())[:8]:
        _same(line, xy)

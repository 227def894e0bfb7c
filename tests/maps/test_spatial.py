from __future__ import annotations

import numpy as np
import pytest
import shapely

from maps.network import RoadNetwork
from maps.spatial import EdgeSnapper


def test_nearest_matches_brute_force(helsinki: RoadNetwork) -> None:
    snapper = EdgeSnapper(helsinki)
    rng = np.random.default_rng(1)
    w, s, e, n = helsinki.bbox
    lon, lat = rng.uniform(w, e, 2000), rng.uniform(s, n, 2000)
    snap = snapper.nearest(lon, lat)
    x, y = helsinki.projector.to_xy(lon, lat)
    pts = shapely.points(x, y)
    geoms = helsinki.geometries_xy
    for k in rng.choice(2000, 60, replace=False):
        brute = shapely.distance(geoms, pts[k])
        assert snap.distance_m[k] == pytest.approx(brute.min(), abs=1e-6)
        assert brute[snap.edge[k]] == pytest.approx(brute.min(), abs=1e-6)
    # the snapped point lies on the edge at the reported offset
    sx, sy = helsinki.projector.to_xy(snap.lon, snap.lat)
    on = shapely.distance(geoms[snap.edge], shapely.points(sx, sy))
    assert on.max() < 1e-3
    along = shapely.line_interpolate_point(geoms[snap.edge], snap.offset_m)
    assert shapely.distance(along, shapely.points(sx, sy)).max() < 1e-3


def test_nearest_respects_radius_and_heading(helsinki: RoadNetwork) -> None:
    snapper = EdgeSnapper(helsinki)
    far = snapper.nearest([25.5], [60.5], max_distance_m=100)
    assert far.edge[0] == -1 and np.isnan(far.distance_m[0])
    # mid-point of a two-way edge: heading picks the direction
    e = int(np.nonzero(~helsinki.oneway & (helsinki.length_m > 50))[0][0])
    r = int(helsinki.reverse_edge[e])
    mid = shapely.line_interpolate_point(helsinki.geometries_xy[e], 0.5, normalized=True)
    lon, lat = helsinki.projector.to_lonlat([mid.x], [mid.y])
    from maps.geometry import segment_bearing_deg

    c = helsinki.coords_xy[helsinki.geom_offsets[e]:helsinki.geom_offsets[e + 1]]
    bearing = segment_bearing_deg(c[0, 0], c[0, 1], c[-1, 0], c[-1, 1])
    assert snapper.nearest(lon, lat, heading_deg=[bearing]).edge[0] == e
    assert snapper.nearest(lon, lat, heading_deg=[(bearing + 180) % 360]).edge[0] == r


def test_candidates_within_radius(helsinki: RoadNetwork) -> None:
    snapper = EdgeSnapper(helsinki)
    rng = np.random.default_rng(2)
    w, s, e, n = helsinki.bbox
    lon, lat = rng.uniform(w, e, 500), rng.uniform(s, n, 500)
    heading = rng.uniform(0, 360, 500)
    cand = snapper.candidates(lon, lat, radius_m=40, heading_deg=heading)
    assert len(cand) > 500
    assert (cand.distance_m <= 40 + 1e-6).all()
    assert ((cand.heading_diff_deg >= 0) & (cand.heading_diff_deg <= 180)).all()
    assert (np.diff(cand.point) >= 0).all()
    x, y = helsinki.projector.to_xy(lon, lat)
    k = int(cand.point[0])
    brute = shapely.distance(helsinki.geometries_xy, shapely.Point(x[k], y[k]))
    assert set(cand.edge[cand.point == k].tolist()) == set(np.nonzero(brute <= 40)[0].tolist())
    top2 = snapper.candidates(lon, lat, radius_m=40, heading_deg=heading, max_per_point=2)
    assert np.bincount(top2.point).max() == 2
    first = cand.point == k
    np.testing.assert_array_equal(top2.edge[top2.point == k], cand.edge[first][:2])
    with pytest.raises(ValueError, match="finite"):
        snapper.candidates([np.nan], [60.0], 10)

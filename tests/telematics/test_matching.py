"""Vectorised projection and the monotone matcher, synthetic and on real WMATA pings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from telematics.evaluate import read_avl
from telematics.gtfs import TripPaths
from telematics.matching import Polyline, match_monotone, project_points, projection_candidates
from tests.telematics.core_fixtures import (  # noqa: F401  (fixtures by name)
    cairns_fixture,
    wmata_fixture,
    wmata_paths_fixture,
)


def test_projection_onto_an_l_shaped_path() -> None:
    line = Polyline.from_xy([[0, 0], [100, 0], [100, 100]])
    along, offset = project_points(line, np.array([[50, 10], [110, 50], [-5, 0], [100, 200]]))
    np.testing.assert_allclose(along, [50, 150, 0, 200])
    np.testing.assert_allclose(offset, [10, 10, 5, 100])


def test_out_and_back_path_gives_two_candidates_and_monotone_match() -> None:
    # out along y=0 and back along y=20: a ping between both passes is ambiguous
    line = Polyline.from_xy([[0, 0], [1000, 0], [1000, 20], [0, 20]])
    along, _ = projection_candidates(line, np.array([[300.0, 10.0]]), k=3)
    assert np.sort(along[0][np.isfinite(along[0])])[:2].round().tolist() == [300.0, 1720.0]
    rng = np.random.default_rng(1)
    truth = np.linspace(0, 2000, 81)
    pts = line.point_at(truth) + rng.normal(0, 6, (81, 2))
    cand_a, cand_o = projection_candidates(line, pts, k=4)
    match = match_monotone(cand_a, cand_o, np.arange(81) * 20.0)
    assert np.all(np.diff(match.online_along_m) >= 0)
    assert np.max(np.abs(match.along_m - truth)) < 25.0
    # the naive nearest projection jumps between the two passes
    naive, _ = project_points(line, pts)
    assert np.max(np.abs(naive - truth)) > 500.0


def test_real_vehicle_matches_close_to_its_trip(wmata_dir: Path, wmata_paths: TripPaths) -> None:
    avl = read_avl(wmata_dir / "wmata_avl.csv")
    run = avl[(avl["vehicle_id"] == "7223") & (avl["trip_id"] == "22579100")]
    line = wmata_paths["22579100"]
    xy = wmata_paths.projection.to_xy(run["lat"].to_numpy(), run["lon"].to_numpy())
    along, offset = projection_candidates(line, xy)
    match = match_monotone(along, offset, run["time_s"].to_numpy())
    assert np.median(match.offset_m) < 15.0
    assert np.all(np.diff(match.online_along_m) >= 0)
    assert match.along_m[-1] - match.along_m[0] > 0.8 * line.length_m

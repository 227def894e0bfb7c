"""Stop passing detection: exact on synthetic motion, sensible on real WMATA pings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from telematics.arrivals import passing_times
from telematics.avl import read_avl
from telematics.gtfs import Feed, TripPaths
from telematics.matching import match_monotone, projection_candidates
from tests.telematics.core_fixtures import (  # noqa: F401  (fixtures by name)
    cairns_fixture,
    wmata_fixture,
    wmata_paths_fixture,
)


def test_constant_speed_interpolation() -> None:
    times = np.arange(0, 300, 30.0)
    along = times * 10.0  # 10 m/s
    got = passing_times(times, along, [-5.0, 0.0, 455.0, 1000.0, 2990.0, 5000.0])
    np.testing.assert_allclose(got.time_s, [np.nan, np.nan, 45.5, 100.0, np.nan, np.nan])
    np.testing.assert_allclose(got.known_at_s[2:4], [60.0, 120.0])


def test_dwell_and_noise_and_gaps() -> None:
    times = np.array([0, 30, 60, 90, 120, 600.0])
    along = np.array([0, 100, 95, 100, 400, 900.0])  # dwell at 100 m with GPS jitter, then a gap
    got = passing_times(times, along, [50.0, 250.0, 600.0])
    assert got.time_s[0] == 15.0
    assert got.time_s[1] == 105.0
    assert np.isnan(got.time_s[2])  # across a 480 s gap


def test_real_trip_passings(wmata: Feed, wmata_dir: Path, wmata_paths: TripPaths) -> None:
    avl = read_avl(wmata_dir / "wmata_avl.csv")
    from tests.telematics.core_fixtures import pick

    trip = pick(avl["trip_id"], "22579100")
    run = avl[avl["trip_id"] == trip]
    xy = wmata_paths.projection.to_xy(run["lat"].to_numpy(), run["lon"].to_numpy())
    along, offset = projection_candidates(wmata_paths[trip], xy)
    t = run["time_s"].to_numpy()
    match = match_monotone(along, offset, t)
    got = passing_times(t, match.along_m, wmata_paths.stop_dist_m[trip])
    found = got.time_s[np.isfinite(got.time_s)]
    n_stops = len(wmata_paths.stop_dist_m[trip])
    assert len(found) >= 0.8 * n_stops
    assert np.all(np.diff(found) >= 0)
    # passings follow the schedule's order of magnitude: trip duration within 2x of planned
    sched = wmata.stop_times[wmata.stop_times["trip_id"] == trip]["arrival_time"]
    planned = sched.iloc[-1] - sched.iloc[0]
    assert 0.5 * planned < found[-1] - found[0] < 2.0 * planned

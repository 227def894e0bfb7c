"""Vectorised projection and the monotone matcher, synthetic and on real WMATA pings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from telematics.arrivals import passing_times
from telematics.avl import read_avl
from telematics.gtfs import TripPaths
from telematics.matching import (
    Polyline,
    chord_detour_m,
    detour_offsets,
    match_monotone,
    project_points,
    projection_candidates,
)
from telematics.passing import locate_along, stop_passings
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
    from tests.telematics.core_fixtures import pick

    trip = pick(avl["trip_id"], "22579100")
    vehicle = pick(avl.loc[avl["trip_id"] == trip, "vehicle_id"], "7223")
    run = avl[(avl["vehicle_id"] == vehicle) & (avl["trip_id"] == trip)]
    line = wmata_paths[trip]
    xy = wmata_paths.projection.to_xy(run["lat"].to_numpy(), run["lon"].to_numpy())
    along, offset = projection_candidates(line, xy)
    match = match_monotone(along, offset, run["time_s"].to_numpy())
    assert np.median(match.offset_m) < 15.0
    assert np.all(np.diff(match.online_along_m) >= 0)
    assert match.along_m[-1] - match.along_m[0] > 0.8 * line.length_m


# ---------------------------------------------------------------- degenerate inputs (property-based)

_finite = {"allow_nan": False, "allow_infinity": False}
_xy = st.tuples(st.floats(-20_000.0, 20_000.0, **_finite), st.floats(-20_000.0, 20_000.0, **_finite))


@settings(max_examples=150, deadline=None)
@given(vertices=st.lists(_xy, min_size=1, max_size=8), pings=st.lists(_xy, max_size=8),
       times=st.lists(st.integers(0, 20).map(lambda k: 15.0 * k), min_size=8, max_size=8))
def test_matching_on_any_path_and_pings(vertices: list[tuple[float, float]], pings: list[tuple[float, float]],
                                        times: list[float]) -> None:
    """Any path (one vertex, repeated vertices, loops) and any pings (none, one, far from the
    path, with duplicated and unordered times): every ping keeps a candidate on the path,
    the causal match never goes back, and the live step never moves a vehicle backwards."""
    line = Polyline.from_xy(vertices)
    pts = np.array(pings, dtype=float).reshape(-1, 2)
    along, offset = projection_candidates(line, pts, k=4, max_offset_m=200.0)
    assert along.shape == offset.shape == (len(pts), 4)
    assert np.all(np.isfinite(along[:, 0])) and np.all((along[:, 0] >= 0) & (along[:, 0] <= line.length_m + 1e-6))
    match = match_monotone(along, offset, times[:len(pts)])
    assert len(match.online_along_m) == len(pts) and np.all(np.diff(match.online_along_m) >= 0.0)
    prev, prev_t = math.nan, 0.0
    for p, t in zip(pts, times, strict=False):
        new, off = locate_along(line, p, prev, prev_t, t)
        assert math.isfinite(new) and off >= 0.0 and (math.isnan(prev) or new >= prev)
        prev, prev_t = new, t


@settings(max_examples=200, deadline=None)
@given(stops=st.lists(st.floats(0.0, 5000.0, **_finite), min_size=1, max_size=6),
       along=st.lists(st.floats(-100.0, 6000.0, **_finite), max_size=8),
       gaps=st.lists(st.integers(0, 40).map(lambda k: 15.0 * k), min_size=8, max_size=8),
       next_stop=st.integers(0, 6))
def test_stop_passings_on_any_pings(stops: list[float], along: list[float], gaps: list[float], next_stop: int) -> None:
    """One-stop trips, a vehicle seen once, repeated timestamps and positions, pings past the
    last stop: passing times lie between the bracketing pings or are unknown (NaN), each stop
    is passed at most once and in order."""
    dist = np.sort(np.array(stops))
    t = np.cumsum(np.array(gaps[:len(along)]))
    passings = passing_times(t, np.array(along), dist)
    assert passings.time_s.shape == passings.known_at_s.shape == dist.shape
    ok = np.isfinite(passings.time_s)
    if ok.any():
        assert np.all(passings.time_s[ok] >= t[0]) and np.all(passings.time_s[ok] <= passings.known_at_s[ok])
        assert np.all(np.diff(passings.time_s[ok]) >= 0.0)
    nxt = min(next_stop, len(dist))
    old, prev_t = (along[0], t[0]) if along else (0.0, 0.0)
    for a, when in zip(np.maximum.accumulate(np.array(along)).tolist(), t.tolist(), strict=True):
        passed = stop_passings(dist, len(dist), nxt, old, a, prev_t, when, 300.0, True)
        assert [j for j, _ in passed] == list(range(nxt, nxt + len(passed)))
        assert all(math.isnan(x) or prev_t <= x <= when for _, x in passed)
        nxt, old, prev_t = nxt + len(passed), a, when
    assert nxt <= len(dist)


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0, 5000.0), st.floats(-3000.0, 8000.0), st.floats(-3000.0, 3000.0))
def test_a_detour_from_a_chord_is_never_more_than_the_distance_from_it(chord_m: float, x_m: float, y_m: float) -> None:
    """Half the detour through a point is 0 on the chord, at most the distance from it, and the
    distance to the nearer stop along the chord's line beyond either end."""
    line = Polyline.from_xy([[0.0, 0.0], [chord_m, 0.0]])
    point = np.array([[x_m, y_m]])
    detour = float(detour_offsets(line, point)[0])
    _, off = project_points(line, point)
    assert 0.0 <= detour <= off[0] + 1e-6
    on_line = float(detour_offsets(line, np.array([[min(max(x_m, 0.0), chord_m), 0.0]]))[0])
    assert on_line < 1e-6
    beyond = float(detour_offsets(line, np.array([[chord_m + abs(x_m), 0.0]]))[0])
    assert math.isclose(beyond, abs(x_m), rel_tol=1e-9, abs_tol=1e-6)


def test_the_same_distance_off_is_a_smaller_detour_between_stops_farther_apart() -> None:
    """A bus 150 m off the straight line, midway between stops 300 m apart, makes a detour no road
    between them takes; between stops 2 km apart, that is an ordinary bend of the road."""
    near = chord_detour_m(np.hypot(150.0, 150.0), np.hypot(150.0, 150.0), 300.0)
    far = chord_detour_m(np.hypot(1000.0, 150.0), np.hypot(1000.0, 150.0), 2000.0)
    assert float(near) > 60.0 > 12.0 > float(far)

"""The plausibility kernel: impossible speeds, fixes outside the service area, the future.

Checked against an independent fix-by-fix reference written here (hypothesis draws tracks
with jumps, outliers, relocations and shuffled order), on the issue's scenarios, and on the
real WMATA AVL day, where nothing may be flagged.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telematics.gtfs import read_feed
from telematics.plausibility import (
    AREA,
    FUTURE,
    MAX_ROUNDS,
    SPEED,
    ServiceArea,
    flag_names,
    plausibility_flags,
)

R = 6_371_008.8


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b[1] - a[1]) / 2) ** 2
    return 2 * R * math.asin(math.sqrt(min(1.0, h)))


def reference(vehicle: list[str], t: list[float], lat: list[float], lon: list[float], vmax: float,
              area: ServiceArea | None, noise: float, k: int) -> list[int]:
    """The rule of the module docstring, one fix at a time (no vectorisation)."""
    out = [0] * len(t)
    for v in set(vehicle):
        rows = sorted((i for i in range(len(t)) if vehicle[i] == v), key=lambda i: (t[i], i))
        anchor, chain, prev, recent = None, 0, None, []  # recent: accepted? of the fixes before
        for i in rows:
            p = (lat[i], lon[i])
            inside = area is None or (area.south <= p[0] <= area.north and area.west <= p[1] <= area.east)
            if not inside:
                out[i] = AREA
                chain, prev = 0, None
                recent.append(False)
                continue

            def reach(j: int, i: int = i, p: tuple[float, float] = p) -> bool:
                return _dist((lat[j], lon[j]), p) <= noise + vmax * max(t[i] - t[j], 0.0)
            chain = chain + 1 if prev is not None and reach(prev) else 1
            ok = anchor is None or reach(anchor)
            if ok or (chain >= k and not any(recent[-(k - 1):])):
                anchor = i
                recent.append(True)
            else:
                out[i] = SPEED
                recent.append(False)
            prev = i
    return out


def _track(n: int, start: tuple[float, float] = (38.9, -77.03), step_m: float = 150.0, dt: float = 15.0,
           t0: float = 1_770_000_000.0) -> tuple[list[float], list[float], list[float]]:
    """A bus going north-east at step_m per dt (10 m/s)."""
    t = [t0 + dt * i for i in range(n)]
    lat = [start[0] + step_m * i / 111_195.0 for i in range(n)]
    lon = [start[1] + step_m * i / (111_195.0 * math.cos(math.radians(start[0]))) for i in range(n)]
    return t, lat, lon


AREA_DC = ServiceArea(-77.2, 38.7, -76.8, 39.1)


def test_a_5000_km_jump_is_flagged_alone_and_the_track_goes_on() -> None:
    t, lat, lon = _track(20)
    lat[7], lon[7] = 51.5, -0.12  # London
    flags = plausibility_flags(["7"] * 20, t, lat, lon, area=AREA_DC)
    assert flags.tolist() == [0] * 7 + [AREA] + [0] * 12
    flags = plausibility_flags(["7"] * 20, t, lat, lon)  # no area: the speed alone catches it
    assert flags.tolist() == [0] * 7 + [SPEED] + [0] * 12
    assert flag_names(int(flags[7])) == ["speed"] and flag_names(AREA | FUTURE) == ["area", "future"]


def test_an_in_area_outlier_is_flagged_and_a_real_relocation_is_accepted_after_k_fixes() -> None:
    t, lat, lon = _track(30)
    lat[5] += 0.08  # one fix 9 km off, inside the area
    for i in range(15, 30):  # from fix 15 the unit reports 17 km away, consistently
        lat[i] -= 0.15
    flags = plausibility_flags(["a"] * 30, t, lat, lon, area=AREA_DC, reanchor_fixes=3)
    assert flags[5] == SPEED and flags[6] == 0
    assert flags[15:17].tolist() == [SPEED, SPEED] and (flags[17:] == 0).all()
    flags4 = plausibility_flags(["a"] * 30, t, lat, lon, area=AREA_DC, reanchor_fixes=4)
    assert flags4[15:18].tolist() == [SPEED] * 3 and (flags4[18:] == 0).all()


def test_a_wrong_first_fix_does_not_hide_the_real_track_for_long() -> None:
    t, lat, lon = _track(10)
    lat[0] += 0.1
    assert plausibility_flags(["a"] * 10, t, lat, lon).tolist() == [0, SPEED, SPEED, 0, 0, 0, 0, 0, 0, 0]


def test_the_reach_grows_with_time_and_noise_covers_jitter() -> None:
    # 30 km in 15 min is 33 m/s: plausible; the same 30 km in 5 min is not
    t = [0.0, 900.0, 1200.0]
    lat = [38.8, 38.8 + 30_000 / 111_195.0, 38.8 + 60_000 / 111_195.0]
    assert plausibility_flags(["a"] * 3, t, lat, [-77.0] * 3).tolist() == [0, 0, SPEED]
    same_time = plausibility_flags(["a"] * 3, [5.0, 5.0, 5.0], [38.8, 38.8002, 38.81], [-77.0] * 3)
    assert same_time.tolist() == [0, 0, SPEED]  # 22 m apart at the same time is GPS noise; 1.1 km is not


def test_future_fixes_are_flagged_and_never_anchor() -> None:
    t, lat, lon = _track(6)
    now = t[2]
    t[3] = now + 86_000  # a day ahead
    lat[3] += 0.05  # and somewhere else: were it an anchor, the next fixes would be flagged
    flags = plausibility_flags(["a"] * 6, t, lat, lon, now_s=now, max_future_s=300)
    assert flags[3] == FUTURE and flags[[0, 1, 2, 4, 5]].tolist() == [0] * 5
    # without a clock it is only the vehicle's latest fix (a day later, 5.5 km away: reachable)
    assert plausibility_flags(["a"] * 6, t, lat, lon).tolist() == [0] * 6


def test_vehicles_are_independent_and_order_does_not_matter() -> None:
    t, lat, lon = _track(12)
    t2, lat2, lon2 = _track(12, start=(38.85, -77.1))
    lat2[4] = 39.5  # out of the area
    vehicle = ["a"] * 12 + ["b"] * 12
    flags = plausibility_flags(vehicle, t + t2, lat + lat2, lon + lon2, area=AREA_DC)
    assert flags.tolist() == [0] * 12 + [0] * 4 + [AREA] + [0] * 7
    perm = np.random.default_rng(3).permutation(24)
    shuffled = plausibility_flags(np.array(vehicle)[perm], np.array(t + t2)[perm], np.array(lat + lat2)[perm],
                                  np.array(lon + lon2)[perm], area=AREA_DC)
    assert (shuffled == flags[perm]).all()
    assert plausibility_flags([], [], [], []).tolist() == []


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="reanchor_fixes"):
        plausibility_flags(["a"], [0.0], [0.0], [0.0], reanchor_fixes=1)
    with pytest.raises(ValueError, match="service area"):
        ServiceArea(10, 0, -10, 5)
    with pytest.raises(ValueError, match="4 numbers"):
        ServiceArea.of([1, 2, 3])
    assert ServiceArea.around([np.nan], [np.nan], 100) is None


def test_service_area_around_points_has_the_margin_in_metres() -> None:
    area = ServiceArea.around([38.8, 39.0], [-77.1, -76.9], 5000.0)
    assert area is not None
    assert _dist((38.8, -77.0), (area.south, -77.0)) == pytest.approx(5000.0, rel=1e-3)
    assert _dist((39.0, area.east), (39.0, -76.9)) >= 4999.0  # at the widest latitude: at least the margin
    assert area.contains([38.79, 39.5], [-77.0, -77.0]).tolist() == [True, False]


@st.composite
def tracks(draw: st.DrawFn) -> tuple[list[str], list[float], list[float], list[float]]:
    n = draw(st.integers(1, 60))
    vehicles = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    dts = draw(st.lists(st.sampled_from([0.0, 1.0, 10.0, 30.0, 600.0]), min_size=n, max_size=n))
    t = np.cumsum(dts).tolist()
    kinds = draw(st.lists(st.sampled_from(["walk", "walk", "walk", "jump", "far", "shift"]), min_size=n, max_size=n))
    lat, lon, offset = [], [], 0.0
    for i, kind in enumerate(kinds):
        if kind == "shift":
            offset += draw(st.floats(-0.2, 0.2))
        base = 38.9 + offset + 0.0004 * i
        lat.append({"jump": base + 0.05, "far": 45.0}.get(kind, base))
        lon.append(-77.0 + 0.0003 * i)
    order = draw(st.permutations(list(range(n))))
    pick = lambda xs: [xs[j] for j in order]  # noqa: E731
    return pick(vehicles), pick(t), pick(lat), pick(lon)


@settings(max_examples=300, deadline=None)
@given(tracks(), st.sampled_from([None, AREA_DC]), st.sampled_from([2, 3, 5]))
def test_the_vectorised_kernel_equals_the_fix_by_fix_rule(track: tuple[list[str], list[float], list[float], list[float]],
                                                         area: ServiceArea | None, k: int) -> None:
    vehicle, t, lat, lon = track
    got = plausibility_flags(vehicle, t, lat, lon, area=area, reanchor_fixes=k, max_speed_mps=30.0, gps_noise_m=40.0)
    assert got.tolist() == reference(vehicle, t, lat, lon, 30.0, area, 40.0, k)


def test_a_vehicle_whose_fixes_keep_changing_is_finished_one_fix_at_a_time() -> None:
    # scattered in-area fixes 10 s apart: every acceptance moves the anchor, so the whole-array
    # rounds do not settle within MAX_ROUNDS and the sequential finish decides
    rng = np.random.default_rng(7)
    n = 400
    t = np.arange(n) * 10.0
    lat = 38.8 + rng.uniform(0, 0.25, n)
    lon = -77.1 + rng.uniform(0, 0.25, n)
    got = plausibility_flags(["x"] * n, t, lat, lon, area=AREA_DC)
    want = reference(["x"] * n, t.tolist(), lat.tolist(), lon.tolist(), 50.0, AREA_DC, 50.0, 3)
    assert got.tolist() == want and (np.array(want) == 0).sum() > MAX_ROUNDS


def test_nothing_is_flagged_on_the_real_wmata_day(wmata_dir: Path) -> None:
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype={"vehicle_id": str})
    t = (pd.to_datetime(avl["timestamp"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    feed = read_feed(wmata_dir / "wmata_gtfs.zip")
    area = ServiceArea.around(feed.stops["stop_lat"], feed.stops["stop_lon"], 5000.0)
    flags = plausibility_flags(avl["vehicle_id"], t, avl["lat"], avl["lon"], area=area)
    assert len(flags) > 20_000 and int((flags != 0).sum()) == 0
    # the jump, put into the real day: flagged, and only it
    jumped = avl["lat"].to_numpy().copy()
    jumped[5000] += 45.0
    flags = plausibility_flags(avl["vehicle_id"], t, jumped, avl["lon"], area=area)
    assert np.flatnonzero(flags).tolist() == [5000] and flags[5000] == AREA

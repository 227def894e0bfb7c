"""Day-aware trip assignment: pings after midnight on the previous service day's trip,
in the batch assignment (`assign_positions`), the live fleet and on the real WMATA day
shifted across midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from telematics.assignment import TripAssigner
from telematics.avl import read_avl
from telematics.degrade import hide_trip_ids, midnight_shift_s, shift_service
from telematics.evaluate import _service_start
from telematics.fleet import Fleet
from telematics.gtfs import Feed, TripPaths, service_day_start, trip_paths
from telematics.position_assignment import assign_positions
from tests.telematics.core_fixtures import pick, wmata_fixture, wmata_paths_fixture  # noqa: F401  (fixtures by name)
from tests.telematics.degenerate import (  # noqa: F401  (fixtures by name)
    DAY,
    TZ,
    edge_feeds_fixture,
    edge_fixture,
    edge_paths_fixture,
    ping_latlon,
)

#: NIGHT leaves S0 at 23:56 on Monday ``DAY`` and reaches S4 at 24:04; Tuesday has no service.
NIGHT_START = service_day_start(DAY, TZ) + 23 * 3600 + 56 * 60


def _night_pings() -> pd.DataFrame:
    """One bus on NIGHT, every 30 s from 23:55 to 24:05, no trip id (read_avl columns)."""
    times = NIGHT_START - 60.0 + 30.0 * np.arange(21)
    share = np.clip((times - NIGHT_START) / 480.0, 0.0, 1.0)
    lat, lon = zip(*(ping_latlon("NIGHT", float(s)) for s in share), strict=True)
    return pd.DataFrame({"vehicle_id": "bus", "trip_id": "", "route_id": "", "start_date": "", "time_s": times,
                         "lat": lat, "lon": lon, "speed_mps": np.nan, "bearing": np.nan})


def test_batch_assignment_keeps_the_night_trip_after_midnight(edge: Feed, edge_paths: TripPaths) -> None:
    pings = _night_pings()
    trips, day0, _, _ = assign_positions(edge, edge_paths, pings)
    after = pings["time_s"].to_numpy() >= service_day_start(DAY + timedelta(days=1), TZ)
    assigned = trips != ""
    assert after.sum() >= 5 and assigned[after].mean() >= 0.6  # pings of Tuesday 00:00-00:04 and beyond
    assert set(trips[assigned]) == {"NIGHT"}
    assert np.all(day0[assigned] == service_day_start(DAY, TZ))  # Monday's trip, not Tuesday's


def test_previous_day_trips_are_candidates_only_while_they_run(edge: Feed, edge_paths: TripPaths) -> None:
    tuesday = DAY + timedelta(days=1)
    assigner = TripAssigner(edge, edge_paths, tuesday, service_day_start(tuesday, TZ),
                            other_days=[(DAY, service_day_start(DAY, TZ))])
    assert assigner.trip_ids.tolist() == ["NIGHT"]  # Monday's day trips ended long before Tuesday 00:00
    assert assigner.service_day.tolist() == [DAY]
    assert assigner.start_s[0] == -240.0  # 23:56 on Tuesday's clock


def test_live_fleet_keeps_the_previous_service_day_after_midnight(edge: Feed) -> None:
    fleet = Fleet("edge", edge)
    seen = []
    for r in _night_pings().to_dict("records"):
        fleet.observe(("edge", "bus", datetime.fromtimestamp(r["time_s"], UTC), r["lat"], r["lon"],
                       None, None, None, None, None, None, None))
        v = fleet.vehicles["bus"]
        seen.append((r["time_s"], v.trip_id, v.service_date))
    midnight = service_day_start(DAY + timedelta(days=1), TZ)
    after = [(trip, day) for t, trip, day in seen if midnight + 60 <= t <= midnight + 200]
    assert after and all(trip == "NIGHT" and day == DAY for trip, day in after)


def test_wmata_across_midnight_as_in_daytime(wmata: Feed, wmata_paths: TripPaths, wmata_dir: Path) -> None:
    """Route D96's day moved so it runs from 21:30 to 02:30: the same assignment accuracy."""
    avl = read_avl(wmata_dir / "wmata_avl.csv")
    route = pick(avl["route_id"], "D96")  # the stand-in: its busiest route
    avl = hide_trip_ids(avl[avl["route_id"] == route].reset_index(drop=True), "hidden")
    truth = avl["truth_trip_id"].to_numpy()

    def accuracy(frame: pd.DataFrame, feed: Feed, paths: TripPaths) -> float:
        trips, day0, _, _ = assign_positions(feed, paths, frame)
        expected0 = _service_start(frame.assign(start_date=frame["truth_start_date"]), feed.timezone)
        return float(((trips == truth) & (day0 == expected0)).mean())

    shift = midnight_shift_s(avl["time_s"], wmata.timezone)
    moved, moved_feed = shift_service(avl, wmata, shift)
    local = pd.to_datetime(moved["time_s"], unit="s", utc=True).dt.tz_convert(wmata.timezone)
    assert local.dt.hour.isin([0, 1]).mean() > 0.2
    daytime = accuracy(avl, wmata, wmata_paths)
    night = accuracy(moved, moved_feed, trip_paths(moved_feed))
    # the real day's D96 is assigned almost perfectly; the stand-in's busiest route runs copies of
    # each hourly trip every 12 min on the same path, which hidden ids confuse more often
    from tests.conftest import shared_data_path

    assert daytime >= (0.95 if wmata_dir.is_relative_to(shared_data_path()) else 0.9)
    assert night >= daytime - 0.005  # what the test is about: midnight costs nothing

"""The live fleet state on real WMATA AVL: causal replay, predictions scored against the
passings the same vehicles made later (the accuracy the API serves)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from telematics.evaluate import score_predictions
from telematics.fleet import Fleet
from telematics.gtfs import read_feed


@pytest.fixture(scope="module")
def replay(wmata_dir: Path) -> dict[str, Any]:
    feed = read_feed(wmata_dir / "wmata_gtfs.zip")
    fleet = Fleet("wmata", feed)
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False)
    avl = avl.sort_values("timestamp", kind="stable")
    made: list[tuple[float, str, int, float, float, bool]] = []
    actual: dict[tuple[str, int], float] = {}
    passings: list[tuple[Any, ...]] = []
    next_board = None
    for r in avl.to_dict("records"):
        t = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp()
        next_board = next_board or t + 1800  # let the model warm up for half an hour
        if t >= next_board:
            board = fleet.board(t)
            for items in board.arrivals.values():
                made.extend((t, e["trip_id"], e["stop_sequence"], _ts(e["predicted_arrival"]),
                             _ts(e["scheduled_arrival"]), fleet.vehicles[e["vehicle_id"]].trip_id != e["trip_id"])
                            for e in items if e["predicted"])
            next_board = t + 150
        row = ("wmata", r["vehicle_id"], datetime.fromtimestamp(t, UTC), float(r["lat"]), float(r["lon"]),
               None, None, r["trip_id"] or None, None, None, None, None)
        for passing in fleet.observe(row):
            actual[(passing[2], passing[3])] = passing[4].timestamp()
            passings.append(passing)
    return {"fleet": fleet, "made": made, "actual": actual, "passings": passings, "feed": feed}


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_every_vehicle_on_a_known_trip(replay: dict[str, Any]) -> None:
    fleet: Fleet = replay["fleet"]
    assert len(fleet.vehicles) >= 25
    assert all(v.trip_id in fleet.trip_rows for v in fleet.vehicles.values() if v.trip_id)
    offsets = np.array([v.offset_m for v in fleet.vehicles.values() if v.trip_id])
    assert np.median(offsets) < 15.0


@pytest.mark.eval
def test_live_predictions_beat_the_schedule(replay: dict[str, Any], real_wmata_dir: Path) -> None:
    made = pd.DataFrame(replay["made"], columns=["now", "trip", "seq", "pred", "sched", "next_in_block"])
    made["actual"] = [replay["actual"].get((t, s), np.nan) for t, s in zip(made["trip"], made["seq"], strict=True)]
    made = made.dropna(subset=["actual"])
    made = made[made["pred"] - made["now"] <= 1800]

    def scores(rows: pd.DataFrame) -> tuple[dict[str, Any], dict[str, Any]]:
        horizon = (rows["pred"] - rows["now"]).to_numpy()
        return (score_predictions(horizon, (rows["actual"] - rows["pred"]).to_numpy()),
                score_predictions(horizon, (rows["actual"] - rows["sched"]).to_numpy()))

    running = made[~made["next_in_block"]]
    assert len(running) > 20_000
    ours, schedule = scores(running)
    assert ours["within_windows"] >= 0.80 > schedule["within_windows"]
    for bucket, value in ours["mae_s"].items():
        assert value <= 0.7 * schedule["mae_s"][bucket], bucket
    # the next trip of a vehicle's block, when the current one will end too late for its timetable
    following = made[made["next_in_block"] & (made["pred"] - made["sched"] > 1.0)]
    assert len(following) > 300
    ours, schedule = scores(following)
    assert ours["within_windows"] > schedule["within_windows"]
    err = (following["actual"] - following["pred"]).abs().mean()
    assert err < 0.85 * (following["actual"] - following["sched"]).abs().mean()


def test_history_profile_from_stored_arrivals(replay: dict[str, Any]) -> None:
    from telematics.store import ARRIVAL_COLUMNS

    history = pd.DataFrame(replay["passings"], columns=list(ARRIVAL_COLUMNS))
    assert (history["delay_s"].abs() < 3600).mean() > 0.99
    fleet = Fleet("wmata", replay["feed"])
    used = fleet.learn_history(history)
    assert used > 0.8 * len(history)
    # the learned profile replaces the schedule prior for a segment seen in the history
    st = replay["feed"].stop_times
    trip = history["trip_id"].iloc[0]
    rows = st[st["trip_id"] == trip]
    code = fleet.segments.codes(rows["stop_id"].iloc[:-1].to_numpy(), rows["stop_id"].iloc[1:].to_numpy())
    tod = np.full(len(code), 14 * 3600.0)
    sched = np.maximum(np.diff(rows["arrival_time"].to_numpy()), 1.0)
    cold = Fleet("wmata", replay["feed"])
    cold_code = cold.segments.codes(rows["stop_id"].iloc[:-1].to_numpy(), rows["stop_id"].iloc[1:].to_numpy())
    with_history = fleet.segments.estimate(code, np.zeros(len(code)), tod, sched).mean_s
    without = cold.segments.estimate(cold_code, np.zeros(len(code)), tod, sched).mean_s
    assert not np.allclose(with_history, without)


def _point(fleet: Fleet, trip: str, along_m: float) -> tuple[float, float]:
    """Latitude/longitude of a point ``along_m`` along a trip's path."""
    import pyproj

    proj = fleet.paths.projection
    inverse = pyproj.Transformer.from_crs(
        pyproj.CRS.from_proj4(f"+proj=aeqd +lat_0={proj.lat0} +lon_0={proj.lon0} +datum=WGS84 +units=m +no_defs"),
        "EPSG:4326", always_xy=True)
    x, y = fleet.paths[trip].point_at([along_m])[0]
    lon, lat = inverse.transform(x, y)
    return float(lat), float(lon)


def test_dispatcher_alerts(wmata_dir: Path) -> None:
    from datetime import date

    from telematics.gtfs import service_day_start

    feed = read_feed(wmata_dir / "wmata_gtfs.zip")
    fleet = Fleet("wmata", feed)
    day = date(2026, 2, 16)
    day0 = service_day_start(day, feed.timezone)
    st = feed.stop_times.groupby("trip_id")["departure_time"].min()
    running = feed.trips[feed.trips["service_id"].isin(list(fleet.services_on(day)))]
    from tests.telematics.core_fixtures import pick

    route = pick(running["route_id"], "C53")  # the stand-in feed: its busiest route
    c53 = running[(running["route_id"] == route) & (running["direction_id"] == 0)].copy()
    c53["start"] = c53["trip_id"].map(st)
    c53 = c53[(c53["start"] > 13 * 3600) & (c53["shape_id"] == c53["shape_id"].mode()[0])].sort_values("start")
    first, second = c53["trip_id"].iloc[0], c53["trip_id"].iloc[1]
    assert 300 < c53["start"].iloc[1] - c53["start"].iloc[0] <= 3600
    # the first bus 10 min late, the second on time: both at the same place, 3 km into the trip
    lo, hi = fleet.trip_rows[first]
    dist = fleet.paths.stop_dist_m[first]
    sched_at = float(np.interp(3000.0, dist, fleet.st_arr[lo:hi]))
    t_now = day0 + sched_at + (c53["start"].iloc[1] - c53["start"].iloc[0])
    for vid, trip in (("bus-a", first), ("bus-b", second)):
        for k, along in enumerate((2900.0, 3000.0)):
            lat, lon = _point(fleet, trip, along)
            fleet.observe(("wmata", vid, datetime.fromtimestamp(t_now - 30 + 30 * k, UTC), lat, lon,
                           None, None, trip, None, day, None, None))
    # a third bus far ahead of its schedule (8 km into a trip due four headways later), a fourth
    # 500 m off its path
    ahead = c53["trip_id"].iloc[4]
    lat, lon = _point(fleet, ahead, min(8000.0, float(fleet.paths.stop_dist_m[ahead][-1]) - 200.0))
    fleet.observe(("wmata", "bus-early", datetime.fromtimestamp(t_now - 30, UTC), lat, lon,
                   None, None, ahead, None, day, None, None))
    fleet.observe(("wmata", "bus-early", datetime.fromtimestamp(t_now, UTC), lat, lon,
                   None, None, ahead, None, day, None, None))
    board = fleet.board(t_now)
    kinds = {(a.kind, a.subject.split("/")[-1]) for a in board.alerts}
    assert ("bunching", "bus-b") in kinds or ("bunching", "bus-a") in kinds
    assert ("early_running", "bus-early") in kinds
    assert not any(k == "off_route" for k, _ in kinds)
    lat, lon = _point(fleet, second, 3100.0)
    fleet.observe(("wmata", "bus-b", datetime.fromtimestamp(t_now + 30, UTC), lat + 0.005, lon,
                   None, None, second, None, day, None, None))
    later = {(a.kind, a.subject.split("/")[-1]) for a in fleet.board(t_now + 30).alerts}
    assert ("off_route", "bus-b") in later
    # a gap: the bus behind has only just left when the one ahead is on time further on, well
    # over the gap threshold (gap_ratio x headway and 10 min more than planned) ahead of it
    third, fourth = c53["trip_id"].iloc[2], c53["trip_id"].iloc[3]
    headway = float(c53["start"].iloc[3] - c53["start"].iloc[2])
    lo3, hi3 = fleet.trip_rows[third]
    dist3, sched3 = fleet.paths.stop_dist_m[third], fleet.st_arr[lo3:hi3]
    ahead_s = 1.5 * max(fleet.config.gap_ratio * headway, headway + 600.0)  # scheduled time ahead (s)
    assert sched3[-1] - sched3[0] > ahead_s + 120, "the route's trips are too short for a gap"
    along_c = float(np.interp(sched3[0] + ahead_s, sched3, dist3))
    t_gap = day0 + sched3[0] + ahead_s
    for vid, trip, along in (("bus-c", third, along_c), ("bus-d", fourth, 400.0)):
        for k in (0, 1):
            lat, lon = _point(fleet, trip, along - 60.0 + 60.0 * k)
            fleet.observe(("wmata", vid, datetime.fromtimestamp(t_gap - 30 + 30 * k, UTC), lat, lon,
                           None, None, trip, None, day, None, None))
    gaps = {(a.kind, a.subject.split("/")[-1]) for a in fleet.board(t_gap).alerts}
    assert ("gap", "bus-d") in gaps
    stale = {(a.kind, a.subject.split("/")[-1]) for a in fleet.board(t_now + 600).alerts}
    assert ("stale_vehicle", "bus-a") in stale


def test_live_board_scores_like_the_evaluation(replay: dict[str, Any], wmata_dir: Path) -> None:
    """The API serves the evaluated prediction step (`telematics.downstream`): scored the same
    way, the live board's arrivals are as accurate as `telematics.evaluate`'s replay."""
    from telematics.avl import read_avl
    from telematics.evaluate import replay_predictions
    from telematics.gtfs import trip_paths

    made = pd.DataFrame(replay["made"], columns=["now", "trip", "seq", "pred", "sched", "next_in_block"])
    made["actual"] = [replay["actual"].get((t, s), np.nan) for t, s in zip(made["trip"], made["seq"], strict=True)]
    made = made[~made["next_in_block"]].dropna(subset=["actual"])
    made = made[made["pred"] - made["now"] <= 1800]
    live = score_predictions((made["pred"] - made["now"]).to_numpy(), (made["actual"] - made["pred"]).to_numpy())
    feed = replay["feed"]
    cols = replay_predictions(feed, trip_paths(feed), read_avl(wmata_dir / "wmata_avl.csv"))
    evaluated = score_predictions(cols["pred"] - cols["now"], cols["truth"] - cols["pred"])
    assert live["within_windows"] >= evaluated["within_windows"] - 0.03
    for bucket, value in live["mae_s"].items():
        assert value <= 1.15 * evaluated["mae_s"][bucket], bucket

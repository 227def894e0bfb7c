"""Live trip assignment on real WMATA AVL with the trip ids hidden: the incremental
block-aware fleet assignment (`telematics.live_assignment.LiveAssigner`) behind
`telematics.fleet.Fleet`, one ping at a time as messages arrive."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from telematics.assignment import AssignmentConfig, TripAssigner
from telematics.fleet import Fleet
from telematics.gtfs import Feed, read_feed, service_day_start

DAY = date(2026, 2, 16)


@pytest.fixture(scope="module")
def wmata(wmata_dir: Path) -> tuple[Feed, pd.DataFrame]:
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False).sort_values("timestamp",
                                                                                                kind="stable")
    return read_feed(wmata_dir / "wmata_gtfs.zip"), avl


def _row(vid: str, r: dict[str, Any], trip: str | None, dlat: float = 0.0, dt_s: float = 0.0) -> tuple[Any, ...]:
    t = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp() + dt_s
    return ("wmata", vid, datetime.fromtimestamp(t, UTC), float(r["lat"]) + dlat, float(r["lon"]), None, None,
            trip, None, None, None, None)


def test_hidden_ids_assigned_live_like_the_fleet_assignment(wmata: tuple[Feed, pd.DataFrame]) -> None:
    """Ping by ping, the live path gives exactly the batch `TripAssigner.assign_fleet`
    choice over the same candidates, and no two fresh vehicles ever hold trips of one block."""
    feed, avl = wmata
    avl = avl[avl["timestamp"] < "2026-02-16T17:45:00Z"]
    fleet = Fleet("wmata", feed)
    block = feed.trips.set_index("trip_id")["block_id"].astype(str).to_dict()
    got = []
    for n, r in enumerate(avl.to_dict("records")):
        fleet.observe(_row(r["vehicle_id"], r, None))
        v = fleet.vehicles[r["vehicle_id"]]
        got.append(v.trip_id or "")
        if n % 25 == 0:
            now = v.observed_s
            held = [block[x.trip_id] for x in fleet.vehicles.values()
                    if x.trip_id is not None and now - x.observed_s <= fleet.config.stale_after_s]
            assert len(held) == len(set(held)), held
    times = pd.to_datetime(avl["timestamp"], utc=True).map(lambda d: d.timestamp()).to_numpy()
    xy = fleet.paths.projection.to_xy(avl["lat"].astype(float).to_numpy(), avl["lon"].astype(float).to_numpy())
    # the live service's candidates: the day's trips and the previous day's past 24:00 (`Fleet._assigner`)
    before = DAY - timedelta(days=1)
    batch = TripAssigner(feed, fleet.paths, DAY, service_day_start(DAY, feed.timezone),
                         AssignmentConfig(stale_after_s=fleet.config.stale_after_s * 5),
                         [(before, service_day_start(before, feed.timezone))]).assign_fleet(
        avl["vehicle_id"].to_numpy(), times, xy)
    assert got == batch.tolist()
    truth = avl["trip_id"].to_numpy()
    live = np.array(got)
    assert (live == truth).mean() > 0.85 and (live[live != ""] == truth[live != ""]).mean() > 0.9


def test_a_shadowing_vehicle_does_not_take_a_reported_trip(wmata: tuple[Feed, pd.DataFrame]) -> None:
    """Vehicle A reports its trip; vehicle B, without a trip id, follows the same street
    20 m and 10 s behind. Assigned on its own, B looks exactly like A's trip: the fleet
    assignment must not give B that trip (nor any trip of its block)."""
    feed, avl = wmata
    vid = avl.groupby("vehicle_id").size().idxmax()
    run = avl[avl["vehicle_id"] == vid]
    trip = run["trip_id"].iloc[len(run) // 2]
    run = run[run["trip_id"] == trip]
    block = feed.trips.set_index("trip_id")["block_id"].astype(str).to_dict()
    fleet = Fleet("wmata", feed)
    solo = Fleet("wmata", feed)
    got_b, got_solo = [], []
    for r in run.to_dict("records"):
        fleet.observe(_row("A", r, trip))
        fleet.observe(_row("B", r, None, dlat=0.00018, dt_s=10.0))
        solo.observe(_row("B", r, None, dlat=0.00018, dt_s=10.0))
        got_b.append(fleet.vehicles["B"].trip_id)
        got_solo.append(solo.vehicles["B"].trip_id)
    assert fleet.vehicles["A"].trip_id == trip
    assert got_solo.count(trip) > len(run) // 2  # alone, B is taken for A's trip
    assert all(t is None or block[t] != block[trip] for t in got_b), got_b

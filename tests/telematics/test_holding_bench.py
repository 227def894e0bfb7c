"""``its bench holding`` on a small fleet: the dense feed keeps the real routes, the fleet has
the buses asked, and the advice is timed per update (the 500-bus figure is in the README)."""

from __future__ import annotations

from pathlib import Path

from telematics.gtfs import read_feed
from telematics.holding_bench import COPY_OFFSET_S, dense_feed, run_holding_bench

from .holding_fixtures import DAY


def test_dense_feed_copies_routes_with_their_timetables(wmata_dir: Path) -> None:
    feed = read_feed(wmata_dir / "wmata_gtfs.zip")
    dense = dense_feed(feed, DAY, 3)
    assert len(dense.routes) == 3 * len(feed.routes)
    assert dense.trips["route_id"].nunique() <= 3 * feed.trips["route_id"].nunique()
    trip = dense.trips["trip_id"].iloc[0].rsplit("~", 1)[0]
    times = {k: dense.stop_times[dense.stop_times["trip_id"] == f"{trip}~{k}"]["departure_time"].to_numpy()
             for k in range(3)}
    assert (times[2] - times[0] == round(2 * COPY_OFFSET_S)).all() and len(times[1]) == len(times[0]) > 1
    assert (dense.trips["block_id"] == "").all()


def test_bench_times_the_advice_of_the_fleet_asked(wmata_dir: Path) -> None:
    r = run_holding_bench(read_feed(wmata_dir / "wmata_gtfs.zip"), DAY, vehicles=60, updates=3, warmup_s=300.0)
    assert r["vehicles"] == 60 and r["updates"] == 3
    assert r["predictions"] > r["control_predictions"] > 0
    assert 0 < r["advise_ms"] <= r["advise_max_ms"] and r["advise_cpu_ms"] > 0
    assert r["routes"] >= 1 and r["copies"] >= 1

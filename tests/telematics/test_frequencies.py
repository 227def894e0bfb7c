"""Frequency-based GTFS trips (``frequencies.txt``, exact_times 1 and 0) on a small feed in
the real GTFS format, zipped by the test: expansion into trip instances, import into the
real database and back, live trip assignment and predictions on the instances."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from its.db import Database
from telematics.feed import read_feed, service_day_start, trip_paths
from telematics.fleet import Fleet
from telematics.frequencies import expand_frequencies, instance_id
from telematics.store import import_feed_file, load_feed

DAY = date(2026, 3, 2)  # a Monday
TZ = "Australia/Brisbane"
STOPS = [(f"S{k}", -16.92 + 0.005 * k, 145.77) for k in range(4)]  # ~555 m apart, northwards

FILES = {
    "agency.txt": f"agency_id,agency_name,agency_url,agency_timezone\nA,Test Transit,https://example.org,{TZ}\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\nR1,A,1,Main Street,3\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\n" + "".join(f"{s},Stop {s},{la},{lo}\n" for s, la, lo in STOPS),
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                    "WK,1,1,1,1,1,0,0,20260101,20261231\n",
    "trips.txt": "route_id,service_id,trip_id,trip_headsign,block_id\n"
                 "R1,WK,EXACT,North,B1\nR1,WK,FREQ,North,B2\nR1,WK,PLAIN,North,B3\n",
    # templates: relative times (EXACT starts at 00:00:00, FREQ at 10:00:00 in its template)
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
                      + "".join(f"EXACT,00:{2 * k:02d}:00,00:{2 * k:02d}:00,S{k},{k + 1}\n" for k in range(4))
                      + "".join(f"FREQ,10:{2 * k:02d}:00,10:{2 * k:02d}:30,S{k},{k + 1}\n" for k in range(4))
                      + "".join(f"PLAIN,12:{2 * k:02d}:00,12:{2 * k:02d}:00,S{k},{k + 1}\n" for k in range(4)),
    "frequencies.txt": "trip_id,start_time,end_time,headway_secs,exact_times\n"
                       "EXACT,06:00:00,07:00:00,600,1\n"
                       "FREQ,07:00:00,08:00:00,900,0\nFREQ,08:00:00,09:00:00,1200,0\n",
}


@pytest.fixture(scope="module")
def feed_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gtfs") / "freq.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in FILES.items():
            z.writestr(name, text)
    return path


def test_instances_follow_the_frequencies(feed_zip: Path) -> None:
    feed = expand_frequencies(read_feed(feed_zip))
    trips = feed.trips.set_index("trip_id")
    exact = [instance_id("EXACT", 6 * 3600 + 600 * k) for k in range(6)]  # 06:00 .. 06:50; 07:00 is the end
    nominal = ([instance_id("FREQ", 7 * 3600 + 900 * k) for k in range(4)]
               + [instance_id("FREQ", 8 * 3600 + 1200 * k) for k in range(3)])
    assert sorted(trips.index) == sorted([*exact, *nominal, "PLAIN"])
    assert exact[2] == "EXACT#06:20:00"
    assert (trips.loc[exact, "exact_times"] == 1).all() and (trips.loc[nominal, "exact_times"] == 0).all()
    assert (trips.loc[exact + nominal, "block_id"] == "").all() and trips.loc["PLAIN", "block_id"] == "B3"
    st = feed.stop_times
    for trip, start in ((exact[2], 6 * 3600 + 1200), (nominal[5], 8 * 3600 + 1200)):
        rows = st[st["trip_id"] == trip]
        template = read_feed(feed_zip).stop_times
        tmpl = template[template["trip_id"] == trip.split("#")[0]]
        assert rows["departure_time"].iloc[0] == start
        np.testing.assert_array_equal(rows["arrival_time"].to_numpy() - start,
                                      tmpl["arrival_time"].to_numpy() - tmpl["departure_time"].iloc[0])
        np.testing.assert_array_equal(rows["departure_time"] - rows["arrival_time"],
                                      tmpl["departure_time"] - tmpl["arrival_time"])
    paths = trip_paths(feed)  # no shapes: the instances share their template's stop path
    assert len({paths.trip_path[t] for t in exact + nominal}) == 1


def _ping(fleet: Fleet, vid: str, t: float, share: float) -> None:
    """A ping ``share`` of the way from the first to the last stop (linear)."""
    lat = STOPS[0][1] + share * (STOPS[-1][1] - STOPS[0][1])
    fleet.observe(("freq", vid, datetime.fromtimestamp(t, UTC), lat, STOPS[0][2], None, 0.0, None, None, None, None,
                   None))


def test_stored_feed_serves_assignment_and_predictions(module_db: Database, feed_zip: Path) -> None:
    import_feed_file(module_db, feed_zip, "freq")
    (count,) = module_db.fetchall("SELECT count(*) FROM gtfs_frequencies")[0]
    assert count == 3
    fleet = Fleet("freq", load_feed(module_db, "freq"))
    assert instance_id("EXACT", 6 * 3600) in fleet.trip_rows and "EXACT" not in fleet.trip_rows
    day0 = service_day_start(DAY, TZ)
    # an exact instance, on time: 06:20 from S0, 6 min to S3; ids hidden
    for k in range(10):
        _ping(fleet, "bus1", day0 + 6 * 3600 + 1200 + 20 * k, 20 * k / 360)
    # a nominal instance, 3 min behind its 07:30 start (its stops dwell 30 s: 7.5 min to S3)
    for k in range(10):
        _ping(fleet, "bus2", day0 + 7 * 3600 + 1980 + 20 * k, 20 * k / 450)
    assert fleet.vehicles["bus1"].trip_id == "EXACT#06:20:00"
    assert fleet.vehicles["bus2"].trip_id == "FREQ#07:30:00"
    now = day0 + 7 * 3600 + 1980 + 180
    board = fleet.board(now)
    ahead = [e for e in board.arrivals["S3"] if e["trip_id"] == "FREQ#07:30:00"]
    assert len(ahead) == 1 and ahead[0]["predicted"] and ahead[0]["vehicle_id"] == "bus2"
    predicted = datetime.fromisoformat(ahead[0]["predicted_arrival"].replace("Z", "+00:00")).timestamp()
    assert now < predicted < now + 600  # the rest of the run: 270 s more at the same pace
    scheduled = {e["trip_id"] for items in board.arrivals.values() for e in items}
    assert {"FREQ#07:45:00", "FREQ#08:00:00"} <= scheduled  # later instances on the boards

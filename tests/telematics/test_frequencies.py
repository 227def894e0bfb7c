"""Frequency-based GTFS trips (``frequencies.txt``, exact_times 1 and 0) on a small feed in
the real GTFS format, zipped by the test: expansion into trip instances, import into the
real database and back, live trip assignment and predictions on the instances."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from google.transit import gtfs_realtime_pb2

from its.db import Database
from its.ingest import PayloadError
from telematics.config import TelematicsSettings
from telematics.fleet import Fleet
from telematics.frequencies import expand_frequencies, instance_id
from telematics.gtfs import read_feed, service_day_start, trip_paths
from telematics.gtfs.database import import_feed_file, load_feed
from telematics.ingest import POSITION_COLUMNS, parse_gtfsrt_position, parse_json_position
from telematics.kpi import read_scheduled_stop_times, service_delivered
from telematics.service import ArrivalsService

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


@pytest.fixture(scope="module")
def stored(module_db: Database, feed_zip: Path) -> Database:
    import_feed_file(module_db, feed_zip, "freq")
    return module_db


def test_stored_feed_serves_assignment_and_predictions(stored: Database) -> None:
    module_db = stored
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


def _service(feed_zip: Path) -> ArrivalsService:
    service = ArrivalsService(TelematicsSettings(recent_positions_min=0, history_days=0), background=False)
    service.add_agency("freq", read_feed(feed_zip))
    return service


def _json(vid: str, t: float, share: float, **trip: str) -> tuple[str, bytes]:
    lat = STOPS[0][1] + share * (STOPS[-1][1] - STOPS[0][1])
    return (f"its/v1/vehicles/freq/{vid}/position",
            orjson.dumps({"ts": t, "lat": lat, "lon": STOPS[0][2], **trip}))


def test_gtfsrt_names_frequency_runs_by_template_and_start_time(feed_zip: Path) -> None:
    service = _service(feed_zip)
    day0 = service_day_start(DAY, TZ)
    for k in range(6):  # FREQ's 07:30 run reported as GTFS-rt names it; PLAIN by its own id
        service._on_json(*_json("bus2", day0 + 7 * 3600 + 1800 + 20 * k, 20 * k / 450, trip_id="FREQ",
                                start_time="07:30:00", start_date="20260302"))
        service._on_json(*_json("bus3", day0 + 12 * 3600 + 20 * k - 4 * 3600, 0.0, trip_id="PLAIN",
                                start_date="20260302"))
    assert service.fleets["freq"].vehicles["bus2"].trip_id == "FREQ#07:30:00"
    snap = service.refresh(day0 + 7 * 3600 + 1900)
    tu = gtfs_realtime_pb2.FeedMessage()
    tu.ParseFromString(snap.trip_updates_pb)
    runs = {e.trip_update.vehicle.id: e.trip_update.trip for e in tu.entity}
    assert runs["bus2"].trip_id == "FREQ" and runs["bus2"].start_time == "07:30:00"
    assert runs["bus2"].start_date == "20260302"
    assert all("#" not in e.trip_update.trip.trip_id for e in tu.entity)
    vp = gtfs_realtime_pb2.FeedMessage()
    vp.ParseFromString(snap.vehicle_positions_pb)
    trips = {e.vehicle.vehicle.id: e.vehicle.trip for e in vp.entity}
    assert (trips["bus2"].trip_id, trips["bus2"].start_time, trips["bus2"].start_date) == (
        "FREQ", "07:30:00", "20260302")
    assert trips["bus3"].trip_id == "PLAIN" and not trips["bus3"].HasField("start_time")
    json_trip = next(e["vehicle"]["trip"] for e in snap.vehicle_positions_json["entity"]
                     if e["vehicle"]["vehicle"]["id"] == "bus2")
    assert json_trip["trip_id"] == "FREQ" and json_trip["start_time"] == "07:30:00"


def test_incoming_template_and_start_time_map_to_the_instance(feed_zip: Path) -> None:
    service = _service(feed_zip)
    fleet = service.fleets["freq"]
    day0 = service_day_start(DAY, TZ)
    msg = gtfs_realtime_pb2.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.timestamp = int(day0 + 8 * 3600 + 1200)
    for vid, start in (("bus4", "08:20:00"), ("bus5", "07:46:10")):  # exact start; a nominal run's actual start
        entity = msg.entity.add()
        entity.id = vid
        entity.vehicle.vehicle.id = vid
        entity.vehicle.trip.trip_id = "FREQ"
        entity.vehicle.trip.start_time = start
        entity.vehicle.trip.start_date = "20260302"
        entity.vehicle.position.latitude, entity.vehicle.position.longitude = STOPS[0][1], STOPS[0][2]
        entity.vehicle.timestamp = int(day0 + 8 * 3600 + 1200)
    rows = parse_gtfsrt_position("its/v1/vehicles/freq/gw/position/gtfsrt", msg.SerializeToString())
    assert all(len(r) == len(POSITION_COLUMNS) for r in rows)  # what the collector stores, with the run
    assert [r[-1] for r in rows] == ["08:20:00", "07:46:10"]
    service._on_gtfsrt("its/v1/vehicles/freq/gw/position/gtfsrt", msg.SerializeToString())
    assert fleet.vehicles["bus4"].trip_id == "FREQ#08:20:00"
    assert fleet.vehicles["bus5"].trip_id == "FREQ#07:45:00"  # nearest run of the template
    # JSON with the instance id itself, and a template without a start time (not a trip: inferred)
    assert fleet.instance_of("FREQ#08:00:00", None) == "FREQ#08:00:00"
    assert fleet.instance_of("FREQ", None) is None and fleet.instance_of("FREQ", 3 * 3600) is None
    assert fleet.instance_of("PLAIN", 12 * 3600) == "PLAIN"
    row = parse_json_position(*_json("bus6", day0 + 8 * 3600, 0.0, trip_id="EXACT", start_time="06:10:00",
                                     start_date="20260302"))[0]
    assert row[-1] == "06:10:00"
    fleet.observe(row)
    assert fleet.vehicles["bus6"].trip_id == "EXACT#06:10:00"
    with pytest.raises(PayloadError, match="start_time"):
        parse_json_position(*_json("bus7", day0, 0.0, trip_id="FREQ", start_time="7h30"))


def test_scheduled_stop_times_of_reports_expand_frequencies(stored: Database, feed_zip: Path) -> None:
    day0 = service_day_start(DAY, TZ)
    start, end = datetime.fromtimestamp(day0 + 6 * 3600, UTC), datetime.fromtimestamp(day0 + 13 * 3600, UTC)
    sched = read_scheduled_stop_times(stored, "freq", start, end, [DAY])
    feed = expand_frequencies(read_feed(feed_zip))
    assert set(sched["trip_id"]) == set(feed.trips["trip_id"])  # the instances, not the templates
    assert not {"EXACT", "FREQ"} & set(sched["trip_id"])
    run = sched[sched["trip_id"] == "FREQ#08:20:00"].sort_values("stop_sequence")
    # the template's departures (10:00:30, 10:02:30, ...) shifted so that the first is at 08:20:00
    np.testing.assert_allclose(run["time_s"] - day0, 8 * 3600 + 1200 + np.array([0, 120, 240, 360]))
    assert (run["trip_start_s"] == day0 + 8 * 3600 + 1200).all()
    # as the expanded feed the live service runs: same trips and times
    st = feed.stop_times.assign(time_s=lambda f: f["departure_time"] + day0)
    merged = sched.merge(st, on=["trip_id", "stop_sequence"])
    assert len(merged) == len(sched) == len(st)
    np.testing.assert_allclose(merged["time_s_x"], merged["time_s_y"])
    # service delivered now counts the frequency-based runs: 1 of 7 FREQ runs seen
    trips = sched[sched["route_id"] == "R1"]
    out = service_delivered(trips, pd.DataFrame({"service_date": [DAY], "trip_id": ["FREQ#07:30:00"]}))
    assert out.loc[0, "scheduled"] == len(feed.trips) and out.loc[0, "run"] == 1

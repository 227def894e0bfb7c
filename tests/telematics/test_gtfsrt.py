"""GTFS-realtime output parsed back with gtfs-realtime-bindings."""

from __future__ import annotations

from datetime import date

from google.transit import gtfs_realtime_pb2

from telematics.gtfsrt import (
    StopTimeUpdate,
    TripUpdate,
    VehicleSnapshot,
    to_bytes,
    to_json,
    trip_updates_feed,
    vehicle_positions_feed,
)

NOW = 1771268000.0


def test_trip_updates_round_trip() -> None:
    stops = (StopTimeUpdate(7, "B", NOW + 300, NOW + 320, 65.0, 40.0), StopTimeUpdate(6, "A", NOW + 100, NOW + 100, 60.4))
    msg = trip_updates_feed([TripUpdate("t1", "C53", date(2026, 2, 16), "5473", NOW - 12, stops, 1)], NOW)
    parsed = gtfs_realtime_pb2.FeedMessage()
    parsed.ParseFromString(to_bytes(msg))
    assert parsed.header.gtfs_realtime_version == "2.0"
    assert parsed.header.incrementality == gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    assert parsed.header.timestamp == int(NOW)
    [entity] = parsed.entity
    tu = entity.trip_update
    assert (tu.trip.trip_id, tu.trip.route_id, tu.trip.start_date, tu.trip.direction_id) == ("t1", "C53", "20260216", 1)
    assert tu.vehicle.id == "5473" and tu.timestamp == int(NOW - 12)
    assert [s.stop_sequence for s in tu.stop_time_update] == [6, 7]  # sorted
    first, second = tu.stop_time_update
    assert first.arrival.time == int(NOW + 100) and first.arrival.delay == 60 and not first.arrival.HasField("uncertainty")
    assert second.departure.time == int(NOW + 320) and second.arrival.uncertainty == 40
    js = to_json(msg)
    assert js["entity"][0]["trip_update"]["trip"]["trip_id"] == "t1"
    assert js["header"]["gtfs_realtime_version"] == "2.0"


def test_vehicle_positions_round_trip() -> None:
    snaps = [VehicleSnapshot("5473", NOW - 5, 38.92, -77.05, 265.0, 4.5, "t1", "C53", date(2026, 2, 16), "1001", 12,
                             occupancy="FEW_SEATS_AVAILABLE"),
             VehicleSnapshot("9999", NOW - 50, 38.90, -77.00)]
    parsed = gtfs_realtime_pb2.FeedMessage()
    parsed.ParseFromString(to_bytes(vehicle_positions_feed(snaps, NOW)))
    a, b = (e.vehicle for e in parsed.entity)
    assert a.vehicle.id == "5473" and abs(a.position.latitude - 38.92) < 1e-5 and a.position.bearing == 265.0
    assert a.trip.trip_id == "t1" and a.current_stop_sequence == 12 and a.stop_id == "1001"
    assert a.occupancy_status == gtfs_realtime_pb2.VehiclePosition.FEW_SEATS_AVAILABLE
    assert not b.HasField("trip") and b.timestamp == int(NOW - 50)

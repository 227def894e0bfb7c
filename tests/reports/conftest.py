"""A database holding one day of every domain's data (2026-02-16): the real WMATA AVL and
stop arrivals detected from it, the real Birmingham counts of 2016-11-14 moved 483 weeks
forward to the same weekday, camera count messages and device status messages."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from its.db import Database, copy_rows, migrate
from its.dead_letters import REJECTED_COLUMNS
from its.devices import DEVICE_STATUS_ROUTE
from its.ingest import PayloadError
from parking.cleaning import read_history_csv
from parking.config import ParkingSettings
from parking.ingest import COUNT_COLUMNS, count_topic, parse_count
from parking.sites import read_sites
from parking.state import ParkingState
from parking.store import OCCUPANCY_COLUMNS, upsert_sites
from telematics.fleet import Fleet
from telematics.gtfs import read_feed
from telematics.gtfs.database import import_feed_file
from telematics.store import write_positions, write_stop_arrivals
from tests.conftest import create_database, drop_database
from video.ingest import COUNT_COLUMNS as CAMERA_COLUMNS
from video.ingest import parse_counts

DAY = datetime(2026, 2, 16, tzinfo=UTC)
SHIFT = timedelta(weeks=483)  # 2016-11-14 (Monday) -> 2026-02-16 (Monday)
DEMO_SITES = Path(__file__).resolve().parents[2] / "parking" / "data" / "demo_sites.geojson"


@pytest.fixture(scope="session")
def day_db(wmata_dir: Path, sample_data: Path) -> Iterator[dict[str, Any]]:
    """(The real WMATA AVL and Birmingham history, else their stand-ins, tests.standins.)"""
    from tests.conftest import shared_data_path
    from tests.standins import birmingham_standin

    wmata = wmata_dir
    birmingham = shared_data_path() / "parking" / "birmingham" / "birmingham_occupancy.csv"
    if not birmingham.is_file():
        birmingham = birmingham_standin(sample_data, DEMO_SITES)
    url = create_database()
    db = Database(url)
    migrate(db)
    # public transport: the first two hours of the WMATA AVL
    import_feed_file(db, wmata / "wmata_gtfs.zip", "wmata")
    fleet = Fleet("wmata", read_feed(wmata / "wmata_gtfs.zip"))
    avl = pd.read_csv(wmata / "wmata_avl.csv", dtype=str, keep_default_na=False).sort_values("timestamp")
    avl = avl[avl["timestamp"] < "2026-02-16T18:00:00Z"]
    positions, passings = [], []
    for r in avl.to_dict("records"):
        row = ("wmata", r["vehicle_id"], datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")),
               float(r["lat"]), float(r["lon"]), None, None, r["trip_id"] or None, r["route_id"] or None, None, None,
               None)
        positions.append(row)
        passings.extend(fleet.observe(row))
    write_positions(db, positions)
    write_stop_arrivals(db, passings)
    # parking: Birmingham counters through the ingest parser and the availability state
    sites = read_sites(DEMO_SITES)
    upsert_sites(db, sites, DAY)
    state = ParkingState(ParkingSettings())
    state.set_sites(sites)
    history = read_history_csv(birmingham)
    history = history[history["time"].dt.strftime("%Y-%m-%d") == "2016-11-14"].sort_values("time")
    counts, occupancy, rejected = [], {}, []
    for k, bad in enumerate([b'{"ts": 1}', b'{"occupied": "full"}', b"not json"]):  # malformed counter messages
        topic = count_topic(f"BAD{k}")
        with pytest.raises(PayloadError) as exc_info:
            parse_count(topic, bad)
        rejected.append((DAY + timedelta(hours=12), topic, bad, str(exc_info.value)))
    for r in history.itertuples():
        topic = count_topic(r.site_id)
        payload = orjson.dumps({"ts": (r.time.to_pydatetime() + SHIFT).isoformat(), "occupied": int(r.occupied)})
        try:
            rows = parse_count(topic, payload)
        except PayloadError as exc:
            rejected.append((DAY + timedelta(hours=12), topic, payload, str(exc)))
            continue
        counts.extend(rows)
        site_id, t, occ, ent, ex = rows[0]
        state.apply_count(site_id, t, occ, ent, ex)
        for ch in state.refresh(t, [site_id]):
            a = ch.after
            occupancy[(a.site_id, a.observed_at)] = (a.site_id, a.observed_at, a.capacity, a.occupied, a.free,
                                                     a.unknown, a.status.value)
    # cameras: per-minute count messages of two lines 16:00-18:00
    rng = np.random.default_rng(1)
    cams = []
    for minute in range(120):
        t = DAY + timedelta(hours=16, minutes=minute)
        for cam, line in (("cam-1", "a"), ("cam-2", "b")):
            payload = orjson.dumps({"interval_start": t.isoformat(), "interval_s": 60, "line_id": line,
                                    "direction": "in", "vehicle_class": "car", "count": int(rng.poisson(6))})
            cams.extend(parse_counts(f"its/v1/cameras/{cam}/counts", payload))
    # devices: one camera always online, one sensor dropping out for two hours
    status = []
    for kind, device, events in (("camera", "cam-1", [(-2, True)]), ("camera", "cam-2", [(1, True), (10, False),
                                                                                        (12, True)])):
        for hour, online in events:
            topic = f"its/v1/devices/{kind}/{device}/status"
            status.extend(DEVICE_STATUS_ROUTE.parse(topic, orjson.dumps(
                {"online": online, "ts": (DAY + timedelta(hours=hour)).isoformat()})))
    with db.connection() as conn:
        copy_rows(conn, "parking_counts", COUNT_COLUMNS, counts)
        copy_rows(conn, "parking_occupancy", OCCUPANCY_COLUMNS, list(occupancy.values()))
        copy_rows(conn, "traffic_counts", CAMERA_COLUMNS, cams)
        copy_rows(conn, "device_status", DEVICE_STATUS_ROUTE.columns, status)
        # dead-lettered as the collector does it: topic, raw bytes, reason, idempotency key
        copy_rows(conn, "rejected_messages", REJECTED_COLUMNS,
                  [(*r, hashlib.sha256(r[1].encode() + b"\x00" + r[2]).digest()) for r in rejected])
    yield {"db": db, "url": url, "positions": len(positions), "counts": len(counts), "cams": len(cams),
           "status": status, "rejected": rejected}
    db.close()
    drop_database(url)

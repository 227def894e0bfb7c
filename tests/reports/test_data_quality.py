"""The report's data-quality table, and the issue #19 jump kept out of vehicle-km.

A fresh database holds the first hour of the real WMATA AVL, stored as the collector stores
it. Then the issue's hostile positions are stored too: a fix 5,000 km away (the issue saw a
route's vehicle-km go from 7.9 to 10,065 km), a 12 km jump inside the area, and a vehicle that
goes silent for 10 minutes mid-trip; and hostile messages go through the collector's own
batch path (its time window and parsers) and are dead-lettered: stamped an hour ahead, ten
days old, malformed, with a bidi-override id, on an unknown topic. The report's vehicle-km
is the clean day's; the data-quality table counts each kind where it belongs.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from its.app.registry import domain_routes
from its.app.reports import platform
from its.app.reports.gather import build_report
from its.batch import process_batch
from its.db import Database
from its.dead_letters import REASON_CLASSES, Message, reason_class
from its.ingest import Router
from its.timeutil import TimePolicy, TimeWindow
from telematics.gtfs.database import import_feed_file
from telematics.ingest import parse_json_position
from telematics.store import write_positions

START = datetime(2026, 2, 16, 15, 0, tzinfo=UTC)
END = datetime(2026, 2, 16, 18, 0, tzinfo=UTC)
CUTOFF = "2026-02-16T17:00:00Z"


def _message(r: dict[str, Any], **change: Any) -> tuple[str, bytes]:
    payload = {"ts": r["timestamp"], "lat": float(r["lat"]), "lon": float(r["lon"]), "trip_id": r["trip_id"],
               "route_id": r["route_id"], "start_date": r["start_date"], **change}
    return f"its/v1/vehicles/wmata/{r['vehicle_id']}/position", orjson.dumps(payload)


def _stale_vehicles(db: Database) -> set[str]:
    """Vehicles with two consecutive stored positions of one trip more than 120 s apart (a loop)."""
    out, prev = set(), None
    for vid, trip, t in db.fetchall("SELECT vehicle_id, trip_id, time FROM vehicle_positions ORDER BY vehicle_id, time"):
        if prev is not None and prev[0] == vid and trip is not None and prev[1] == trip \
                and (t - prev[2]).total_seconds() > 120:
            out.add(vid)
        prev = (vid, trip, t)
    return out


def _km(report: dict[str, Any]) -> pd.Series:
    return report["sections"]["public_transport"]["vehicle_km"]["rows"].set_index("route_id")["vehicle_km"]


@pytest.fixture
def city(db: Database, wmata_dir: Path) -> dict[str, Any]:
    wmata = wmata_dir
    import_feed_file(db, wmata / "wmata_gtfs.zip", "wmata")
    avl = pd.read_csv(wmata / "wmata_avl.csv", dtype=str, keep_default_na=False).sort_values("timestamp",
                                                                                            kind="stable")
    avl = avl[avl["timestamp"] < CUTOFF]
    rows = [row for r in avl.to_dict("records") for row in parse_json_position(*_message(r))]
    assert write_positions(db, rows) == len(rows)
    return {"db": db, "avl": avl, "stored": len(rows)}


def test_implausible_positions_are_counted_and_kept_out_of_vehicle_km(city: dict[str, Any]) -> None:
    db, avl = city["db"], city["avl"]
    on_trip = avl[avl["trip_id"] != ""]
    # a vehicle on a trip goes silent for 10 minutes: its stored fixes in that span removed
    silent = on_trip["vehicle_id"].value_counts().index[1]
    theirs = on_trip[on_trip["vehicle_id"] == silent]
    leg = theirs[theirs["trip_id"] == theirs["trip_id"].value_counts().index[0]]  # its longest trip
    mid = leg.iloc[len(leg) // 2]  # the silence falls inside that trip
    t0 = datetime.fromisoformat(mid["timestamp"].replace("Z", "+00:00"))
    gone = db.fetchall("DELETE FROM vehicle_positions WHERE agency = 'wmata' AND vehicle_id = %s AND time > %s"
                       " AND time < %s RETURNING 1", (silent, t0, t0 + timedelta(minutes=10)))
    assert gone and theirs[theirs["timestamp"] > mid["timestamp"]]["trip_id"].iloc[len(gone)] == mid["trip_id"]
    stored = city["stored"] - len(gone)

    clean = build_report(db, START, END)
    before = _km(clean)
    assert before.sum() > 50
    quality = clean["sections"]["platform"]["data_quality"]["rows"].set_index(["table", "source"])
    stale = _stale_vehicles(db)
    assert silent in stale  # the silence is one of them; the real day has a few more
    assert quality.loc[("vehicle_positions", "wmata"), ["stored", "flagged_speed", "flagged_area",
                                                        "stale_devices"]].tolist() == [stored, 0, 0, len(stale)]

    # another vehicle on a trip: a fix 5,000 km away and one 12 km off, each between two real fixes
    vid = on_trip["vehicle_id"].value_counts().index[0]
    mine = on_trip[on_trip["vehicle_id"] == vid]
    a, b = mine.iloc[10].to_dict(), mine.iloc[20].to_dict()

    def later(r: dict[str, Any]) -> str:
        return (datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")) + timedelta(seconds=1)).isoformat()

    south = -0.11 if float(b["lat"]) > 38.92 else 0.11  # towards the middle of the area: still inside it
    hostile = parse_json_position(*_message(a, ts=later(a), lat=float(a["lat"]) + 45.0))
    hostile += parse_json_position(*_message(b, ts=later(b), lat=float(b["lat"]) + south))
    assert write_positions(db, hostile) == 2

    after = build_report(db, START, END)
    assert _km(after).to_dict() == pytest.approx(before.to_dict(), rel=1e-12)  # the jumps add nothing
    quality = after["sections"]["platform"]["data_quality"]["rows"].set_index(["table", "source"])
    assert quality.loc[("vehicle_positions", "wmata"), ["stored", "flagged_speed", "flagged_area",
                                                        "stale_devices"]].tolist() == [stored + 2, 1, 1, len(stale)]
    completeness = after["sections"]["public_transport"]["avl_completeness"]["rows"]
    assert completeness.equals(clean["sections"]["public_transport"]["avl_completeness"]["rows"])


def test_dead_letters_are_counted_per_source_and_reason(city: dict[str, Any]) -> None:
    db, avl = city["db"], city["avl"]
    r = avl.iloc[-1].to_dict()
    now = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp()
    bad = [
        _message(r, ts=now + 3600),  # an hour ahead of the clock
        _message(r, ts=now - 10 * 86400),  # ten days old
        _message(r, lat="north"),  # malformed
        (f"its/v1/vehicles/wmata/{r['vehicle_id']}/position", orjson.dumps(
            {"ts": now, "lat": 38.9, "lon": -77.0, "trip_id": "T\u202e1"})),  # bidi override in an id
        ("its/v1/vehicles/other/9/position", b"{}"),  # another agency, malformed
        ("its/v1/parking/P1/counts", orjson.dumps({"ts": now, "occupied": "many"})),
        ("its/v1/nowhere/x", b"{}"),  # no route
    ]
    batch = [Message(i + 1, 1, topic, payload, now) for i, (topic, payload) in enumerate(bad)]
    with db.connection() as conn:
        result = process_batch(conn, Router(domain_routes()), batch, 65536,
                               time_policy=TimePolicy(TimeWindow(60.0, 7 * 86400.0)), now_s=now)
    assert result.rejected == len(bad) and result.stored == 0
    reasons = [reason for (reason,) in db.fetchall("SELECT reason FROM rejected_messages ORDER BY id")]
    kinds = [reason_class(x) for x in reasons]
    assert kinds == ["future", "too_old", "invalid", "unsafe", "invalid", "invalid", "unknown_topic"]
    report = build_report(db, START, END)
    rows = report["sections"]["platform"]["data_quality"]["rows"]
    assert list(rows.columns) == ["table", "source", "stored", "flagged_speed", "flagged_area", "dead_lettered",
                                  *REASON_CLASSES, "stale_devices"]
    got = rows.set_index(["table", "source"])
    want = Counter(zip([("vehicle_positions", "wmata")] * 4 + [("vehicle_positions", "other"),
                                                             ("parking_counts", "P1"), ("unrouted", "nowhere")],
                       kinds, strict=True))
    for (key, kind), n in want.items():
        assert got.loc[key, kind] == n, (key, kind)
    assert got["dead_lettered"].sum() == len(bad) == got[list(REASON_CLASSES)].to_numpy().sum()
    assert got.loc[("vehicle_positions", "wmata"), "stored"] == city["stored"]
    assert got.loc[("vehicle_positions", "other"), "stored"] == 0


def test_data_quality_merges_its_parts() -> None:
    stored = pd.DataFrame({"table": ["t", "t"], "source": ["a", "b"], "stored": [5, 7]})
    dead = pd.DataFrame({"table": ["t", "t", "u"], "source": ["a", "a", "x"], "reason": ["future", "invalid", "future"]})
    domain = pd.DataFrame({"table": ["t", "d"], "source": ["b", "k"], "flagged_speed": [2, None],
                           "stale_devices": [None, 3]})
    out = platform.data_quality(stored, dead, domain).set_index(["table", "source"])
    assert out.loc[("t", "a"), ["stored", "dead_lettered", "future", "invalid"]].tolist() == [5, 2, 1, 1]
    assert out.loc[("t", "b"), ["stored", "flagged_speed", "flagged_area", "dead_lettered"]].tolist() == [7, 2, 0, 0]
    assert out.loc[("u", "x"), ["stored", "future"]].tolist() == [0, 1]
    assert out.loc[("d", "k"), "stale_devices"] == 3
    assert list(out.index) == sorted(out.index)
    empty = platform.data_quality(stored.iloc[:0], dead.iloc[:0], domain.iloc[:0])
    assert empty.empty and "future" in empty.columns

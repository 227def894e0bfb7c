"""A restarted arrivals service puts each vehicle back on the same run of a frequency-based trip.

The small frequencies feed of `tests.telematics.test_frequencies` (real GTFS, zipped by the
test) is imported into a real migrated database. Position messages go, as in production,
through the ingestion parser into ``vehicle_positions`` (the collector's rows) and into a
live `ArrivalsService`; a second service then rebuilds its state from the store at start.

* ``late`` names its run the GTFS-realtime way (``trip_id`` FREQ, ``start_time`` 07:30:00)
  but runs 15 min late, exactly on the 07:45 run's timetable: only the stored
  ``start_time`` can tell the rebuilt state which run it is on.
* ``norun`` names the frequency-based trip without a run: the live assignment's run is
  written back to its stored positions and the rebuilt state uses it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from its.alerts import AlertSink
from its.db import Database
from its.service import Context
from its.settings import load_settings
from telematics.config import TelematicsSettings
from telematics.fleet import Fleet
from telematics.gtfs import service_day_start
from telematics.gtfs.database import import_feed_file, load_feed
from telematics.ingest import POSITION_COLUMNS, parse_json_position
from telematics.service import RUN_FILL_RETRY_S, ArrivalsService
from telematics.store import read_positions, write_positions
from tests.telematics.test_frequencies import DAY, FILES, STOPS, TZ

RUN_S = 330  # FREQ's template: first departure to last arrival (s)


@pytest.fixture(scope="module")
def db(module_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Database:
    path = tmp_path_factory.mktemp("gtfs") / "freq.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in FILES.items():
            z.writestr(name, text)
    import_feed_file(module_db, path, "freq")
    return module_db


def _messages(vid: str, start_s: float, **trip: str) -> list[tuple[float, str, bytes]]:
    """Pings every 20 s of a vehicle running FREQ's stops from ``start_s`` (epoch s), on time,
    until it nears the last stop."""
    out = []
    for k in range(RUN_S // 20):
        share = 20 * k / RUN_S
        lat = STOPS[0][1] + share * (STOPS[-1][1] - STOPS[0][1])
        t = start_s + 20 * k
        out.append((t, f"its/v1/vehicles/freq/{vid}/position",
                    orjson.dumps({"ts": t, "lat": lat, "lon": STOPS[0][2], **trip})))
    return out


class Clock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def ctx(db: Database) -> Iterator[Context]:
    settings = load_settings(database_url=db.url, mqtt_url=None)
    yield Context(settings=settings, db=db, read_db=db, alerts=AlertSink(db))


def _trips(service: ArrivalsService) -> dict[str, Any]:
    return {vid: v.trip_id for vid, v in service.fleets["freq"].vehicles.items()}


def test_restart_keeps_each_vehicle_on_its_run(db: Database, ctx: Context) -> None:
    day0 = service_day_start(DAY, TZ)
    messages = sorted(
        _messages("late", day0 + 7 * 3600 + 2700, trip_id="FREQ", start_time="07:30:00", start_date="20260302")
        + _messages("norun", day0 + 8 * 3600, trip_id="FREQ"))
    clock = Clock(messages[0][0])
    live = ArrivalsService(TelematicsSettings(recent_positions_min=0, history_days=0), clock=clock,
                           background=False)
    live.start(ctx)
    for t, topic, payload in messages:  # the live service hears each message before the collector stores it
        clock.now_s = t
        live._on_json(topic, payload)
    assert live.flush_runs() == 0  # nothing stored yet: the runs wait for the collector
    rows = [row for _t, topic, payload in messages for row in parse_json_position(topic, payload)]
    assert write_positions(db, rows) == len(rows)  # the collector's COPY of the parsed rows
    clock.now_s += 5
    before = _trips(live)
    assert before == {"late": "FREQ#07:30:00", "norun": "FREQ#08:00:00"}
    filled = live.flush_runs()
    assert 0 < filled < len(_messages("norun", 0.0))  # its pings once the assignment had a run
    assert live.flush_runs() == 0
    live.stop()

    stored = read_positions(db, datetime.fromtimestamp(day0, UTC), "freq")
    assert list(stored.columns) == list(POSITION_COLUMNS)
    runs = stored.groupby("vehicle_id")["start_time"].agg(lambda s: sorted(set(s.dropna())))
    assert runs["late"] == ["07:30:00"] and runs["norun"] == ["08:00:00"]
    last = stored[stored["vehicle_id"] == "norun"].iloc[-1]
    assert last["trip_id"] == "FREQ" and last["start_time"] == "08:00:00"  # the source's trip id is kept

    restarted = ArrivalsService(TelematicsSettings(recent_positions_min=30, history_days=0), clock=clock,
                                background=False)
    restarted.start(ctx)
    assert _trips(restarted) == before
    restarted.stop()

    # without the stored runs the rebuilt state would put ``late`` on the run it keeps time with
    blind = Fleet("freq", load_feed(db, "freq"))
    for row in stored.itertuples(index=False, name=None):
        blind.observe((*row[:12], None))
    assert blind.vehicles["late"].trip_id != "FREQ#07:30:00"


def test_runs_are_retried_only_while_recent(db: Database, ctx: Context) -> None:
    day0 = service_day_start(DAY, TZ)
    messages = _messages("gone", day0 + 8 * 3600 + 2400, trip_id="FREQ")  # the 08:40 run
    clock = Clock(messages[0][0])
    live = ArrivalsService(TelematicsSettings(recent_positions_min=0, history_days=0), clock=clock,
                           background=False)
    live.start(ctx)
    for t, topic, payload in messages:
        clock.now_s = t
        live._on_json(topic, payload)
    assert live._pending_runs and live.flush_runs() == 0  # never stored (a lost message)
    clock.now_s += RUN_FILL_RETRY_S + 20 * len(messages)
    live.flush_runs()
    assert live._pending_runs == []
    live.stop()
    assert read_positions(db, datetime.fromtimestamp(day0, UTC) + timedelta(hours=8, minutes=40), "freq").query(
        "vehicle_id == 'gone'").empty

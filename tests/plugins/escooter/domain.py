"""E-scooter positions: one topic, one table, one route, one indicator, one API route.

Registered with ``ITS_PLUGINS=tests.plugins.escooter.domain``; nothing under ``its/`` names it.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from fastapi import APIRouter, Depends
from pydantic import BaseModel

from its import auth
from its.domain import Domain, Field, ReportRequest, ReportSection, Topic
from its.indicators import Indicator, indicator_table
from its.ingest import PayloadError, Route, json_object, optional_float, require_float
from its.service import Context, Service
from its.timeutil import TimeError, parse_time

__all__ = ["DOMAIN", "ScooterRow", "parse_scooter", "scooter_positions_per_scooter"]


class ScooterRow(NamedTuple):
    """One ``scooter_positions`` row: position (deg) and battery (%) at a time (UTC)."""

    scooter_id: str
    time: datetime
    lat: float
    lon: float
    battery_pct: float | None


def parse_scooter(topic: str, payload: bytes) -> list[ScooterRow]:
    """``its/v1/scooters/{scooter_id}/position`` JSON (``ts``, ``lat``, ``lon``, ``battery_pct``)."""
    levels = topic.split("/")
    scooter_id = levels[3] if len(levels) == 5 else ""
    if not scooter_id or len(scooter_id) > 64:
        raise PayloadError("bad scooter id in topic")
    obj = json_object(payload)
    try:
        ts = parse_time(obj.get("ts"))
    except TimeError as exc:
        raise PayloadError(f"field 'ts': {exc}") from None
    return [ScooterRow(scooter_id, ts, require_float(obj, "lat", -90, 90), require_float(obj, "lon", -180, 180),
                       optional_float(obj, "battery_pct", 0, 100))]


POSITION = Topic(filter="its/v1/scooters/+/position", summary="An e-scooter's position: level scooter id.",
                 publisher="scooter operators",
                 fields=(Field("ts", "ISO 8601 or epoch s", "time of the fix (UTC)"),
                         Field("lat", "float, deg", "WGS84 latitude"), Field("lon", "float, deg", "WGS84 longitude"),
                         Field("battery_pct", "float, %", "battery charge", required=False)),
                 parse=parse_scooter, stored_in="scooter_positions")


class Scooter(BaseModel):
    """A scooter's latest position."""

    scooter_id: str
    lat: float
    lon: float
    time: datetime


class ScooterService(Service):
    """Keeps each scooter's latest position in memory, fed live by MQTT."""

    name = "scooters"

    def __init__(self) -> None:
        self.latest: dict[str, ScooterRow] = {}
        self._lock = threading.Lock()
        self._ready = False

    def start(self, ctx: Context) -> None:
        for sid, t, lat, lon, bat in ctx.read_db.fetchall(
                "SELECT DISTINCT ON (scooter_id) scooter_id, time, lat, lon, battery_pct FROM scooter_positions"
                " ORDER BY scooter_id, time DESC"):
            self.latest[sid] = ScooterRow(sid, t, lat, lon, bat)
        ctx.subscribe(POSITION.filter, self._on_position)
        self._ready = True

    def _on_position(self, topic: str, payload: bytes) -> None:
        try:
            rows = parse_scooter(topic, payload)
        except PayloadError:
            return
        with self._lock:
            for row in rows:
                old = self.latest.get(row.scooter_id)
                if old is None or row.time > old.time:
                    self.latest[row.scooter_id] = row

    def ready(self) -> bool:
        return self._ready

    def router(self) -> APIRouter:
        router = APIRouter(dependencies=[Depends(auth.public)], tags=["scooters"])

        @router.get("/v1/scooters", response_model=list[Scooter])
        def scooters() -> list[Scooter]:
            with self._lock:
                rows = sorted(self.latest.values())
            return [Scooter(scooter_id=r.scooter_id, lat=r.lat, lon=r.lon, time=r.time) for r in rows]

        return router


def scooter_positions_per_scooter(positions: pd.DataFrame) -> pd.DataFrame:
    """Positions received (messages) per scooter: the count of stored positions in the period."""
    return positions.groupby("scooter_id").size().rename("positions").reset_index()


def _report(req: ReportRequest) -> dict[str, Indicator]:
    rows = req.db.fetchall("SELECT scooter_id FROM scooter_positions WHERE time >= %s AND time < %s",
                           (req.start, req.end))
    frame = pd.DataFrame(rows, columns=["scooter_id"])
    return {"positions_per_scooter": indicator_table(
        scooter_positions_per_scooter(frame) if not frame.empty else None, "messages",
        scooter_positions_per_scooter, "no scooter position in the period")}


DOMAIN = Domain(
    name="escooter",
    title="E-scooter positions (a test-only plug-in).",
    topics=(POSITION,),
    routes=(Route(feed="scooter_positions", topic_filter=POSITION.filter, table="scooter_positions",
                  columns=ScooterRow._fields, parse=parse_scooter),),
    live_topics=(POSITION.filter,),
    service=ScooterService,
    settings=(),
    migrations=Path(__file__).with_name("migrations"),
    report_sections=(ReportSection("scooters", "E-scooters", _report, (__name__,), order=60),),
)

"""The telematics domain's descriptor: bus positions in, arrivals, GTFS-rt and indicators out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from its.domain import DeviceKind, Domain, ReportRequest, ReportSection, lazy
from its.indicators import Indicator
from telematics.advice import ADVICE_TOPIC
from telematics.config import TelematicsSettings
from telematics.ingest import GTFSRT_POSITION_TOPIC, POSITION_TOPIC, ROUTES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DOMAIN"]




def _quality(req: ReportRequest) -> pd.DataFrame:
    from telematics import kpi

    return kpi.read_position_quality(req.db, req.start, req.end, agency=req.area)


def _report(req: ReportRequest) -> dict[str, Indicator]:
    from telematics import kpi

    s = req.settings
    return kpi.section(req.db, req.start, req.end, agency=req.area, timezone=s.timezone, early_s=s.on_time_early_s,
                       late_s=s.on_time_late_s, frequent_headway_s=s.frequent_headway_s,
                       expected_interval_s=s.avl_interval_s, max_gap_s=s.avl_max_gap_s)


DOMAIN = Domain(
    name="telematics",
    title="Bus AVL, GTFS, trip assignment, arrivals and GTFS-realtime.",
    topics=(POSITION_TOPIC, GTFSRT_POSITION_TOPIC, ADVICE_TOPIC),
    routes=tuple(ROUTES),
    live_topics=(POSITION_TOPIC.filter, GTFSRT_POSITION_TOPIC.filter),
    service=lazy("telematics.service:create_service", call=True),
    commands=lazy("telematics.cli:COMMANDS"),
    cli_groups={"gtfs": "GTFS static feeds.", "gtfsrt": "GTFS-realtime feeds polled over HTTP."},
    settings=(TelematicsSettings,),
    migrations=Path(__file__).with_name("migrations"),
    device_kinds=(DeviceKind("vehicle", (POSITION_TOPIC.concrete("+", "{id}"),
                                         GTFSRT_POSITION_TOPIC.concrete("+", "{id}")),
                             reads=(ADVICE_TOPIC.concrete("+", "{id}"),)),),
    report_sections=(ReportSection("public_transport", "Public transport", _report, ("telematics.kpi", "telematics.prediction_kpi"), order=10,
                                   quality=_quality),),
    control_panels=("fleet", "holding", "map:buses", "map:stops", "alerts:bunching,gap,off_route,stale"),
)

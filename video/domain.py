"""The video domain's descriptor: camera workers count vehicles and pedestrians; counts, people,
snapshots, status."""

from __future__ import annotations

from pathlib import Path

from its.devices import device_status_filter
from its.domain import DeviceKind, Domain, ReportRequest, ReportSection, lazy
from its.indicators import Indicator
from video.config import VideoSettings
from video.ingest import CAMERA_KIND, COUNTS_TOPIC, PEOPLE_TOPIC, ROUTES, SNAPSHOT_TOPIC

__all__ = ["DOMAIN"]


def _report(req: ReportRequest) -> dict[str, Indicator]:
    from video import kpi, people_kpi

    return {**kpi.section(req.db, req.start, req.end), **people_kpi.section(req.db, req.start, req.end)}


DOMAIN = Domain(
    name="video",
    title="Camera workers: vehicle counts per line, direction and class; pedestrians per zone and line.",
    topics=(COUNTS_TOPIC, PEOPLE_TOPIC, SNAPSHOT_TOPIC),
    routes=tuple(ROUTES),
    live_topics=(COUNTS_TOPIC.filter, PEOPLE_TOPIC.filter, SNAPSHOT_TOPIC.filter, device_status_filter(CAMERA_KIND)),
    service=lazy("video.service:create_service", call=True),
    commands=lazy("video.cli:COMMANDS"),
    cli_groups={"video": "Camera workers.",
                "cameras": "Cameras registered in the database, shared by `its video run` workers through leases."},
    settings=(VideoSettings,),
    migrations=Path(__file__).with_name("migrations"),
    device_kinds=(DeviceKind(CAMERA_KIND, (COUNTS_TOPIC.concrete("{id}"), PEOPLE_TOPIC.concrete("{id}"),
                                           SNAPSHOT_TOPIC.concrete("{id}"))),),
    report_sections=(ReportSection("camera_counts", "Camera counts", _report, ("video.kpi", "video.people_kpi"),
                                   order=40),),
    control_panels=("cameras", "map:cameras",
                    "alerts:camera_offline,camera_view_blocked,camera_moved,camera_out_of_focus,camera_too_dark"),
)

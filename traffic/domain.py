"""The traffic domain's descriptor: probe speeds and camera flows become congestion and travel times."""

from __future__ import annotations

from pathlib import Path

from its.domain import DemoContext, DemoHook, Domain, ReportRequest, ReportSection, lazy
from its.indicators import Indicator
from telematics.ingest import GTFSRT_POSITION_TOPIC, POSITION_TOPIC
from traffic.config import TrafficSettings
from traffic.ingest import INCIDENTS_TOPIC, ROUTES
from video.ingest import COUNTS_TOPIC

__all__ = ["DEMO_CAMERA", "DOMAIN"]

#: The demo camera (the freeway clip) on the demo road network: id, counting lines, position
#: (deg) and heading (deg) of the inbound lanes; its counts then feed the congestion estimate.
DEMO_CAMERA = ("freeway-1", ("lanes-150", "lanes-100"), -16.924556, 145.776212, 51.7)




def _report(req: ReportRequest) -> dict[str, Indicator]:
    from traffic import kpi

    return kpi.section(req.db, req.start, req.end, network=req.area, peak_tti=req.settings.peak_tti)


def _place_demo_camera(ctx: DemoContext) -> None:
    """Attach the demo camera's counting lines to the road network (shown on the map)."""
    import logging

    from traffic.cameras import place_camera_line

    camera, lines, lat, lon, heading = DEMO_CAMERA
    for line in lines:
        try:
            place_camera_line(ctx.db, camera, line, lat, lon, heading)
        except ValueError as exc:  # e.g. an OSM extract without that street
            logging.getLogger(__name__).warning("demo: camera %s not placed on the road network: %s", camera, exc)


DOMAIN = Domain(
    name="traffic",
    title="Road traffic: probe speeds, camera flows, congestion, incidents, travel times.",
    topics=(INCIDENTS_TOPIC,),
    routes=tuple(ROUTES),
    live_topics=(POSITION_TOPIC.filter, GTFSRT_POSITION_TOPIC.filter, COUNTS_TOPIC.filter),
    service=lazy("traffic.service:create_service", call=True),
    commands=lazy("traffic.cli:COMMANDS"),
    cli_groups={"traffic": "Road traffic: camera placement on the road network."},
    settings=(TrafficSettings,),
    migrations=Path(__file__).with_name("migrations"),
    report_sections=(ReportSection("traffic", "Traffic", _report, ("traffic.kpi",), order=30),),
    control_panels=("traffic", "map:congestion", "alerts:traffic_incident"),
    demo_hooks=(DemoHook("demo camera on the road network", _place_demo_camera, order=30),),
)

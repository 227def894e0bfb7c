"""The parking domain's descriptor: sensors and counters in, availability, forecasts, DATEX II out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from its.devices import device_status_filter
from its.domain import DemoContext, DemoHook, DeviceKind, Domain, ReportRequest, ReportSection, lazy
from its.indicators import Indicator
from parking.config import ParkingSettings
from parking.guidance import GUIDANCE_TOPIC
from parking.ingest import COUNT_TOPIC, ROUTES, SENSOR_KIND, SPACE_TOPIC, STATE_TOPIC

__all__ = ["DOMAIN"]




def _report(req: ReportRequest) -> dict[str, Indicator]:
    from parking import kpi

    return kpi.section(req.db, req.start, req.end, checkpoint_s=req.settings.parking_checkpoint_s)


def _demo_history(ctx: DemoContext) -> None:
    """Days of (time-shifted, real) history, so the replay sites are forecast at once."""
    from parking.history import backfill_demo_history

    backfill_demo_history(ctx.db, ctx.files["parking_sites"], ctx.shared_data, datetime.now(UTC))


DOMAIN = Domain(
    name="parking",
    title="Parking sites, sensors and counters, availability, forecasts, DATEX II.",
    topics=(SPACE_TOPIC, COUNT_TOPIC, STATE_TOPIC, GUIDANCE_TOPIC),
    routes=tuple(ROUTES),
    live_topics=(SPACE_TOPIC.filter, COUNT_TOPIC.filter, device_status_filter(SENSOR_KIND)),
    service=lazy("parking.service:create_service", call=True),
    commands=lazy("parking.cli:COMMANDS"),
    cli_groups={"parking": "Parking sites."},
    settings=(ParkingSettings,),
    migrations=Path(__file__).with_name("migrations"),
    device_kinds=(DeviceKind(SENSOR_KIND, (SPACE_TOPIC.concrete("{site}", "{space}"),)),
                  DeviceKind("parking-counter", (COUNT_TOPIC.concrete("{id}"),))),
    report_sections=(ReportSection("parking", "Parking", _report, ("parking.kpi",), order=20),),
    control_panels=("parking", "map:car_parks", "alerts:parking_full,sensor_offline"),
    demo_hooks=(DemoHook("parking history", _demo_history, order=20),),
)

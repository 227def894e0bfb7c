"""The maps domain's descriptor: road networks from OSM or GTFS shapes (no topics, no service)."""

from __future__ import annotations

from pathlib import Path

from its.domain import Domain, lazy

__all__ = ["DOMAIN"]



DOMAIN = Domain(
    name="maps",
    title="Road networks from OSM extracts or GTFS shapes, spatial index, routing.",
    commands=lazy("maps.cli:COMMANDS"),
    cli_groups={"maps": "Road networks."},
    settings=(),
    migrations=Path(__file__).with_name("migrations"),
    control_panels=("map:roads",),
)

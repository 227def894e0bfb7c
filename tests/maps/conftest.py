"""Fixtures for the maps tests: real networks imported once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from maps.network import RoadNetwork
from maps.osm import import_osm


@pytest.fixture(scope="session")
def helsinki(shared_data: Path) -> RoadNetwork:
    """The drivable network of the real Helsinki extract."""
    return import_osm(shared_data / "osm" / "Helsinki.osm.pbf")


@pytest.fixture(scope="session")
def small_osm(shared_data: Path) -> RoadNetwork:
    """The drivable network of the small real Finnish extract."""
    return import_osm(shared_data / "osm" / "test.osm.pbf")

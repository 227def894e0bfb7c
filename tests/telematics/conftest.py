"""Telematics fixtures: real feeds from the shared data, a database with them imported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from its.db import Database, migrate
from tests.conftest import create_database, drop_database


@pytest.fixture(scope="session")
def cairns_zip(shared_data: Path) -> Path:
    path = shared_data / "gtfs" / "cairns_gtfs.zip"
    if not path.exists():
        pytest.skip(f"Cairns GTFS not found at {path}")
    return path


@pytest.fixture(scope="session")
def wmata_dir(shared_data: Path) -> Path:
    path = shared_data / "avl" / "wmata"
    if not (path / "wmata_gtfs.zip").exists():
        pytest.skip(f"WMATA GTFS/AVL not found under {path}")
    return path


@pytest.fixture(scope="module")
def module_db() -> Iterator[Database]:
    """A fresh migrated database shared by the tests of one module (imports are slow)."""
    url = create_database()
    database = Database(url)
    migrate(database)
    yield database
    database.close()
    drop_database(url)

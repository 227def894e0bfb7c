"""Fixtures of the parking tests: the real Birmingham history."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def birmingham_csv(shared_data: Path) -> Path:
    """The UCI Parking Birmingham occupancy history (real data)."""
    path = shared_data / "parking" / "birmingham" / "birmingham_occupancy.csv"
    if not path.is_file():
        pytest.skip(f"Birmingham parking history not found at {path}")
    return path

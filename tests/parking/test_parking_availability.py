"""Availability and DATEX II status thresholds; stale sensors count as unknown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from parking.availability import (
    FLAG_STALE_COUNT,
    FLAG_STALE_SENSORS,
    ParkingStatus,
    availability_from_count,
    availability_from_spaces,
    site_status,
)
from parking.cleaning import FLAG_CLAMPED_NEGATIVE, FLAG_CLAMPED_OVER_CAPACITY
from parking.config import ParkingSettings

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SETTINGS = ParkingSettings(almost_full_ratio=0.9, full_free_spaces=0, sensor_stale_s=600, counter_stale_s=1800)


@pytest.mark.parametrize(
    ("occupied", "expected"),
    [(0, "spacesAvailable"), (89, "spacesAvailable"), (90, "almostFull"), (99, "almostFull"), (100, "full")],
)
def test_status_thresholds(occupied: int, expected: str) -> None:
    assert site_status(100, occupied, 0, True, SETTINGS).value == expected


def test_thresholds_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITS_PARKING_ALMOST_FULL_RATIO", "0.5")
    monkeypatch.setenv("ITS_PARKING_FULL_FREE_SPACES", "5")
    settings = ParkingSettings()
    assert site_status(100, 50, 0, True, settings) is ParkingStatus.ALMOST_FULL
    assert site_status(100, 95, 0, True, settings) is ParkingStatus.FULL
    assert site_status(100, 49, 0, True, settings) is ParkingStatus.SPACES_AVAILABLE


def test_closed_and_unknown() -> None:
    assert site_status(100, 10, 0, False, SETTINGS) is ParkingStatus.CLOSED
    assert site_status(100, None, 0, True, SETTINGS) is ParkingStatus.UNKNOWN
    assert site_status(100, 10, 60, True, SETTINGS) is ParkingStatus.UNKNOWN


def test_count_is_clamped_and_flagged() -> None:
    over = availability_from_count("A", 100, 130, NOW, NOW, SETTINGS)
    assert (over.occupied, over.free, over.status) == (100, 0, ParkingStatus.FULL)
    assert FLAG_CLAMPED_OVER_CAPACITY in over.flags
    neg = availability_from_count("A", 100, -4, NOW, NOW, SETTINGS)
    assert (neg.occupied, neg.free) == (0, 100)
    assert FLAG_CLAMPED_NEGATIVE in neg.flags


def test_old_count_is_unknown_with_age() -> None:
    seen = NOW - timedelta(hours=2)
    avail = availability_from_count("A", 100, 40, seen, NOW, SETTINGS)
    assert avail.status is ParkingStatus.UNKNOWN
    assert FLAG_STALE_COUNT in avail.flags
    record = avail.as_dict(NOW)
    assert record["age_s"] == 7200.0
    assert record["observed_at"] == seen.isoformat()


def test_stale_sensor_space_is_unknown_not_free() -> None:
    now_s = NOW.timestamp()
    occupied = np.array([True, False, False, False])
    last_seen = np.array([now_s - 10, now_s - 20, now_s - 601, np.nan])
    online = np.array([True, True, True, True])
    avail = availability_from_spaces("Z", occupied, last_seen, online, now_s, SETTINGS)
    assert (avail.capacity, avail.occupied, avail.free, avail.unknown) == (4, 1, 1, 2)
    assert FLAG_STALE_SENSORS in avail.flags
    assert avail.observed_at == datetime.fromtimestamp(now_s - 10, tz=UTC)
    # the same sensor reporting again makes its space free
    last_seen[2] = now_s - 1
    avail = availability_from_spaces("Z", occupied, last_seen, online, now_s, SETTINGS)
    assert (avail.free, avail.unknown) == (2, 1)


def test_offline_sensor_is_unknown_and_types_are_split() -> None:
    now_s = NOW.timestamp()
    occupied = np.array([False, False, True])
    last_seen = np.full(3, now_s)
    online = np.array([True, False, True])
    types = np.array(["car", "disabled", "car"])
    avail = availability_from_spaces("Z", occupied, last_seen, online, now_s, SETTINGS, vehicle_types=types)
    assert (avail.free, avail.unknown) == (1, 1)
    assert avail.free_by_type == {"car": 1, "disabled": 0}
    assert avail.status is ParkingStatus.SPACES_AVAILABLE  # 1 of 2 known spaces occupied

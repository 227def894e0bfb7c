"""Live state: opening hours in the site's zone, duplicates ignored, change versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from parking.availability import ParkingStatus
from parking.config import ParkingSettings
from parking.sites import Site
from parking.state import FLAG_DUPLICATE_IGNORED, ParkingState, distance_m


def _lot(hours: str | None = "Mo-Fr 08:00-18:00") -> Site:
    return Site.model_validate({
        "id": "LOT", "name": "lot", "kind": "off-street", "lat": -16.92, "lon": 145.77,
        "geometry": {"type": "Point", "coordinates": [145.77, -16.92]}, "capacity": 100,
        "opening_hours": hours, "timezone": "Australia/Brisbane",
    })


def test_opening_hours_use_the_site_time_zone() -> None:
    state = ParkingState(ParkingSettings())
    state.set_sites([_lot()])
    tuesday_9_brisbane = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # Tue 09:00 in Brisbane (UTC+10)
    saturday_noon = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    state.apply_count("LOT", tuesday_9_brisbane - timedelta(minutes=1), 40, None, None)
    assert state.compute("LOT", tuesday_9_brisbane).status is ParkingStatus.SPACES_AVAILABLE
    state.apply_count("LOT", saturday_noon - timedelta(minutes=1), 40, None, None)
    assert state.compute("LOT", saturday_noon).status is ParkingStatus.CLOSED


def test_duplicates_and_old_messages_are_ignored_and_flagged() -> None:
    state = ParkingState(ParkingSettings())
    state.set_sites([_lot(None)])
    t = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    assert state.apply_count("LOT", t, 40, None, None)
    assert not state.apply_count("LOT", t, 40, None, None)  # the same reading again
    assert not state.apply_count("LOT", t - timedelta(minutes=5), 90, None, None)  # late and older
    assert not state.apply_count("NOPE", t, 1, None, None)
    avail = state.compute("LOT", t)
    assert avail.occupied == 40 and FLAG_DUPLICATE_IGNORED in avail.flags


def test_versions_change_only_with_content() -> None:
    state = ParkingState(ParkingSettings())
    state.set_sites([_lot(None)])
    t = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    state.apply_count("LOT", t, 40, None, None)
    assert len(state.refresh(t)) == 1
    tag = state.content_tag()
    assert state.refresh(t + timedelta(seconds=5)) == []
    assert state.content_tag() == tag
    state.apply_count("LOT", t + timedelta(seconds=6), None, 3, 1)
    (change,) = state.refresh(t + timedelta(seconds=6))
    assert change.before is not None and change.before.occupied == 40 and change.after.occupied == 42
    assert state.content_tag() != tag
    version, changed = state.changed_since(0)
    assert version == 2 and [a.site_id for a in changed] == ["LOT"]


def test_distance() -> None:
    d = distance_m(-16.92, 145.77, np.array([-16.92, -16.93]), np.array([145.77, 145.77]))
    assert d[0] == 0 and abs(d[1] - 1112) < 2

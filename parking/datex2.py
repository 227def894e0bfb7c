"""Current availability as a DATEX II Parking Publication Light compatible JSON document.

Element names follow the DATEX II (v3) parking model: a publication with ``lang``,
``publicationTime`` and ``publicationCreator``; per site its identity, type
(``offStreetParking`` / ``onStreetParking``), location, ``numberOfSpaces``,
``parkingSiteStatus`` (``spacesAvailable``, ``almostFull``, ``full``, ``closed``,
``unknown``), ``parkingOccupancy`` (vacant/occupied spaces, percentage) and ``lastUpdate``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from parking.availability import ParkingStatus, SiteAvailability
from parking.sites import Site

__all__ = ["datex2_publication"]

_SITE_TYPE = {"off-street": "offStreetParking", "on-street": "onStreetParking"}


def _site_record(site: Site, avail: SiteAvailability | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": site.site_id,
        "version": "1",
        "name": {"values": [{"lang": "en", "value": site.name}]},
        "parkingSiteType": _SITE_TYPE[site.kind],
        "location": {"pointByCoordinates": {"pointCoordinates": {"latitude": site.lat, "longitude": site.lon}}},
        "numberOfSpaces": site.capacity,
    }
    status = avail.status if avail is not None else ParkingStatus.UNKNOWN
    record["parkingSiteStatus"] = status.value
    record["parkingSiteOpeningStatus"] = "closed" if status is ParkingStatus.CLOSED else (
        "open" if avail is not None else "unknown")
    if avail is not None and avail.free is not None and avail.occupied is not None:
        known = max(avail.capacity - avail.unknown, 0)
        record["parkingOccupancy"] = {
            "parkingNumberOfVacantSpaces": avail.free,
            "parkingNumberOfOccupiedSpaces": avail.occupied,
            "parkingOccupancy": round(100.0 * avail.occupied / known, 1) if known else None,
        }
    if avail is not None and avail.observed_at is not None:
        record["lastUpdate"] = avail.observed_at.isoformat()
    if site.tariff:
        record["tariffDescription"] = {"values": [{"lang": "en", "value": site.tariff}]}
    if site.opening_hours:
        record["openingTimes"] = site.opening_hours
    return record


def datex2_publication(
    sites: list[Site], availability: dict[str, SiteAvailability], now: datetime, creator: str = "its-platform"
) -> dict[str, Any]:
    """Build the publication for ``sites`` with their current ``availability``.

    ``lastUpdate`` of the publication is the newest site observation (or ``now``).
    """
    observed = [a.observed_at for a in availability.values() if a.observed_at is not None]
    return {
        "parkingPublicationLight": {
            "lang": "en",
            "publicationTime": now.isoformat(),
            "publicationCreator": {"country": "int", "nationalIdentifier": creator},
            "lastUpdate": max(observed).isoformat() if observed else now.isoformat(),
            "parkingSite": [_site_record(s, availability.get(s.site_id)) for s in sites],
        }
    }

"""Current availability as a DATEX II v3 *Parking Publication Light* (02-00-00) JSON document.

The document is the schema's ``D2Payload``: ``_modelBaseVersion`` ``"3"`` and a
``parkingPublicationLight`` with ``lang``, ``publicationTime`` and ``publicationCreator``
(``country``: ISO 3166-1 alpha-2 code from ``ITS_PARKING_COUNTRY``).

Per site (``parkingSite``): ``_id``, ``type`` (``onStreet`` for on-street zones, ``carPark``
for off-street sites: the site data does not say whether a car park is a building or an open
ground), ``name``, ``locationAndDimension`` (``coordinatesForDisplay``; the outer ring of a
polygon site as a GML ``posList``, "lat lon" pairs), ``numberOfSpaces``, ``availableSpaces``,
``isOpenNow``, ``lastUpdate``, ``openingTimesDescription`` (OpenStreetMap opening_hours
syntax), ``tariffDescription`` and one ``assignedFor`` per vehicle type with spaces
(free spaces per type where sensors know them).

Per space of a sensor zone (``parkingSpace``): ``_id`` (``site/space``), ``externalIdentifier``,
``parkingSiteReference``, ``availability`` (``available``, ``occupied``, ``unknown`` for a
stale, offline or never heard sensor, ``closed`` outside the site's opening hours),
``lastUpdate``, ``assignedFor`` and ``locationAndDimension``.

Platform status to Light terms (:func:`light_occupancy`): ``closed`` gives ``isOpenNow``
false and no available space; ``full`` gives ``availableSpaces`` 0 (at most
``ITS_PARKING_FULL_FREE_SPACES`` free counts as none, as in the platform's status);
``unknown`` gives no ``availableSpaces``; ``spacesAvailable`` and ``almostFull`` give the free
spaces known. Coordinates are the sites' WGS84 degrees as stored (the schema names ETRS89).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from parking.availability import ParkingStatus, SiteAvailability
from parking.sites import VEHICLE_TYPES, Site
from parking.state import SpaceStates

__all__ = ["MODEL_BASE_VERSION", "SITE_TYPE", "datex2_publication", "light_occupancy", "space_availability"]

MODEL_BASE_VERSION = "3"
SITE_TYPE = {"off-street": "carPark", "on-street": "onStreet"}

# the vehicle types of the platform as Light assignments: a site is optimised for the reserved
# ones (free spaces per assignment are allowed there), a space is only for them
_SITE_ASSIGNMENT: dict[str, dict[str, Any]] = {
    "car": {"typeOfAssignment": {"value": "allowedFor"}, "vehicleType": {"value": "car"}},
    "disabled": {"typeOfAssignment": {"value": "optimisedFor"}, "user": {"value": "registeredDisabledUsers"}},
    "ev": {"typeOfAssignment": {"value": "optimisedFor"}, "fuelType": {"value": "battery"}},
    "motorcycle": {"typeOfAssignment": {"value": "optimisedFor"}, "vehicleType": {"value": "motorcycle"}},
}
_SPACE_ASSIGNMENT: dict[str, dict[str, Any]] = {
    "car": _SITE_ASSIGNMENT["car"],
    "disabled": {"typeOfAssignment": {"value": "onlyFor"}, "user": {"value": "registeredDisabledUsers"}},
    "ev": {"typeOfAssignment": {"value": "onlyFor"}, "fuelType": {"value": "battery"}},
    "motorcycle": {"typeOfAssignment": {"value": "onlyFor"}, "vehicleType": {"value": "motorcycle"}},
}


def light_occupancy(avail: SiteAvailability | None) -> dict[str, Any]:
    """``isOpenNow`` and ``availableSpaces`` of a site from its platform availability.

    Returns
    -------
    dict
        Empty without availability; ``isOpenNow`` false and ``availableSpaces`` 0 when
        closed; ``availableSpaces`` 0 when full, absent when unknown, else the free spaces
        (spaces) whose state is known.
    """
    if avail is None:
        return {}
    if avail.status is ParkingStatus.CLOSED:
        return {"isOpenNow": False, "availableSpaces": 0}
    out: dict[str, Any] = {"isOpenNow": True}
    if avail.status is ParkingStatus.FULL:
        out["availableSpaces"] = 0
    elif avail.status is not ParkingStatus.UNKNOWN and avail.free is not None:
        out["availableSpaces"] = avail.free
    return out


def space_availability(states: SpaceStates, is_open: bool) -> list[str]:
    """Light ``availability`` value of each space: ``closed`` when the site is closed, else
    ``unknown`` (stale, offline or never heard), ``occupied`` or ``available``."""
    if not is_open:
        return ["closed"] * int(states.known.size)
    values = np.where(~states.known, "unknown", np.where(states.occupied, "occupied", "available"))
    return [str(v) for v in values]


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def _location(lat: float, lon: float, geometry: dict[str, Any] | None = None) -> dict[str, Any]:
    location: dict[str, Any] = {"coordinatesForDisplay": {"latitude": lat, "longitude": lon}}
    if geometry is not None and geometry.get("type") == "Polygon":
        ring = geometry["coordinates"][0]
        location["gmlLinearRing"] = {"posList": " ".join(f"{p[1]} {p[0]}" for p in ring)}
    return location


def _assignments(site: Site, avail: SiteAvailability | None, occupancy: dict[str, Any]) -> list[dict[str, Any]]:
    """One assignment per vehicle type with spaces; free spaces per type where sensors know them."""
    per_type = avail is not None and bool(avail.free_by_type) and "availableSpaces" in occupancy
    out = []
    for vtype in VEHICLE_TYPES:
        if site.capacity_for(vtype) <= 0:
            continue
        record = dict(_SITE_ASSIGNMENT[vtype])
        if per_type and avail is not None:
            full = occupancy["availableSpaces"] == 0
            record["availableSpaces"] = 0 if full else int(avail.free_by_type.get(vtype, 0))
        out.append(record)
    return out


def _site_record(site: Site, avail: SiteAvailability | None) -> dict[str, Any]:
    occupancy = light_occupancy(avail)
    record: dict[str, Any] = {"_id": site.site_id}
    if avail is not None and avail.observed_at is not None:
        record["lastUpdate"] = avail.observed_at.isoformat()
    record["type"] = {"value": SITE_TYPE[site.kind]}
    record["name"] = site.name
    if site.opening_hours:
        record["openingTimesDescription"] = [site.opening_hours]
    if "isOpenNow" in occupancy:
        record["isOpenNow"] = occupancy["isOpenNow"]
    if site.tariff:
        record["tariffDescription"] = [site.tariff]
    record["numberOfSpaces"] = site.capacity
    if "availableSpaces" in occupancy:
        record["availableSpaces"] = occupancy["availableSpaces"]
    assignments = _assignments(site, avail, occupancy)
    if assignments:
        record["assignedFor"] = assignments
    record["locationAndDimension"] = _location(site.lat, site.lon, site.geometry)
    return record


def _space_records(site: Site, states: SpaceStates, is_open: bool) -> list[dict[str, Any]]:
    values = space_availability(states, is_open)
    out = []
    for space, value, seen in zip(site.spaces, values, states.last_seen_s.tolist(), strict=True):
        record: dict[str, Any] = {
            "_id": f"{site.site_id}/{space.space_id}",
            "externalIdentifier": space.space_id,
            "parkingSiteReference": {"targetClass": "ParkingSite", "_id": site.site_id},
        }
        if not np.isnan(seen):
            record["lastUpdate"] = _iso(seen)
        if space.vehicle_type == "disabled":
            record["accessibility"] = [{"value": "handicappedMarked"}]
        record["availability"] = {"value": value}
        record["assignedFor"] = [dict(_SPACE_ASSIGNMENT[space.vehicle_type])]
        record["locationAndDimension"] = _location(space.lat, space.lon)
        out.append(record)
    return out


def datex2_publication(
    sites: list[Site],
    availability: dict[str, SiteAvailability],
    now: datetime,
    country: str,
    publisher: str = "its-platform",
    spaces: dict[str, SpaceStates] | None = None,
) -> dict[str, Any]:
    """Build the Parking Publication Light payload of ``sites``.

    Parameters
    ----------
    sites : list of Site
        Sites in publication order.
    availability : dict
        Current availability per site id (a site without one has no occupancy fields).
    now : datetime
        Publication time (aware).
    country : str
        ISO 3166-1 alpha-2 code of the publisher (``publicationCreator.country``).
    publisher : str
        ``publicationCreator.nationalIdentifier``.
    spaces : dict, optional
        Per-space state of sensor zones by site id; each gives the zone's ``parkingSpace`` records.
    """
    spaces = spaces or {}
    space_records: list[dict[str, Any]] = []
    for site in sites:
        states = spaces.get(site.site_id)
        if site.spaces and states is not None and states.known.size == len(site.spaces):
            avail = availability.get(site.site_id)
            is_open = avail is None or avail.status is not ParkingStatus.CLOSED
            space_records.extend(_space_records(site, states, is_open))
    publication: dict[str, Any] = {
        "lang": "en",
        "publicationTime": now.isoformat(),
        "publicationCreator": {"country": country, "nationalIdentifier": publisher},
        "name": "Parking sites and their current availability",
        "parkingSite": [_site_record(s, availability.get(s.site_id)) for s in sites],
    }
    if space_records:
        publication["parkingSpace"] = space_records
    return {"_modelBaseVersion": MODEL_BASE_VERSION, "parkingPublicationLight": publication}

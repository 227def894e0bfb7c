"""The DATEX II Parking Publication Light export against the official 02-00-00 JSON schema.

The served ``/v1/parking/datex2`` document of the parking service (demo sites, the real
Birmingham history, live counts and space sensors through the broker) is validated with
``jsonschema`` (Draft 4, as the schema declares) against ``DATEXII_3_D2Payload.json``; the
publisher's example goes through the same validator. Issue #22 point 1 listed what was wrong;
each item is checked here. The official schemas are third-party files kept in ``../shared/specs``
(not in the repository): the tests that need them are marked ``spec`` (by their fixture, in
tests/conftest.py) and skip without them; every check that does not need them is in a test
of its own, run on a clean machine too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from pydantic import ValidationError

from its.db import Database
from its.settings import Settings
from parking.availability import ParkingStatus, availability_from_count
from parking.config import ParkingSettings, iso3166_codes
from parking.datex2 import datex2_publication, light_occupancy
from parking.ingest import count_topic, space_topic
from parking.service import ParkingService
from parking.sites import read_sites
from parking.state import ParkingState
from tests.its.helpers import wait_for
from tests.parking.conftest import DEMO, LIGHT_SCHEMAS, Served, serve_parking

# DATEX II v2 terms the export used to carry; a Light consumer ignores them
V2_TERMS = {"offStreetParking", "onStreetParking", "parkingSiteStatus", "parkingSiteOpeningStatus", "parkingOccupancy",
            "parkingNumberOfVacantSpaces", "parkingNumberOfOccupiedSpaces", "pointByCoordinates", "pointCoordinates",
            "parkingSiteType", "values"}
NO_DATA_SITE = "Others-CCCPS8"  # its history is left out: no occupancy at all
STALE_SITE = "Others-CCCPS98"  # its history ends two hours before the others: a stale count
ZONE = "CNS-ABBOTT"
ZONE_OCCUPIED = {"01", "02", "03", "05"}  # reported occupied; 04, 06, 07, 08 reported free
ZONE_OFFLINE = "07"  # then its Last Will; 09-12 are never heard


def errors(validator: Any, doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def keys_in(doc: Any) -> Iterator[str]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield k
            yield from keys_in(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from keys_in(v)


def values_in(doc: Any) -> Iterator[Any]:
    if isinstance(doc, dict):
        for v in doc.values():
            yield from values_in(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from values_in(v)
    else:
        yield doc


def schema_terms(schema_dir: Path) -> set[str]:
    """Every property name declared by the four schema files."""
    terms: set[str] = {"$schema"}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            terms.update(node.get("properties", {}))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for name in LIGHT_SCHEMAS:
        walk(json.loads((schema_dir / name).read_text(encoding="utf-8")))
    return terms


def birmingham_counts(csv: Path) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    """Each site's last recorded day of the real history as ``parking_counts`` rows, shifted to
    end two minutes ago (``STALE_SITE`` two hours earlier, ``NO_DATA_SITE`` left out); and each
    site's last reading."""
    raw = pd.read_csv(csv).drop_duplicates(["site_id", "timestamp"])
    raw = raw[raw["site_id"] != NO_DATA_SITE].assign(time=pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601"))
    day = raw["time"].dt.tz_convert("Europe/London").dt.date
    raw = raw[day == day.groupby(raw["site_id"]).transform("max")]
    end = pd.Timestamp.now(tz="UTC") - timedelta(minutes=2)
    shift = end - raw.groupby("site_id")["time"].transform("max") - (raw["site_id"] == STALE_SITE).astype(int) * pd.Timedelta(hours=2)
    raw = raw.assign(time=raw["time"] + shift).sort_values("time")
    rows = [(str(s), t.to_pydatetime(), int(o), None, None)
            for s, t, o in zip(raw["site_id"], raw["time"], raw["occupied"], strict=True)]
    return rows, {str(k): int(v) for k, v in raw.groupby("site_id")["occupied"].last().items()}


@pytest.fixture
def served(settings: Settings, db: Database, tmp_path: Path, birmingham_csv: Path) -> Iterator[tuple[Served, dict[str, int]]]:
    """The service serving the demo sites after the real Birmingham history, with live counts
    and space sensors published through the broker."""
    rows, last = birmingham_counts(birmingham_csv)
    with serve_parking(settings, db, tmp_path, rows) as (client, service, ctx):
        assert ctx.live is not None
        now = datetime.now(UTC)
        counts = {"CNS-HOSPITAL": 320, "CNS-CENTRAL": 550, "CNS-SHERIDAN": 50}  # full, almost full, closed
        for site, occupied in counts.items():
            ctx.live.publish(count_topic(site), orjson.dumps({"ts": now.timestamp(), "occupied": occupied}))
        for i in range(1, 9):
            ctx.live.publish(space_topic(ZONE, f"{i:02d}"),
                             orjson.dumps({"ts": now.timestamp(), "occupied": f"{i:02d}" in ZONE_OCCUPIED}))
        assert wait_for(lambda: all((a := service.state.current(s)) is not None and a.occupied == n
                                    for s, n in counts.items()), 30)
        assert wait_for(lambda: (a := service.state.current(ZONE)) is not None and a.unknown == 4, 30)
        ctx.live.publish(f"its/v1/devices/parking-sensor/{ZONE}.{ZONE_OFFLINE}/status", b'{"online": false}')
        assert wait_for(lambda: (a := service.state.current(ZONE)) is not None and a.unknown == 5, 30)
        yield (client, service, ctx), last


def test_publisher_example_validates(light_validator: Any, light_schema_dir: Path) -> None:
    example = json.loads((light_schema_dir / "Example_Belgium_Cities.json").read_text(encoding="utf-8"))
    assert errors(light_validator, example) == []
    # the validator is live: each fault of the old export, put into the example, is an error
    faults = {"_modelBaseVersion": lambda doc, site: doc.pop("_modelBaseVersion"),
              "type": lambda doc, site: site.update(type={"value": "offStreetParking"}),
              "name": lambda doc, site: site.update(name={"values": [{"lang": "en", "value": "CityPark1"}]}),
              "tariffDescription": lambda doc, site: site.update(tariffDescription={"values": []}),
              "locationAndDimension": lambda doc, site: site.pop("locationAndDimension")}
    for field, spoil in faults.items():
        doc = json.loads((light_schema_dir / "Example_Belgium_Cities.json").read_text(encoding="utf-8"))
        spoil(doc, doc["parkingPublicationLight"]["parkingSite"][0])
        found = errors(light_validator, doc)
        assert len(found) == 1 and field in found[0], (field, found)


def test_served_document_validates_against_the_official_schema(
        served: tuple[Served, dict[str, int]], light_validator: Any, light_schema_dir: Path) -> None:
    (client, _, _), _ = served
    doc = client.get("/v1/parking/datex2").json()
    assert errors(light_validator, doc) == []
    # only terms the Light schema declares
    used = set(keys_in(doc))
    assert used <= schema_terms(light_schema_dir), used - schema_terms(light_schema_dir)


def test_served_document_fixes_each_reported_fault(served: tuple[Served, dict[str, int]]) -> None:
    (client, service, _), _ = served
    response = client.get("/v1/parking/datex2")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    doc = response.json()
    pub = doc["parkingPublicationLight"]
    sites = {s["_id"]: s for s in pub["parkingSite"]}
    assert len(pub["parkingSite"]) == len(sites) == len(service.state.sites) == 36
    # the root carries the model base version; the creator's country is an ISO code (Australia)
    assert doc["_modelBaseVersion"] == "3"
    assert pub["publicationCreator"] == {"country": "AU", "nationalIdentifier": "its-platform"}
    assert pub["publicationCreator"]["country"] in iso3166_codes()
    # none of the v2 terms (that the rest are the Light schema's: the test above)
    used = set(keys_in(doc))
    assert not used & V2_TERMS and not set(values_in(doc)) & {"offStreetParking", "onStreetParking", "int"}
    assert {"availableSpaces", "isOpenNow", "coordinatesForDisplay", "numberOfSpaces"} <= used
    for when in [pub["publicationTime"], *(s["lastUpdate"] for s in [*pub["parkingSite"], *pub["parkingSpace"]]
                                           if "lastUpdate" in s)]:
        assert datetime.fromisoformat(when).tzinfo is not None, when
    for site_id, site in service.state.sites.items():
        got = sites[site_id]
        assert got["type"] == {"value": "onStreet" if site.kind == "on-street" else "carPark"}
        assert got["name"] == site.name and got["numberOfSpaces"] == site.capacity
        assert got["locationAndDimension"]["coordinatesForDisplay"] == {"latitude": site.lat, "longitude": site.lon}
        assert got.get("tariffDescription") == ([site.tariff] if site.tariff else None)
        assert got["openingTimesDescription"] == [site.opening_hours]
        if site.geometry["type"] == "Polygon":
            pairs = got["locationAndDimension"]["gmlLinearRing"]["posList"].split()
            ring = [[float(lon), float(lat)] for lat, lon in zip(pairs[::2], pairs[1::2], strict=True)]
            assert ring == site.geometry["coordinates"][0]
        assignments = got.get("assignedFor", [])
        assert len(assignments) == sum(site.capacity_for(t) > 0 for t in ("car", "disabled", "ev", "motorcycle"))


def test_status_of_closed_full_and_unknown_sites_in_light_terms(served: tuple[Served, dict[str, int]]) -> None:
    (client, service, _), last = served
    doc = client.get("/v1/parking/datex2").json()
    sites = {s["_id"]: s for s in doc["parkingPublicationLight"]["parkingSite"]}
    api = {a["site_id"]: a for a in client.get("/v1/parking/availability").json()["sites"]}
    light = {k: {f: v[f] for f in ("isOpenNow", "availableSpaces") if f in v} for k, v in sites.items()}
    assert api["CNS-SHERIDAN"]["status"] == "closed" and api["CNS-SHERIDAN"]["free"] == 130
    assert light["CNS-SHERIDAN"] == {"isOpenNow": False, "availableSpaces": 0}
    assert api["CNS-HOSPITAL"]["status"] == "full"
    assert light["CNS-HOSPITAL"] == {"isOpenNow": True, "availableSpaces": 0}
    assert api["CNS-CENTRAL"]["status"] == "almostFull"
    assert light["CNS-CENTRAL"] == {"isOpenNow": True, "availableSpaces": 50}
    for unknown in (NO_DATA_SITE, STALE_SITE, "CNS-SPENCE"):  # no count, a stale count, sensors never heard
        assert api[unknown]["status"] == "unknown", unknown
        assert light[unknown] == {"isOpenNow": True}, unknown
    # the replay sites carry the real last readings of the Birmingham history
    for site_id, reading in last.items():
        capacity = service.state.sites[site_id].capacity
        assert api[site_id]["occupied"] == min(max(reading, 0), capacity)
        if site_id != STALE_SITE:
            assert api[site_id]["status"] in {"spacesAvailable", "almostFull", "full"}
            free = 0 if api[site_id]["status"] == "full" else capacity - api[site_id]["occupied"]
            assert light[site_id] == {"isOpenNow": True, "availableSpaces": free}, site_id
            assert sites[site_id]["lastUpdate"] == api[site_id]["observed_at"]


def test_spaces_of_a_sensor_zone(served: tuple[Served, dict[str, int]]) -> None:
    (client, service, _), _ = served
    doc = client.get("/v1/parking/datex2").json()
    pub = doc["parkingPublicationLight"]
    zone = service.state.sites[ZONE]
    spaces = {s["_id"]: s for s in pub["parkingSpace"]}
    sensed = [s for s in service.state.sites.values() if s.spaces]
    assert len(spaces) == len(pub["parkingSpace"]) == sum(len(s.spaces) for s in sensed)
    expected: dict[str, str] = {}
    for space in zone.spaces:
        heard = int(space.space_id) <= 8 and space.space_id != ZONE_OFFLINE
        expected[space.space_id] = ("occupied" if space.space_id in ZONE_OCCUPIED else "available") if heard else "unknown"
        got = spaces[f"{ZONE}/{space.space_id}"]
        assert got["availability"] == {"value": expected[space.space_id]}, space.space_id
        assert got["parkingSiteReference"] == {"targetClass": "ParkingSite", "_id": ZONE}
        assert got["externalIdentifier"] == space.space_id
        assert got["locationAndDimension"]["coordinatesForDisplay"] == {"latitude": space.lat, "longitude": space.lon}
        assert ("lastUpdate" in got) == (int(space.space_id) <= 8)
        (assignment,) = got["assignedFor"]
        assert (assignment["typeOfAssignment"]["value"] == "allowedFor") == (space.vehicle_type == "car")
        assert ("accessibility" in got) == (space.vehicle_type == "disabled")
    others = [s for s in pub["parkingSpace"] if s["parkingSiteReference"]["_id"] != ZONE]
    assert others and {s["availability"]["value"] for s in others} == {"unknown"}  # never heard
    site = next(s for s in pub["parkingSite"] if s["_id"] == ZONE)
    free = [sp for sp in zone.spaces if expected[sp.space_id] == "available"]
    assert site["availableSpaces"] == len(free) == 3
    by_type = {next(a[k]["value"] for k in ("user", "fuelType", "vehicleType") if k in a): a for a in site["assignedFor"]}
    names = {"car": "car", "disabled": "registeredDisabledUsers", "ev": "battery", "motorcycle": "motorcycle"}
    for vtype, name in names.items():
        if zone.capacity_for(vtype):
            assert by_type[name]["availableSpaces"] == sum(sp.vehicle_type == vtype for sp in free), vtype


def status_documents() -> dict[ParkingStatus, tuple[Any, dict[str, Any]]]:
    """Each platform status of a real demo site, from the availability rules, published alone:
    ``{status: (availability, DATEX II document)}``."""
    central = next(s for s in read_sites(DEMO) if s.site_id == "CNS-CENTRAL")
    settings = ParkingSettings()
    now = datetime.now(UTC)
    cases = {  # status: (occupied, is_open)
        ParkingStatus.CLOSED: (100, False), ParkingStatus.FULL: (central.capacity, True),
        ParkingStatus.UNKNOWN: (None, True), ParkingStatus.ALMOST_FULL: (580, True),
        ParkingStatus.SPACES_AVAILABLE: (100, True),
    }
    assert set(cases) == set(ParkingStatus)
    out = {}
    for status, (occupied, is_open) in cases.items():
        avail = availability_from_count(central.site_id, central.capacity, occupied,
                                        now if occupied is not None else None, now, settings, is_open)
        out[status] = (avail, datex2_publication([central], {central.site_id: avail}, now, "AU"))
    return out


def closed_zone_document() -> tuple[Any, dict[str, Any]]:
    """A closed sensor zone with half its spaces occupied: ``(site, DATEX II document)``."""
    zone = next(s for s in read_sites(DEMO) if s.site_id == ZONE).model_copy(update={"opening_hours": "off"})
    state = ParkingState(ParkingSettings(timezone="UTC"))
    state.set_sites([zone])
    now = datetime.now(UTC)
    for i, space in enumerate(zone.spaces):
        assert state.apply_space(ZONE, space.space_id, now, i % 2 == 0)
    state.refresh(now)
    avail = state.current(ZONE)
    assert avail is not None and avail.status is ParkingStatus.CLOSED
    return zone, datex2_publication([zone], {ZONE: avail}, now, "AU", spaces=state.space_states(now))


def country_document(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The publication of three demo sites with ``ITS_PARKING_COUNTRY=gb``."""
    monkeypatch.setenv("ITS_PARKING_COUNTRY", "gb")
    service = ParkingService(ParkingSettings())
    service.state.set_sites(read_sites(DEMO)[:3])
    return service.datex2(datetime.now(UTC))


def test_generated_documents_validate_against_the_official_schema(monkeypatch: pytest.MonkeyPatch,
                                                                  light_validator: Any) -> None:
    """The documents of the three tests below, through the official schema."""
    for status, (_, doc) in status_documents().items():
        assert errors(light_validator, doc) == [], status
    assert errors(light_validator, closed_zone_document()[1]) == []
    assert errors(light_validator, country_document(monkeypatch)) == []


def test_every_platform_status_maps_to_light_values() -> None:
    expected = {ParkingStatus.CLOSED: {"isOpenNow": False, "availableSpaces": 0},
                ParkingStatus.FULL: {"isOpenNow": True, "availableSpaces": 0},
                ParkingStatus.UNKNOWN: {"isOpenNow": True},
                ParkingStatus.ALMOST_FULL: {"isOpenNow": True, "availableSpaces": 20},
                ParkingStatus.SPACES_AVAILABLE: {"isOpenNow": True, "availableSpaces": 500}}
    for status, (avail, doc) in status_documents().items():
        assert avail.status is status
        assert light_occupancy(avail) == expected[status]
        site = doc["parkingPublicationLight"]["parkingSite"][0]
        assert {k: site[k] for k in ("isOpenNow", "availableSpaces") if k in site} == expected[status]
    assert light_occupancy(None) == {}


def test_spaces_of_a_closed_zone_are_closed() -> None:
    zone, doc = closed_zone_document()
    pub = doc["parkingPublicationLight"]
    assert {s["availability"]["value"] for s in pub["parkingSpace"]} == {"closed"}
    assert len(pub["parkingSpace"]) == zone.capacity
    site = pub["parkingSite"][0]
    assert (site["isOpenNow"], site["availableSpaces"]) == (False, 0)
    assert {a["availableSpaces"] for a in site["assignedFor"]} == {0}


def test_country_comes_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = country_document(monkeypatch)
    assert ParkingSettings().country == "GB"
    assert doc["parkingPublicationLight"]["publicationCreator"]["country"] == "GB"
    for bad in ("int", "XX", "AUS", "A1", ""):
        with pytest.raises(ValidationError, match="ISO 3166-1 alpha-2"):
            ParkingSettings(country=bad)
    assert ParkingSettings(country=" au ").country == "AU" == ParkingSettings.model_fields["country"].default

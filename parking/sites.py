"""Parking sites and spaces: the validated records and the GeoJSON / CSV readers.

GeoJSON: a FeatureCollection of Point or Polygon features; ``id`` (feature id or property),
``name``, ``kind`` (``off-street`` | ``on-street``), ``capacity`` (an integer, or an object
``{"total", "car", "disabled", "ev", "motorcycle"}``), optional ``opening_hours``
(OpenStreetMap syntax), ``tariff``, ``timezone`` and ``spaces`` (a list of ``{"id", "lat",
"lon", "vehicle_type", "sensor_id"}``) for on-street sensor zones.

CSV: columns ``id,name,kind,lat,lon,capacity`` and optional ``capacity_car,
capacity_disabled,capacity_ev,capacity_motorcycle,opening_hours,tariff,timezone,wkt``
(a WKT polygon overrides the point).

Every problem is reported with file, line or feature number and field; nothing is imported
from a file that has one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import opening_hours
import shapely
import shapely.geometry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["VEHICLE_TYPES", "Site", "SitesFileError", "Space", "read_sites"]

VEHICLE_TYPES = ("car", "disabled", "ev", "motorcycle")
MAX_ERRORS_SHOWN = 20


class SitesFileError(ValueError):
    """A sites file has invalid rows; ``problems`` lists ``(where, field, message)``."""

    def __init__(self, path: Path, problems: list[tuple[str, str, str]]) -> None:
        self.path = path
        self.problems = problems
        shown = "\n".join(f"{path}: {where}: field {fld!r}: {msg}" for where, fld, msg in problems[:MAX_ERRORS_SHOWN])
        more = len(problems) - MAX_ERRORS_SHOWN
        super().__init__(shown + (f"\n... and {more} more problem(s)" if more > 0 else ""))


class Space(BaseModel):
    """One parking space of a sensor zone (coordinates in WGS84 degrees)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space_id: str = Field(min_length=1, max_length=64, pattern=r"^[^/+#\s]+$", alias="id")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    vehicle_type: Literal["car", "disabled", "ev", "motorcycle"] = "car"
    sensor_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[^/+#\s]+$")


class Site(BaseModel):
    """A parking site: an off-street lot with counters or an on-street zone of sensed spaces.

    ``capacity`` is in spaces; per vehicle type capacities are optional parts of it.
    ``geometry`` is a GeoJSON Point or Polygon; ``lat``/``lon`` its representative point.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    site_id: str = Field(min_length=1, max_length=64, pattern=r"^[^/+#]+$", alias="id")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["off-street", "on-street"]
    geometry: dict[str, Any]
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    capacity: int = Field(ge=0)
    capacity_car: int | None = Field(default=None, ge=0)
    capacity_disabled: int | None = Field(default=None, ge=0)
    capacity_ev: int | None = Field(default=None, ge=0)
    capacity_motorcycle: int | None = Field(default=None, ge=0)
    opening_hours: str | None = Field(default=None, max_length=500)
    tariff: str | None = Field(default=None, max_length=1000)
    timezone: str | None = None
    spaces: tuple[Space, ...] = ()

    @field_validator("opening_hours")
    @classmethod
    def _check_hours(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            try:
                opening_hours.OpeningHours(value)
            except opening_hours.ParserError as exc:  # type: ignore[attr-defined]
                raise ValueError(f"not OpenStreetMap opening_hours syntax: {str(exc).splitlines()[0]}") from None
            return value.strip()
        return None

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown IANA time zone {value!r}") from None
            return value
        return None

    @model_validator(mode="after")
    def _check_consistency(self) -> Site:
        parts = sum(getattr(self, f"capacity_{t}") or 0 for t in VEHICLE_TYPES)
        if parts > self.capacity:
            raise ValueError(f"per-type capacities add up to {parts}, more than capacity {self.capacity}")
        ids = [s.space_id for s in self.spaces]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate space id")
        if self.spaces and len(self.spaces) != self.capacity:
            raise ValueError(f"{len(self.spaces)} spaces listed but capacity is {self.capacity}")
        return self

    def sensor_of(self, space: Space) -> str:
        """Device id of a space's sensor (``{site_id}.{space_id}`` unless given)."""
        return space.sensor_id or f"{self.site_id}.{space.space_id}"

    def capacity_for(self, vehicle_type: str) -> int:
        """Spaces for a vehicle type (spaces); for ``car`` all spaces not reserved to others."""
        if self.spaces:
            return sum(1 for s in self.spaces if s.vehicle_type == vehicle_type)
        value = getattr(self, f"capacity_{vehicle_type}")
        if value is not None:
            return int(value)
        if vehicle_type == "car":
            return self.capacity - sum(getattr(self, f"capacity_{t}") or 0 for t in VEHICLE_TYPES if t != "car")
        return 0


def _geometry_point(geometry: Any) -> tuple[dict[str, Any], float, float]:
    """Validate a GeoJSON Point/Polygon; return it with its representative (lat, lon)."""
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Point", "Polygon"):
        raise ValueError("must be a GeoJSON Point or Polygon")
    try:
        shape = shapely.geometry.shape(geometry)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"invalid coordinates ({exc})") from None
    if shape.is_empty or not shape.is_valid:
        raise ValueError("empty or self-intersecting geometry")
    point = shape if shape.geom_type == "Point" else shape.representative_point()
    return shapely.geometry.mapping(shape), float(point.y), float(point.x)


def _problems(where: str, exc: ValidationError) -> list[tuple[str, str, str]]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(record)"
        out.append((where, loc, err["msg"]))
    return out


def _capacity_fields(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        extra = set(value) - {"total", *VEHICLE_TYPES}
        if extra:
            raise ValueError(f"unknown capacity key(s) {sorted(extra)}")
        out = {"capacity": value.get("total")}
        out.update({f"capacity_{t}": value.get(t) for t in VEHICLE_TYPES if value.get(t) is not None})
        return out
    return {"capacity": value}


def _read_geojson(path: Path) -> tuple[list[Site], list[tuple[str, str, str]]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SitesFileError(path, [("document", "(json)", str(exc))]) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise SitesFileError(path, [("document", "type", "must be a GeoJSON FeatureCollection")])
    sites: list[Site] = []
    problems: list[tuple[str, str, str]] = []
    for n, feature in enumerate(doc["features"], start=1):
        props = dict(feature.get("properties") or {}) if isinstance(feature, dict) else {}
        where = f"feature {n}" + (f" (id {props.get('id', feature.get('id'))!r})" if isinstance(feature, dict) else "")
        if not isinstance(feature, dict):
            problems.append((where, "(feature)", "not an object"))
            continue
        props.setdefault("id", feature.get("id"))
        try:
            geometry, lat, lon = _geometry_point(feature.get("geometry"))
        except ValueError as exc:
            problems.append((where, "geometry", str(exc)))
            continue
        try:
            capacity = _capacity_fields(props.pop("capacity", None))
        except ValueError as exc:
            problems.append((where, "capacity", str(exc)))
            continue
        try:
            sites.append(Site.model_validate({**props, **capacity, "geometry": geometry, "lat": lat, "lon": lon}))
        except ValidationError as exc:
            problems.extend(_problems(where, exc))
    return sites, problems


CSV_REQUIRED = ("id", "name", "kind", "lat", "lon", "capacity")
CSV_OPTIONAL = (
    "capacity_car", "capacity_disabled", "capacity_ev", "capacity_motorcycle",
    "opening_hours", "tariff", "timezone", "wkt",
)


def _read_csv(path: Path) -> tuple[list[Site], list[tuple[str, str, str]]]:
    sites: list[Site] = []
    problems: list[tuple[str, str, str]] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(line for line in fh if not line.startswith("#"))
        header = reader.fieldnames or []
        missing = [c for c in CSV_REQUIRED if c not in header]
        unknown = [c for c in header if c not in CSV_REQUIRED + CSV_OPTIONAL]
        if missing or unknown:
            raise SitesFileError(path, [("header", c, "missing column") for c in missing]
                                 + [("header", c, "unknown column") for c in unknown])
        for row in reader:
            where = f"line {reader.line_num}"
            values: dict[str, Any] = {k: (v.strip() if isinstance(v, str) and v.strip() else None) for k, v in row.items() if k}
            wkt = values.pop("wkt", None)
            try:
                if wkt:
                    geometry, lat, lon = _geometry_point(shapely.geometry.mapping(shapely.from_wkt(wkt)))
                else:
                    geometry, lat, lon = _geometry_point(
                        {"type": "Point", "coordinates": [float(values["lon"] or "nan"), float(values["lat"] or "nan")]}
                    )
            except (ValueError, shapely.errors.GEOSException) as exc:
                problems.append((where, "wkt" if wkt else "lat/lon", str(exc)))
                continue
            values.update(geometry=geometry, lat=lat, lon=lon)
            try:
                sites.append(Site.model_validate(values))
            except ValidationError as exc:
                problems.extend(_problems(where, exc))
    return sites, problems


def read_sites(path: str | Path) -> list[Site]:
    """Read and validate a sites file (``.geojson``/``.json`` or ``.csv``).

    Raises
    ------
    SitesFileError
        Any invalid record or duplicate id, each named by line/feature and field.
    """
    path = Path(path)
    if not path.is_file():
        raise SitesFileError(path, [("file", "(path)", "no such file")])
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        sites, problems = _read_geojson(path)
    elif suffix == ".csv":
        sites, problems = _read_csv(path)
    else:
        raise SitesFileError(path, [("file", "(path)", "expected a .geojson, .json or .csv file")])
    seen: dict[str, int] = {}
    sensors: set[str] = set()
    for i, site in enumerate(sites):
        if site.site_id in seen:
            problems.append((f"site {site.site_id!r}", "id", "duplicate id in file"))
        seen[site.site_id] = i
        for space in site.spaces:
            sensor = site.sensor_of(space)
            if sensor in sensors:
                problems.append((f"site {site.site_id!r}", "spaces.sensor_id", f"sensor {sensor!r} used twice"))
            sensors.add(sensor)
    if problems:
        raise SitesFileError(path, problems)
    return sites

"""Road network import from an OpenStreetMap extract (``.osm.pbf``/``.osm``) with pyosmium.

Follows OSMnx's ``drive`` network: drivable ``highway`` classes (see
:data:`maps.roadclass.DRIVABLE_HIGHWAYS`) minus areas, private/no-access ways, ways closed
to motor vehicles and parking aisles/driveways. Ways are split at every node shared with
another drivable way (junctions), so edges run junction to junction with their full
geometry. Direction: ``oneway=yes|true|1`` forward only, ``oneway=-1|reverse`` backward
only, roundabouts and motorways one-way unless ``oneway=no``. ``maxspeed``
(``:forward``/``:backward`` first) is parsed by :func:`maps.roadclass.parse_maxspeed_kmh`
with ``maxspeed:type``/``source:maxspeed``/``zone:maxspeed`` as fallbacks; ``lanes``
(``:forward``/``:backward`` first; two-way totals halved).

Parsing loops over ways (pyosmium callbacks); splitting and attribute derivation run on
numpy arrays over all way nodes at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import osmium

from maps.network import RoadNetwork
from maps.roadclass import DRIVABLE_HIGHWAYS, parse_maxspeed_kmh

__all__ = ["OsmImportError", "import_osm", "parse_bbox"]

_NO_ACCESS = {"no", "private"}
_EXCLUDED_SERVICE = {"parking_aisle", "driveway", "parking", "private", "emergency_access", "alley"}
_FORWARD = {"yes", "true", "1"}
_BACKWARD = {"-1", "reverse"}


class OsmImportError(ValueError):
    """The OSM file cannot be read or holds no drivable road."""


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """Parse ``"W,S,E,N"`` (degrees) into a tuple; raise ``ValueError`` with the reason."""
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError(f"bbox {text!r}: expected 4 comma-separated numbers W,S,E,N")
    try:
        w, s, e, n = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"bbox {text!r}: not numbers") from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise ValueError(f"bbox {text!r}: need -180 <= W < E <= 180 and -90 <= S < N <= 90")
    return w, s, e, n


def _lanes(value: str | None) -> int:
    if not value:
        return 0
    try:
        return max(int(float(value.split(";")[0])), 0)
    except ValueError:
        return 0


@dataclass
class _Ways:
    refs: list[int] = field(default_factory=list)
    lon: list[float] = field(default_factory=list)
    lat: list[float] = field(default_factory=list)
    way_of: list[int] = field(default_factory=list)
    way_id: list[int] = field(default_factory=list)
    highway: list[str] = field(default_factory=list)
    direction: list[int] = field(default_factory=list)  # 1 forward only, -1 backward only, 0 both
    speed_fwd: list[float] = field(default_factory=list)
    speed_bwd: list[float] = field(default_factory=list)
    lanes_fwd: list[int] = field(default_factory=list)
    lanes_bwd: list[int] = field(default_factory=list)
    name: list[str] = field(default_factory=list)


def _drivable(tags: osmium.osm.TagList) -> str | None:
    hw = tags.get("highway")
    if hw not in DRIVABLE_HIGHWAYS or tags.get("area") == "yes":
        return None
    if tags.get("access") in _NO_ACCESS or tags.get("motor_vehicle") in _NO_ACCESS or tags.get("motorcar") in _NO_ACCESS:
        return None
    if hw == "service" and tags.get("service") in _EXCLUDED_SERVICE:
        return None
    return hw


def _direction(tags: osmium.osm.TagList, hw: str) -> int:
    ow = (tags.get("oneway") or "").lower()
    if ow in _FORWARD:
        return 1
    if ow in _BACKWARD:
        return -1
    if ow == "no":
        return 0
    if tags.get("junction") in ("roundabout", "circular") or hw == "motorway":
        return 1
    return 0


def _speed(tags: osmium.osm.TagList, key: str) -> float:
    value = parse_maxspeed_kmh(tags.get(key))
    if np.isnan(value) and key == "maxspeed":
        for alt in ("maxspeed:type", "source:maxspeed", "zone:maxspeed"):
            value = parse_maxspeed_kmh(tags.get(alt))
            if not np.isnan(value):
                break
    return value


def _read_ways(path: Path, progress: Callable[[int], None] | None) -> _Ways:
    out = _Ways()
    fp = (
        osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    seen = 0
    for obj in fp:
        if not isinstance(obj, osmium.osm.Way):
            continue
        seen += 1
        if progress is not None and seen % 1000 == 0:
            progress(seen)
        tags = obj.tags
        hw = _drivable(tags)
        if hw is None:
            continue
        nodes = [(n.ref, n.lon, n.lat) for n in obj.nodes if n.location.valid()]
        if len(nodes) < 2:
            continue
        k = len(out.way_id)
        for ref, lon, lat in nodes:
            out.refs.append(ref)
            out.lon.append(lon)
            out.lat.append(lat)
            out.way_of.append(k)
        d = _direction(tags, hw)
        total = _lanes(tags.get("lanes"))
        lf, lb = _lanes(tags.get("lanes:forward")), _lanes(tags.get("lanes:backward"))
        if d != 0:
            lf = lf or total
            lb = lb or total
        else:
            lf = lf or (max(total // 2, 1) if total else 0)
            lb = lb or (max(total - total // 2, 1) if total else 0)
        base = _speed(tags, "maxspeed")
        sf, sb = _speed(tags, "maxspeed:forward"), _speed(tags, "maxspeed:backward")
        out.way_id.append(obj.id)
        out.highway.append(hw)
        out.direction.append(d)
        out.speed_fwd.append(base if np.isnan(sf) else sf)
        out.speed_bwd.append(base if np.isnan(sb) else sb)
        out.lanes_fwd.append(lf)
        out.lanes_bwd.append(lb)
        out.name.append(tags.get("name") or "")
    if progress is not None:
        progress(seen)
    return out


def import_osm(
    path: str | Path,
    bbox: tuple[float, float, float, float] | None = None,
    name: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> RoadNetwork:
    """Build the drivable :class:`RoadNetwork` of an OSM extract.

    Parameters
    ----------
    path : ``.osm.pbf`` (or any format libosmium reads).
    bbox : keep only way nodes inside (west, south, east, north) degrees; ways leaving the
        box are cut at its edge (the parts inside stay, split where they exit).
    name : network name (default: file name without ``.osm.pbf``).
    progress : called with the number of ``highway`` ways read so far.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"OSM extract not found: {p}")
    try:
        ways = _read_ways(p, progress)
    except RuntimeError as exc:  # libosmium parse errors
        raise OsmImportError(f"{p}: cannot read OSM data: {exc}") from exc
    label = name or p.name.split(".")[0].lower()
    if not ways.way_id:
        raise OsmImportError(f"{p}: no drivable highway ways found")
    refs = np.asarray(ways.refs, dtype=np.int64)
    lon = np.asarray(ways.lon)
    lat = np.asarray(ways.lat)
    way_of = np.asarray(ways.way_of, dtype=np.int64)
    # a piece is a run of consecutive kept nodes of one way
    keep = np.ones(len(refs), dtype=bool)
    if bbox is not None:
        w, s, e, n = bbox
        keep = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
    new_piece = np.ones(len(refs), dtype=bool)
    new_piece[1:] = (way_of[1:] != way_of[:-1]) | ~keep[:-1]
    piece = np.cumsum(new_piece) - 1
    refs, lon, lat, way_of, piece = refs[keep], lon[keep], lat[keep], way_of[keep], piece[keep]
    _, piece = np.unique(piece, return_inverse=True)
    sizes = np.bincount(piece)
    ok = sizes[piece] >= 2
    refs, lon, lat, way_of, piece = refs[ok], lon[ok], lat[ok], way_of[ok], piece[ok]
    _, piece = np.unique(piece, return_inverse=True)
    if len(refs) == 0:
        raise OsmImportError(f"{p}: no drivable road inside bbox {bbox}")
    first = np.ones(len(refs), dtype=bool)
    first[1:] = piece[1:] != piece[:-1]
    last = np.ones(len(refs), dtype=bool)
    last[:-1] = piece[1:] != piece[:-1]
    uniq, inv, counts = np.unique(refs, return_inverse=True, return_counts=True)
    split = first | last | (counts[inv] > 1)
    # segments run from one split vertex to the next within a piece
    split_idx = np.nonzero(split)[0]
    seg_start = split_idx[:-1][~last[split_idx[:-1]]]
    seg_end = split_idx[np.searchsorted(split_idx, seg_start) + 1]
    node_ref_idx = np.unique(np.concatenate([inv[seg_start], inv[seg_end]]))
    node_of = np.full(len(uniq), -1, dtype=np.int64)
    node_of[node_ref_idx] = np.arange(len(node_ref_idx))
    first_pos = np.zeros(len(uniq), dtype=np.int64)
    first_pos[inv[::-1]] = np.arange(len(refs))[::-1]
    node_lon = lon[first_pos[node_ref_idx]]
    node_lat = lat[first_pos[node_ref_idx]]
    su, sv = node_of[inv[seg_start]], node_of[inv[seg_end]]
    counts_pts = seg_end - seg_start + 1
    pts = np.repeat(seg_start, counts_pts) + (np.arange(counts_pts.sum()) - np.repeat(np.cumsum(counts_pts) - counts_pts, counts_pts))
    seg_way = way_of[seg_start]
    direction = np.asarray(ways.direction)[seg_way]
    fwd = direction >= 0
    bwd = direction <= 0
    # forward edges keep vertex order, backward ones are reversed
    rev_pts = np.repeat(seg_end, counts_pts) - (np.arange(counts_pts.sum()) - np.repeat(np.cumsum(counts_pts) - counts_pts, counts_pts))
    seg_of_pt = np.repeat(np.arange(len(seg_start)), counts_pts)
    pts_all = np.concatenate([pts[fwd[seg_of_pt]], rev_pts[bwd[seg_of_pt]]])
    cnt = np.concatenate([counts_pts[fwd], counts_pts[bwd]])
    offsets = np.concatenate([[0], np.cumsum(cnt)]).astype(np.int64)
    ways_fb = np.concatenate([seg_way[fwd], seg_way[bwd]])
    arr = {k: np.asarray(getattr(ways, k)) for k in ("speed_fwd", "speed_bwd", "lanes_fwd", "lanes_bwd")}
    # a "backward only" way (oneway=-1) carries its forward-direction tags on the edge it has
    bwd_speed = np.where(direction[bwd] < 0, arr["speed_fwd"][seg_way[bwd]], arr["speed_bwd"][seg_way[bwd]])
    bwd_lanes = np.where(direction[bwd] < 0, arr["lanes_fwd"][seg_way[bwd]], arr["lanes_bwd"][seg_way[bwd]])
    return RoadNetwork.from_edges(
        label,
        node_lon,
        node_lat,
        np.concatenate([su[fwd], sv[bwd]]),
        np.concatenate([sv[fwd], su[bwd]]),
        np.column_stack([lon[pts_all], lat[pts_all]]),
        offsets,
        np.asarray(ways.highway)[ways_fb],
        node_source_id=uniq[node_ref_idx],
        maxspeed_kmh=np.concatenate([arr["speed_fwd"][seg_way[fwd]], bwd_speed]),
        lanes=np.concatenate([arr["lanes_fwd"][seg_way[fwd]], bwd_lanes]),
        oneway=np.concatenate([direction[fwd] != 0, direction[bwd] != 0]),
        way_id=np.asarray(ways.way_id, dtype=np.int64)[ways_fb],
        street_name=np.asarray(ways.name)[ways_fb],
        source=str(p.name),
    )

"""SQL of the traffic domain: probe speeds, camera-line links, TTI samples, camera counts (read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from its.db import Database, copy_rows, upsert_rows
from traffic.congestion import SpeedProfile
from traffic.flows import CameraLinks
from traffic.probes import ProbeObservations

__all__ = [
    "CountRows",
    "load_camera_links",
    "load_probe_observations",
    "load_profile",
    "load_tti_samples",
    "recent_counts",
    "save_camera_links",
    "write_probe_observations",
    "write_tti_samples",
]

_PROBE_COLUMNS = ("network", "edge", "time", "bin_s", "speed_mps", "samples", "covered_m")


def _ts(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(float(epoch_s), UTC)


def write_probe_observations(db: Database, network: str, obs: ProbeObservations) -> int:
    """COPY probe observations into ``traffic_probe_speeds``; return rows inserted (existing keys kept)."""
    rows = zip(
        [network] * len(obs), obs.edge.tolist(), [_ts(t) for t in obs.time_s.tolist()], [obs.bin_s] * len(obs),
        obs.speed_mps.tolist(), obs.samples.tolist(), obs.covered_m.tolist(), strict=True,
    )
    with db.connection() as conn:
        return copy_rows(conn, "traffic_probe_speeds", _PROBE_COLUMNS, rows)


def load_probe_observations(db: Database, network: str, since: datetime, until: datetime | None = None) -> ProbeObservations:
    """Probe observations of ``network`` with ``since <= time < until``."""
    rows = db.fetchall(
        "SELECT edge, extract(epoch FROM time)::float8, bin_s, speed_mps, samples, covered_m"
        " FROM traffic_probe_speeds WHERE network = %s AND time >= %s AND time < %s ORDER BY time, edge",
        (network, since, until or datetime(9999, 1, 1, tzinfo=UTC)),
    )
    cols = list(zip(*rows, strict=True)) if rows else [()] * 6
    return ProbeObservations(
        edge=np.asarray(cols[0], dtype=np.int64), time_s=np.asarray(cols[1], dtype=np.float64),
        bin_s=int(cols[2][0]) if rows else 300, speed_mps=np.asarray(cols[3], dtype=np.float64),
        samples=np.asarray(cols[4], dtype=np.int64), covered_m=np.asarray(cols[5], dtype=np.float64),
    )


def load_profile(db: Database, network: str, n_edges: int, since: datetime, slot_s: int = 900) -> SpeedProfile | None:
    """Historical profile (UTC time of day) from stored probe speeds; None without history."""
    obs = load_probe_observations(db, network, since)
    if not len(obs):
        return None
    ok = obs.edge < n_edges
    return SpeedProfile.from_observations(obs.edge[ok], obs.time_s[ok], obs.speed_mps[ok], n_edges,
                                          slot_s=slot_s, weight=obs.samples[ok])


def save_camera_links(db: Database, network: str, links: CameraLinks, lon: npt.ArrayLike,
                      lat: npt.ArrayLike, heading_deg: npt.ArrayLike) -> int:
    """Upsert attached links (``lon/lat/heading`` per line, repeated for both directions)."""
    n = len(links.edge) // 2
    lo = np.tile(np.asarray(lon, dtype=np.float64), 2)
    la = np.tile(np.asarray(lat, dtype=np.float64), 2)
    hd = np.tile(np.asarray(heading_deg, dtype=np.float64), 2)
    hd = np.where(np.arange(2 * n) >= n, (hd + 180.0) % 360.0, hd)
    ok = links.edge >= 0
    rows = zip(links.camera_id[ok].tolist(), links.line_id[ok].tolist(), links.direction[ok].tolist(),
               [network] * int(ok.sum()), links.edge[ok].tolist(), lo[ok].tolist(), la[ok].tolist(),
               hd[ok].tolist(), strict=True)
    with db.connection() as conn:
        return upsert_rows(conn, "traffic_camera_links",
                           ("camera_id", "line_id", "direction", "network", "edge", "lon", "lat", "heading_deg"),
                           rows, ("camera_id", "line_id", "direction"))


def load_camera_links(db: Database, network: str) -> CameraLinks:
    """Links of ``network`` as stored."""
    rows = db.fetchall("SELECT camera_id, line_id, direction, edge FROM traffic_camera_links WHERE network = %s"
                       " ORDER BY camera_id, line_id, direction", (network,))
    cols = list(zip(*rows, strict=True)) if rows else [()] * 4
    return CameraLinks(np.asarray(cols[0], dtype=str), np.asarray(cols[1], dtype=str),
                       np.asarray(cols[2], dtype=str), np.asarray(cols[3], dtype=np.int64))


@dataclass(frozen=True)
class CountRows:
    """Camera counts summed over vehicle classes, one row per (camera, line, direction, interval)."""

    camera_id: npt.NDArray[np.str_]
    line_id: npt.NDArray[np.str_]
    direction: npt.NDArray[np.str_]
    interval_start_s: npt.NDArray[np.float64]
    interval_s: npt.NDArray[np.float64]
    count: npt.NDArray[np.float64]
    mean_speed_mps: npt.NDArray[np.float64]


def recent_counts(db: Database, since: datetime) -> CountRows:
    """Counts published by the camera workers (``traffic_counts``) since ``since``."""
    rows = db.fetchall(
        "SELECT camera_id, line_id, direction, extract(epoch FROM interval_start)::float8, max(interval_s),"
        " sum(count), sum(mean_speed_mps * count) / nullif(sum(count) FILTER (WHERE mean_speed_mps IS NOT NULL), 0)"
        " FROM traffic_counts WHERE interval_start >= %s GROUP BY 1, 2, 3, 4 ORDER BY 4",
        (since,),
    )
    cols = list(zip(*rows, strict=True)) if rows else [()] * 7
    return CountRows(
        np.asarray(cols[0], dtype=str), np.asarray(cols[1], dtype=str), np.asarray(cols[2], dtype=str),
        np.asarray(cols[3], dtype=np.float64), np.asarray(cols[4], dtype=np.float64),
        np.asarray(cols[5], dtype=np.float64),
        np.asarray([np.nan if v is None else v for v in cols[6]], dtype=np.float64),
    )


TTI_SCOPES = ("network", "area", "corridor")


def write_tti_samples(db: Database, network: str, time_s: float, scope: npt.ArrayLike, subject: npt.ArrayLike,
                      tti: npt.ArrayLike) -> int:
    """COPY one update's travel time index samples (ratio) into ``traffic_tti`` in one batch.

    ``scope`` is ``network`` (subject ``""``), ``area`` or ``corridor`` per row; rows with a
    non-finite or non-positive TTI are skipped. Returns rows inserted (existing keys kept).
    """
    sc = np.atleast_1d(np.asarray(scope).astype(str))
    sub = np.atleast_1d(np.asarray(subject).astype(str))
    val = np.atleast_1d(np.asarray(tti, dtype=np.float64))
    ok = np.isfinite(val) & (val > 0)
    at = _ts(time_s)
    rows = ((network, a, b, at, v) for a, b, v in
            zip(sc[ok].tolist(), sub[ok].tolist(), val[ok].tolist(), strict=True))
    with db.connection() as conn:
        return copy_rows(conn, "traffic_tti", ("network", "scope", "subject", "time", "tti"), rows)


def load_tti_samples(db: Database, network: str, scope: str, subject: str, since: datetime,
                     until: datetime | None = None) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(epoch s, TTI) samples of one series with ``since <= time < until``, oldest first (primary-key range scan)."""
    if scope not in TTI_SCOPES:
        raise ValueError(f"unknown TTI scope {scope!r}")
    rows = db.fetchall(
        "SELECT extract(epoch FROM time)::float8, tti FROM traffic_tti"
        " WHERE network = %s AND scope = %s AND subject = %s AND time >= %s AND time < %s ORDER BY time",
        (network, scope, subject, since, until or datetime(9999, 1, 1, tzinfo=UTC)),
    )
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0].copy(), arr[:, 1].copy()

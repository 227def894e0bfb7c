"""Cameras registered in the database (``its cameras add|list|remove``).

A registered camera is its validated ``cameras.yaml`` entry (:class:`video.config.CameraConfig`,
file sources made absolute) stored as JSON in ``video_cameras`` with its counting interval
(s). ``its video run`` without ``--config`` processes them, shared between workers through
leases (:mod:`video.leases`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from its.db import Database
from video.config import CameraConfig, CamerasFile

__all__ = ["RegisteredCamera", "add_cameras", "list_cameras", "remove_cameras"]


@dataclass(frozen=True)
class RegisteredCamera:
    """A camera of ``video_cameras`` with its lease (``owner`` None when nobody holds it)."""

    camera_id: str
    source: str
    interval_s: int
    synthetic: bool
    owner: str | None
    expires_in_s: float | None
    updated_at: datetime

    def row(self) -> dict[str, Any]:
        return {"camera_id": self.camera_id, "source": self.source, "interval_s": self.interval_s,
                "synthetic": self.synthetic, "owner": self.owner, "lease_expires_in_s": self.expires_in_s,
                "updated_at": self.updated_at.isoformat()}


def add_cameras(db: Database, cameras: CamerasFile) -> list[str]:
    """Insert or replace the cameras of a (validated) camera file; returns their ids.

    A replaced camera keeps its lease: its worker picks the new configuration up when the
    camera next changes hands (``its cameras remove`` then ``add`` restarts it at once).
    """
    rows = [(c.id, orjson.dumps(c.model_dump(mode="json")).decode(), c.interval_s or cameras.interval_s)
            for c in cameras.cameras]
    with db.connection() as conn, conn.cursor() as cur:
        for row in rows:
            cur.execute("INSERT INTO video_cameras (camera_id, config, interval_s) VALUES (%s, %s::jsonb, %s) "
                        "ON CONFLICT (camera_id) DO UPDATE SET config = EXCLUDED.config, "
                        "interval_s = EXCLUDED.interval_s, updated_at = now()", row)
    return [r[0] for r in rows]


def list_cameras(db: Database) -> list[RegisteredCamera]:
    """Every registered camera with its current lease, by id."""
    rows = db.fetchall(
        "SELECT c.camera_id, c.config, c.interval_s, l.owner, "
        "CASE WHEN l.expires_at > now() THEN extract(epoch FROM l.expires_at - now()) END, c.updated_at "
        "FROM video_cameras c LEFT JOIN video_camera_leases l ON l.camera_id = c.camera_id ORDER BY c.camera_id")
    out = []
    for cid, config, interval_s, owner, expires, updated in rows:
        held = expires is not None
        out.append(RegisteredCamera(cid, str(config.get("source", "")), int(interval_s), bool(config.get("synthetic")),
                                    owner if held else None, round(float(expires), 1) if held else None, updated))
    return out


def remove_cameras(db: Database, camera_ids: list[str]) -> list[str]:
    """Remove cameras (their leases go with them: their workers stop them at the next
    renewal); returns the ids that were registered."""
    rows = db.fetchall("DELETE FROM video_cameras WHERE camera_id = ANY(%s) RETURNING camera_id", (camera_ids,))
    return sorted(r[0] for r in rows)


def camera_from_row(config: dict[str, Any]) -> CameraConfig:
    """The :class:`CameraConfig` of a stored row (raises ``ValueError`` when it no longer validates)."""
    try:
        return CameraConfig.model_validate(config)
    except ValidationError as exc:
        raise ValueError(f"camera {config.get('id')!r}: stored configuration is invalid: {exc}") from None

"""Camera leases in PostgreSQL: which ``its video run`` worker processes which camera.

Tables (``video/migrations/0310_camera_registry.sql``): ``video_cameras`` (the registered
cameras), ``video_camera_leases`` (one row per claimed camera: owner, expiry, fencing
generation, and ``counted_until``, the end of the last interval its previous owner
published) and ``video_workers`` (heartbeats of live workers).

The rules, all on the database's clock:

- a worker *claims* a camera that has no lease or whose lease expired, in one statement
  (``FOR UPDATE SKIP LOCKED``: two workers never claim the same camera); each change of
  owner adds one to the lease's ``generation``;
- it *renews* its leases every ``lease_s / 3``; a renewal names the generation it holds, so
  a worker whose lease was taken over cannot renew it back;
- it *releases* a camera it hands over (fair share, shutdown) by expiring the lease and
  recording ``counted_until``: the next owner skips intervals its predecessor published;
- its fair share is its rank's part of ``cameras / live workers`` (:func:`fair_share`):
  the first ``cameras mod workers`` workers by id take one more.

Times are UTC; durations in seconds.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from its.db import Database

__all__ = ["Lease", "LeaseStore", "fair_share", "lease_renew_s", "takeover_bound_s"]


def fair_share(cameras: int, workers: list[str], me: str) -> int:
    """How many of ``cameras`` the worker ``me`` should hold among the live ``workers`` (pure).

    The shares add up to ``cameras`` and differ by at most one: workers sorted by id, the
    first ``cameras mod n`` get ``ceil``, the others ``floor``. A worker not (yet) in
    ``workers`` counts itself in.
    """
    alive = sorted(set(workers) | {me})
    base, extra = divmod(cameras, len(alive))
    return base + (1 if alive.index(me) < extra else 0)


@dataclass(frozen=True)
class Lease:
    """A camera lease held by this worker."""

    camera_id: str
    generation: int
    config: dict[str, Any]
    interval_s: int
    counted_until: datetime | None


class LeaseStore:
    """The lease statements of one worker.

    Parameters
    ----------
    db : Database
        The platform database (migrated).
    worker_id : str, optional
        This worker's id (default: ``host:pid:random``).
    lease_s : float
        Lease duration, s.
    """

    def __init__(self, db: Database, worker_id: str | None = None, lease_s: float = 15.0) -> None:
        self.db = db
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.lease_s = float(lease_s)

    def heartbeat(self) -> None:
        """Record this worker as alive now."""
        self.db.execute(
            "INSERT INTO video_workers (worker_id, host, pid) VALUES (%s, %s, %s) "
            "ON CONFLICT (worker_id) DO UPDATE SET seen_at = now()",
            (self.worker_id, socket.gethostname(), os.getpid()))

    def live_workers(self) -> list[str]:
        """Ids of workers seen within one lease time (this one included after a heartbeat)."""
        rows = self.db.fetchall("SELECT worker_id FROM video_workers WHERE seen_at > now() - make_interval(secs => %s)",
                                (self.lease_s,))
        return [r[0] for r in rows]

    def forget(self) -> None:
        """Remove this worker's heartbeat (it stops) and forget long-dead workers."""
        self.db.execute("DELETE FROM video_workers WHERE worker_id = %s OR seen_at < now() - interval '1 day'",
                        (self.worker_id,))

    def camera_count(self) -> int:
        return int(self.db.fetchall("SELECT count(*) FROM video_cameras")[0][0])

    def renew(self, held: dict[str, int]) -> set[str]:
        """Extend the leases ``{camera_id: generation}`` this worker holds; return those it
        still holds (a lease taken over, or a camera removed, is missing)."""
        if not held:
            return set()
        ids = list(held)
        rows = self.db.fetchall(
            "UPDATE video_camera_leases l SET expires_at = now() + make_interval(secs => %s) "
            "FROM unnest(%s::text[], %s::bigint[]) AS h(camera_id, generation) "
            "WHERE l.camera_id = h.camera_id AND l.generation = h.generation AND l.owner = %s "
            "AND l.expires_at > now() RETURNING l.camera_id",
            (self.lease_s, ids, [held[i] for i in ids], self.worker_id))
        return {r[0] for r in rows}

    def claim(self, limit: int) -> list[Lease]:
        """Claim up to ``limit`` free cameras (no lease, or an expired one), lowest ids first."""
        if limit <= 0:
            return []
        rows = self.db.fetchall(
            """
            WITH free AS (
                SELECT c.camera_id FROM video_cameras c
                LEFT JOIN video_camera_leases l ON l.camera_id = c.camera_id
                WHERE l.camera_id IS NULL OR l.expires_at <= now()
                ORDER BY c.camera_id LIMIT %s
                FOR UPDATE OF c SKIP LOCKED
            ), taken AS (
                INSERT INTO video_camera_leases AS l (camera_id, owner, expires_at, acquired_at)
                SELECT camera_id, %s, now() + make_interval(secs => %s), now() FROM free
                ON CONFLICT (camera_id) DO UPDATE
                    SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
                        acquired_at = EXCLUDED.acquired_at, generation = l.generation + 1
                    WHERE l.expires_at <= now()
                RETURNING l.camera_id, l.generation, l.counted_until
            )
            SELECT t.camera_id, t.generation, c.config, c.interval_s, t.counted_until
            FROM taken t JOIN video_cameras c ON c.camera_id = t.camera_id ORDER BY t.camera_id
            """,
            (limit, self.worker_id, self.lease_s))
        return [Lease(r[0], int(r[1]), r[2], int(r[3]), r[4]) for r in rows]

    def release(self, camera_id: str, generation: int, counted_until: float | None) -> None:
        """Hand ``camera_id`` over: expire the lease now and record the end of the last
        interval published (epoch s; None: nothing published, keep the previous value)."""
        self.db.execute(
            "UPDATE video_camera_leases SET expires_at = now(), "
            "counted_until = COALESCE(to_timestamp(%s), counted_until) "
            "WHERE camera_id = %s AND owner = %s AND generation = %s",
            (counted_until, camera_id, self.worker_id, generation))

    def leases(self) -> list[tuple[str, str, float, int]]:
        """Every lease: ``(camera_id, owner, seconds until expiry, generation)``."""
        rows = self.db.fetchall("SELECT camera_id, owner, extract(epoch FROM expires_at - now()), generation "
                                "FROM video_camera_leases ORDER BY camera_id")
        return [(r[0], r[1], float(r[2]), int(r[3])) for r in rows]


def lease_renew_s(lease_s: float) -> float:
    """How often a worker renews its leases and rebalances, s (a third of the lease)."""
    return max(lease_s / 3.0, 0.2)


def takeover_bound_s(lease_s: float) -> float:
    """Longest time a dead worker's camera stays unclaimed: lease expiry plus one renewal period, s."""
    return lease_s + math.ceil(lease_renew_s(lease_s) * 10) / 10

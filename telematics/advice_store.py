"""SQL edge of the holding advice: the audit log of the dispatchers' decisions (``holding_advice_log``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from its.db import Database
from telematics.holding_live import HoldAdvice

__all__ = ["AUDIT_COLUMNS", "read_audit", "write_decision"]

#: Columns of an audit row as `read_audit` returns them.
AUDIT_COLUMNS = ("log_id", "decided_at", "action", "actor", "advice_id", "agency", "vehicle_id", "route_id",
                 "trip_id", "service_date", "stop_id", "stop_sequence", "hold_s", "forward_headway_s",
                 "backward_headway_s", "scheduled_headway_s", "issued_at", "reason")


def write_decision(db: Database, advice: HoldAdvice, action: str, actor: str, decided_at: datetime,
                   issued_s: float) -> int:
    """Append a decision (``accepted`` or ``dismissed``) on ``advice`` by ``actor``; its ``log_id``.

    Parameters
    ----------
    db : Database
        Where ``holding_advice_log`` lives.
    advice : HoldAdvice
        The advice as it stood when decided.
    action : str
        ``accepted`` or ``dismissed``.
    actor : str
        The dispatcher's user name.
    decided_at : datetime
        When (aware).
    issued_s : float
        When the advice was first given (epoch s).
    """
    rows = db.fetchall(
        "INSERT INTO holding_advice_log (decided_at, action, actor, advice_id, agency, vehicle_id, route_id, trip_id,"
        " service_date, stop_id, stop_sequence, hold_s, forward_headway_s, backward_headway_s, scheduled_headway_s,"
        " issued_at, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING log_id",
        (decided_at, action, actor, advice.advice_id, advice.agency, advice.vehicle_id, advice.route_id,
         advice.trip_id, advice.service_date, advice.stop_id, advice.stop_sequence, round(advice.hold_s, 1),
         _num(advice.forward_headway_s), _num(advice.backward_headway_s), _num(advice.scheduled_headway_s),
         datetime.fromtimestamp(issued_s, UTC), advice.reason))
    return int(rows[0][0])


def _num(x: float | None) -> float | None:
    return None if x is None or x != x else round(float(x), 1)


def read_audit(db: Database, *, limit: int = 100, since: datetime | None = None, vehicle_id: str | None = None,
               advice_id: str | None = None) -> list[dict[str, Any]]:
    """Decisions, newest first (at most ``limit``), optionally since a time, for a vehicle or an advice."""
    where, params = [], []
    for clause, value in (("decided_at >= %s", since), ("vehicle_id = %s", vehicle_id),
                          ("advice_id = %s", advice_id)):
        if value is not None:
            where.append(clause)
            params.append(value)
    query = (f"SELECT {', '.join(AUDIT_COLUMNS)} FROM holding_advice_log"
             + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY decided_at DESC, log_id DESC LIMIT %s")
    return [dict(zip(AUDIT_COLUMNS, row, strict=True)) for row in db.fetchall(query, [*params, limit])]

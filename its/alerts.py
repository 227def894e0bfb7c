"""Dispatcher alerts: raised and cleared by the domain services, acknowledged by people.

Active alerts live in memory (answers and streams come from there) and in the ``alerts``
table (history, acknowledgements, reports).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from its.db import Database

__all__ = ["Alert", "AlertSink"]

log = logging.getLogger(__name__)
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Alert:
    """One condition that needs a dispatcher's attention.

    ``alert_id`` is ``kind:subject`` so raising the same condition twice is one alert.
    """

    alert_id: str
    kind: str
    severity: str
    subject: str
    message: str
    raised_at: datetime
    lat: float | None = None
    lon: float | None = None
    cleared_at: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("raised_at", "cleared_at", "acked_at"):
            if d[k] is not None:
                d[k] = d[k].isoformat()
        return d


class AlertSink:
    """Thread-safe registry of active alerts with change listeners."""

    def __init__(self, db: Database | None = None) -> None:
        self.db = db
        self._active: dict[str, Alert] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str, Alert], None]] = []
        self.version = 0

    def listen(self, callback: Callable[[str, Alert], None]) -> None:
        """``callback(event, alert)`` with event ``raised|cleared|acked``."""
        self._listeners.append(callback)

    def raise_alert(
        self, kind: str, subject: str, message: str, *, severity: str = "warning",
        lat: float | None = None, lon: float | None = None, at: datetime | None = None,
    ) -> Alert:
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}")
        alert_id = f"{kind}:{subject}"
        with self._lock:
            existing = self._active.get(alert_id)
            if existing is not None and existing.message == message and existing.severity == severity:
                return existing
            alert = Alert(alert_id, kind, severity, subject, message, existing.raised_at if existing else (at or datetime.now(UTC)), lat, lon,
                          acked_by=existing.acked_by if existing else None, acked_at=existing.acked_at if existing else None)
            self._active[alert_id] = alert
            self.version += 1
        self._persist(alert)
        self._notify("raised", alert)
        return alert

    def clear(self, kind: str, subject: str) -> None:
        alert_id = f"{kind}:{subject}"
        with self._lock:
            alert = self._active.pop(alert_id, None)
            if alert is None:
                return
            alert = replace(alert, cleared_at=datetime.now(UTC))
            self.version += 1
        self._persist(alert)
        self._notify("cleared", alert)

    def acknowledge(self, alert_id: str, user: str) -> Alert | None:
        with self._lock:
            alert = self._active.get(alert_id)
            if alert is None:
                return None
            alert = replace(alert, acked_by=user, acked_at=datetime.now(UTC))
            self._active[alert_id] = alert
            self.version += 1
        self._persist(alert)
        self._notify("acked", alert)
        return alert

    def active(self) -> list[Alert]:
        with self._lock:
            return sorted(self._active.values(), key=lambda a: a.raised_at, reverse=True)

    def get(self, alert_id: str) -> Alert | None:
        with self._lock:
            return self._active.get(alert_id)

    def _notify(self, event: str, alert: Alert) -> None:
        for cb in list(self._listeners):
            try:
                cb(event, alert)
            except Exception:  # a listener must not break the raiser
                log.exception("alert listener failed")

    def _persist(self, alert: Alert) -> None:
        if self.db is None:
            return
        try:
            self.db.execute(
                "INSERT INTO alerts (alert_id, kind, severity, subject, message, lat, lon, raised_at,"
                " cleared_at, acked_by, acked_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (alert_id) DO UPDATE SET severity = EXCLUDED.severity, message = EXCLUDED.message,"
                " cleared_at = EXCLUDED.cleared_at, acked_by = EXCLUDED.acked_by, acked_at = EXCLUDED.acked_at,"
                " raised_at = CASE WHEN alerts.cleared_at IS NOT NULL AND EXCLUDED.cleared_at IS NULL"
                " THEN EXCLUDED.raised_at ELSE alerts.raised_at END",
                (alert.alert_id, alert.kind, alert.severity, alert.subject, alert.message, alert.lat, alert.lon,
                 alert.raised_at, alert.cleared_at, alert.acked_by, alert.acked_at),
            )
        except Exception as exc:  # the database being away must not stop alerting
            log.warning("could not store alert %s: %s", alert.alert_id, exc)

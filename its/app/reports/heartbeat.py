"""API heartbeats: the measurable history behind the API availability indicator.

Every API process runs one :class:`Heartbeat` (started in the app's lifespan): at each
multiple of ``ITS_REPORTS_HEARTBEAT_INTERVAL_S`` (UTC) it appends one row to
``api_heartbeats``: the process's instance id, whether it was ready (the ``/readyz``
checks: database, broker, every service) and the HTTP requests and 5xx answers it gave since
its previous heartbeat (from its Prometheus counter). A last row with the remaining counts is
written when the process stops. A row that cannot be written (database down) is kept and
written with the next one (at most ``MAX_PENDING`` rows are kept).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from its import metrics
from its.db import Database, copy_rows

__all__ = ["HEARTBEAT_COLUMNS", "Heartbeat", "request_totals", "start_heartbeat"]

log = logging.getLogger(__name__)
HEARTBEAT_COLUMNS = ("time", "instance", "ready", "requests", "errors_5xx")
MAX_PENDING = 1440  # rows kept while the database is unreachable (a day at the default interval)


def request_totals() -> tuple[int, int]:
    """HTTP requests answered by this process so far, and how many of them were 5xx (requests)."""
    total = errors = 0
    for family in metrics.HTTP_REQUESTS.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            total += int(sample.value)
            if str(sample.labels.get("status", "")).startswith("5"):
                errors += int(sample.value)
    return total, errors


class Heartbeat:
    """A background thread recording this API process's heartbeats.

    Parameters
    ----------
    db : Database
        Where ``api_heartbeats`` lives.
    ready : callable
        Returns whether the process is ready now (the ``/readyz`` verdict); an exception
        counts as not ready.
    interval_s : float
        Heartbeat interval (s); rows are stamped with the multiple of it they were due at.
    instance : str, optional
        Id of the process (default ``host:pid:random``).
    """

    def __init__(self, db: Database, ready: Callable[[], bool], interval_s: float, instance: str | None = None) -> None:
        self.db = db
        self.ready = ready
        self.interval_s = interval_s
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = request_totals()
        self._pending: list[tuple[Any, ...]] = []

    def start(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name="api-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and record a last heartbeat with the requests since the previous one."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.beat(datetime.now(UTC))

    def beat(self, at: datetime) -> None:
        """Record one heartbeat stamped ``at`` (UTC)."""
        try:
            ready = bool(self.ready())
        except Exception:
            ready = False
        totals = request_totals()
        requests, errors = totals[0] - self._last[0], totals[1] - self._last[1]
        self._last = totals
        self._pending.append((at, self.instance, ready, requests, errors))
        del self._pending[:-MAX_PENDING]
        try:
            with self.db.connection() as conn:
                copy_rows(conn, "api_heartbeats", HEARTBEAT_COLUMNS, self._pending)
            self._pending = []
        except Exception as exc:
            log.warning("API heartbeat not recorded yet (%d pending): %s", len(self._pending), exc)

    def _run(self) -> None:
        while True:
            now_s = time.time()
            due = (now_s // self.interval_s + 1) * self.interval_s
            if self._stop.wait(due - now_s):
                return
            self.beat(datetime.fromtimestamp(due, UTC))


def start_heartbeat(db: Database, ready: Callable[[], bool]) -> Heartbeat:
    """Start this process's heartbeat at ``ITS_REPORTS_HEARTBEAT_INTERVAL_S`` (the app's lifespan hook)."""
    from its.report_settings import ReportSettings

    return Heartbeat(db, ready, ReportSettings().heartbeat_interval_s).start()

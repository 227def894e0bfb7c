"""Isolation of per-vehicle failures in the live arrivals service.

One vehicle's bad data or an unforeseen bug on its state must never stop the board of
every passenger: each per-vehicle computation of the live fleet (applying a position,
predicting its arrivals, its board entries, its view, its alerts, its prediction samples)
is guarded. A failure is logged with the agency and vehicle id, counted in
``its_telematics_vehicle_failures_total{agency, stage}`` and the vehicle falls back to
unknown (its trips to the schedule) while the rest of the board refreshes
(`telematics.fleet.Fleet.vehicle_failed`).

Batched (vectorised) steps use `isolate`: the whole batch runs at once, and only when it
raises is it split in halves until the failing vehicles are found, so normal refreshes
cost exactly one batch and ``k`` failing vehicles among ``n`` cost ``O(k log n)`` batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from prometheus_client import Counter

__all__ = ["CLAMPED_POSITIONS", "IGNORED_POSITIONS", "VEHICLE_FAILURES", "isolate", "vehicle_failed"]

log = logging.getLogger(__name__)

VEHICLE_FAILURES = Counter(
    "its_telematics_vehicle_failures_total",
    "Per-vehicle computations of the live arrivals service that failed (the vehicle fell back to the schedule)",
    ["agency", "stage"])
IGNORED_POSITIONS = Counter(
    "its_telematics_positions_ignored_total",
    "Positions the live arrivals state did not apply (reason speed: impossible move from the vehicle's last"
    " plausible position; area: outside the service area; future: stamped too far ahead of the service clock)",
    ["agency", "reason"])
CLAMPED_POSITIONS = Counter(
    "its_telematics_positions_clamped_total",
    "Positions stamped ahead of the service clock (by less than ITS_TELEMATICS_MAX_FUTURE_S) applied at the clock's time",
    ["agency"])

T = TypeVar("T")
R = TypeVar("R")


def vehicle_failed(agency: str, vehicle_id: str, stage: str, exc: BaseException) -> None:
    """Log and count one failed per-vehicle computation.

    Parameters
    ----------
    agency, vehicle_id : str
        The vehicle (``"*"`` when a whole agency's step failed).
    stage : str
        What failed: ``observe``, ``predict``, ``board``, ``view``, ``alerts``, ``sample``,
        ``history``, ``replay`` or ``plausibility``.
    exc : BaseException
        The error (its traceback is logged).
    """
    log.error("vehicle %s/%s failed in %s (%s: %s); it falls back to the schedule", agency, vehicle_id, stage,
              type(exc).__name__, exc, exc_info=exc)
    VEHICLE_FAILURES.labels(agency, stage).inc()


def isolate(items: Sequence[T], run: Callable[[Sequence[T]], R]) -> tuple[list[R], list[tuple[T, Exception]]]:
    """Run ``run`` over ``items`` in as few batches as the failures allow.

    Parameters
    ----------
    items : sequence
        The batch (e.g. vehicles); ``run`` must treat its items independently.
    run : callable
        Computes the result of a sub-batch; raises when any item of it fails.

    Returns
    -------
    results : list
        ``run``'s result for each sub-batch that succeeded (one for the whole batch when
        nothing failed; none for an empty batch).
    failed : list of (item, exception)
        The items that fail on their own, with their error.
    """
    if not items:
        return [], []
    try:
        return [run(items)], []
    except Exception as exc:
        if len(items) == 1:
            return [], [(items[0], exc)]
    mid = len(items) // 2
    left, left_failed = isolate(items[:mid], run)
    right, right_failed = isolate(items[mid:], run)
    return left + right, left_failed + right_failed

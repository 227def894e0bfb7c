"""Guidance of the live parking service: sites ranked for a driver, and the sign texts.

The service (:class:`parking.service.ParkingService`) keeps availability and forecasts in
memory; these functions read them and apply the pure logic of :mod:`parking.guidance`.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import orjson

from parking.availability import ParkingStatus, SiteAvailability
from parking.blend import LEVELS
from parking.forecast import HORIZONS_MIN
from parking.guidance import (
    Alternative,
    Recommendation,
    arrival_forecast,
    guidance_topic,
    rank,
    sign_message,
)
from parking.sites import Site

if TYPE_CHECKING:
    from parking.service import ParkingService

__all__ = ["DIVERTING", "SignBoard", "publish_signs", "recommend", "sign_alternatives"]


def recommend(service: ParkingService, lat: float, lon: float, vehicle_type: str | None, arrive_in_min: float,
              radius_m: float, limit: int, now: datetime, exclude: frozenset[str] = frozenset()) -> list[Recommendation]:
    """Open sites within ``radius_m`` (m) of a point ranked for a driver arriving in
    ``arrive_in_min`` (min): by the chance of a free space then, then by distance
    (:mod:`parking.guidance`). Sites closed, of unknown state, or without spaces for
    ``vehicle_type`` are left out. Forecasts cover all spaces of a site; where sensors tell
    the free spaces of ``vehicle_type`` and none is free now, its chance is 0.
    """
    index = service.state.site_index
    found, dist = index.within(lat, lon, radius_m)
    rows: list[tuple[Site, SiteAvailability, float]] = []
    for i, d in zip(found.tolist(), dist.tolist(), strict=True):
        site = service.state.sites[index.ids[i]]
        if site.site_id in exclude or (vehicle_type is not None and site.capacity_for(vehicle_type) <= 0):
            continue
        avail = service.state.current(site.site_id) or service.state.compute(site.site_id, now)
        if avail.status in (ParkingStatus.CLOSED, ParkingStatus.UNKNOWN) or avail.occupied is None:
            continue
        rows.append((site, avail, d))
    if not rows:
        return []
    n = len(rows)
    pred = np.full((n, len(HORIZONS_MIN)), np.nan)
    errors = np.full((n, len(HORIZONS_MIN), LEVELS.size), np.nan)
    now_occ, cap, after, free_now = (np.zeros(n) for _ in range(4))
    reasons: list[str | None] = []
    for r, (site, avail, _d) in enumerate(rows):
        issued = service.site_forecast(site.site_id, now)
        for k, p in enumerate(issued.points):
            if p.occupied is not None and p.error_quantiles is not None:
                pred[r, k], errors[r, k] = p.occupied, p.error_quantiles
        now_occ[r], cap[r] = float(avail.occupied or 0), float(avail.capacity - avail.unknown)
        free_now[r] = float(avail.free or 0)
        after[r] = arrive_in_min + (avail.age_s(now) or 0.0) / 60.0
        reasons.append(issued.reason or next((p.reason for p in issued.points if p.reason), None))
    occupied, prob = arrival_forecast(HORIZONS_MIN, now_occ, pred, errors, cap, after)
    if vehicle_type is not None:
        none_free = np.array([a.free_by_type.get(vehicle_type, 1) <= 0 for _s, a, _d in rows])
        prob = np.where(none_free & ~np.isnan(prob), 0.0, prob)
    expected = np.where(np.isnan(occupied), free_now, cap - occupied)
    distances = np.array([d for _s, _a, d in rows])
    out = []
    for r in rank(prob, distances, expected, service.settings.guidance_probability_step)[:limit].tolist():
        site, avail, d = rows[r]
        chance = None if np.isnan(prob[r]) else round(float(prob[r]), 3)
        out.append(Recommendation(site.site_id, site.name, site.lat, site.lon, round(d, 1), avail.status.value,
                                  int(free_now[r]), avail.observed_at, round(float(expected[r])), chance,
                                  None if chance is not None else (reasons[r] or "no forecast for the arrival time")))
    return out


class SignBoard:
    """What the service last published on each site's sign (thread-safe)."""

    def __init__(self) -> None:
        self._shown: dict[str, tuple[object, ...]] = {}
        self._lock = threading.Lock()
        self.last_all = 0.0  # monotonic time all signs were last refreshed (s)

    def changed(self, site_id: str, key: tuple[object, ...]) -> bool:
        """Record ``key`` as the sign of a site; True when it differs from the last one."""
        with self._lock:
            if self._shown.get(site_id) == key:
                return False
            self._shown[site_id] = key
            return True


#: Site states whose sign sends drivers elsewhere (DATEX II status values).
DIVERTING = (ParkingStatus.FULL.value, ParkingStatus.ALMOST_FULL.value)


def sign_alternatives(service: ParkingService, site: Site, now: datetime) -> list[Alternative]:
    """The sites a full or nearly full ``site``'s sign sends drivers to: up to
    ``guidance_sign_alternatives`` others within ``guidance_sign_radius_m`` (m), best ranked for
    a driver arriving ``guidance_sign_arrive_min`` (min) later, each at least
    ``guidance_sign_min_probability`` likely to have a free space."""
    s = service.settings
    ranked = recommend(service, site.lat, site.lon, None, s.guidance_sign_arrive_min,
                       s.guidance_sign_radius_m, len(service.state.order), now, frozenset({site.site_id}))
    return [Alternative(r.site_id, r.name, r.distance_m, r.probability, r.expected_free)
            for r in ranked if r.probability is not None
            and r.probability >= s.guidance_sign_min_probability][:s.guidance_sign_alternatives]


def publish_signs(service: ParkingService, now: datetime, site_ids: list[str] | None = None) -> int:
    """Publish the sign text of sites (default all) on :data:`parking.guidance.GUIDANCE_TOPIC`, retained,
    where it changed; return how many were published.

    A full or nearly full site's sign names up to ``guidance_sign_alternatives`` other sites
    within ``guidance_sign_radius_m``, best ranked for a driver arriving
    ``guidance_sign_arrive_min`` later and at least ``guidance_sign_min_probability`` likely to
    have a space; any other site's sign is blank (``active`` false).
    """
    if service.ctx is None:
        return 0
    if site_ids is None:
        service.signs.last_all = time.monotonic()
    s = service.settings
    sent = 0
    for site_id in (service.state.order if site_ids is None else site_ids):
        site = service.state.sites.get(site_id)
        if site is None:
            continue
        avail = service.state.current(site_id)
        status = avail.status.value if avail is not None else ParkingStatus.UNKNOWN.value
        alternatives: list[Alternative] = []
        if status in DIVERTING:
            alternatives = sign_alternatives(service, site, now)
        msg = sign_message(site_id, site.name, status, alternatives, now.isoformat(), s.guidance_sign_arrive_min)
        if not service.signs.changed(site_id, (msg["status"], msg["text"])):
            continue
        service.ctx.publish(guidance_topic(site_id), orjson.dumps(msg), retain=True)
        sent += 1
    return sent

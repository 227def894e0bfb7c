"""The parking service: live availability in memory, fed by MQTT, rebuilt from the store at start.

Messages update the affected site at once (well within a second); a background tick every
``TICK_S`` re-evaluates staleness and opening hours, raises/clears alerts (car park full,
sensor offline), appends changed availability to ``parking_occupancy`` (the history and its
15-minute rollup) and refits the forecaster from that rollup every ``REFIT_S``. A second
background thread issues the +15/+30/+60 min forecasts of every site every
``ITS_PARKING_FORECAST_ISSUE_INTERVAL_S`` (aligned to multiples of it in UTC), keeps them in
memory for the forecast route and appends them to ``parking_forecasts`` in one COPY, so that
reports can score them. Sign texts (:data:`parking.guidance.GUIDANCE_TOPIC`, retained) are
published when a site's status changes and refreshed every ``SIGNS_REFRESH_S`` and issue round.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi import APIRouter

from its.devices import device_status_filter, parse_device_status
from its.ingest import PayloadError
from its.playbook import Action, Situation
from its.service import Context, Service
from parking.advice import SignBoard, publish_signs, recommend
from parking.availability import ParkingStatus, SiteAvailability
from parking.config import ParkingSettings
from parking.datex2 import datex2_publication
from parking.forecast import HORIZONS_MIN, ForecastPoint, IssuedForecast, SiteForecaster
from parking.guidance import Recommendation
from parking.ingest import (
    COUNT_TOPIC,
    SENSOR_KIND,
    SPACE_TOPIC,
    STATE_TOPIC,
    parse_count,
    parse_space,
)
from parking.sites import Site
from parking.state import ParkingState, SiteChange, SiteIndex
from parking.store import (
    latest_counts,
    latest_device_status,
    latest_space_events,
    load_sites,
    save_forecasts,
    save_occupancy,
)

__all__ = ["ParkingService", "SiteJson", "create_service"]

log = logging.getLogger(__name__)
TICK_S = 1.0
SITES_RELOAD_S = 30.0
REFIT_S = 3600.0
SIGNS_REFRESH_S = 30.0  # sign texts follow changes of the sites they name at least this often
REBUILD_LOOKBACK = timedelta(days=7)
FORECAST_LOOKBACK = timedelta(days=70)


class ParkingService(Service):
    """Live parking availability, forecasts and the ``/v1/parking`` API."""

    name = "parking"

    def __init__(self, settings: ParkingSettings | None = None) -> None:
        self.settings = settings or ParkingSettings()
        self.state = ParkingState(self.settings)
        self.ctx: Context | None = None
        self.forecaster: SiteForecaster | None = None
        self._ready = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: dict[tuple[str, datetime], tuple[Any, ...]] = {}
        self._pending_lock = threading.Lock()
        self._offline: set[str] = set()
        self._snapshot: tuple[int, str, bytes] | None = None
        self._last_sites_load = 0.0
        self._last_fit = 0.0
        self._held: list[tuple[Any, str, bytes]] | None = None
        self._held_lock = threading.Lock()
        self._json: dict[str, SiteJson] = {}
        self._records_cache: tuple[SiteIndex, int, list[SiteJson]] | None = None
        self._issue_thread: threading.Thread | None = None
        # latest forecasts per site, keyed by the observation and forecaster they came from
        self._issued: dict[str, tuple[tuple[Any, ...], IssuedForecast]] = {}
        self._stored_base: dict[str, datetime] = {}  # observation of each site's last stored forecasts
        self.signs = SignBoard()  # sign texts published

    # ------------------------------------------------------------------ lifecycle
    def start(self, ctx: Context) -> None:
        self.ctx = ctx
        # subscribe first and hold live messages until the store has been replayed, so
        # nothing published during the rebuild is missed or applied out of order
        with self._held_lock:
            self._held = []
        ctx.subscribe(SPACE_TOPIC.filter, self._on_space)
        ctx.subscribe(COUNT_TOPIC.filter, self._on_count)
        ctx.subscribe(device_status_filter(SENSOR_KIND), self._on_status)
        self.reload_sites()
        self.rebuild(datetime.now(UTC))
        with self._held_lock:
            held, self._held = self._held or [], None
        for handler, topic, payload in held:
            handler(topic, payload)
        self._ready = True
        self._thread = threading.Thread(target=self._run, name="parking-tick", daemon=True)
        self._thread.start()
        self._issue_thread = threading.Thread(target=self._run_issuer, name="parking-forecasts", daemon=True)
        self._issue_thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._issue_thread):
            if thread is not None:
                thread.join(timeout=5)
        self.flush()

    def ready(self) -> bool:
        return self._ready

    def router(self) -> APIRouter:
        from parking.api import build_router

        return build_router(self)

    # ------------------------------------------------------------------ store
    def reload_sites(self) -> None:
        """Read site definitions from the store (new and changed sites take effect)."""
        assert self.ctx is not None
        self.state.set_sites(load_sites(self.ctx.read_db))
        self._last_sites_load = time.monotonic()

    def rebuild(self, now: datetime) -> None:
        """Replay recent counter, sensor and device-status rows from the store into the state."""
        assert self.ctx is not None
        since = now - REBUILD_LOOKBACK
        db = self.ctx.read_db
        for site_id, t, occupied, entries, exits in latest_counts(db, since):
            self.state.apply_count(site_id, t, occupied, entries, exits)
        for site_id, space_id, t, occupied in latest_space_events(db, since):
            self.state.apply_space(site_id, space_id, t, occupied)
        for device_id, t, online in latest_device_status(db, SENSOR_KIND, since):
            self.state.apply_device_status(device_id, t, online)
        self._after(self.state.refresh(now), now, alerts=False)
        self._offline = self.state.offline_sensors(now)

    def flush(self) -> int:
        """Append queued availability records to ``parking_occupancy``."""
        with self._pending_lock:
            rows, self._pending = list(self._pending.values()), {}
        if not rows or self.ctx is None:
            return 0
        try:
            return save_occupancy(self.ctx.db, rows)
        except Exception:
            log.exception("saving %d parking occupancy rows failed; kept for retry", len(rows))
            with self._pending_lock:
                for row in rows:
                    self._pending.setdefault((row[0], row[1]), row)
            return 0

    def fit_forecaster(self, now: datetime) -> SiteForecaster:
        """Fit forecasts on the 15-minute occupancy rollup of the last ``FORECAST_LOOKBACK``."""
        assert self.ctx is not None
        rows = self.ctx.read_db.fetchall(
            "SELECT site_id, bucket, capacity, mean_occupied FROM parking_occupancy_15m"
            " WHERE bucket >= %s AND mean_occupied IS NOT NULL ORDER BY site_id, bucket",
            (now - FORECAST_LOOKBACK,),
        )
        frames = []
        if rows:
            frame = pd.DataFrame(rows, columns=["site_id", "time", "capacity", "occupied"])
            frame["time"] = pd.to_datetime(frame["time"], utc=True)
            for site_id, part in frame.groupby("site_id"):
                if str(site_id) not in self.state.sites:
                    continue
                local = part["time"].dt.tz_convert(self.state.zone(str(site_id))).dt.tz_localize(None)
                frames.append(part.assign(
                    local_min=(local.dt.hour * 60 + local.dt.minute).astype(float),
                    local_date=local.dt.normalize(),
                    occupied=part["occupied"].round().astype(np.int64),
                ))
        cleaned = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["site_id", "time", "capacity", "occupied", "local_min", "local_date"])
        s = self.settings
        self.forecaster = SiteForecaster(cleaned, s.forecast_slot_min, s.forecast_min_days, s.forecast_band_quantile,
                                         s.forecast_blend_prior_points, s.forecast_blend_decay)
        self._last_fit = time.monotonic()
        return self.forecaster

    # ------------------------------------------------------------------ live input
    def _on_space(self, topic: str, payload: bytes) -> None:
        if self._hold(self._on_space, topic, payload):
            return
        try:
            (row,) = parse_space(topic, payload)
        except PayloadError:
            return  # the collector stores the rejection
        if self.state.apply_space(row.site_id, row.space_id, row.time, row.occupied):
            self._update([row.site_id])

    def _on_count(self, topic: str, payload: bytes) -> None:
        if self._hold(self._on_count, topic, payload):
            return
        try:
            (row,) = parse_count(topic, payload)
        except PayloadError:
            return
        if self.state.apply_count(row.site_id, row.time, row.occupied, row.entries, row.exits):
            self._update([row.site_id])

    def _on_status(self, topic: str, payload: bytes) -> None:
        if self._hold(self._on_status, topic, payload):
            return
        try:
            (status,) = parse_device_status(topic, payload)
        except PayloadError:
            return
        site_id = self.state.apply_device_status(status.device_id, status.time, status.online)
        if site_id is not None:
            self._update([site_id], check_sensors=True)

    def _hold(self, handler: Any, topic: str, payload: bytes) -> bool:
        with self._held_lock:
            if self._held is None:
                return False
            self._held.append((handler, topic, payload))
            return True

    def _update(self, site_ids: list[str], check_sensors: bool = False) -> None:
        now = datetime.now(UTC)
        self._after(self.state.refresh(now, site_ids), now)
        if check_sensors:
            self._check_sensors(now)

    # ------------------------------------------------------------------ changes
    def _after(self, changes: list[SiteChange], now: datetime, alerts: bool = True) -> None:
        if not changes:
            return
        with self._pending_lock:
            for ch in changes:
                a = ch.after
                if a.observed_at is not None:
                    self._pending[(a.site_id, a.observed_at)] = (
                        a.site_id, a.observed_at, a.capacity, a.occupied, a.free, a.unknown, a.status.value)
        for ch in changes:
            if self.ctx is not None:
                self.ctx.publish(STATE_TOPIC.concrete(ch.site_id), orjson.dumps(ch.after.as_dict(now)), retain=True)
            if alerts:
                self._alert_full(ch)
        if alerts and self.forecaster is not None:
            self.publish_signs(now, [ch.site_id for ch in changes if ch.before is None or ch.before.status != ch.after.status])

    def _alert_full(self, ch: SiteChange) -> None:
        if self.ctx is None:
            return
        was_full = ch.before is not None and ch.before.status is ParkingStatus.FULL
        site = self.state.sites[ch.site_id]
        if ch.after.status is ParkingStatus.FULL and not was_full:
            self.ctx.alerts.raise_alert(
                "parking_full", ch.site_id, f"{site.name} is full ({site.capacity} spaces)",
                severity="info", lat=site.lat, lon=site.lon,
            )
        elif was_full and ch.after.status is not ParkingStatus.FULL:
            self.ctx.alerts.clear("parking_full", ch.site_id)

    def _check_sensors(self, now: datetime) -> None:
        offline = self.state.offline_sensors(now)
        if self.ctx is not None:
            for device_id in sorted(offline - self._offline):
                found = self.state.sensor_site(device_id)
                where = f"space {found[1]} of {found[0]}" if found else "unknown space"
                self.ctx.alerts.raise_alert(
                    "parking_sensor_offline", device_id, f"parking sensor {device_id} ({where}) is offline or silent",
                    severity="warning",
                )
            for device_id in sorted(self._offline - offline):
                self.ctx.alerts.clear("parking_sensor_offline", device_id)
        self._offline = offline

    def tick(self, now: datetime | None = None) -> list[SiteChange]:
        """One maintenance round: staleness, alerts, persistence, periodic reloads."""
        now = now or datetime.now(UTC)
        if time.monotonic() - self._last_sites_load > SITES_RELOAD_S:
            self.reload_sites()
        changes = self.state.refresh(now)
        self._after(changes, now)
        self._check_sensors(now)
        self.flush()
        if self.forecaster is None or time.monotonic() - self._last_fit > REFIT_S:
            self.fit_forecaster(now)
            self.publish_signs(now)
        elif time.monotonic() - self.signs.last_all > SIGNS_REFRESH_S:
            self.publish_signs(now)
        return changes

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("parking tick failed")
            self._stop.wait(TICK_S)

    # ------------------------------------------------------------------ reads
    def snapshot(self) -> tuple[str, bytes]:
        """(ETag, body) of the bulk availability; the tag changes only with the content."""
        version = self.state.version
        cached = self._snapshot
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        now = datetime.now(UTC)
        tag = f'"{self.state.content_tag()}"'
        body = orjson.dumps({
            "generated_at": now.isoformat(),
            "sites": [a.as_dict(now) for a in self.state.all_current()],
        })
        self._snapshot = (version, tag, body)
        return tag, body

    def site_record(self, site_id: str, now: datetime) -> dict[str, Any]:
        """Site definition plus its current availability."""
        site = self.state.sites[site_id]
        avail = self.state.current(site_id) or self.state.compute(site_id, now)
        return {**_site_fields(site), "availability": avail.as_dict(now)}

    def _site_json(self, site_id: str) -> SiteJson:
        """The site's record serialised once per change of its definition or availability."""
        site = self.state.sites[site_id]
        avail = self.state.current(site_id)
        hit = self._json.get(site_id)
        if hit is not None and hit.site is site and hit.avail is avail:
            return hit
        if avail is None:  # not evaluated yet (only before the first refresh): do not cache
            return SiteJson.of(site, self.state.compute(site_id, datetime.now(UTC)))
        hit = SiteJson.of(site, avail)
        self._json[site_id] = hit
        return hit

    def site_json(self, site_id: str) -> bytes:
        """JSON bytes of :meth:`site_record` at the current time, from the serialised cache."""
        return self._site_json(site_id).render(time.time()) + b"}"

    def _records(self, index: SiteIndex) -> list[SiteJson]:
        """Serialised records of ``index``'s sites, in its order; revalidated only when the
        availability version changed or the site definitions did (a new index)."""
        version = self.state.version
        cached = self._records_cache
        if cached is not None and cached[0] is index and cached[1] == version:
            return cached[2]
        records = [self._site_json(site_id) for site_id in index.ids]
        self._records_cache = (index, version, records)
        return records

    def near_json(
        self, lat: float, lon: float, radius_m: float, vehicle_type: str | None, min_free: int, limit: int
    ) -> bytes:
        """JSON ``{"sites": [...], "count": n}`` of the sites within ``radius_m`` (m) of a point,
        nearest first, filtered by vehicle type and free spaces, each record with ``distance_m`` (m).

        Records come pre-serialised (:class:`SiteJson`); only ``age_s`` and ``distance_m`` are
        written per request.
        """
        now_s = time.time()
        index = self.state.site_index
        records = self._records(index)
        found, dist = index.within(lat, lon, radius_m)
        parts: list[bytes] = []
        for i, d in zip(found.tolist(), dist.tolist(), strict=True):
            if len(parts) >= limit:
                break
            record = records[i]
            if vehicle_type is not None and record.capacity_by_type[vehicle_type] <= 0:
                continue
            if min_free > 0 and not _has_free(record.avail, vehicle_type, min_free):
                continue
            parts.append(record.render(now_s) + b',"distance_m":' + orjson.dumps(round(d, 1)) + b"}")
        return b'{"sites":[' + b",".join(parts) + b'],"count":' + str(len(parts)).encode() + b"}"

    def forecast(self, site_id: str, now: datetime) -> dict[str, Any]:
        """Free spaces at +15/+30/+60 min with bands, or a reason per horizon."""
        return self.site_forecast(site_id, now).as_dict()

    def site_forecast(self, site_id: str, now: datetime) -> IssuedForecast:
        """The site's forecasts from its current observation.

        Served from memory: computed once per observation and forecaster fit (by the issuing
        thread or the first request), then reused until either changes.
        """
        forecaster = self.forecaster or self.fit_forecaster(now)
        site = self.state.sites[site_id]
        avail = self.state.current(site_id) or self.state.compute(site_id, now)
        key = (forecaster, avail.observed_at, avail.occupied, avail.capacity, avail.unknown)
        hit = self._issued.get(site_id)
        if hit is not None and hit[0] == key:
            return hit[1]
        if avail.occupied is None or avail.observed_at is None:
            reason = "no current observation"
            issued = IssuedForecast(site_id, site.capacity, None, None,
                                    tuple(ForecastPoint(h, None, None, None, reason) for h in HORIZONS_MIN), reason)
        else:
            local = avail.observed_at.astimezone(self.state.zone(site_id))
            points = forecaster.forecast(
                site_id, local.weekday(), local.hour * 60 + local.minute + local.second / 60.0,
                float(avail.occupied), float(avail.capacity - avail.unknown), at=avail.observed_at,
            )
            issued = IssuedForecast(site_id, site.capacity, avail.observed_at, avail.occupied, tuple(points))
        self._issued[site_id] = (key, issued)
        return issued

    def issue_forecasts(self, issued_at: datetime) -> int:
        """Issue every site's forecasts at ``issued_at`` and store the new ones; return rows stored.

        A site's forecasts are stored once per observation (the first issue after it), only
        from a current one (status not ``unknown``, observed at or before ``issued_at``), and
        only for horizons whose target time is after ``issued_at``. All rows go in one COPY;
        when it fails they are issued again at the next round.
        """
        if self.ctx is None:
            return 0
        rows: list[tuple[Any, ...]] = []
        bases: dict[str, datetime] = {}
        for site_id in self.state.order:
            avail = self.state.current(site_id)
            if avail is None or avail.status is ParkingStatus.UNKNOWN:
                continue
            issued = self.site_forecast(site_id, issued_at)
            base = issued.observed_at
            if base is None or base > issued_at or self._stored_base.get(site_id) == base:
                continue
            site_rows = issued.rows(issued_at)
            if site_rows:
                rows.extend(site_rows)
                bases[site_id] = base
        stored = save_forecasts(self.ctx.db, rows)
        self._stored_base.update(bases)
        return stored

    def _run_issuer(self) -> None:
        interval = self.settings.forecast_issue_interval_s
        while True:
            now_s = time.time()
            due = (now_s // interval + 1) * interval  # the next multiple of the interval (UTC)
            if self._stop.wait(due - now_s):
                return
            try:
                self.issue_forecasts(datetime.fromtimestamp(due, UTC))
                self.publish_signs(datetime.now(UTC))
            except Exception:
                log.exception("issuing parking forecasts or sign texts failed")

    def guidance(self, lat: float, lon: float, vehicle_type: str | None, arrive_in_min: float, radius_m: float,
                 limit: int, now: datetime, exclude: frozenset[str] = frozenset()) -> list[Recommendation]:
        """Open sites near a point ranked for a driver arriving in ``arrive_in_min`` (see
        :func:`parking.advice.recommend`)."""
        return recommend(self, lat, lon, vehicle_type, arrive_in_min, radius_m, limit, now, exclude)

    def publish_signs(self, now: datetime, site_ids: list[str] | None = None) -> int:
        """Publish changed sign texts of sites (default all); see :func:`parking.advice.publish_signs`."""
        return publish_signs(self, now, site_ids)

    def recommend(self, situation: Situation) -> list[Action]:
        """Diversions away from the affected full car parks (`parking.playbook.guidance_actions`)."""
        from parking.playbook import guidance_actions

        return guidance_actions(self, situation)

    def datex2(self, now: datetime) -> dict[str, Any]:
        """DATEX II Parking Publication Light payload of all sites and sensed spaces."""
        sites = [self.state.sites[s] for s in self.state.order]
        current = {a.site_id: a for a in self.state.all_current()}
        return datex2_publication(sites, current, now, self.settings.country, self.settings.datex2_publisher,
                                  self.state.space_states(now))


def _site_fields(site: Site) -> dict[str, Any]:
    return {
        "site_id": site.site_id, "name": site.name, "kind": site.kind, "lat": site.lat, "lon": site.lon,
        "geometry": site.geometry,
        "capacity_by_type": {t: site.capacity_for(t) for t in ("car", "disabled", "ev", "motorcycle")},
        "opening_hours": site.opening_hours, "tariff": site.tariff,
    }


@dataclass(frozen=True)
class SiteJson:
    """A site record (:meth:`ParkingService.site_record`) serialised once, ``age_s`` left open.

    ``head + age_s + tail`` is the record without its closing brace, so a caller can append
    fields (``distance_m``) before closing it.
    """

    site: Site
    avail: SiteAvailability
    head: bytes  # '{...,"availability":{...,"age_s":'
    tail: bytes  # the availability fields after age_s and its closing brace
    observed_s: float | None  # epoch of observed_at (s)
    capacity_by_type: dict[str, int]  # spaces per vehicle type

    @classmethod
    def of(cls, site: Site, avail: SiteAvailability) -> SiteJson:
        fields = avail.as_dict(avail.observed_at or datetime.now(UTC))
        keys = list(fields)
        cut = keys.index("age_s")
        before = {k: fields[k] for k in keys[:cut]}
        after = {k: fields[k] for k in keys[cut + 1:]}
        site_fields = _site_fields(site)
        head = orjson.dumps(site_fields)[:-1] + b',"availability":' + orjson.dumps(before)[:-1] + b',"age_s":'
        tail = (b"," + orjson.dumps(after)[1:-1] if after else b"") + b"}"
        if avail.observed_at is None:  # no age: the whole record is fixed
            head, tail = head + b"null" + tail, b""
        observed = avail.observed_at.timestamp() if avail.observed_at is not None else None
        return cls(site, avail, head, tail, observed, site_fields["capacity_by_type"])

    def render(self, now_s: float) -> bytes:
        """The record at ``now_s`` (epoch s), without its closing brace."""
        if self.observed_s is None:
            return self.head
        return self.head + orjson.dumps(round(max(0.0, now_s - self.observed_s), 1)) + self.tail


def _has_free(avail: SiteAvailability | None, vehicle_type: str | None, min_free: int) -> bool:
    if avail is None or avail.free is None:
        return False
    if vehicle_type is not None and avail.free_by_type:
        return avail.free_by_type.get(vehicle_type, 0) >= min_free
    return avail.free >= min_free


def create_service() -> ParkingService:
    """Factory the platform's composition root calls."""
    return ParkingService()

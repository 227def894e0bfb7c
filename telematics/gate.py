"""Which incoming positions the live arrivals state applies (pure logic, no I/O).

`PositionGate` keeps, per vehicle, the fixes the plausibility rule needs (its last accepted
fix and the few after it) and judges new positions with the one kernel,
`telematics.plausibility.plausibility_flags`: a position flagged ``speed`` (impossible move
from the vehicle's last accepted fix), ``area`` (outside the agency's service area) or
``future`` (stamped more than ``ITS_TELEMATICS_MAX_FUTURE_S`` after the clock) is not applied,
so it is never shown as the vehicle's live position nor moves its trip. A position stamped
ahead of the clock within that window is applied at the clock's time: it cannot make its
vehicle look fresh in the future nor hide the vehicle's next real positions as out of order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from telematics.config import TelematicsSettings
from telematics.ingest import PositionRow
from telematics.plausibility import FUTURE, ServiceArea, plausibility_flags

__all__ = ["PositionGate", "Verdict", "service_area"]

_Fix = tuple[float, float, float, int]  # t (epoch s), lat, lon, flags


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the gate decided for one position: the row to apply (None: not applied), its
    plausibility flags and whether its time was moved back to the clock."""

    row: PositionRow | None
    flags: int
    clamped: bool


def service_area(config: TelematicsSettings, stop_lat: Sequence[float], stop_lon: Sequence[float]) -> ServiceArea | None:
    """An agency's service area: ``ITS_TELEMATICS_SERVICE_AREA`` when set, else the bounding box
    of its stops widened by ``ITS_TELEMATICS_SERVICE_AREA_MARGIN_M`` (None without stops)."""
    if config.service_area is not None:
        return ServiceArea.of(config.service_area)
    return ServiceArea.around(stop_lat, stop_lon, config.service_area_margin_m)


def _epoch_s(value: datetime | float) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


class PositionGate:
    """The plausibility state of the live vehicles of every agency.

    Parameters
    ----------
    config : TelematicsSettings
        ``max_speed_mps``, ``gps_noise_m``, ``reanchor_fixes``, ``max_future_s``.
    """

    def __init__(self, config: TelematicsSettings) -> None:
        self.config = config
        self.areas: dict[str, ServiceArea | None] = {}
        #: per (agency, vehicle): its last accepted fix (first) and up to reanchor_fixes - 1 later ones
        self.fixes: dict[tuple[str, str], list[_Fix]] = {}

    def set_area(self, agency: str, area: ServiceArea | None) -> None:
        """Judge ``agency``'s positions against ``area`` (None: anywhere)."""
        self.areas[agency] = area

    def admit(self, agency: str, rows: Sequence[PositionRow], now_s: float) -> list[Verdict]:
        """Judge ``rows`` (one agency's, any vehicles and order) at clock ``now_s`` (epoch s).

        Returns
        -------
        list of Verdict
            One per row, in order. A row older than its vehicle's last accepted fix is passed
            through unjudged (the fleet drops it as out of order).
        """
        cfg = self.config
        keys: list[str] = []
        t: list[float] = []
        lat: list[float] = []
        lon: list[float] = []
        new: list[int] = []  # index in the arrays of each row, -1 when not judged
        horizon = now_s + cfg.max_future_s
        seen: set[str] = set()
        for row in rows:
            vid = str(row.vehicle_id)
            raw = _epoch_s(row.time)
            ts = raw if raw > horizon else min(raw, now_s)
            history = self.fixes.get((agency, vid))
            if history and history[0][3] == 0 and ts <= history[0][0] and raw <= horizon:
                new.append(-1)  # not after the last accepted fix
                continue
            if vid not in seen and history:
                for fix in history:
                    keys.append(vid)
                    t.append(fix[0])
                    lat.append(fix[1])
                    lon.append(fix[2])
            seen.add(vid)
            new.append(len(t))
            keys.append(vid)
            t.append(ts)
            lat.append(float(row.lat))
            lon.append(float(row.lon))
        flags = plausibility_flags(keys, t, lat, lon, max_speed_mps=cfg.max_speed_mps, area=self.areas.get(agency),
                                   gps_noise_m=cfg.gps_noise_m, reanchor_fixes=cfg.reanchor_fixes, now_s=now_s,
                                   max_future_s=cfg.max_future_s).tolist()
        out: list[Verdict] = []
        for row, i in zip(rows, new, strict=True):
            if i < 0:
                out.append(Verdict(row, 0, False))
            elif flags[i]:
                out.append(Verdict(None, flags[i], False))
            elif t[i] < _epoch_s(row.time):
                out.append(Verdict(row._replace(time=datetime.fromtimestamp(t[i], UTC)), 0, True))
            else:
                out.append(Verdict(row, 0, False))
        self._remember(agency, keys, t, lat, lon, flags)
        return out

    def _remember(self, agency: str, keys: list[str], t: list[float], lat: list[float], lon: list[float],
                  flags: list[int]) -> None:
        """Keep, per vehicle judged, its last accepted fix and the fixes after it (at most
        ``reanchor_fixes - 1``: all the re-anchoring rule looks at)."""
        by_vehicle: dict[str, list[_Fix]] = {}
        for k, ts, la, lo, f in zip(keys, t, lat, lon, flags, strict=True):
            if not f & FUTURE:  # a future fix is never an anchor nor part of a chain
                by_vehicle.setdefault(k, []).append((ts, la, lo, f))
        keep = self.config.reanchor_fixes - 1
        for vid, fixes in by_vehicle.items():
            fixes.sort(key=lambda fix: fix[0])
            last = max((j for j, fix in enumerate(fixes) if fix[3] == 0), default=None)
            if last is None:  # never an accepted fix yet: only the latest flagged ones matter
                self.fixes[(agency, vid)] = fixes[-keep:]
            else:
                self.fixes[(agency, vid)] = [fixes[last], *fixes[last + 1:][-keep:]]

    def forget(self, before_s: float) -> int:
        """Drop the state of vehicles whose last fix is older than ``before_s`` (epoch s); return how many."""
        gone = [key for key, fixes in self.fixes.items() if not fixes or fixes[-1][0] < before_s]
        for key in gone:
            del self.fixes[key]
        return len(gone)

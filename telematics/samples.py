"""Prediction samples: a bounded record of the arrival predictions the live service served.

Every vehicle's predictions for the remaining stops of its current trip (up to
`HORIZON_S` ahead) are kept at most once per `EVERY_S` per vehicle, issued at the time of
the ping they are made from (as in ``its eval arrivals``; the choice depends only on ping
times, so API processes that refresh the same fleet write the same keys and the store
keeps one copy), as rows of
``arrival_predictions`` (`telematics.store.PREDICTION_COLUMNS`). Scored later against
the detected ``stop_arrivals`` they give the live prediction accuracy of the reports
(`telematics.kpi.prediction_accuracy`). Pure logic: the service writes the rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from telematics.fleet import Fleet, VehicleTrack

__all__ = ["EVERY_S", "HORIZON_S", "PredictionSampler"]

EVERY_S = 60.0  # one sample per vehicle at most this often (s)
HORIZON_S = 1800.0  # predictions further ahead than this (s) are not kept
MAX_VEHICLES = 100_000  # last-sample times kept (forgotten beyond, oldest first)


class PredictionSampler:
    """Chooses which served predictions are stored.

    Parameters
    ----------
    every_s : float
        Least time (s) between two samples of the same vehicle.
    horizon_s : float
        Longest horizon (s, predicted arrival - issue time) kept.
    """

    def __init__(self, every_s: float = EVERY_S, horizon_s: float = HORIZON_S) -> None:
        self.every_s = every_s
        self.horizon_s = horizon_s
        self._last: dict[tuple[str, str], float] = {}

    def sample(self, fleet: Fleet, now_s: float,
               predicted: dict[tuple[str, date, int], tuple[float, float, float]]) -> list[tuple[Any, ...]]:
        """Rows (`telematics.store.PREDICTION_COLUMNS`) of the vehicles due for a sample at ``now_s``.

        Parameters
        ----------
        fleet : Fleet
            The agency's live state the predictions were made from.
        now_s : float
            Current time (epoch s); vehicles whose last ping is later are left for later.
        predicted : dict
            ``(trip_id, service_date, stop-time row) -> (arrival, p10, p90)`` epoch s, as
            `telematics.fleet.Fleet.predict` gives them.
        """
        rows: list[tuple[Any, ...]] = []
        for v in list(fleet.vehicles.values()):
            if v.trip_id is None or v.service_date is None or v.trip_id not in fleet.trip_rows:
                continue
            key = (fleet.agency, v.vehicle_id)
            if v.observed_s - self._last.get(key, -float("inf")) < self.every_s or v.observed_s > now_s:
                continue
            try:
                got = self._vehicle_rows(fleet, v, predicted)
            except Exception as exc:  # this vehicle's samples are lost, not the others'
                fleet.vehicle_failed(v.vehicle_id, "sample", exc)
                continue
            if got:
                rows.extend(got)
                self._last[key] = v.observed_s
        if len(self._last) > MAX_VEHICLES:
            for key, _t in sorted(self._last.items(), key=lambda kv: kv[1])[:len(self._last) - MAX_VEHICLES]:
                del self._last[key]
        return rows

    def _vehicle_rows(self, fleet: Fleet, v: VehicleTrack,
                      predicted: dict[tuple[str, date, int], tuple[float, float, float]]) -> list[tuple[Any, ...]]:
        """The sample rows of one vehicle's predictions for the rest of its trip."""
        assert v.trip_id is not None and v.service_date is not None
        issued = datetime.fromtimestamp(v.observed_s, UTC)
        lo, hi = fleet.trip_rows[v.trip_id]
        got = []
        for k in range(lo + v.next_stop, hi):
            p = predicted.get((v.trip_id, v.service_date, k))
            if p is None:
                continue
            horizon = p[0] - v.observed_s
            if 0.0 <= horizon <= self.horizon_s:
                got.append((issued, fleet.agency, v.service_date, v.trip_id, fleet.st_stop_list[k],
                            int(fleet.st_seq[k]), v.vehicle_id, datetime.fromtimestamp(p[0], UTC), horizon))
        return got

"""What a live fleet learns from its stop passings, and its arrival predictions.

Pure logic (no I/O), the learning and predicting half of `telematics.fleet.Fleet`:
`FleetModels` keeps the segment-time profile (`SegmentTimes`), the vehicles' pace filter,
rings of residual labels (`ResidualCorrector`), of the time from a position to the next
stop (`RemainingTimes`) and of how late buses leave their origin (the departure model),
and learns them from passings as `Fleet.observe` detects them or from stored
``stop_arrivals`` (`FleetModels.learn_history`). `FleetModels.predict` gives every fresh
vehicle's arrivals at its remaining stops through the step `telematics.evaluate` scores
(`telematics.downstream.predict_downstream`), and at the next trip of its block.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.delay_blend import ALONE_S, alone_on_route, delay_weights
from telematics.delay_blend import LABEL_EVERY_S as BLEND_LABEL_EVERY_S
from telematics.downstream import (
    StopTable,
    VehicleStates,
    blend_with_delay,
    correctable,
    departure_lateness,
    monotone_along,
    predict_downstream,
)
from telematics.gtfs import Feed, service_day_start
from telematics.gtfs.paths import StopPathFn
from telematics.guard import isolate, vehicle_failed
from telematics.predict import (
    PaceFilter,
    RecencyMean,
    RemainingTimes,
    ResidualCorrector,
    SegmentTimes,
)
from telematics.timetable import Timetable
from telematics.track import VehicleTrack, still_s

__all__ = ["LABEL_EVERY_S", "MAX_LABELS", "MIN_LAYOVER_S", "PACE_SEGMENTS", "FleetModels", "Predictions"]

FloatArray = npt.NDArray[np.float64]
Predictions = dict[tuple[str, date, int], tuple[float, float, float]]
PACE_SEGMENTS = 12  # a vehicle's latest completed segments feeding its pace
LABEL_EVERY_S = 30.0  # predictions are kept as residual labels at most this often (s)
MAX_LABELS = 100_000  # residual labels kept (the newest)
MIN_LAYOVER_S = 0.0  # extra turnaround between two trips of a block (s): the timetable's layover absorbs delays


@dataclass(frozen=True)
class _Batch:
    """What `FleetModels.predict` computed for one batch of vehicles."""

    predictions: Predictions
    block_runs: dict[tuple[str, date], tuple[VehicleTrack, int, float]]
    labels: list[tuple[tuple[str, date, int], int, float]]  # (trip, day, row), situation, raw arrival s
    #: (trip, day, row), horizon s, model arrival s (corrected, before the blend), delay propagation's s
    blend_labels: list[tuple[tuple[str, date, int], float, float, float]]


class FleetModels(Timetable):
    """A feed's timetable plus the models learnt from its vehicles' stop passings.

    Parameters
    ----------
    feed : Feed
        The agency's feed, frequency-based trips already expanded into instances.
    stop_path : callable, optional
        Builds the paths of trips without a shape (`telematics.timetable.Timetable`).

    Attributes
    ----------
    segments : SegmentTimes
        Time-of-day profile of segment times.
    pace : PaceFilter
        Filter of a vehicle's log pace over its latest segments.
    corrector : ResidualCorrector
        Causal bias of earlier predictions per situation.
    seg_code : ndarray of int64
        Segment code of each stop-time row (stop k-1 -> k; a trip's first row maps to itself).
    table : StopTable
        The stop times as `telematics.downstream.predict_downstream` reads them.
    block_runs : dict
        ``(next trip, day) -> (vehicle, stops left, m left)`` of the block trips last predicted.
    """

    agency = ""  # platform agency id, for failure reports (`telematics.fleet.Fleet` sets it)

    def __init__(self, feed: Feed, stop_path: StopPathFn | None = None) -> None:
        super().__init__(feed, stop_path)
        self.vehicles: dict[str, VehicleTrack] = {}  # the live vehicles (`telematics.fleet.Fleet` keeps them)
        self._route_seen: dict[str, dict[str, float]] = {}  # route -> vehicle -> its latest segment time learnt (epoch s)
        self.segments = SegmentTimes()
        self.pace = PaceFilter()
        self.corrector = ResidualCorrector()
        self._labels = np.zeros((MAX_LABELS, 3))  # ring of (situation, known at s, residual s)
        self._n_labels = 0
        self._awaiting: dict[tuple[str, date, int], list[tuple[int, float]]] = {}
        self._labelled_s = -math.inf
        self._blend = np.zeros((MAX_LABELS, 4))  # ring of (horizon s, known at s, model error s, delay prop. error s)
        self._n_blend = 0
        self._awaiting_blend: dict[tuple[str, date, int], list[tuple[float, float, float]]] = {}
        self._blend_labelled_s = -math.inf
        # segment code of each stop-time row k (stop k-1 -> k; the first row of a trip maps to itself)
        prev = np.r_[0, np.arange(len(self.st_stop) - 1)]
        first = np.r_[True, self.st_trip[1:] != self.st_trip[:-1]]
        prev[first] = np.flatnonzero(first)
        self.seg_code = self.segments.codes(self.st_stop[prev], self.st_stop)
        self.block_runs: dict[tuple[str, date], tuple[VehicleTrack, int, float]] = {}
        self.table = StopTable.build(self.st_trip, self.st_stop, self.st_arr, self.paths.stop_dist_m,
                                     self.segments)
        self._departures = np.zeros((MAX_LABELS, 3))  # ring of (first segment code, known at s, lateness s)
        self._n_departures = 0
        self._remaining = np.zeros((MAX_LABELS, 5))  # ring of (code, offset m, state, known at s, remaining s)
        self._n_remaining = 0

    # ------------------------------------------------------------------ learning

    def _learn(self, v: VehicleTrack, k0: int, k1: int, t0: float, t1: float, known_s: float) -> None:
        """Learn the time ``t1 - t0`` (s) of segment row ``k0 -> k1``, and keep it for ``v``'s pace."""
        scheduled = max(self.st_arr[k1] - self.st_arr[k0], 1.0)
        code = int(self.seg_code[k1])
        self.segments.update(np.array([code]), [known_s], [t1 - t0], [scheduled])
        seen = self._route_seen.setdefault(self.trip_route.get(str(v.trip_id), ""), {})
        seen[v.vehicle_id] = max(seen.get(v.vehicle_id, -math.inf), known_s)
        v.segments.append((code, t0, t1, scheduled, v.day0_s))
        del v.segments[:-PACE_SEGMENTS]

    def _mature(self, trip: str, day: date, k: int, when: float, known_s: float) -> None:
        """Turn the predictions made for a stop that was just passed into residual labels."""
        for situation, predicted in self._awaiting.pop((trip, day, k), ()):
            self._labels[self._n_labels % MAX_LABELS] = (situation, known_s, when - predicted)
            self._n_labels += 1
        for horizon, model, delayprop in self._awaiting_blend.pop((trip, day, k), ()):
            self._blend[self._n_blend % MAX_LABELS] = (horizon, known_s, model - when, delayprop - when)
            self._n_blend += 1

    def _record_remaining(self, code: int, offset_m: float, state: int, known_s: float, remaining_s: float) -> None:
        """Keep one observed time (s) from a position on segment ``code`` to its end stop."""
        self._remaining[self._n_remaining % MAX_LABELS] = (code, offset_m, state, known_s, remaining_s)
        self._n_remaining += 1

    def _record_departure(self, code: int, known_s: float, lateness_s: float) -> None:
        """Keep how late (s) a vehicle left the origin of a trip whose first segment is ``code``."""
        self._departures[self._n_departures % MAX_LABELS] = (code, known_s, lateness_s)
        self._n_departures += 1

    def learn_history(self, arrivals: pd.DataFrame) -> int:
        """Learn the time-of-day profile of segment times from stored ``stop_arrivals``.

        Parameters
        ----------
        arrivals : DataFrame
            ``stop_arrivals`` rows (``service_date``, ``trip_id``, ``stop_sequence``, ``time``,
            ``stop_id``).

        Returns
        -------
        int
            Segment observations used.
        """
        if arrivals.empty:
            return 0
        a = arrivals.sort_values(["service_date", "trip_id", "stop_sequence"])
        same = (a["trip_id"].to_numpy()[1:] == a["trip_id"].to_numpy()[:-1]) & (
            a["service_date"].to_numpy()[1:] == a["service_date"].to_numpy()[:-1])
        t = ((pd.to_datetime(a["time"], utc=True) - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy()
        stop = a["stop_id"].astype(str).to_numpy()
        dur = np.diff(t)
        ok = same & (dur > 0)
        if not ok.any():
            return 0
        codes = self.segments.codes(stop[:-1][ok], stop[1:][ok])
        day0 = np.array([service_day_start(d, self.timezone) for d in a["service_date"].to_numpy()[:-1][ok]])
        self.segments.add_history(codes, t[:-1][ok] - day0, dur[ok])
        return int(ok.sum())

    # ------------------------------------------------------------------ prediction

    def _paces(self, vehicles: list[VehicleTrack]) -> tuple[FloatArray, FloatArray]:
        """Filtered log pace (actual over estimated segment time) and its variance per vehicle."""
        rows = [(g, *seg) for g, v in enumerate(vehicles) for seg in v.segments]
        state, var = np.zeros(len(vehicles)), np.full(len(vehicles), 0.05)
        if not rows:
            return state, var
        g, code, t0, t1, sched, day0 = (np.array(c) for c in zip(*rows, strict=True))
        est = self.segments.estimate(code.astype(np.int64), t0, t0 - day0, sched)  # as known then
        ratio = np.log(np.maximum(t1 - t0, 1.0) / np.maximum(est.mean_s, 1.0))
        cuts = np.flatnonzero(np.r_[True, g[1:] != g[:-1], True])
        for lo, hi in itertools.pairwise(cuts.tolist()):  # per vehicle: a few segments each
            x, p = self.pace.run(ratio[lo:hi])
            state[int(g[lo])], var[int(g[lo])] = x[-1], p[-1]
        return state, var

    def predict(self, now_s: float, fresh: list[VehicleTrack]) -> Predictions:
        """(trip, date, stop_time row) -> (arrival, p10, p90) for fresh vehicles' remaining stops.

        Each vehicle's state at its last ping goes through
        `telematics.downstream.predict_downstream` (the step `telematics.evaluate` scores:
        departure model at the origin, holds, `RemainingTimes` by motion state, segment
        times and pace), then the causal bias of stopped vehicles' earlier predictions in the
        same situation (`ResidualCorrector`) and the delay blend (`blend_with_delay`).
        A vehicle still at its origin also gets its expected departure there.

        The vehicles are predicted in one batch; a vehicle whose prediction raises or is not
        finite is found by splitting the batch (`telematics.guard.isolate`), reported to
        `vehicle_failed` and left without predictions (its trip falls back to the schedule).

        Parameters
        ----------
        now_s : float
            Current time (epoch s); no prediction is earlier.
        fresh : list of VehicleTrack
            Vehicles whose last ping is recent enough to predict from.

        Returns
        -------
        dict
            ``(trip_id, service_date, stop-time row) -> (arrival, p10, p90)`` (epoch s).
        """
        live = [v for v in fresh if v.trip_id is not None and v.service_date is not None
                and v.trip_id in self.trip_rows and not math.isnan(v.along_m)]
        self.block_runs = {}
        if not live:
            return {}
        remaining, departures = self._remaining_times(), self._departure_model()
        labels = self._labels[:min(self._n_labels, MAX_LABELS)] if self._n_labels else None
        blend = self._blend[:min(self._n_blend, MAX_LABELS)]
        alone = self._alone(now_s, live)
        parts, failed = isolate(live, lambda vs: self._predict_batch(now_s, vs, remaining, departures, labels, blend,
                                                                     alone))
        for v, exc in failed:
            self.vehicle_failed(v.vehicle_id, "predict", exc)
        out: Predictions = {}
        label_now = now_s - self._labelled_s >= LABEL_EVERY_S  # keep stopped vehicles' predictions to learn residuals
        if label_now:
            self._labelled_s = now_s
        for part in parts:
            out.update(part.predictions)
            self.block_runs.update(part.block_runs)
            if label_now:
                for owner, situation, arrival in part.labels:
                    self._awaiting.setdefault(owner, []).append((situation, arrival))
        if label_now and len(self._awaiting) > 200_000:
            self._awaiting.clear()
        if now_s - self._blend_labelled_s >= BLEND_LABEL_EVERY_S:  # every prediction, now and then
            self._blend_labelled_s = now_s
            for part in parts:
                for owner, horizon, model, delayprop in part.blend_labels:
                    self._awaiting_blend.setdefault(owner, []).append((horizon, model, delayprop))
            if len(self._awaiting_blend) > 200_000:
                self._awaiting_blend.clear()
        return out

    def vehicle_failed(self, vehicle_id: str, stage: str, exc: BaseException) -> None:
        """Report a vehicle whose ``stage`` computation failed (`telematics.guard.vehicle_failed`)."""
        vehicle_failed(self.agency, vehicle_id, stage, exc)

    def _alone(self, now_s: float, live: Sequence[VehicleTrack]) -> dict[str, bool]:
        """Vehicle -> alone on its trip's route (`telematics.delay_blend.alone_on_route`: no
        other vehicle's running time on a segment of that route learnt within ``ALONE_S``
        before ``now_s``), for the ``live`` vehicles. Who ran which route is remembered
        (``_route_seen``, from every segment time learnt, `_learn`), so a vehicle that fell
        silent or lost its trip a minute ago still keeps its route-mates company, as in the eval."""
        for route in list(self._route_seen):  # forget what no query can count any more
            seen = {vid: t for vid, t in self._route_seen[route].items() if t >= now_s - ALONE_S}
            if seen:
                self._route_seen[route] = seen
            else:
                del self._route_seen[route]
        rows = [(r, vid, t) for r, seen in self._route_seen.items() for vid, t in seen.items()]
        routes = {r: k for k, r in enumerate(self._route_seen)}
        vehicles = {vid: k for k, vid in enumerate({vid for _, vid, _ in rows} | {v.vehicle_id for v in live})}
        flags = alone_on_route([routes[r] for r, _, _ in rows], [vehicles[vid] for _, vid, _ in rows],
                               [min(t, now_s) for _, _, t in rows],
                               [routes.get(self.trip_route.get(str(v.trip_id), ""), -1) for v in live],
                               [vehicles[v.vehicle_id] for v in live], np.full(len(live), now_s))
        return {v.vehicle_id: bool(f) for v, f in zip(live, flags.tolist(), strict=True)}

    def _predict_batch(self, now_s: float, live: Sequence[VehicleTrack], remaining: RemainingTimes | None,
                       departures: RecencyMean | None, labels: FloatArray | None, blend: FloatArray,
                       alone: dict[str, bool]) -> _Batch:
        """`predict` of a batch of vehicles, without touching the models (raises when any
        prediction is not finite); ``alone`` (vehicle -> alone on its route) serves those
        vehicles delay propagation."""
        pace, pace_var = self._paces(list(live))
        trips = [str(v.trip_id) for v in live]
        days = [v.service_date for v in live if v.service_date is not None]
        states = VehicleStates(
            now_s=np.array([v.observed_s for v in live]), along_m=np.array([v.along_m for v in live]),
            still_s=np.array([still_s(v) for v in live]), pace=pace, pace_var=pace_var,
            trip_lo=np.array([self.trip_rows[t][0] for t in trips], dtype=np.int64),
            day0_s=np.array([v.day0_s for v in live]),
            speed_mps=np.array([math.nan if v.speed_mps is None else v.speed_mps for v in live]))
        pred = predict_downstream(self.table, states, self.segments, remaining, departures)
        at = states.now_s[pred.state]
        situation = correctable(pred.situation, states.still_s[pred.state])
        fix = np.zeros(len(at))
        if labels is not None:
            fix = self.corrector.correction(situation, at, labels[:, 0].astype(np.int64), labels[:, 1],
                                            labels[:, 2])
            fix = np.where(situation >= 0, fix, 0.0)
        model = pred.arrival_s + fix
        lone = np.array([alone.get(v.vehicle_id, False) for v in live], dtype=bool)[pred.state]
        weight = delay_weights(model - at, at, blend[:, 0], blend[:, 1], blend[:, 2], blend[:, 3], lone)
        arrival, p10, p90 = monotone_along(pred.state, *blend_with_delay(pred.arrival_s, pred.p10_s, pred.p90_s,
                                                                         pred.delayprop_s, fix, at, weight))
        arrival = np.maximum(arrival, now_s)
        p10 = np.minimum(np.maximum(p10, now_s), arrival)
        p90 = np.maximum(p90, arrival)
        origin = np.array([v.next_stop == 0 for v in live], dtype=bool)
        if not (np.isfinite(arrival).all() and np.isfinite(p10).all() and np.isfinite(p90).all()
                and np.isfinite(pred.leave_s[origin]).all()):
            raise ValueError("non-finite arrival prediction")
        owners = [(trips[g], days[g], k)
                  for g, k in zip(pred.state.tolist(), pred.row.tolist(), strict=True)]
        keep = np.flatnonzero((situation >= 0) & (pred.arrival_s - at <= 1800.0)).tolist()
        out: Predictions = {
            o: (float(a), float(lo10), float(hi90))
            for o, a, lo10, hi90 in zip(owners, arrival.tolist(), p10.tolist(), p90.tolist(), strict=True)}
        for g, v in enumerate(live):  # not yet left the origin: its expected departure
            if v.next_stop == 0:
                leave = max(float(pred.leave_s[g]), now_s)
                out[(trips[g], days[g], self.trip_rows[trips[g]][0])] = (leave, leave, leave)
        block, runs = self._block_predictions(live, out)
        out.update(block)
        ahead = np.flatnonzero(model - at <= 1800.0).tolist()
        return _Batch(out, runs, [(owners[i], int(situation[i]), float(pred.arrival_s[i])) for i in keep],
                      [(owners[i], float(model[i] - at[i]), float(model[i]), float(pred.delayprop_s[i])) for i in ahead])

    def _remaining_times(self) -> RemainingTimes | None:
        """The kept times from a position to the next stop as a `RemainingTimes` model, None before any."""
        if not self._n_remaining:
            return None
        obs = self._remaining[:min(self._n_remaining, MAX_LABELS)]
        return RemainingTimes(obs[:, 0].astype(np.int64), obs[:, 1], obs[:, 2].astype(np.int64), obs[:, 3],
                              obs[:, 4])

    def _departure_model(self) -> RecencyMean | None:
        """Lateness at the origin (`telematics.downstream.departure_lateness`), None before any departure."""
        if not self._n_departures:
            return None
        obs = self._departures[:min(self._n_departures, MAX_LABELS)]
        return departure_lateness(obs[:, 0].astype(np.int64), obs[:, 1], obs[:, 2])

    def _block_predictions(self, fresh: Sequence[VehicleTrack], current: Predictions
                           ) -> tuple[Predictions, dict[tuple[str, date], tuple[VehicleTrack, int, float]]]:
        """The next trip of each vehicle's block: its schedule delayed by the current trip's lateness.

        The next trip starts at the later of its scheduled departure and the predicted end of
        the current trip plus `MIN_LAYOVER_S`; the end's uncertainty carries over. Also
        returns the `block_runs` entries of those trips.
        """
        runs: dict[tuple[str, date], tuple[VehicleTrack, int, float]] = {}
        out: Predictions = {}
        for v in fresh:
            assert v.trip_id is not None and v.service_date is not None
            nxt = self.block_next.get(v.trip_id)
            lo, hi = self.trip_rows[v.trip_id]
            end = current.get((v.trip_id, v.service_date, hi - 1))
            if nxt is None or end is None:
                continue
            nlo, nhi = self.trip_rows[nxt]
            carry = max(0.0, end[0] + MIN_LAYOVER_S - (v.day0_s + self.st_dep[nlo]))
            arrive = v.day0_s + self.st_arr[nlo:nhi] + carry
            spread_lo, spread_hi = (end[0] - end[1]) if carry > 0 else 0.0, end[2] - end[0]
            remaining_m = float(self.paths.stop_dist_m[v.trip_id][-1]) - v.along_m
            runs[(nxt, v.service_date)] = (v, hi - lo - v.next_stop, max(remaining_m, 0.0))
            for k, a in zip(range(nlo, nhi), arrive.tolist(), strict=True):
                out[(nxt, v.service_date, k)] = (a, a - spread_lo, a + spread_hi)
        return out, runs

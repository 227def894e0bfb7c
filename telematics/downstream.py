"""One prediction step shared by the evaluation replay and the live fleet.

`predict_downstream` takes a batch of vehicle states (one row per vehicle and moment:
time, distance along its trip, time stationary, filtered pace) and predicts the arrival
at every downstream stop of each vehicle's trip, applying the rules that the fixed
evaluation scores:

* a vehicle waiting at its trip's origin (still on the first segment, or stationary
  within ``LAYOVER_M`` of the first stop, wherever its layover spot is) leaves at the
  later of now and its expected departure: the scheduled one plus the lateness recently
  observed leaving that origin (`departure_lateness`);
* a vehicle stationary for ``HOLD_S`` ahead of schedule holds until its scheduled time;
* the time to the next stop comes from `RemainingTimes` by motion state (moving,
  stopped, stopped longer than ``LONG_STOP_S``, layover, and halted: still advancing
  between pings but reporting no speed; `motion_state`);
* downstream segments from `SegmentTimes` scaled by the vehicle's pace
  (`predict_arrivals`).

`blend_with_delay` then adds the causal residual correction of stopped and halted
vehicles (situations split by the reported speed, `motion_flags`) and blends with the
vehicle's current schedule delay (``DELAY_WEIGHT``), and `monotone_along` keeps each
vehicle's arrivals non-decreasing along its stops. `telematics.evaluate` and
`telematics.fleet` both call these, so the API serves what is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import isotonic_regression

from telematics.predict import (
    RecencyMean,
    RemainingTimes,
    ResidualCorrector,
    SegmentTimes,
    predict_arrivals,
)
from telematics.windows import MBTA_WINDOWS

__all__ = [
    "DELAY_WEIGHT",
    "EARLY_SHADE",
    "EARLY_SHADE_SCALE_S",
    "HALTED",
    "HALT_MPS",
    "HOLD_S",
    "LAYOVER_M",
    "LONG_STOP_S",
    "MOVING_OFF",
    "STOPPED_S",
    "Downstream",
    "StopTable",
    "VehicleStates",
    "blend_with_delay",
    "correctable",
    "departure_lateness",
    "early_shade",
    "in_layover",
    "monotone_along",
    "motion_flags",
    "motion_state",
    "predict_downstream",
    "still_for",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: A stationary vehicle this close to its trip's first stop (m, along the path) is in layover.
LAYOVER_M = 600.0
#: A vehicle that has not moved for this long (s) counts as stopped.
STOPPED_S = 30.0
#: A stop longer than this (s) is learned apart (long holds, not dwell at a stop or a light).
LONG_STOP_S = 180.0
#: A vehicle stopped this long (s) ahead of schedule is holding for its scheduled time.
HOLD_S = 120.0
#: Weight of the vehicle's current schedule delay (delay propagation) in the final blend.
DELAY_WEIGHT = 0.2
#: Where the served arrival sits between the median and the p10, by horizon: (horizon s,
#: share of the way to the p10), linear between, held beyond. Accuracy windows forgive a bus
#: later than announced more than an earlier one (a rider told too late misses it), by an
#: amount that grows with the horizon: the MBTA windows are symmetric up to 3 min and allow
#: 30 / 60 / 120 s more late than early at 3-6 / 6-12 / 12-30 min. A band's share is that
#: asymmetry / ``EARLY_SHADE_SCALE_S``, reached at the band's end (3, 6, 12 min; the last,
#: open-ended band's at its middle, 21 min): none where the window is symmetric, 0.15 from
#: 21 min (one share of 0.05 everywhere gave up 0-3 min accuracy and left 12-30 min accuracy
#: unused; 0.1 everywhere cost the 3-6 min MAE its 20 % margin over delay propagation).
EARLY_SHADE_SCALE_S = 800.0
EARLY_SHADE: tuple[tuple[float, float], ...] = tuple(
    (hi if k < len(MBTA_WINDOWS) - 1 else (lo + hi) / 2.0, (late + early) / EARLY_SHADE_SCALE_S)
    for k, (lo, hi, early, late) in enumerate(MBTA_WINDOWS))
#: Pseudo-count shrinking the observed departure lateness of an origin towards 0.
DEPARTURE_PRIOR = 1.0
#: Recency time constant (s) of the departure lateness.
DEPARTURE_RECENCY_S = 7200.0
#: Observed departure lateness is clipped to this range (s).
DEPARTURE_CLIP_S = (-300.0, 900.0)
#: Vehicles advancing less than this (m) between pings are stationary.
MOVED_M = 15.0
#: A vehicle reporting at most this speed (m/s) is halted (`motion_flags`).
HALT_MPS = 0.5
#: `motion_flags` bits (the lowest bits of `ResidualCorrector.situation` codes).
MOVING_OFF, HALTED = 1, 2
_TRIP_STRIDE_M = 1e7  # keeps each trip's distances apart in one sorted array


@dataclass(frozen=True)
class StopTable:
    """A feed's stop-time rows (trips contiguous, in stop order) as prediction needs them.

    Attributes
    ----------
    dist_m : ndarray
        Distance of each row's stop along its trip's path (m).
    sched_s : ndarray
        Scheduled arrival (s of service day).
    seg_code : ndarray of int
        `SegmentTimes` code of the segment from each row's stop to the next (-1 at a
        trip's last stop).
    trip_lo, trip_hi : ndarray of int
        First row and end row (exclusive) of each row's trip.
    """

    dist_m: FloatArray
    sched_s: FloatArray
    seg_code: IntArray
    trip_lo: IntArray
    trip_hi: IntArray
    sort_key: FloatArray  # trip's first row times a large stride plus distance (non-decreasing)

    @classmethod
    def build(cls, trip_ids: npt.ArrayLike, stop_ids: npt.ArrayLike, arrival_s: npt.ArrayLike,
              stop_dist_m: dict[str, FloatArray], model: SegmentTimes) -> StopTable:
        """From stop-time columns (``trip_id``, ``stop_id``, arrival s of day) and the trips'
        stop distances (`telematics.feed.TripPaths.stop_dist_m`); codes come from ``model``."""
        trips = np.asarray(trip_ids).astype(str)
        stops = np.asarray(stop_ids).astype(str)
        cuts = np.flatnonzero(np.r_[True, trips[1:] != trips[:-1], True])
        lengths = np.diff(cuts)
        lo = np.repeat(cuts[:-1], lengths).astype(np.int64)
        hi = np.repeat(cuts[1:], lengths).astype(np.int64)
        dist = np.full(len(trips), np.nan)
        for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
            known = stop_dist_m.get(str(trips[a]))
            if known is not None and len(known) == b - a:
                dist[a:b] = known
        code = np.r_[model.codes(stops[:-1], stops[1:]), -1] if len(stops) else np.zeros(0, np.int64)
        code = np.where(np.arange(len(trips)) == hi - 1, -1, code).astype(np.int64)
        return cls(dist, np.asarray(arrival_s, dtype=np.float64), code, lo, hi,
                   np.nan_to_num(dist) + lo * _TRIP_STRIDE_M)


@dataclass(frozen=True)
class VehicleStates:
    """A batch of vehicle states, one row per vehicle and moment.

    Attributes
    ----------
    now_s : ndarray
        Time of the state (epoch s); predictions use only what is known by then.
    along_m : ndarray
        Distance along the trip's path (m, causal match).
    still_s : ndarray
        Time the vehicle has been stationary (s, `still_for`).
    pace, pace_var : ndarray
        Filtered log pace and its variance (`telematics.predict.PaceFilter`).
    trip_lo : ndarray of int
        First stop-time row of the vehicle's trip in the `StopTable`.
    day0_s : ndarray
        Epoch s of the trip's service day start (GTFS time origin).
    speed_mps : ndarray, optional
        Reported speed at the ping (m/s, NaN when unknown); None: unknown for all, the
        motion states and situations then come from ``still_s`` alone.
    """

    now_s: FloatArray
    along_m: FloatArray
    still_s: FloatArray
    pace: FloatArray
    pace_var: FloatArray
    trip_lo: IntArray
    day0_s: FloatArray
    speed_mps: FloatArray | None = None


@dataclass(frozen=True)
class Downstream:
    """Predictions at downstream stops: rows grouped by vehicle state (``state``), in stop order.

    Per row: ``state`` (index into the `VehicleStates`), ``row`` (stop-time row of the
    stop), ``ahead`` (segments between the vehicle and the stop), ``arrival_s``, ``p10_s``,
    ``p90_s`` and ``delayprop_s`` (schedule plus current delay; epoch s), ``situation``
    (`ResidualCorrector` code). Per state: ``waiting`` (at the origin), ``before_start``
    (there before the scheduled departure), ``layover`` and ``leave_s`` (when it leaves its
    position, epoch s).
    """

    state: IntArray
    row: IntArray
    ahead: IntArray
    arrival_s: FloatArray
    p10_s: FloatArray
    p90_s: FloatArray
    delayprop_s: FloatArray
    situation: IntArray
    waiting: BoolArray
    before_start: BoolArray
    layover: BoolArray
    leave_s: FloatArray


def still_for(t: FloatArray, along_m: FloatArray, moved_m: float = MOVED_M) -> FloatArray:
    """Seconds a vehicle has been (nearly) stationary at each of its pings: 0 after a ping
    that advanced more than ``moved_m``, else the time since the start of the last such
    advancing interval."""
    moving = np.r_[True, np.diff(along_m) > moved_m]
    last = np.maximum.accumulate(np.where(moving, np.arange(len(along_m)), 0))
    anchor = np.maximum(last - 1, 0)
    return np.where(moving, 0.0, t - t[anchor])


def motion_state(layover: npt.ArrayLike, still_s: npt.ArrayLike, speed_mps: npt.ArrayLike | None = None
                 ) -> IntArray:
    """Motion state learned apart by `RemainingTimes`: 0 moving, 1 stopped, 3 stopped long
    (``LONG_STOP_S``), 2 in layover at the trip's origin, 4 halted (still advancing between
    pings but reporting at most ``HALT_MPS``: it has just stopped, at a stop or a light).

    ``speed_mps`` is the reported speed (m/s, NaN or None when unknown: no state 4).
    """
    still = np.asarray(still_s, dtype=np.float64)
    stopped = (still >= STOPPED_S).astype(np.int64) + 2 * (still >= LONG_STOP_S)
    state = np.where(np.asarray(layover, dtype=bool), 2, stopped).astype(np.int64)
    if speed_mps is not None:
        state = np.where((state == 0) & (motion_flags(still, speed_mps) & HALTED > 0), 4, state)
    return state


def motion_flags(still_s: npt.ArrayLike, speed_mps: npt.ArrayLike | None) -> IntArray:
    """What the reported speed (m/s, NaN when unknown) adds to the stationary time (s):
    ``HALTED`` (not stopped for ``STOPPED_S`` yet but at most ``HALT_MPS``) or
    ``MOVING_OFF`` (stopped for ``STOPPED_S`` but now faster than ``HALT_MPS``); 0 otherwise
    or when the speed is unknown."""
    still = np.asarray(still_s, dtype=np.float64)
    if speed_mps is None:
        return np.zeros(still.shape, dtype=np.int64)
    speed = np.broadcast_to(np.asarray(speed_mps, dtype=np.float64), still.shape)
    halted = (still < STOPPED_S) & (speed <= HALT_MPS)
    off = (still >= STOPPED_S) & (speed > HALT_MPS)
    return (HALTED * halted + MOVING_OFF * off).astype(np.int64)


def in_layover(next_stop: npt.ArrayLike, from_origin_m: npt.ArrayLike, still_s: npt.ArrayLike) -> BoolArray:
    """Whether vehicles are in layover at their origin: ``next_stop`` (index in the trip of
    the first stop ahead) at most 1, or stationary within ``LAYOVER_M`` of the first stop."""
    return np.asarray((np.asarray(next_stop) <= 1) | ((np.asarray(from_origin_m) < LAYOVER_M)
                                                      & (np.asarray(still_s) >= STOPPED_S)))


def departure_lateness(codes: npt.ArrayLike, known_at_s: npt.ArrayLike, lateness_s: npt.ArrayLike
                       ) -> RecencyMean:
    """Recency-weighted lateness of leaving each origin (keyed by the trip's first segment
    code): observed passing of a trip's second stop minus its scheduled time (s), known
    when it was seen; clipped to ``DEPARTURE_CLIP_S``."""
    values = np.clip(np.asarray(lateness_s, dtype=np.float64), *DEPARTURE_CLIP_S)
    return RecencyMean(np.asarray(codes, dtype=np.int64), known_at_s, values, DEPARTURE_RECENCY_S)


def predict_downstream(table: StopTable, states: VehicleStates, model: SegmentTimes,
                       remaining: RemainingTimes | None = None,
                       departures: RecencyMean | None = None) -> Downstream:
    """Arrival of each vehicle state at every downstream stop of its trip.

    Parameters
    ----------
    table : StopTable
        The feed's stop-time rows.
    states : VehicleStates
        The vehicles (one row per vehicle and moment).
    model : SegmentTimes
        Segment travel times (queried as known at each state's time).
    remaining : RemainingTimes, optional
        Time from a position to the next stop, by motion state.
    departures : RecencyMean, optional
        Lateness of leaving each origin (`departure_lateness`).

    Returns
    -------
    Downstream
        Predictions before `blend_with_delay` (epoch s).
    """
    now, lo = states.now_s, states.trip_lo
    hi = table.trip_hi[lo]
    dist, sched_s, code = table.dist_m, table.sched_s, table.seg_code
    d = np.maximum(states.along_m, dist[lo])  # before the first stop counts as at it
    key = table.sort_key
    nxt = np.minimum(np.searchsorted(key, d + lo * _TRIP_STRIDE_M, side="right"), hi)  # first stop ahead
    cur = np.maximum(nxt - 1, lo)  # current segment (stop cur -> cur + 1)
    count = np.where(nxt < hi, hi - 1 - cur, 0)
    group = np.repeat(np.arange(len(now)), count)
    first_row = np.repeat(np.cumsum(count) - count, count)
    seg = np.repeat(cur, count) + (np.arange(len(group)) - first_row)
    ahead = seg - cur[group]
    seg_len = dist[seg + 1] - dist[seg]
    frac = np.where(ahead == 0, np.clip((dist[seg + 1] - d[group]) / np.where(seg_len > 0, seg_len, 1.0),
                                        0.0, 1.0), 1.0)
    still = states.still_s
    day0 = states.day0_s
    sched0 = day0 + sched_s[lo]
    # waiting at the origin terminal (the first stops are often spread around a loop)
    layover = in_layover(nxt - lo, d - dist[lo], still)
    before_start = layover & (now < sched0)
    waiting = before_start | (layover & (still >= STOPPED_S))
    lateness = np.zeros(len(now))
    if departures is not None:
        mean, _, n = departures.query(code[lo], now)
        lateness = np.nan_to_num(mean) * n / (n + DEPARTURE_PRIOR)
    leave = np.where(waiting, np.maximum(sched0 + np.maximum(lateness, 0.0), now), now)
    # a vehicle stopped ahead of schedule holds until its scheduled time there (timepoints)
    nxt_c = np.minimum(cur + 1, hi - 1)
    span = dist[nxt_c] - dist[cur]
    share = np.clip((d - dist[cur]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    sched_pos = day0 + sched_s[cur] + share * (sched_s[nxt_c] - sched_s[cur])
    holding = ~waiting & (still >= HOLD_S) & (sched_pos > now)
    leave = np.where(holding, sched_pos, leave)
    at = now[group]
    estimate = model.estimate(code[seg], at, at - day0[group], sched_s[seg + 1] - sched_s[seg])
    moving_on = ~waiting[group]
    if remaining is not None:
        current = (ahead == 0) & moving_on
        motion = motion_state(layover, still, states.speed_mps)[group][current]
        to_next = remaining.estimate(code[seg[current]], (d[group] - dist[seg])[current], motion,
                                     at[current], (frac * estimate.mean_s)[current])
        frac[current] = to_next / np.maximum(estimate.mean_s[current], 1e-9)
    pred = predict_arrivals(group, at, leave[group], frac, estimate, ahead, states.pace[group],
                            states.pace_var[group])
    arrival, p10, p90 = pred.arrival_s, pred.p10_s, pred.p90_s
    stop = seg + 1
    delay = now - sched_pos
    delay = np.where(before_start, np.maximum(delay, 0.0), delay)
    situation = ResidualCorrector.situation(ahead, still[group], layover[group], arrival - at,
                                            motion_flags(still, states.speed_mps)[group])
    return Downstream(state=group, row=stop, ahead=ahead, arrival_s=arrival, p10_s=np.maximum(p10, at),
                      p90_s=p90, delayprop_s=day0[group] + sched_s[stop] + delay[group],
                      situation=situation, waiting=waiting, before_start=before_start, layover=layover,
                      leave_s=leave)


def correctable(situation: npt.ArrayLike, still_s: npt.ArrayLike) -> IntArray:
    """Situation codes of the predictions `ResidualCorrector` corrects (stopped vehicles,
    and halted ones: the ``HALTED`` bit of the code), -1 for the others."""
    code = np.asarray(situation, dtype=np.int64)
    keep = (np.asarray(still_s) >= STOPPED_S) | (code & HALTED > 0)
    return np.where(keep, code, -1).astype(np.int64)


def early_shade(horizon_s: npt.ArrayLike) -> FloatArray:
    """Share of the way from the median to the p10 at which the served arrival sits, for
    predictions ``horizon_s`` ahead (s; ``EARLY_SHADE``, linear between its points)."""
    at, share = zip(*EARLY_SHADE, strict=True)
    return np.interp(np.asarray(horizon_s, dtype=np.float64), at, share)


def blend_with_delay(arrival_s: FloatArray, p10_s: FloatArray, p90_s: FloatArray, delayprop_s: FloatArray,
                     correction_s: npt.ArrayLike, now_s: npt.ArrayLike, weight: npt.ArrayLike = DELAY_WEIGHT
                     ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Final arrival, p10 and p90 (epoch s): the prediction plus ``correction_s`` (residual
    correction of stopped vehicles, s), blended with delay propagation ``delayprop_s``
    (``weight`` of it, per prediction or one for all: `telematics.delay_blend.delay_weights`,
    ``DELAY_WEIGHT`` by default); the quantiles move with the blend. The served arrival is then
    shaded early by `early_shade` of its horizon (from ``now_s``, the vehicle's
    observation time, epoch s) of the way to the p10 (the quantiles stay)."""
    corrected = arrival_s + np.asarray(correction_s, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    blended = (1.0 - w) * corrected + w * delayprop_s
    shift = blended - arrival_s
    p10, p90 = p10_s + shift, p90_s + shift
    spread = np.where(np.isfinite(p10), np.maximum(blended - p10, 0.0), 0.0)
    # the shading belongs to the model's spread: none once delay propagation is served alone
    own = np.clip((1.0 - w) / (1.0 - DELAY_WEIGHT), 0.0, 1.0)
    return blended - own * early_shade(blended - np.asarray(now_s, dtype=np.float64)) * spread, p10, p90


def monotone_along(group: npt.ArrayLike, arrival_s: FloatArray, p10_s: FloatArray, p90_s: FloatArray
                   ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Arrivals made non-decreasing along each vehicle's stops (the pass after the blend).

    The residual correction and the blend with delay propagation are applied stop by stop,
    so a later stop can come out a few seconds earlier than the one before it, which a
    vehicle cannot do. Each group with such an inversion is replaced by its least-squares
    non-decreasing fit (isotonic regression, pool adjacent violators: the inverted arrivals
    meet at their mean); its quantiles move with it. Groups already in order are untouched.

    Parameters
    ----------
    group : array_like of int
        Group of each row (one vehicle state; contiguous, rows in stop order).
    arrival_s, p10_s, p90_s : ndarray
        Arrival and quantiles (epoch s).

    Returns
    -------
    tuple of ndarray
        Arrival, p10 and p90 (epoch s).
    """
    g = np.asarray(group)
    inverted = np.flatnonzero((np.diff(arrival_s) < 0.0) & (g[1:] == g[:-1]))
    if len(inverted) == 0:
        return arrival_s, p10_s, p90_s
    fitted = arrival_s.copy()
    cuts = np.flatnonzero(np.r_[True, g[1:] != g[:-1], True])  # group boundaries
    for n in np.unique(np.searchsorted(cuts, inverted, side="right") - 1).tolist():  # one isotonic fit each
        lo, hi = int(cuts[n]), int(cuts[n + 1])
        fitted[lo:hi] = isotonic_regression(arrival_s[lo:hi]).x
    shift = fitted - arrival_s
    return fitted, p10_s + shift, p90_s + shift

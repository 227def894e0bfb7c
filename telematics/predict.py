"""Arrival prediction at downstream stops.

Pure pieces, all taking arrays:

* `SegmentTimes` learns stop-to-stop travel times (passing to passing, so dwell at the
  downstream stop's predecessor is included) from detected arrivals: a recency kernel
  over today's observations, a time-of-day profile from other days (``add_history``) and
  the schedule as prior, scaled by the fleet's recent running-time ratio (shrunk towards
  the schedule while few segments are known: cold start). Estimates at a time ``t`` only
  use observations known at or before ``t``.
* `RemainingTimes` (time from a position to the next stop, by motion state) and
  `ResidualCorrector` (causal bias of stopped and halted vehicles' predictions) refine the
  current segment and the result (`telematics.downstream`).
* `PaceFilter` is a scalar Kalman filter of one vehicle's log pace (actual over expected
  segment time), mean-reverting between updates.
* `predict_arrivals` combines them: remaining part of the current segment plus the
  downstream segments, each scaled by the vehicle's pace whose effect decays with the
  number of segments ahead; p10/p90 from the segment variances and the pace variance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "PaceFilter",
    "Prediction",
    "RecencyMean",
    "RemainingTimes",
    "ResidualCorrector",
    "SegmentEstimate",
    "SegmentTimes",
    "predict_arrivals",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Z90 = 1.2815515655446004  # standard normal 90th percentile
#: Motion states `RemainingTimes` learns apart (`telematics.downstream.motion_state`).
MOTION_STATES = 8
#: Cap of the log of an effective observation count: a query long before the newest
#: observation (a position stamped in the future) must not overflow to inf (inf/inf is NaN).
MAX_LOG_COUNT = 600.0


class RecencyMean:
    """Recency-weighted means per key, queried causally (only values known by then).

    The weight of a value known at ``k`` for a query at ``t >= k`` is
    ``exp(-(t - k) / time_constant_s)``; values known after ``t`` are ignored.

    Parameters
    ----------
    codes : ndarray of int
        Key of each value.
    known_at_s : array_like
        When each value became known (epoch s).
    values : array_like
        The values.
    time_constant_s : float
        Recency time constant (s).
    """

    def __init__(self, codes: npt.ArrayLike, known_at_s: npt.ArrayLike, values: npt.ArrayLike,
                 time_constant_s: float):
        self._keys, code = np.unique(np.asarray(codes, dtype=np.int64), return_inverse=True)
        known = np.asarray(known_at_s, dtype=np.float64)
        vals = np.asarray(values, dtype=np.float64)
        order = np.lexsort((known, code))
        self._code = code[order]
        self._known = known[order]
        self._tau = float(time_constant_s)
        self._t_ref = float(known.max()) if len(known) else 0.0
        w = np.exp((self._known - self._t_ref) / self._tau)
        v = vals[order]
        self._cw = np.r_[0.0, np.cumsum(w)]
        self._cwx = np.r_[0.0, np.cumsum(w * v)]
        self._cwx2 = np.r_[0.0, np.cumsum(w * v * v)]
        self._base = float(known.min()) if len(known) else 0.0
        self._flat = self._code * 1e10 + (self._known - self._base)

    def query(self, codes: npt.ArrayLike, at_s: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Mean, variance and effective count of each key's values known at ``at_s``.

        Mean and variance are NaN where nothing is known.
        """
        raw = np.asarray(codes, dtype=np.int64)
        rank = np.searchsorted(self._keys, raw)
        n_keys = len(self._keys)
        if n_keys:
            found = (rank < n_keys) & (self._keys[np.minimum(rank, n_keys - 1)] == raw)
        else:  # nothing learnt yet (e.g. one vehicle that has not left an origin): no key is known
            found = np.zeros(raw.shape, dtype=bool)
        code = np.where(found, rank, -1).astype(np.float64)  # unknown keys match nothing
        at = np.asarray(at_s, dtype=np.float64)
        hi = np.searchsorted(self._flat, code * 1e10 + (at - self._base), side="right")
        lo = np.searchsorted(self._flat, code * 1e10 - 1.0, side="right")
        sw = self._cw[hi] - self._cw[lo]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = (self._cwx[hi] - self._cwx[lo]) / sw
            var = np.maximum((self._cwx2[hi] - self._cwx2[lo]) / sw - mean**2, 0.0)
            count = np.where(sw > 0, np.exp(np.minimum(np.log(np.where(sw > 0, sw, 1.0))
                                                       + (self._t_ref - at) / self._tau, MAX_LOG_COUNT)), 0.0)
        return mean, var, count


class RemainingTimes:
    """Time from a position on a segment to the segment's end stop, learned from other runs.

    Positions are binned by distance from the segment's start stop; each observation is
    the time a vehicle took from a ping in that bin to passing the next stop. Estimates
    are recency-weighted geometric means known at the query time, shrunk towards a prior
    (the distance share of the segment's estimated time).

    Parameters
    ----------
    codes, offset_m, stopped, known_at_s, remaining_s : array_like
        Segment code, distance past the segment's start stop (m), whether the vehicle was
        stationary, when the observation became known (epoch s) and the observed time to
        the next stop (s). ``stopped`` is a state below ``MOTION_STATES`` (e.g. moving,
        stopped, layover, halted).
    bin_m : float
        Position bin width (m).
    recency_s : float
        Recency time constant (s).
    prior_weight : float
        Pseudo-count of the prior.
    """

    def __init__(self, codes: npt.ArrayLike, offset_m: npt.ArrayLike, stopped: npt.ArrayLike,
                 known_at_s: npt.ArrayLike, remaining_s: npt.ArrayLike, *, bin_m: float = 50.0,
                 recency_s: float = 3600.0, prior_weight: float = 0.5):
        self.bin_m = bin_m
        self.prior_weight = prior_weight
        key = self._key(codes, offset_m, stopped)
        self._stats = RecencyMean(key, known_at_s, np.log(np.maximum(remaining_s, 1.0)), recency_s)

    def _key(self, codes: npt.ArrayLike, offset_m: npt.ArrayLike, stopped: npt.ArrayLike
             ) -> npt.NDArray[np.int64]:
        bins = np.clip(np.asarray(offset_m, float) // self.bin_m, 0, 255).astype(np.int64)
        flag = np.asarray(stopped, dtype=np.int64)
        return (np.asarray(codes, dtype=np.int64) * MOTION_STATES + flag) * 256 + bins

    def estimate(self, codes: npt.ArrayLike, offset_m: npt.ArrayLike, stopped: npt.ArrayLike,
                 at_s: npt.ArrayLike, prior_s: npt.ArrayLike) -> FloatArray:
        """Expected time (s) to the next stop from each position, known at ``at_s``.

        ``stopped`` is a small int state learned apart (e.g. 0 moving, 1 stopped, 2 in
        layover at the origin).
        """
        mean, var, count = self._stats.query(self._key(codes, offset_m, stopped), at_s)
        prior = np.log(np.maximum(np.asarray(prior_s, float), 1.0))
        n0 = self.prior_weight
        blended = (n0 * prior + count * np.nan_to_num(mean)) / (n0 + count)
        spread = np.where(count > 0, np.nan_to_num(var) * count / (n0 + count), 0.0)
        return np.exp(blended + 0.5 * spread)


@dataclass(frozen=True)
class ResidualCorrector:
    """Causal bias correction of predictions by situation, learned from matured predictions.

    A situation code combines the number of segments ahead, how long the vehicle has been
    stationary, whether it is still on the trip's first segment (layover) and flags of its
    reported speed (halted, or moving off after a stop). For each
    situation the recency-weighted mean of ``actual - predicted`` (s, clipped) of the
    predictions whose actual arrival was already known is added, shrunk towards 0.

    Parameters
    ----------
    time_constant_s : float
        Recency time constant (s).
    prior_count : float
        Shrinkage pseudo-count.
    clip_s : float
        Residuals are clipped to +-``clip_s`` before averaging.
    """

    time_constant_s: float = 3600.0
    prior_count: float = 20.0
    clip_s: float = 600.0

    @staticmethod
    def situation(steps_ahead: npt.ArrayLike, still_s: npt.ArrayLike, first_segment: npt.ArrayLike,
                  horizon_s: npt.ArrayLike, motion_flags: npt.ArrayLike = 0) -> npt.NDArray[np.int64]:
        """Situation code of each prediction; ``motion_flags`` (0-3, e.g. from the reported
        speed) are its two lowest bits."""
        ahead = np.digitize(np.asarray(steps_ahead, float), [1, 2, 4, 8, 16])
        still = np.digitize(np.asarray(still_s, float), [1, 60, 180, 600])
        horizon = np.digitize(np.asarray(horizon_s, float), [180, 360, 720, 1200])
        first = np.asarray(first_segment, dtype=bool).astype(np.int64)
        code = ((ahead * 5 + still) * 5 + horizon) * 2 + first
        return (code * 4 + np.asarray(motion_flags, dtype=np.int64)).astype(np.int64)

    def correction(self, situation: npt.ArrayLike, at_s: npt.ArrayLike,
                   label_situation: npt.ArrayLike, label_known_s: npt.ArrayLike,
                   residual_s: npt.ArrayLike) -> FloatArray:
        """Correction (s) to add to predictions in ``situation`` made at ``at_s``.

        ``label_*`` describe earlier predictions whose actual arrival became known at
        ``label_known_s`` with ``residual_s = actual - predicted``.
        """
        values = np.clip(np.asarray(residual_s, float), -self.clip_s, self.clip_s)
        stats = RecencyMean(label_situation, label_known_s, values, self.time_constant_s)
        mean, _, count = stats.query(situation, at_s)
        return np.where(count > 0, np.nan_to_num(mean) * count / (count + self.prior_count), 0.0)


@dataclass(frozen=True)
class SegmentEstimate:
    """Segment travel time estimates (arrays, seconds)."""

    mean_s: FloatArray
    std_s: FloatArray
    weight: FloatArray  # effective number of today's observations behind the estimate


@dataclass
class SegmentTimes:
    """Stop-to-stop travel times learned from observed passings.

    Parameters
    ----------
    recency_s : float
        Time constant (s) of the exponential recency kernel over today's observations.
    prior_weight : float
        Pseudo-count of the prior (schedule or time-of-day profile) against the recency
        kernel's effective observation count.
    tod_bin_s : int
        Bin width (s) of the time-of-day profile built from other days.
    fleet_prior : float
        Pseudo-count (effective observations) shrinking the fleet's running-time ratio
        towards the schedule: the first observations of a day are few and biased towards
        quick segments, so alone they would make every unobserved segment too fast.
    """

    recency_s: float = 7200.0
    prior_weight: float = 0.3
    tod_bin_s: int = 900
    fleet_prior: float = 20.0
    _keys: dict[str, int] = field(default_factory=dict)
    _obs: list[tuple[IntArray, FloatArray, FloatArray, FloatArray]] = field(default_factory=list)
    _index: tuple[FloatArray, ...] | None = None
    _profile: tuple[FloatArray, FloatArray] | None = None

    def codes(self, from_stop: npt.ArrayLike, to_stop: npt.ArrayLike) -> IntArray:
        """Integer code of each ``(from_stop, to_stop)`` segment (new ones are added)."""
        text = pd.Series(np.asarray(from_stop, dtype=str)) + "\x1f" + pd.Series(
            np.asarray(to_stop, dtype=str))
        uniques, inverse = np.unique(text.to_numpy(dtype=str), return_inverse=True)
        mapped = np.array([self._keys.setdefault(u, len(self._keys)) for u in uniques],
                          dtype=np.int64)
        return mapped[inverse] if len(mapped) else np.zeros(0, dtype=np.int64)

    def update(self, codes: IntArray, known_at_s: npt.ArrayLike, duration_s: npt.ArrayLike,
               scheduled_s: npt.ArrayLike) -> None:
        """Add today's observed segment times.

        Parameters
        ----------
        codes : ndarray of int
            Segment codes from `codes`.
        known_at_s : array_like
            When each observation became known (epoch s); estimates at earlier times ignore it.
        duration_s, scheduled_s : array_like
            Observed and scheduled travel time (s).
        """
        self._obs.append((np.asarray(codes, dtype=np.int64), np.asarray(known_at_s, float),
                          np.asarray(duration_s, float), np.asarray(scheduled_s, float)))
        self._index = None

    def add_history(self, codes: IntArray, tod_s: npt.ArrayLike, duration_s: npt.ArrayLike) -> None:
        """Build the time-of-day profile from other days' segment times (tod in s of day)."""
        nbins = 86400 * 2 // self.tod_bin_s  # service days run past 24:00
        ncode = max(len(self._keys), int(np.max(codes, initial=-1)) + 1)
        if ncode == 0:
            return
        sums = np.zeros((ncode, nbins))
        counts = np.zeros((ncode, nbins))
        b = np.clip(np.asarray(tod_s, float) // self.tod_bin_s, 0, nbins - 1).astype(np.int64)
        np.add.at(sums, (codes, b), np.log(np.maximum(np.asarray(duration_s, float), 1.0)))
        np.add.at(counts, (codes, b), 1.0)
        kernel = np.array([0.25, 0.5, 0.25])
        for arr in (sums, counts):
            arr[:] = np.apply_along_axis(np.convolve, 1, arr, kernel, mode="same")
        self._profile = (sums, counts)

    def _build(self) -> tuple[FloatArray, ...]:
        if self._index is None:
            if self._obs:
                code, known, dur, sched = (np.concatenate(x) for x in zip(*self._obs, strict=True))
            else:
                code, known, dur, sched = (np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))
            order = np.lexsort((known, code))
            code, known, dur, sched = code[order], known[order], dur[order], sched[order]
            t_ref = float(known.max()) if len(known) else 0.0
            w = np.exp((known - t_ref) / self.recency_s)
            logd = np.log(np.maximum(dur, 1.0))
            ratio = logd - np.log(np.maximum(sched, 1.0))
            cum = [np.r_[0.0, np.cumsum(x)] for x in (w, w * logd, w * logd**2)]
            korder = np.argsort(known, kind="stable")
            gcum = [np.r_[0.0, np.cumsum(x)] for x in (w[korder], (w * ratio)[korder])]
            self._index = (code.astype(np.float64), known, *cum, known[korder], *gcum,
                           np.array([t_ref]))
        return self._index

    def fleet_log_ratio(self, at_s: npt.ArrayLike) -> FloatArray:
        """Recency-weighted mean log(observed/scheduled) over all segments known at ``at_s``,
        shrunk towards 0 (the schedule) with ``fleet_prior`` pseudo-observations."""
        idx = self._build()
        known_sorted, gw, gr, t_ref = idx[5], idx[6], idx[7], float(idx[8][0])
        at = np.asarray(at_s, float)
        pos = np.searchsorted(known_sorted, at, side="right")
        w = gw[pos]
        mean = np.where(w > 0, gr[pos] / np.where(w > 0, w, 1.0), 0.0)
        count = w * np.exp(np.minimum((t_ref - at) / self.recency_s, 700.0))  # effective observations
        return mean * count / np.maximum(count + self.fleet_prior, 1e-12)

    def estimate(self, codes: IntArray, at_s: npt.ArrayLike, tod_s: npt.ArrayLike,
                 scheduled_s: npt.ArrayLike) -> SegmentEstimate:
        """Travel time of segments as known at times ``at_s``.

        Parameters
        ----------
        codes : ndarray of int
            Segment codes.
        at_s : array_like
            Query times (epoch s); only observations known by then are used.
        tod_s : array_like
            Query time of service day (s), for the time-of-day profile.
        scheduled_s : array_like
            Scheduled segment times (s), the prior when no profile exists.

        Returns
        -------
        SegmentEstimate
            Mean and standard deviation (s) of the log-normal blend of prior and observations.
        """
        at = np.asarray(at_s, dtype=np.float64)
        sched = np.maximum(np.asarray(scheduled_s, dtype=np.float64), 1.0)
        code, known, cw, cwx, cwx2, _, _, _, t_ref_arr = self._build()
        t_ref = float(t_ref_arr[0])
        prior = np.log(sched) + self.fleet_log_ratio(at)
        prior_var = np.full(len(at), 0.35**2)
        if self._profile is not None:
            sums, counts = self._profile
            b = np.clip(np.asarray(tod_s, float) // self.tod_bin_s, 0, sums.shape[1] - 1).astype(int)
            inside = codes < sums.shape[0]
            c = np.where(inside, codes, 0)
            n = np.where(inside, counts[c, b], 0.0)
            has = n > 0.5
            prior = np.where(has, sums[c, b] / np.maximum(n, 1e-9), prior)
            prior_var = np.where(has, 0.25**2, prior_var)
        key = codes.astype(np.float64) * 1e10
        base = float(known.min()) if len(known) else 0.0
        flat = code * 1e10 + (known - base)
        hi = np.searchsorted(flat, key + (at - base), side="right")
        lo = np.searchsorted(flat, key - 1.0, side="right")
        sw = cw[hi] - cw[lo]
        swx = cwx[hi] - cwx[lo]
        swx2 = cwx2[hi] - cwx2[lo]
        with np.errstate(divide="ignore", invalid="ignore"):
            weight = np.where(sw > 0, np.exp(np.minimum(np.log(np.where(sw > 0, sw, 1.0)) + (t_ref - at)
                                                        / self.recency_s, MAX_LOG_COUNT)), 0.0)
            mean_obs = np.where(sw > 0, swx / sw, prior)
            var_obs = np.where(sw > 0, np.maximum(swx2 / sw - mean_obs**2, 0.0), prior_var)
        n0 = self.prior_weight
        mean_log = (n0 * prior + weight * mean_obs) / (n0 + weight)
        spread = (n0 * prior_var + weight * (var_obs + 0.02)) / (n0 + weight)
        mean_s = np.exp(mean_log + 0.5 * spread)
        return SegmentEstimate(mean_s=mean_s, std_s=mean_s * np.sqrt(np.expm1(spread)),
                               weight=weight)


@dataclass(frozen=True)
class PaceFilter:
    """Kalman filter of a vehicle's log pace (log of actual over expected segment time).

    Parameters
    ----------
    reversion : float
        Multiplier of the state per segment travelled (the pace reverts to the norm).
    process_var : float
        Process noise added per update (log units squared).
    obs_var : float
        Observation noise of one segment's log ratio.
    """

    reversion: float = 0.9
    process_var: float = 0.002
    obs_var: float = 0.5

    def run(self, log_ratio: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Filter one vehicle's successive segment log ratios.

        Returns
        -------
        state, variance : ndarray
            Filtered log pace and its variance after each observation.
        """
        z = np.asarray(log_ratio, dtype=np.float64)
        x, p = 0.0, 0.05
        state = np.empty(len(z))
        var = np.empty(len(z))
        for i, zi in enumerate(z):
            x, p = self.reversion * x, self.reversion**2 * p + self.process_var
            gain = p / (p + self.obs_var)
            x, p = x + gain * (zi - x), (1.0 - gain) * p
            state[i], var[i] = x, p
        return state, var


@dataclass(frozen=True)
class Prediction:
    """Predicted arrivals (arrays aligned with the queried stops, epoch seconds)."""

    arrival_s: FloatArray
    p10_s: FloatArray
    p90_s: FloatArray


def predict_arrivals(group: IntArray, now_s: FloatArray, start_s: FloatArray,
                     first_fraction: FloatArray, seg: SegmentEstimate, steps_ahead: IntArray,
                     pace: FloatArray, pace_var: FloatArray, *, reversion: float = 0.9) -> Prediction:
    """Arrival at each downstream stop from the segments leading to it.

    The rows are the segments ahead of each vehicle, in order, grouped by ``group`` (one
    group per vehicle/prediction time, contiguous); the arrival at the end of row ``i``
    is ``start + sum`` of the segment times of its group up to ``i``.

    Parameters
    ----------
    group : ndarray of int, shape (r,)
        Group id of each row (contiguous, increasing).
    now_s : ndarray, shape (r,)
        Prediction time (epoch s) of the row's group.
    start_s : ndarray, shape (r,)
        Time the vehicle leaves its current position (now, or the scheduled departure for
        a trip not yet started), epoch s.
    first_fraction : ndarray, shape (r,)
        Share of each segment still to travel (1 except the current segment).
    seg : SegmentEstimate
        Segment times (s) for the rows.
    steps_ahead : ndarray of int, shape (r,)
        Segments between the vehicle and the row (0 = current segment).
    pace, pace_var : ndarray, shape (r,)
        The vehicle's filtered log pace and its variance.
    reversion : float
        Decay of the pace's effect per segment ahead.

    Returns
    -------
    Prediction
        Arrival, p10 and p90 at each row's downstream stop (epoch s).
    """
    if len(group) == 0:  # no segment ahead of any vehicle (all at their trips' last stops)
        empty = np.zeros(0)
        return Prediction(arrival_s=empty, p10_s=empty.copy(), p90_s=empty.copy())
    influence = reversion ** steps_ahead.astype(np.float64)
    factor = np.exp(pace * influence)
    t = seg.mean_s * factor * first_fraction
    sd = seg.std_s * factor * first_fraction
    first = np.r_[True, group[1:] != group[:-1]]
    starts = np.flatnonzero(first)
    cum = np.cumsum(t)
    cum -= np.repeat(cum[starts] - t[starts], np.diff(np.r_[starts, len(t)]))
    # segment errors are positively correlated: add standard deviations half linearly
    cvar = np.cumsum(sd**2)
    cvar -= np.repeat(cvar[starts] - sd[starts] ** 2, np.diff(np.r_[starts, len(t)]))
    csd = np.cumsum(sd)
    csd -= np.repeat(csd[starts] - sd[starts], np.diff(np.r_[starts, len(t)]))
    total_sd = np.sqrt(0.5 * cvar + 0.5 * csd**2 * 0.3 + pace_var * (cum * influence) ** 2)
    arrival = start_s + cum
    return Prediction(arrival_s=arrival, p10_s=np.maximum(arrival - Z90 * total_sd, now_s),
                      p90_s=arrival + Z90 * total_sd)



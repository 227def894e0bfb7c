"""How much of delay propagation the served arrival takes, learnt from matured predictions.

The served arrival is ``(1 - w) x model + w x delay propagation`` (`telematics.downstream.
blend_with_delay`). The model's edge over delay propagation comes from what the platform has
learnt of the segments ahead (other vehicles' recent times, dwell and departure habits); on a
feed where that tells little (one bus, a network whose delays wander like a random walk),
delay propagation is the better guess and the model should step aside. `delay_weights`
chooses ``w`` per prediction, causally: for each horizon band, the recency-weighted mean
absolute error that each candidate weight would have had on the predictions whose actual
arrival is already known, and a heavier weight only once it is clearly better (by
``MARGIN``) on enough of them (``MIN_LABELS``, effective count); else the default
``DEFAULT_WEIGHT``. Pure functions: the live fleet and the evaluation feed them the same
labels.

A vehicle alone on its route (no other vehicle's running time on a segment of it learnt within
``ALONE_S``: one bus in a feed, a route run by one bus, or a route whose buses have only just
started reporting) has nothing ahead of it but its own earlier passings: measured
on each of WMATA's 31 buses replayed alone, the model's MAE was above delay propagation's in
25 of 122 horizon buckets (13 buses), against 5 of 72 for pairs of buses of one route and none
for a whole route. Such a vehicle is served delay propagation itself (`alone_on_route`,
weight 1.0): never worse than the honest baseline, at the cost of the model's average edge
there (on those 31 buses its MAE was 3-5 % below delay propagation's, and within the MBTA
windows falls from 0.831 to 0.796). Starting such a vehicle on delay propagation and giving
the model back once its own matured predictions show it better did not work: a lone bus
matures too few predictions in a band to tell within a day, and what it did switch left 3
buckets worse again.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from telematics.downstream import DELAY_WEIGHT
from telematics.predict import RecencyMean
from telematics.windows import MBTA_WINDOWS

__all__ = ["ALONE_S", "BAND_EDGES_S", "DEFAULT_WEIGHT", "LABEL_EVERY_S", "MARGIN", "MIN_LABELS", "TIME_CONSTANT_S",
           "WEIGHTS", "alone_on_route", "delay_weights"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Delay-propagation weight used until the labels say otherwise (WMATA's fleet: 0.2 everywhere).
DEFAULT_WEIGHT = DELAY_WEIGHT
#: Candidate weights, the default first.
WEIGHTS = np.array([DEFAULT_WEIGHT, 0.4, 0.6, 0.8, 1.0])
#: Horizon band edges (s): 0-3, 3-6, 6-12, 12+ min (the MBTA windows' buckets).
BAND_EDGES_S = np.array([low for low, *_ in MBTA_WINDOWS[1:]], dtype=np.float64)
#: Every prediction is kept as a label (once its stop is passed) at most this often (s), live and in the eval.
LABEL_EVERY_S = 120.0
#: Effective number of matured predictions in a band before a weight other than the default is used.
MIN_LABELS = 500.0
#: A candidate must have a mean absolute error this much (share) below the default's.
MARGIN = 0.10
#: Recency time constant (s) of the errors.
TIME_CONSTANT_S = 7200.0
#: A vehicle whose route no other vehicle's running time was learnt on for this long (s) is served delay propagation.
ALONE_S = 3600.0


def alone_on_route(seen_route: npt.ArrayLike, seen_vehicle: npt.ArrayLike, seen_s: npt.ArrayLike,
                   route: npt.ArrayLike, vehicle: npt.ArrayLike, at_s: npt.ArrayLike,
                   window_s: float = ALONE_S) -> BoolArray:
    """Whether each query vehicle is alone on its route: nothing seen of another vehicle on the
    same route at most ``window_s`` before ``at_s`` (what is seen after ``at_s`` is not known
    yet). The live fleet and the evaluation pass the segment running times they learnt (route,
    vehicle and when each became known), so a route counts as run by others once the model
    has something of theirs to go on.

    Parameters
    ----------
    seen_route, seen_vehicle : array_like of int, shape (m,)
        Route and vehicle codes of what is known (without a route: any code no query uses,
        e.g. -1).
    seen_s : array_like, shape (m,)
        Their times (epoch s).
    route, vehicle : array_like of int, shape (n,)
        Route and vehicle code of each query.
    at_s : array_like, shape (n,)
        Query times (epoch s).
    window_s : float
        How far back what is seen of another vehicle counts (s).

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    r = np.asarray(seen_route, dtype=np.int64)
    v = np.asarray(seen_vehicle, dtype=np.int64)
    t = np.asarray(seen_s, dtype=np.float64)
    qr = np.asarray(route, dtype=np.int64)
    qv = np.asarray(vehicle, dtype=np.int64)
    qt = np.asarray(at_s, dtype=np.float64)
    if len(t) == 0:
        return np.ones(len(qt), dtype=bool)
    order = np.lexsort((t, r))
    r, v, t = r[order], v[order], t[order]
    base = float(t.min())
    span = float(t.max()) - base + 1.0
    key = (r - r.min()) * span + (t - base)
    i = np.searchsorted(key, (qr - r.min()) * span + np.clip(qt - base, -0.5, span - 1.0), side="right") - 1
    on_route = (i >= 0) & (r[np.maximum(i, 0)] == qr) & (qt >= base)
    # the latest of another vehicle: the last one, or the one before the query vehicle's own run
    change = np.r_[True, (r[1:] != r[:-1]) | (v[1:] != v[:-1])]
    run_start = np.maximum.accumulate(np.where(change, np.arange(len(t)), 0))
    i = np.maximum(i, 0)
    j = np.where(v[i] != qv, i, run_start[i] - 1)
    other = on_route & (j >= 0) & (r[np.maximum(j, 0)] == qr) & (qt - t[np.maximum(j, 0)] <= window_s)
    return ~other


def delay_weights(horizon_s: npt.ArrayLike, at_s: npt.ArrayLike, label_horizon_s: npt.ArrayLike,
                  label_known_s: npt.ArrayLike, model_error_s: npt.ArrayLike, delay_error_s: npt.ArrayLike,
                  alone: npt.ArrayLike | None = None) -> FloatArray:
    """Delay-propagation weight of each prediction.

    Parameters
    ----------
    horizon_s : array_like, shape (n,)
        Horizon of each prediction (s ahead of its vehicle's observation).
    at_s : array_like, shape (n,)
        When each prediction is made (epoch s): only labels known by then count.
    label_horizon_s : array_like, shape (m,)
        Horizon (s) of each earlier prediction whose actual arrival is known.
    label_known_s : array_like, shape (m,)
        When that actual arrival became known (epoch s).
    model_error_s, delay_error_s : array_like, shape (m,)
        The model's (before the blend) and delay propagation's error on it (predicted minus
        actual, s).
    alone : array_like of bool, shape (n,), optional
        Predictions of a vehicle alone on its route (`alone_on_route`): weight 1.0.

    Returns
    -------
    ndarray, shape (n,)
        The weight, one of `WEIGHTS`.
    """
    horizon = np.asarray(horizon_s, dtype=np.float64)
    n = len(horizon)
    learnt = np.full(n, DEFAULT_WEIGHT)
    em = np.asarray(model_error_s, dtype=np.float64)
    ed = np.asarray(delay_error_s, dtype=np.float64)
    ok = np.isfinite(em) & np.isfinite(ed) & np.isfinite(np.asarray(label_known_s, dtype=np.float64))
    if n and ok.any():
        k = len(WEIGHTS)
        band = np.digitize(np.asarray(label_horizon_s, dtype=np.float64)[ok], BAND_EDGES_S)
        errors = np.abs((1.0 - WEIGHTS)[None, :] * em[ok, None] + WEIGHTS[None, :] * ed[ok, None])
        codes = band[:, None] * k + np.arange(k)[None, :]
        known = np.repeat(np.asarray(label_known_s, dtype=np.float64)[ok], k)
        stats = RecencyMean(codes.ravel(), known, errors.ravel(), TIME_CONSTANT_S)
        query_band = np.digitize(horizon, BAND_EDGES_S)
        at = np.repeat(np.asarray(at_s, dtype=np.float64), k)
        mean, _, count = stats.query((query_band[:, None] * k + np.arange(k)[None, :]).ravel(), at)
        mean, count = mean.reshape(n, k), count.reshape(n, k)
        best = np.argmin(np.where(np.isfinite(mean), mean, np.inf), axis=1)
        rows = np.arange(n)
        better = (count[rows, 0] >= MIN_LABELS) & (mean[rows, best] < (1.0 - MARGIN) * mean[rows, 0])
        learnt = np.where(better, WEIGHTS[best], DEFAULT_WEIGHT)
    return learnt if alone is None else np.where(np.asarray(alone, dtype=bool), 1.0, learnt)

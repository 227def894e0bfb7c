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
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from telematics.downstream import DELAY_WEIGHT
from telematics.predict import RecencyMean
from telematics.windows import MBTA_WINDOWS

__all__ = ["BAND_EDGES_S", "DEFAULT_WEIGHT", "LABEL_EVERY_S", "MARGIN", "MIN_LABELS", "TIME_CONSTANT_S", "WEIGHTS",
           "delay_weights"]

FloatArray = npt.NDArray[np.float64]

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


def delay_weights(horizon_s: npt.ArrayLike, at_s: npt.ArrayLike, label_horizon_s: npt.ArrayLike,
                  label_known_s: npt.ArrayLike, model_error_s: npt.ArrayLike, delay_error_s: npt.ArrayLike
                  ) -> FloatArray:
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

    Returns
    -------
    ndarray, shape (n,)
        The weight, one of `WEIGHTS`.
    """
    horizon = np.asarray(horizon_s, dtype=np.float64)
    n = len(horizon)
    em = np.asarray(model_error_s, dtype=np.float64)
    ed = np.asarray(delay_error_s, dtype=np.float64)
    ok = np.isfinite(em) & np.isfinite(ed) & np.isfinite(np.asarray(label_known_s, dtype=np.float64))
    if n == 0 or not ok.any():
        return np.full(n, DEFAULT_WEIGHT)
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
    return np.where(better, WEIGHTS[best], DEFAULT_WEIGHT)

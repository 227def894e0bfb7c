"""Reference predictors for the congestion evaluation: how low can a hidden-speed MAE go?

They answer "is the target reachable?" on a segment-graph data set, scored on exactly the
hidden values of :func:`traffic.evaluate.evaluate_congestion` (same seed, same visible
subsets). None is an estimator the platform could run: each is given *more* information
than the methodology allows.

* ``linear_observed_past``: the same kind of LAD linear predictor fitted on TRAIN but given
  only what the methodology gives (each segment's earlier *visible* values): the segment's
  last visible value and exponentially weighted means (weights 0.5, 0.3 per visible
  value) of them, the mean change of its visible neighbours against their own weighted
  means (a Kalman-style innovation propagated over the graph), against free flow, and the
  free-flow speed. The strongest *temporal-only* causal predictor we found under the
  methodology (the estimator's learned model, :mod:`traffic.learned`, which also uses the
  concurrent readings of correlated segments, is stronger).
* ``persistence_full_past``: every segment's value at the previous timestamp, as if every
  segment had been visible at every earlier timestamp (the methodology hides half).
* ``linear_full_past``: a least-absolute-deviation linear predictor fitted on TRAIN (its
  own seeded hidden subsets) over the segment's last 6 values (again every earlier value
  visible), the mean change of its visible neighbours since their previous value and since
  the mean of their last 3, and the free-flow speed. A strong causal predictor with full
  information about the past.
* ``two_sided_mean``: non-causal, the mean of the segment's values just before and just
  after the timestamp.
* ``two_sided_median``: non-causal, the median of the 3 values before and the 3 after.
* ``noise_floor``: the MAE of a perfect estimate of the underlying speed when each value
  carries independent noise, ``sigma * sqrt(2 / pi)`` (Gaussian), with ``sigma^2`` the
  nugget of the test speeds' temporal variogram, ``2 g(1) - g(2)``.

Speeds in km/h.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from traffic.segment_graph import SegmentGraph, SpeedTable

__all__ = ["LAGS", "reference_predictors"]

LAGS = 6  # own past values used by the linear reference
FloatArray = npt.NDArray[np.float64]


def _masks(n_times: int, n: int, observed_frac: float, seed: int) -> npt.NDArray[np.bool_]:
    """Visible segments per timestamp, drawn exactly as the evaluation draws them."""
    rng = np.random.default_rng(seed)
    k = min(max(round(observed_frac * n), 1), n - 1)  # as traffic.evaluate: one seen, one hidden at least
    visible = np.zeros((n_times, n), dtype=bool)
    for t in range(n_times):
        visible[t, rng.permutation(n)[:k]] = True
    return visible


def _fill(x: FloatArray, fallback: FloatArray) -> FloatArray:
    """Missing values carried forward from the previous timestamp (``fallback`` before the first)."""
    out = x.copy()
    prev = fallback.astype(np.float64)
    for t in range(len(out)):
        row = out[t]
        row[~np.isfinite(row)] = prev[~np.isfinite(row)]
        prev = row
    return out


def _features(x: FloatArray, visible: npt.NDArray[np.bool_], w: FloatArray,
              freeflow: FloatArray) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Design rows for hidden (t >= LAGS, segment) pairs: residual features and target around x[t-1]."""
    rows, target, tt, ss = [], [], [], []
    for t in range(LAGS, len(x)):
        vis = visible[t]
        base = x[t - 1]
        wv = w * vis[None, :]
        ws = np.maximum(wv.sum(axis=1), 1e-12)
        d1 = (wv @ np.where(vis, x[t] - x[t - 1], 0.0)) / ws
        d3 = (wv @ np.where(vis, x[t] - x[t - 3:t].mean(axis=0), 0.0)) / ws
        f = np.column_stack([x[t - j] - base for j in range(2, LAGS + 1)]
                            + [d1, d3, freeflow - base, np.ones(len(base))])
        hid = np.nonzero(~vis)[0]
        rows.append(f[hid])
        target.append(x[t, hid] - base[hid])
        tt.append(np.full(len(hid), t))
        ss.append(hid)
    return np.concatenate(rows), np.concatenate(target), np.concatenate(tt), np.concatenate(ss)


def _observed_features(x: FloatArray, visible: npt.NDArray[np.bool_], w: FloatArray,
                       freeflow: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Per (t, segment): features, base (weighted mean 0.5) and target from visible past values only."""
    nt, n = x.shape
    last, l5, l3 = freeflow.copy(), freeflow.copy(), freeflow.copy()
    seen = np.zeros(n, dtype=bool)
    feats = np.zeros((nt, n, 6))
    base = np.zeros((nt, n))
    for t in range(nt):
        vis = visible[t] & np.isfinite(x[t])
        wv = w * vis[None, :]
        ws = np.maximum(wv.sum(axis=1), 1e-12)
        innov = (wv @ np.where(vis, x[t] - l5, 0.0)) / ws
        vs_ff = (wv @ np.where(vis, x[t] - freeflow, 0.0)) / ws
        feats[t] = np.column_stack([last - l5, l3 - l5, innov, vs_ff, freeflow - l5, np.ones(n)])
        base[t] = l5
        xt = np.where(vis, x[t], 0.0)
        first = vis & ~seen
        l5 = np.where(first, xt, np.where(vis, 0.5 * l5 + 0.5 * xt, l5))
        l3 = np.where(first, xt, np.where(vis, 0.7 * l3 + 0.3 * xt, l3))
        last = np.where(vis, xt, last)
        seen |= vis
    return feats, base, x - base, ~visible & np.isfinite(x)


def _lad(a: FloatArray, y: FloatArray, iterations: int = 40) -> FloatArray:
    """Least-absolute-deviation coefficients by iteratively reweighted least squares."""
    coef = np.linalg.lstsq(a, y, rcond=None)[0]
    for _ in range(iterations):
        sw = np.sqrt(1.0 / np.maximum(np.abs(y - a @ coef), 0.3))
        coef = np.linalg.lstsq(a * sw[:, None], y * sw, rcond=None)[0]
    return np.asarray(coef)


def reference_predictors(graph: SegmentGraph, train: SpeedTable, test: SpeedTable, observed_frac: float = 0.5,
                         seed: int = 0, train_seed: int = 1) -> dict[str, float]:
    """MAE (km/h) of each reference predictor on the evaluation's hidden values.

    Timestamps without ``LAGS`` earlier ones (or without 3 later ones, for the non-causal
    references) are scored where the predictor is defined; missing speeds are carried
    forward from the previous timestamp for the features and never scored.
    """
    n = graph.n
    w = graph.adjacency.toarray()
    with np.errstate(all="ignore"):
        freeflow = np.nanpercentile(train.speed_kmh, 95, axis=0)
    freeflow = np.where(np.isfinite(freeflow), freeflow, np.nanmedian(freeflow))
    xtr = _fill(train.speed_kmh, freeflow)
    xte = _fill(test.speed_kmh, freeflow)
    truth = test.speed_kmh
    a, y, _, _ = _features(xtr, _masks(len(xtr), n, observed_frac, train_seed), w, freeflow)
    coef = _lad(a, y)
    vis = _masks(len(xte), n, observed_frac, seed)
    a_te, _, t_idx, s_idx = _features(xte, vis, w, freeflow)
    pred = xte[t_idx - 1, s_idx] + a_te @ coef
    known = np.isfinite(truth[t_idx, s_idx])
    out = {"linear_full_past": float(np.abs(pred - truth[t_idx, s_idx])[known].mean())}
    f_tr, _, y_tr, h_tr = _observed_features(train.speed_kmh, _masks(len(xtr), n, observed_frac, train_seed), w, freeflow)
    coef_obs = _lad(f_tr[h_tr], y_tr[h_tr])
    f_te, b_te, _, h_te = _observed_features(truth, vis, w, freeflow)
    out["linear_observed_past"] = float(np.abs(b_te[h_te] + f_te[h_te] @ coef_obs - truth[h_te]).mean())
    hidden = ~vis & np.isfinite(truth)
    hidden[0] = False
    out["persistence_full_past"] = float(np.abs(xte[:-1] - truth[1:])[hidden[1:]].mean())
    inner = hidden.copy()
    inner[:3] = inner[-3:] = False
    two = 0.5 * (xte[2:] + xte[:-2])
    out["two_sided_mean"] = float(np.abs(two - truth[1:-1])[inner[1:-1]].mean())
    window = np.stack([xte[j:len(xte) - 6 + j] for j in (0, 1, 2, 4, 5, 6)])
    out["two_sided_median"] = float(np.abs(np.median(window, axis=0) - truth[3:-3])[inner[3:-3]].mean())
    d1 = np.nanmean((truth[1:] - truth[:-1]) ** 2) / 2
    d2 = np.nanmean((truth[2:] - truth[:-2]) ** 2) / 2
    out["noise_floor"] = float(np.sqrt(max(float(2 * d1 - d2), 0.0) * 2 / np.pi))
    return out

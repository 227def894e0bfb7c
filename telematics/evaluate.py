"""Arrival prediction accuracy on recorded AVL (the issue's fixed methodology).

Positions are replayed in time order; at each position the vehicle's arrivals at its next
stops up to 30 minutes ahead are predicted using only data known at that moment:

* every observation is derived from the causal (online) match and used only once the
  ping that revealed it has been seen (``known_at``): stop-to-stop segment times
  (`SegmentTimes`), the time from a position on a segment to its next stop
  (`RemainingTimes`, apart for moving, halted, stopped and layover vehicles), the lateness
  of leaving each origin and the residuals of earlier predictions for stopped and halted
  vehicles (`ResidualCorrector`); the reported speed tells halted vehicles (and stopped
  ones moving off) apart (`telematics.downstream.motion_flags`);
* the prediction step itself is `telematics.downstream.predict_downstream` and
  `blend_with_delay`, the very code the live `telematics.fleet.Fleet` serves: a vehicle
  in layover at its origin leaves at its expected departure, one stopped mid-route for
  ``HOLD_S`` ahead of schedule holds until its scheduled time there, and the result is
  blended with the vehicle's current schedule delay.

The actual arrival at a stop is the passing time interpolated between the vehicle's own
pings on the smoothed (offline) match. Predictions are bucketed by their horizon
(predicted arrival minus now, what a passenger is shown) and scored against MBTA's
windows, early negative; the ``schedule`` and ``delay_propagation`` baselines are scored
on the same predictions. ``--history`` days feed the segments' time-of-day profile.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.arrivals import passing_times
from telematics.assignment import assignment_accuracy
from telematics.downstream import (
    HOLD_S,
    StopTable,
    VehicleStates,
    blend_with_delay,
    correctable,
    departure_lateness,
    in_layover,
    motion_state,
    predict_downstream,
    still_for,
)
from telematics.frequencies import expand_frequencies
from telematics.gtfs import Feed, TripPaths, read_feed, service_day_start, trip_paths
from telematics.kpi import MBTA_WINDOWS, prediction_accuracy
from telematics.matching import match_monotone, projection_candidates
from telematics.predict import (
    PaceFilter,
    RecencyMean,
    RemainingTimes,
    ResidualCorrector,
    SegmentTimes,
)

__all__ = [
    "BUCKETS",
    "HOLD_S",
    "AvlError",
    "evaluate_arrivals",
    "read_avl",
    "replay_predictions",
    "score_predictions",
]

FloatArray = npt.NDArray[np.float64]
AVL_COLUMNS = ("vehicle_id", "timestamp", "lat", "lon", "trip_id", "route_id", "start_date",
               "speed_mps", "bearing")
#: Horizon buckets (label, low s, high s) and MBTA windows (early, late) in seconds.
BUCKETS = tuple((f"{int(lo // 60)}-{int(hi // 60)}", lo, hi, early, late) for lo, hi, early, late in MBTA_WINDOWS)
HORIZON_S = 1800.0


class AvlError(ValueError):
    """An AVL CSV is invalid; the message names the file, line and field."""


def read_avl(path: str | Path) -> pd.DataFrame:
    """Read an AVL CSV (``../shared/data/README.md`` format), sorted by time.

    Returns
    -------
    DataFrame
        ``vehicle_id, trip_id, route_id, start_date`` (str, ``""`` when empty),
        ``time_s`` (epoch s), ``lat, lon`` (degrees), ``speed_mps``, ``bearing`` (float, NaN
        when empty), ``line`` (1-based line in the file).
    """
    name = Path(path).name
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in AVL_COLUMNS:
        if column not in frame.columns:
            raise AvlError(f"{name} line 1 field {column}: required column missing")
    frame["line"] = np.arange(len(frame)) + 2
    times = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    out = pd.DataFrame({c: frame[c].str.strip() for c in ("vehicle_id", "trip_id", "route_id",
                                                           "start_date")})
    out["time_s"] = (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    bad = times.isna()
    for column in ("lat", "lon", "speed_mps", "bearing"):
        out[column] = pd.to_numeric(frame[column], errors="coerce")
        bad_col = out[column].isna() & (frame[column].str.strip() != "")
        if column in ("lat", "lon"):
            bad_col |= out[column].isna()
        if bad_col.any():
            row = int(np.flatnonzero(bad_col.to_numpy())[0])
            raise AvlError(f"{name} line {row + 2} field {column}: expected a number, got "
                           f"{frame[column].iloc[row]!r}")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise AvlError(f"{name} line {row + 2} field timestamp: expected ISO 8601, got "
                       f"{frame['timestamp'].iloc[row]!r}")
    out["line"] = frame["line"]
    return out.sort_values(["time_s", "vehicle_id"], kind="stable").reset_index(drop=True)


@dataclass
class _Run:
    """One vehicle on one trip: ping rows, matched positions and stop passings."""

    trip: str
    rows: npt.NDArray[np.int64]
    day0: float
    online_along: FloatArray
    truth: FloatArray


def _trip_bounds(feed: Feed) -> dict[str, tuple[int, int]]:
    trips = feed.stop_times["trip_id"].to_numpy(dtype=object)
    cuts = np.flatnonzero(np.r_[True, trips[1:] != trips[:-1], True])
    return {str(trips[lo]): (int(lo), int(hi)) for lo, hi in itertools.pairwise(cuts)}


def _service_start(avl: pd.DataFrame, timezone: str) -> FloatArray:
    dates = avl["start_date"].where(avl["start_date"] != "")
    local = pd.to_datetime(avl["time_s"], unit="s", utc=True).dt.tz_convert(timezone)
    dates = dates.fillna(local.dt.strftime("%Y%m%d"))
    starts = {d: service_day_start(dt.datetime.strptime(d, "%Y%m%d").date(), timezone)
              for d in dates.unique()}
    return dates.map(starts).to_numpy(dtype=np.float64)


def score_predictions(horizon_s: FloatArray, error_s: FloatArray) -> dict[str, object]:
    """Within-window share and MAE per bucket; ``error = actual - predicted`` (s).

    The bands, windows and counting are `telematics.kpi.prediction_accuracy`'s, the
    definition the live indicator uses; ``within_windows`` is the share over all predictions.
    """
    acc = prediction_accuracy(horizon_s, error_s)
    mae: dict[str, float | None] = {}
    by_bucket: dict[str, float | None] = {}
    for (label, *_), row in zip(BUCKETS, acc.to_dict("records"), strict=True):
        mae[label] = round(float(row["mae_s"]), 1) if row["predictions"] else None
        by_bucket[label] = round(float(row["accuracy"]), 4) if row["predictions"] else None
    n = len(error_s)
    return {"within_windows": round(float(acc["within"].sum()) / n, 4) if n else None,
            "mae_s": mae, "within_by_bucket": by_bucket}


def _match_runs(feed: Feed, paths: TripPaths, avl: pd.DataFrame, bounds: dict[str, tuple[int, int]]
                ) -> list[_Run]:
    xy = paths.projection.to_xy(avl["lat"].to_numpy(), avl["lon"].to_numpy())
    day0 = _service_start(avl, feed.timezone)
    keys = avl["vehicle_id"] + "\x1f" + avl["trip_id"] + "\x1f" + avl["start_date"]
    runs: list[_Run] = []
    t_all = avl["time_s"].to_numpy()
    for _, idx in keys.groupby(keys, sort=False).indices.items():
        rows = np.sort(np.asarray(idx, dtype=np.int64))
        trip = str(avl["trip_id"].iloc[rows[0]])
        if trip not in bounds or trip not in paths.trip_path or len(rows) < 2:
            continue
        along, offset = projection_candidates(paths[trip], xy[rows], k=4, max_offset_m=150.0)
        match = match_monotone(along, offset, t_all[rows])
        stop_dist = paths.stop_dist_m[trip]
        truth = passing_times(t_all[rows], match.along_m, stop_dist).time_s
        runs.append(_Run(trip, rows, float(day0[rows[0]]), match.online_along_m, truth))
    return runs


def replay_predictions(feed: Feed, paths: TripPaths, avl: pd.DataFrame,
                       history: Sequence[pd.DataFrame] = ()) -> dict[str, FloatArray]:
    """Predictions at every position of ``avl`` with their actual and baseline arrivals.

    Parameters
    ----------
    feed, paths : Feed, TripPaths
        The schedule and its paths.
    avl : DataFrame
        Positions from `read_avl` with trip ids (the trip each vehicle runs).
    history : sequence of DataFrame
        Positions of other days (time-of-day profile).

    Returns
    -------
    dict of str to ndarray
        One entry per (position, downstream stop) with an actual arrival and a predicted
        horizon up to 30 min: ``now``, ``pred``, ``p10``, ``p90``, ``truth``, ``sched``,
        ``delayprop`` (epoch s) and diagnostics (``ahead`` segments, ``still`` s, ``waiting``
        1 after and 2 before the scheduled departure at the origin).
    """
    bounds = _trip_bounds(feed)
    st = feed.stop_times
    stop_ids = st["stop_id"].to_numpy(dtype=str)
    sched_all = st["arrival_time"].to_numpy(dtype=np.float64)
    model = SegmentTimes()
    table = StopTable.build(st["trip_id"].to_numpy(), stop_ids, sched_all, paths.stop_dist_m, model)
    seg_code = table.seg_code

    hist_codes, hist_tod, hist_dur = [], [], []
    for hist in history:
        for run in _match_runs(feed, paths, hist, bounds):
            lo, hi = bounds[run.trip]
            dur = np.diff(run.truth)
            ok = np.isfinite(dur)
            hist_codes.append(seg_code[lo:hi - 1][ok])
            hist_tod.append((run.truth[:-1] - run.day0)[ok])
            hist_dur.append(dur[ok])
    if hist_codes:
        model.add_history(np.concatenate(hist_codes), np.concatenate(hist_tod),
                          np.concatenate(hist_dur))

    runs = _match_runs(feed, paths, avl, bounds)
    t_all = avl["time_s"].to_numpy()
    # causal observations: passings from the online match, known when the next ping arrived
    for run in runs:
        lo, hi = bounds[run.trip]
        online = passing_times(t_all[run.rows], run.online_along, paths.stop_dist_m[run.trip])
        dur = np.diff(online.time_s)
        ok = np.isfinite(dur) & (np.arange(len(dur)) > 0)  # skip the layover-prone first segment
        model.update(seg_code[lo:hi - 1][ok], online.known_at_s[1:][ok], dur[ok],
                     np.diff(sched_all[lo:hi])[ok])

    speed_all = avl["speed_mps"].to_numpy(dtype=np.float64)  # NaN when not reported
    remaining = _remaining_times(runs, t_all, speed_all, paths, bounds, seg_code)
    departures = _departure_lateness(runs, t_all, paths, bounds, seg_code, sched_all)
    pace_filter = PaceFilter()
    parts = [_predict_run(run, t_all, speed_all, paths, bounds, table, model, pace_filter, remaining,
                          departures) for run in runs]
    names = ("now", "pred", "p10", "p90", "truth", "sched", "delayprop", "ahead", "stop", "row", "still",
             "waiting", "label", "label_known", "situation")
    cols = {k: np.concatenate([p[k] for p in parts]) for k in names} if parts else {
        k: np.zeros(0) for k in names}
    if len(cols["now"]):
        # stopped vehicles: causal bias correction learned from matured predictions
        situation = cols["situation"].astype(np.int64)
        # labels as the live fleet keeps them: predictions up to HORIZON_S ahead
        labelled = np.isfinite(cols["label"]) & (situation >= 0) & (cols["pred"] - cols["now"] <= HORIZON_S)
        fix = ResidualCorrector().correction(
            situation, cols["now"], situation[labelled], cols["label_known"][labelled],
            (cols["label"] - cols["pred"])[labelled])
        fix = np.where(situation >= 0, fix, 0.0)
        cols["raw"] = cols["pred"].copy()
        cols["pred"], cols["p10"], cols["p90"] = blend_with_delay(
            cols["pred"], cols["p10"], cols["p90"], cols["delayprop"], fix)
    keep = np.isfinite(cols["truth"]) & (cols["pred"] - cols["now"] <= HORIZON_S)
    return {k: v[keep] for k, v in cols.items()}


def evaluate_arrivals(gtfs: str | Path | Feed, avl_path: str | Path,
                      history: Sequence[str | Path] = (), *, vehicles: Sequence[str] | None = None,
                      assign: bool = True) -> dict[str, object]:
    """Replay an AVL file and score arrival predictions against interpolated passings.

    Parameters
    ----------
    gtfs : path or Feed
        The schedule.
    avl_path : path
        AVL CSV of the day to replay.
    history : sequence of paths
        AVL CSVs of other days whose segment times form the time-of-day profile.
    vehicles : sequence of str, optional
        Restrict to these vehicle ids (fast subsets for tests).
    assign : bool
        Also measure trip assignment with the ids hidden (when the file has trip ids).

    Returns
    -------
    dict
        The issue's JSON: ``predictions``, ``within_windows``, ``mae_s``,
        ``within_by_bucket``, ``baselines`` and ``assigned_trip_accuracy``.
    """
    feed = expand_frequencies(gtfs if isinstance(gtfs, Feed) else read_feed(gtfs))
    paths = trip_paths(feed)
    avl = read_avl(avl_path)
    if vehicles is not None:
        avl = avl[avl["vehicle_id"].isin(list(vehicles))].reset_index(drop=True)
    history_avl = [read_avl(h) for h in history]
    cols = replay_predictions(feed, paths, avl, history_avl)
    horizon = cols["pred"] - cols["now"]
    truth = cols["truth"]
    result: dict[str, object] = {"predictions": len(truth)}
    result.update(score_predictions(horizon, truth - cols["pred"]))
    result["baselines"] = {
        name: {k: v for k, v in score_predictions(horizon, truth - cols[col]).items()
               if k in ("within_windows", "mae_s")}
        for name, col in (("schedule", "sched"), ("delay_propagation", "delayprop"))}
    accuracy = None
    if assign and (avl["trip_id"] != "").all():
        accuracy = assignment_accuracy(feed, paths, avl)
    result["assigned_trip_accuracy"] = accuracy
    return result


def _predict_run(run: _Run, t_all: FloatArray, speed_all: FloatArray, paths: TripPaths,
                 bounds: dict[str, tuple[int, int]], table: StopTable, model: SegmentTimes, pace_filter: PaceFilter,
                 remaining: RemainingTimes | None = None, departures: RecencyMean | None = None
                 ) -> dict[str, FloatArray]:
    """Predictions at every ping of one run for the stops ahead (flattened rows), made by
    `telematics.downstream.predict_downstream` as the live fleet makes them."""
    lo, hi = bounds[run.trip]
    stop_dist = paths.stop_dist_m[run.trip]
    seg_code, sched = table.seg_code, table.sched_s[lo:hi] + run.day0
    n = hi - lo
    t = t_all[run.rows]
    d = run.online_along
    # vehicle pace from its own completed segments, known causally
    online = passing_times(t, d, stop_dist)
    seg_dur = np.diff(online.time_s)
    done = np.flatnonzero(np.isfinite(seg_dur) & (np.arange(n - 1) > 0))
    if len(done):
        est = model.estimate(seg_code[lo + done], online.time_s[done], online.time_s[done] - run.day0,
                             np.diff(sched)[done])
        state, var = pace_filter.run(np.log(np.maximum(seg_dur[done], 1.0) / est.mean_s))
        known = online.known_at_s[done + 1]
        order = np.argsort(known, kind="stable")
        k = np.searchsorted(known[order], t, side="right") - 1
        pace = np.where(k >= 0, state[order][np.maximum(k, 0)], 0.0)
        pace_var = np.where(k >= 0, var[order][np.maximum(k, 0)], 0.05)
    else:
        pace, pace_var = np.zeros(len(t)), np.full(len(t), 0.05)
    still = still_for(t, np.maximum(d, stop_dist[0]))
    states = VehicleStates(now_s=t, along_m=d, still_s=still, pace=pace, pace_var=pace_var,
                           trip_lo=np.full(len(t), lo, dtype=np.int64), day0_s=np.full(len(t), run.day0),
                           speed_mps=speed_all[run.rows])
    pred = predict_downstream(table, states, model, remaining, departures)
    stop = pred.row - lo
    group = pred.state
    return {"now": t[group], "pred": pred.arrival_s, "truth": run.truth[stop], "sched": sched[stop],
            "delayprop": pred.delayprop_s, "p10": pred.p10_s, "p90": pred.p90_s,
            "ahead": pred.ahead.astype(float), "stop": stop.astype(float), "row": pred.row.astype(float), "still": still[group],
            "waiting": (pred.waiting.astype(float) + pred.before_start)[group],
            "label": online.time_s[stop], "label_known": online.known_at_s[stop],
            "situation": correctable(pred.situation, still[group]).astype(np.float64)}


def _remaining_times(runs: Sequence[_Run], t_all: FloatArray, speed_all: FloatArray, paths: TripPaths,
                     bounds: dict[str, tuple[int, int]], seg_code: npt.NDArray[np.int64]
                     ) -> RemainingTimes:
    """Observed time from each ping to the next stop (online match), for `RemainingTimes`,
    by motion state (from the stationary time and the reported speed ``speed_all``, m/s)."""
    codes, offsets, known, values, stopped = [], [], [], [], []
    for run in runs:
        lo, _ = bounds[run.trip]
        stop_dist = paths.stop_dist_m[run.trip]
        t = t_all[run.rows]
        d = np.maximum(run.online_along, stop_dist[0])
        online = passing_times(t, d, stop_dist)
        nxt = np.searchsorted(stop_dist, d, side="right")
        ok = (nxt < len(stop_dist)) & (nxt >= 1)
        nxt = np.minimum(nxt, len(stop_dist) - 1)
        rem = online.time_s[nxt] - t
        still = still_for(t, d)
        layover = in_layover(nxt, d - stop_dist[0], still)
        ok &= np.isfinite(rem) & (rem >= 0)
        codes.append(seg_code[lo + nxt[ok] - 1])
        offsets.append((d - stop_dist[nxt - 1])[ok])
        stopped.append(motion_state(layover, still, speed_all[run.rows])[ok])
        known.append(online.known_at_s[nxt][ok])
        values.append(rem[ok])
    cat = [np.concatenate(x) if x else np.zeros(0) for x in (codes, offsets, stopped, known, values)]
    return RemainingTimes(cat[0].astype(np.int64), cat[1], cat[2], cat[3], cat[4])


def _departure_lateness(runs: Sequence[_Run], t_all: FloatArray, paths: TripPaths,
                        bounds: dict[str, tuple[int, int]], seg_code: npt.NDArray[np.int64],
                        sched_all: FloatArray) -> RecencyMean:
    """Observed lateness (s) of leaving each origin: passing of the trip's second stop minus
    its scheduled time, keyed by the first segment and known when it was seen."""
    codes, known, values = [], [], []
    for run in runs:
        lo, hi = bounds[run.trip]
        if hi - lo < 2:
            continue
        stop_dist = paths.stop_dist_m[run.trip]
        online = passing_times(t_all[run.rows], np.maximum(run.online_along, stop_dist[0]), stop_dist)
        if np.isfinite(online.time_s[1]):
            codes.append(seg_code[lo])
            known.append(online.known_at_s[1])
            values.append(online.time_s[1] - run.day0 - sched_all[lo + 1])
    return departure_lateness(codes, known, values)

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
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.arrivals import passing_times
from telematics.avl import AvlError, plausible_positions, read_avl
from telematics.completeness import expected_pairs, pair_coverage
from telematics.delay_blend import LABEL_EVERY_S as BLEND_LABEL_EVERY_S
from telematics.delay_blend import alone_on_route, delay_weights
from telematics.downstream import (
    HOLD_S,
    StopTable,
    VehicleStates,
    blend_with_delay,
    correctable,
    departure_lateness,
    in_layover,
    monotone_along,
    motion_state,
    predict_downstream,
    still_for,
)
from telematics.frequencies import expand_frequencies
from telematics.gtfs import Feed, TripPaths, read_feed, service_day_start, trip_paths
from telematics.gtfs.paths import StopPathFn
from telematics.kpi import MBTA_WINDOWS, prediction_accuracy
from telematics.matching import Polyline, match_monotone, projection_candidates
from telematics.passing import locate_along
from telematics.position_assignment import assignment_accuracy
from telematics.predict import (
    PaceFilter,
    RecencyMean,
    RemainingTimes,
    ResidualCorrector,
    SegmentTimes,
)
from telematics.prediction_kpi import eta_benchmark, eta_benchmark_score, prediction_completeness

__all__ = [
    "BUCKETS",
    "HOLD_S",
    "delay_weight_by_bucket",
    "evaluate_arrivals",
    "replay_predictions",
    "replay_runs",
    "run_minute_completeness",
    "run_passings",
    "score_predictions",
]

FloatArray = npt.NDArray[np.float64]
#: Horizon buckets (label, low s, high s) and MBTA windows (early, late) in seconds.
BUCKETS = tuple((f"{int(lo // 60)}-{int(hi // 60)}", lo, hi, early, late) for lo, hi, early, late in MBTA_WINDOWS)
HORIZON_S = 1800.0


@dataclass
class _Run:
    """One vehicle on one trip: ping rows, matched positions and stop passings."""

    trip: str
    rows: npt.NDArray[np.int64]
    day0: float
    online_along: FloatArray
    truth: FloatArray


def _alone(feed: Feed, avl: pd.DataFrame, runs: Sequence[_Run], observed: Sequence[FloatArray],
           ping: npt.NDArray[np.int64], at_s: FloatArray) -> npt.NDArray[np.bool_]:
    """Whether the vehicle of each prediction (made at ``avl`` row ``ping``, time ``at_s``) is
    alone on its trip's route (`telematics.delay_blend.alone_on_route`): no other vehicle's
    running time on a segment of that route known within ``ALONE_S`` before it. ``observed``
    holds, per run, when each of its segment times became known (epoch s), as the segment
    model learnt them; the route of a ping is that of the run it is on."""
    route_of = feed.trips.set_index("trip_id")["route_id"].astype(str)
    codes = {r: k for k, r in enumerate(pd.unique(route_of))}
    vehicle = pd.factorize(avl["vehicle_id"].to_numpy(dtype=str))[0]
    ping_route = np.full(len(avl), -1, dtype=np.int64)
    run_route = np.array([codes.get(str(route_of.get(run.trip, "")), -1) for run in runs], dtype=np.int64)
    for run, route in zip(runs, run_route, strict=True):
        ping_route[run.rows] = route
    sizes = [len(k) for k in observed]
    seen_route = np.repeat(run_route, sizes)
    seen_vehicle = np.repeat(np.array([vehicle[run.rows[0]] for run in runs], dtype=np.int64), sizes)
    seen_s = np.concatenate(observed) if observed else np.zeros(0)
    return alone_on_route(seen_route, seen_vehicle, seen_s, ping_route[ping], vehicle[ping], at_s)


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


def delay_weight_by_bucket(horizon_s: FloatArray, weight: FloatArray) -> dict[str, float | None]:
    """Mean delay-propagation weight of the served predictions per horizon bucket (`BUCKETS`):
    0.2 where the model was served as usual, up to 1.0 where delay propagation was
    (`telematics.delay_blend`); None for an empty bucket."""
    out: dict[str, float | None] = {}
    for label, lo, hi, *_ in BUCKETS:
        inside = (horizon_s >= lo) & (horizon_s < hi)
        out[label] = round(float(weight[inside].mean()), 3) if inside.any() else None
    return out


def score_predictions(horizon_s: FloatArray, error_s: FloatArray) -> dict[str, object]:
    """Within-window share and MAE per bucket, and the ETA Accuracy Benchmark; ``error = actual - predicted`` (s).

    The bands, windows and counting are `telematics.kpi.prediction_accuracy`'s, the
    definition the live indicator uses; ``within_windows`` is the share over all predictions.
    ``eta_benchmark`` is `telematics.prediction_kpi`'s: ``score`` and ``by_bucket`` (accuracy
    per time-to-actual bucket, time to actual = horizon + error).
    """
    acc = prediction_accuracy(horizon_s, error_s)
    to_actual = np.asarray(horizon_s, dtype=np.float64) + np.asarray(error_s, dtype=np.float64)
    bench = eta_benchmark(to_actual, error_s)
    score = eta_benchmark_score(to_actual, error_s)
    mae: dict[str, float | None] = {}
    by_bucket: dict[str, float | None] = {}
    for (label, *_), row in zip(BUCKETS, acc.to_dict("records"), strict=True):
        mae[label] = round(float(row["mae_s"]), 1) if row["predictions"] else None
        by_bucket[label] = round(float(row["accuracy"]), 4) if row["predictions"] else None
    n = len(error_s)
    return {"within_windows": round(float(acc["within"].sum()) / n, 4) if n else None,
            "mae_s": mae, "within_by_bucket": by_bucket,
            "eta_benchmark": {"score": None if score is None else round(score, 4), "by_bucket": {
                str(r["bucket"]).removesuffix(" min"): None if pd.isna(r["accuracy"]) else round(float(r["accuracy"]), 4)
                for r in bench.to_dict("records")}}}


def _match_runs(feed: Feed, paths: TripPaths, avl: pd.DataFrame, bounds: dict[str, tuple[int, int]],
                trips: npt.ArrayLike | None = None, day0: npt.ArrayLike | None = None) -> list[_Run]:
    """One run per vehicle, trip and service day: ``trips`` and ``day0`` (epoch s of the
    service day's start) per ping, by default the recorded ``trip_id`` and ``start_date``."""
    xy = paths.projection.to_xy(avl["lat"].to_numpy(), avl["lon"].to_numpy())
    trip_of = avl["trip_id"].to_numpy(dtype=str) if trips is None else np.asarray(trips, dtype=str)
    day0 = _service_start(avl, feed.timezone) if day0 is None else np.asarray(day0, dtype=np.float64)
    keys = pd.Series(avl["vehicle_id"].to_numpy(dtype=str), dtype=object) + "\x1f" + trip_of + "\x1f" + (
        np.nan_to_num(day0, nan=-1.0).astype(np.int64).astype(str))  # NaN: no trip (skipped below)
    runs: list[_Run] = []
    t_all = avl["time_s"].to_numpy()
    for _, idx in keys.groupby(keys, sort=False).indices.items():
        rows = np.sort(np.asarray(idx, dtype=np.int64))
        trip = str(trip_of[rows[0]])
        if trip not in bounds or trip not in paths.trip_path or len(rows) < 2:
            continue
        along, offset = projection_candidates(paths[trip], xy[rows], k=4, max_offset_m=150.0)
        match = match_monotone(along, offset, t_all[rows])
        stop_dist = paths.stop_dist_m[trip]
        truth = passing_times(t_all[rows], match.along_m, stop_dist).time_s
        runs.append(_Run(trip, rows, float(day0[rows[0]]), _live_along(paths[trip], xy[rows], t_all[rows]), truth))
    return runs


def _live_along(line: Polyline, xy: FloatArray, t_s: FloatArray) -> FloatArray:
    """Distance along the path (m) at each ping as the live fleet places it (`locate_along`,
    causal, never backwards): the eval predicts from the positions the live service would use."""
    out = np.empty(len(t_s))
    prev, prev_t = math.nan, math.nan
    for i in range(len(t_s)):
        prev, _ = locate_along(line, xy[i], prev, prev_t, float(t_s[i]))
        prev_t = float(t_s[i])
        out[i] = prev
    return out


def replay_predictions(feed: Feed, paths: TripPaths, avl: pd.DataFrame,
                       history: Sequence[pd.DataFrame] = ()) -> dict[str, FloatArray]:
    """Predictions at every position of ``avl`` with their actual and baseline arrivals.

    `replay_runs` on the recorded trips, keeping the predictions with an actual arrival
    up to 30 min ahead.

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
    cols = replay_runs(feed, paths, avl, history)
    keep = np.isfinite(cols["truth"]) & (cols["pred"] - cols["now"] <= HORIZON_S)
    return {k: v[keep] for k, v in cols.items()}


def replay_runs(feed: Feed, paths: TripPaths, avl: pd.DataFrame, history: Sequence[pd.DataFrame] = (),
                trips: npt.ArrayLike | None = None, day0: npt.ArrayLike | None = None) -> dict[str, FloatArray]:
    """Predictions at every position of ``avl`` for the trip it runs, unfiltered.

    `_replay`'s predictions (without its runs).

    Parameters
    ----------
    feed, paths, avl, history
        As in `replay_predictions`.
    trips : array_like of str, optional
        Trip of each ping (``""`` none: no prediction), e.g. inferred from positions;
        by default the recorded ``trip_id``.
    day0 : array_like, optional
        Epoch s of each ping's service day start; by default from ``start_date`` (or the
        ping's local date).

    Returns
    -------
    dict of str to ndarray
        The columns of `replay_predictions` for every prediction (``truth`` is the passing
        on the smoothed match of the run's own pings, NaN when unknown) and ``ping``, the
        row of ``avl`` the prediction was made at.
    """
    return _replay(feed, paths, avl, history, trips, day0)[0]


def _replay(feed: Feed, paths: TripPaths, avl: pd.DataFrame, history: Sequence[pd.DataFrame],
            trips: npt.ArrayLike | None, day0: npt.ArrayLike | None) -> tuple[dict[str, FloatArray], list[_Run]]:
    """`replay_runs` with the runs it matched."""
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

    runs = _match_runs(feed, paths, avl, bounds, trips, day0)
    t_all = avl["time_s"].to_numpy()
    # causal observations: passings from the online match, known when the next ping arrived
    observed = []  # per run, when each of its segment times became known (epoch s)
    for run in runs:
        lo, hi = bounds[run.trip]
        online = passing_times(t_all[run.rows], run.online_along, paths.stop_dist_m[run.trip])
        dur = np.diff(online.time_s)
        ok = np.isfinite(dur) & (np.arange(len(dur)) > 0)  # skip the layover-prone first segment
        model.update(seg_code[lo:hi - 1][ok], online.known_at_s[1:][ok], dur[ok],
                     np.diff(sched_all[lo:hi])[ok])
        observed.append(online.known_at_s[1:][ok])

    speed_all = avl["speed_mps"].to_numpy(dtype=np.float64)  # NaN when not reported
    remaining = _remaining_times(runs, t_all, speed_all, paths, bounds, seg_code)
    departures = _departure_lateness(runs, t_all, paths, bounds, seg_code, sched_all)
    pace_filter = PaceFilter()
    parts = [_predict_run(run, t_all, speed_all, paths, bounds, table, model, pace_filter, remaining,
                          departures) for run in runs]
    offset = 0
    for part in parts:  # one group per (run, ping): the rows of one prediction
        part["group"] = part["group"] + offset
        offset += len(part["now"])
    names = ("now", "pred", "p10", "p90", "truth", "sched", "delayprop", "ahead", "stop", "row", "still",
             "waiting", "label", "label_known", "situation", "group", "ping")
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
        # how much delay propagation to take: learnt from the matured predictions
        served = cols["pred"] + fix
        # as the live fleet keeps them: every prediction of a vehicle's first ping in each slot
        vehicle = avl["vehicle_id"].to_numpy(dtype=str)[cols["ping"].astype(np.int64)]
        slot = np.floor(cols["now"] / BLEND_LABEL_EVERY_S)
        first = pd.Series(cols["now"]).groupby([vehicle, slot]).transform("min").to_numpy() == cols["now"]
        matured = np.isfinite(cols["label"]) & (served - cols["now"] <= HORIZON_S) & first
        alone = _alone(feed, avl, runs, observed, cols["ping"].astype(np.int64), cols["now"])
        cols["delay_weight"] = delay_weights(
            served - cols["now"], cols["now"], (served - cols["now"])[matured], cols["label_known"][matured],
            (served - cols["label"])[matured], (cols["delayprop"] - cols["label"])[matured], alone)
        cols["pred"], cols["p10"], cols["p90"] = monotone_along(cols["group"], *blend_with_delay(
            cols["pred"], cols["p10"], cols["p90"], cols["delayprop"], fix, cols["now"], cols["delay_weight"]))
    return cols, runs


def run_passings(runs: Sequence[_Run], bounds: dict[str, tuple[int, int]], n_pings: int
                 ) -> tuple[npt.NDArray[np.int64], pd.DataFrame]:
    """Run of each ping (-1 none) and every known stop passing of the runs.

    Returns
    -------
    ping_run : ndarray of int, shape (n_pings,)
    passings : DataFrame
        ``run`` (index into ``runs``), ``row`` (stop-time row), ``day0`` (epoch s) and
        ``time_s`` (passing on the smoothed match, epoch s) of each passing the pings bracket.
    """
    ping_run = np.full(n_pings, -1, dtype=np.int64)
    run_col, row_col, day_col, time_col = [], [], [], []
    for k, run in enumerate(runs):
        ping_run[run.rows] = k
        lo, hi = bounds[run.trip]
        ok = np.isfinite(run.truth)
        rows = np.arange(lo, hi)[ok]
        run_col.append(np.full(len(rows), k))
        row_col.append(rows)
        day_col.append(np.full(len(rows), run.day0))
        time_col.append(run.truth[ok])
    cat = [np.concatenate(c) if c else np.zeros(0) for c in (run_col, row_col, day_col, time_col)]
    return ping_run, pd.DataFrame({"run": cat[0].astype(np.int64), "row": cat[1].astype(np.int64),
                                   "day0": cat[2], "time_s": cat[3]})




def evaluate_arrivals(gtfs: str | Path | Feed, avl_path: str | Path,
                      history: Sequence[str | Path] = (), *, vehicles: Sequence[str] | None = None,
                      assign: bool = True, stop_path: StopPathFn | None = None) -> dict[str, object]:
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
    stop_path : callable, optional
        Builds the paths of trips without a shape (a loaded road network's,
        `telematics.road_paths.RoadStopPaths`); default straight lines between the stops.

    Returns
    -------
    dict
        The issue's JSON: ``predictions``, ``within_windows``, ``mae_s``,
        ``within_by_bucket``, ``baselines``, ``assigned_trip_accuracy`` and
        ``prediction_completeness`` (share of the (ping, stop) pairs whose actual passing
        came within 30 min of the ping that had a scored prediction), ``eta_benchmark``
        (the ETA Accuracy Benchmark ``score`` and ``by_bucket``, `telematics.prediction_kpi`)
        and ``trip_minute_completeness`` (share of the recorded trips' in-service minutes
        with a prediction at most 120 s old) and ``path_sources`` (trips whose path is the
        feed's shape, the road network's, partly the road network's, straight lines) and
        ``delay_weight`` (mean delay-propagation weight served per bucket, `delay_weight_by_bucket`),
        ``positions_left_out`` (fixes the live service would not apply either:
        `telematics.avl.plausible_positions`'s ``repeated``, ``area``, ``speed`` counts).
    """
    feed = expand_frequencies(gtfs if isinstance(gtfs, Feed) else read_feed(gtfs))
    paths = trip_paths(feed, stop_path)
    avl = read_avl(avl_path)
    if "trip_id" not in pd.read_csv(avl_path, nrows=0).columns:
        raise AvlError(f"{Path(avl_path).name} line 1 field trip_id: no recorded trip to score against"
                       " (predictions are scored on the trips the file records; a positions-only file is"
                       " scored against its retrospective assignment: telematics.positions_eval)")
    if vehicles is not None:
        avl = avl[avl["vehicle_id"].isin(list(vehicles))].reset_index(drop=True)
    avl, *left_out = plausible_positions(avl, feed)
    history_avl = [plausible_positions(read_avl(h), feed).avl for h in history]
    cols, runs = _replay(feed, paths, avl, history_avl, None, None)
    keep = np.isfinite(cols["truth"]) & (cols["pred"] - cols["now"] <= HORIZON_S)
    cols = {k: v[keep] for k, v in cols.items()}
    horizon = cols["pred"] - cols["now"]
    truth = cols["truth"]
    result: dict[str, object] = {"predictions": len(truth)}
    result.update(score_predictions(horizon, truth - cols["pred"]))
    result["baselines"] = {
        name: {k: v for k, v in score_predictions(horizon, truth - cols[col]).items()
               if k in ("within_windows", "mae_s", "eta_benchmark")}
        for name, col in (("schedule", "sched"), ("delay_propagation", "delayprop"))}
    accuracy = None
    if assign and (avl["trip_id"] != "").all():
        accuracy = assignment_accuracy(feed, paths, avl)
    result["assigned_trip_accuracy"] = accuracy
    result["prediction_completeness"], result["trip_minute_completeness"] = _completeness(
        runs, _trip_bounds(feed), avl["time_s"].to_numpy(), cols)
    result["path_sources"] = paths.source_counts()
    result["delay_weight"] = delay_weight_by_bucket(horizon, cols["delay_weight"]) if len(horizon) else {}
    result["positions_left_out"] = dict(zip(("repeated", "area", "speed"), left_out, strict=True))
    return result


def _completeness(runs: Sequence[_Run], bounds: dict[str, tuple[int, int]], ping_s: FloatArray,
                  cols: dict[str, FloatArray]) -> tuple[float | None, float | None]:
    """Share of (ping, stop) pairs of the recorded trips with a scored prediction
    (`telematics.completeness`; the prediction rows are of the ping's own run), and share of
    the runs' in-service minutes with a prediction (`telematics.prediction_kpi.prediction_completeness`)."""
    ping_run, passings = run_passings(runs, bounds, len(ping_s))
    ping = cols["ping"].astype(np.int64)
    minutes = run_minute_completeness(passings, ping_run[ping], cols["now"], len(runs))
    pings, events = expected_pairs(ping_s, ping_run, passings["run"], passings["time_s"], HORIZON_S)
    if len(pings) == 0:
        return None, minutes
    index = pd.Series(np.arange(len(passings)),
                      index=pd.MultiIndex.from_arrays([passings["run"], passings["row"]]))
    event = index.reindex(pd.MultiIndex.from_arrays([ping_run[ping], cols["row"].astype(np.int64)]))
    covered = pair_coverage(pings, events, ping, event.fillna(-1).to_numpy(dtype=np.int64))
    return round(float(covered.mean()), 4), minutes


def run_minute_completeness(passings: pd.DataFrame, pred_run: npt.ArrayLike, pred_now_s: npt.ArrayLike,
                            n_runs: int) -> float | None:
    """Share of the runs' in-service minutes (first to last known passing) with a prediction
    issued at most 120 s before the minute's end (`telematics.prediction_kpi.prediction_completeness`).

    Parameters
    ----------
    passings : DataFrame
        `run_passings`'s passings (``run``, ``time_s``).
    pred_run : array_like of int
        Run each prediction was made for (-1 none).
    pred_now_s : array_like
        Issue time of each prediction (epoch s).
    n_runs : int
        Number of runs.
    """
    span = passings.groupby("run")["time_s"].agg(["min", "max"]).reindex(range(n_runs))
    share, _ = prediction_completeness(span["min"].to_numpy(), span["max"].to_numpy(), pred_run, pred_now_s)
    return None if share is None else round(share, 4)


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
            "situation": correctable(pred.situation, still[group]).astype(np.float64),
            "group": group.astype(np.float64), "ping": run.rows[group].astype(np.float64)}


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

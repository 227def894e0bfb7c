"""Scoring a positions-only feed: arrival predictions when the file records no trips.

A regional fleet's navigation terminals report a vehicle id and a position, no trip. Such a
file has no recorded truth, so `telematics.evaluate.evaluate_arrivals` refuses it. A new city
still wants to know how good its arrivals are before it goes live. `evaluate_positions_only`
scores it against the best truth the file allows: the **retrospective assignment** (each
vehicle's Viterbi path over its whole history, `telematics.position_assignment.assign_positions` with
``retrospective=True``, the pass reports use), whose trips give the stop passings, while the
predictions follow the **live causal assignment** (what `its serve` would have served, trip
ids hidden: `telematics.matrix.evaluate_cell` with ``ids=hidden``, or ``ids=route`` when the
file reports routes). On WMATA, whose trips are recorded, the retrospective pass agrees with
them at 0.975 of pings: the scores are estimates, biased favourably where the retrospective
pass errs (a prediction for a trip both passes got wrong is scored against that trip), and the
result says so (``truth``). ``assigned_trip_accuracy`` and ``positions_assignment.live`` are
then the live assignment's agreement with the retrospective one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from telematics.avl import plausible_positions
from telematics.frequencies import expand_frequencies
from telematics.gtfs import Feed, trip_paths
from telematics.gtfs.paths import StopPathFn
from telematics.matrix import Dataset, evaluate_cell
from telematics.position_assignment import assign_positions

__all__ = ["TRUTH", "evaluate_positions_only", "has_recorded_trips"]

#: What the truth of a positions-only score is (the result's ``truth``).
TRUTH = ("retrospective assignment: the file records no trips, so each vehicle's trips come from "
         "the whole-history pass and the stop passings from its pings along them; the predictions "
         "follow the live causal assignment, and its agreement with the retrospective one is "
         "assigned_trip_accuracy")


def has_recorded_trips(avl: pd.DataFrame) -> bool:
    """Whether an AVL frame (`telematics.avl.read_avl` columns) records trip ids at all."""
    return bool(len(avl)) and bool((avl["trip_id"].astype(str) != "").any())


def evaluate_positions_only(feed: Feed, avl: pd.DataFrame, *, name: str = "positions",
                            stop_path: StopPathFn | None = None) -> dict[str, object]:
    """Score the live arrivals of a positions-only AVL frame against its retrospective assignment.

    Parameters
    ----------
    feed : Feed
        The schedule.
    avl : DataFrame
        Positions (`telematics.avl.read_avl` columns; trip ids blank, routes optional).
    name : str
        Dataset name in the result.
    stop_path : callable, optional
        Builds the paths of trips without a shape (`telematics.road_paths.RoadStopPaths`).

    Returns
    -------
    dict
        `telematics.matrix.evaluate_cell`'s result plus ``truth`` (`TRUTH`) and
        ``truth_pings`` (share of the applied pings the retrospective pass gave a trip: the
        others are not scored).
    """
    expanded = expand_frequencies(feed)
    applied = plausible_positions(avl, expanded).avl
    paths = trip_paths(expanded, stop_path)
    routes = bool((applied["route_id"].astype(str) != "").any()) if len(applied) else False
    hidden = applied.assign(trip_id="", start_date="") if routes else applied.assign(
        trip_id="", route_id="", start_date="")
    inferred = assign_positions(expanded, paths, hidden, retrospective=True)
    assert inferred.retro_trips is not None and inferred.retro_day_start_s is not None
    trips = np.asarray(inferred.retro_trips, dtype=str)
    day0 = np.asarray(inferred.retro_day_start_s, dtype=np.float64)
    known = (trips != "") & np.isfinite(day0)
    noon = pd.to_datetime(np.where(known, day0, 0.0) + 12 * 3600.0, unit="s", utc=True).tz_convert(feed.timezone)
    dates = np.where(known, noon.strftime("%Y%m%d").to_numpy(dtype=str), "")
    truth = applied.assign(trip_id=np.where(known, trips, ""), start_date=dates)
    result = evaluate_cell(Dataset(name, feed, truth), "ids=route" if routes else "ids=hidden",
                           stop_path=stop_path)
    result["truth"] = TRUTH
    result["truth_pings"] = round(float(known.mean()), 4) if len(known) else None
    return result

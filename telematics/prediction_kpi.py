"""The industry's yardsticks of served predictions: the ETA Accuracy Benchmark and completeness.

* The ETA Accuracy Benchmark (Transit, Swiftly and Arcadis IBI, 2024; the methodology of the
  ``TransitApp/ETA-Accuracy-Benchmark`` repository): a prediction goes into a bucket by its
  *time to actual* (actual arrival - the time the prediction was sampled), 0-3, 3-6, 6-10 and
  10-15 min (start inclusive, end exclusive), and is accurate when the vehicle arrived no more
  than the bucket's early allowance before the predicted time and no more than its late
  allowance after it (both bounds inclusive). The score is the unweighted mean of the four
  bucket accuracies. Error here is ``actual - predicted`` (s), as everywhere in the platform:
  *early* (the bus came before the time shown, riders miss it) is the negative side, so
  0-3 min allows ``[-30, +90]`` s.
* Prediction completeness: the share of in-service trip-minutes with a prediction.

Pure functions over arrays and frames; `telematics.kpi.section` reads the stored rows and
``its eval arrivals`` scores its replay with the same functions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from its.indicators import Indicator, indicator
from telematics.completeness import trip_minute_coverage

if TYPE_CHECKING:
    from its.db import Database

__all__ = ["ETA_BENCHMARK_WINDOWS", "eta_benchmark", "eta_benchmark_score", "prediction_completeness",
           "read_prediction_indicators", "read_trip_minutes"]

#: ETA Accuracy Benchmark buckets: (time to actual from s, to s, allowed error low s, high s),
#: error = actual - predicted arrival (negative: the vehicle came earlier than predicted).
ETA_BENCHMARK_WINDOWS: tuple[tuple[float, float, float, float], ...] = (
    (0, 180, -30, 90), (180, 360, -60, 150), (360, 600, -60, 210), (600, 900, -90, 270))


def eta_benchmark(time_to_actual_s: npt.ArrayLike, error_s: npt.ArrayLike) -> pd.DataFrame:
    """ETA Accuracy Benchmark accuracy (share, 0-1) per time-to-actual bucket.

    A prediction's bucket is its time to actual = actual arrival - sampling time (s): 0-3,
    3-6, 6-10, 10-15 min, ``start <= t < end`` (a prediction whose vehicle had already
    passed, t < 0, counts in 0-3 min; t >= 15 min is outside the benchmark). It is accurate
    when ``early <= error <= late`` with error = actual - predicted arrival (s, negative: the
    vehicle came before the predicted time) and (early, late) = (-30, +90) s, (-60, +150),
    (-60, +210), (-90, +270). Accuracy = accurate / predictions of the bucket (Transit,
    Swiftly, Arcadis IBI 2024).

    Returns
    -------
    DataFrame
        ``bucket, predictions, accurate, accuracy`` (one row per bucket; ``accuracy`` None
        for a bucket without predictions).
    """
    t = np.asarray(time_to_actual_s, dtype=np.float64)
    e = np.asarray(error_s, dtype=np.float64)
    rows = []
    for lo, hi, early, late in ETA_BENCHMARK_WINDOWS:
        m = (t < hi) & ((t >= lo) if lo > 0 else np.isfinite(t))
        n = int(m.sum())
        ok = int(((e[m] >= early) & (e[m] <= late)).sum())
        rows.append({"bucket": f"{int(lo // 60)}-{int(hi // 60)} min", "predictions": n, "accurate": ok,
                     "accuracy": ok / n if n else None})
    return pd.DataFrame(rows)


def eta_benchmark_score(time_to_actual_s: npt.ArrayLike, error_s: npt.ArrayLike) -> float | None:
    """ETA Accuracy Benchmark score (share, 0-1): the unweighted mean of the four bucket accuracies.

    The buckets and accuracies are `eta_benchmark`'s (time to actual 0-3 / 3-6 / 6-10 /
    10-15 min; error = actual - predicted allowed in [-30, +90] / [-60, +150] / [-60, +210] /
    [-90, +270] s). Each bucket weighs the same whatever its number of predictions; None
    when a bucket has no prediction (the score is not defined on part of the buckets).
    """
    acc = eta_benchmark(time_to_actual_s, error_s)["accuracy"]
    if acc.isna().any():
        return None
    return float(acc.mean())


def prediction_completeness(trip_start_s: npt.ArrayLike, trip_end_s: npt.ArrayLike, pred_trip: npt.ArrayLike,
                            pred_issued_s: npt.ArrayLike, max_age_s: float = 120.0, period: tuple[float, float]
                            | None = None) -> tuple[float | None, int]:
    """Prediction completeness (share, 0-1): in-service trip-minutes with a prediction / in-service trip-minutes.

    A trip is in service from its first to its last detected stop passing (epoch s); its
    in-service minutes are the UTC-aligned minutes ``[m, m + 60)`` that overlap that span
    (within ``period``, epoch s ``[start, end)``, when given). A trip-minute has a prediction
    when a prediction for that trip was issued in ``[m + 60 - max_age_s, m + 60)``: what a
    rider sees during the minute is at most ``max_age_s`` (s) old at its end (with 60 s, it
    was issued in that very minute).

    Parameters
    ----------
    trip_start_s, trip_end_s : array_like, shape (k,)
        First and last passing of each trip in service (epoch s).
    pred_trip : array_like of int, shape (r,)
        Trip (index into the spans) of each prediction (-1: none).
    pred_issued_s : array_like, shape (r,)
        Issue time of each prediction (epoch s).

    Returns
    -------
    share, minutes : float or None, int
        The completeness and the number of in-service trip-minutes (None when 0).
    """
    covered, total = trip_minute_coverage(trip_start_s, trip_end_s, pred_trip, pred_issued_s, max_age_s, period)
    return (covered / total if total else None), total


def read_trip_minutes(db: Database, start: datetime, end: datetime, agency: str | None,
                      max_age_s: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trips in service in ``[start, end)`` and the issue times of their stored predictions.

    Returns
    -------
    spans : DataFrame
        ``agency, service_date, trip_id, first_s, last_s``: first and last detected stop
        passing (``stop_arrivals``) of each trip in the period (epoch s).
    issued : DataFrame
        ``agency, service_date, trip_id, issued_s``: each distinct issue time of a stored
        prediction sample (``arrival_predictions``) from ``start - max_age_s`` to ``end``.
    """
    extra = " AND agency = %(agency)s" if agency is not None else ""
    params = {"start": start, "end": end, "agency": agency, "from": start - timedelta(seconds=max_age_s)}
    spans = db.fetchall(
        "SELECT agency, service_date, trip_id, extract(epoch FROM min(time))::float8,"
        " extract(epoch FROM max(time))::float8 FROM stop_arrivals"
        " WHERE time >= %(start)s AND time < %(end)s" + extra + " GROUP BY 1, 2, 3", params)
    issued = db.fetchall(
        "SELECT DISTINCT agency, service_date, trip_id, extract(epoch FROM issued)::float8 FROM arrival_predictions"
        " WHERE issued >= %(from)s AND issued < %(end)s" + extra, params)
    return (pd.DataFrame.from_records(spans, columns=["agency", "service_date", "trip_id", "first_s", "last_s"]),
            pd.DataFrame.from_records(issued, columns=["agency", "service_date", "trip_id", "issued_s"]))


def read_prediction_indicators(db: Database, start: datetime, end: datetime, agency: str | None,
                               errors: pd.DataFrame, no_scored: str, max_age_s: float = 120.0
                               ) -> dict[str, Indicator]:
    """The report's ``eta_benchmark`` and ``prediction_completeness`` indicators of ``[start, end)``.

    Parameters
    ----------
    db : Database
        The store.
    start, end : datetime
        The period.
    agency : str, optional
        One agency (default all).
    errors : DataFrame
        Scored stored predictions (`telematics.kpi.read_prediction_errors`: ``horizon_s``,
        ``error_s``, s).
    no_scored : str
        Why there is no scored prediction (when ``errors`` is empty).
    max_age_s : float
        Oldest prediction (s) that still covers a minute (``ITS_TELEMATICS_STALE_AFTER_S``).
    """
    time_to_actual = errors["horizon_s"].to_numpy(dtype=np.float64) + errors["error_s"].to_numpy(dtype=np.float64)
    error = errors["error_s"].to_numpy(dtype=np.float64)
    score = eta_benchmark_score(time_to_actual, error) if len(errors) else None
    if len(errors) and score is None:
        missing = eta_benchmark(time_to_actual, error).query("predictions == 0")["bucket"]
        no_scored = "no scored prediction in the benchmark bucket(s) " + ", ".join(missing)
    out = {"eta_benchmark": indicator("share", eta_benchmark_score, value=score, reason=no_scored,
                                      basis=f"{len(errors)} scored predictions")}
    spans, issued = read_trip_minutes(db, start, end, agency, max_age_s)
    keys = ["agency", "service_date", "trip_id"]
    index = pd.MultiIndex.from_frame(spans[keys]) if len(spans) else pd.MultiIndex.from_tuples([], names=keys)
    trip = pd.Series(np.arange(len(spans)), index=index).reindex(
        pd.MultiIndex.from_frame(issued[keys]) if len(issued) else pd.MultiIndex.from_tuples([], names=keys))
    share, minutes = prediction_completeness(
        spans["first_s"].to_numpy(dtype=np.float64), spans["last_s"].to_numpy(dtype=np.float64),
        trip.fillna(-1).to_numpy(dtype=np.int64), issued["issued_s"].to_numpy(dtype=np.float64), max_age_s,
        (start.timestamp(), end.timestamp()))
    out["prediction_completeness"] = indicator(
        "share", prediction_completeness, value=share, reason="no stop arrivals detected in the period",
        basis=f"{minutes} in-service trip-minutes")
    return out

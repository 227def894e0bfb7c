"""Public-transport efficiency indicators for reports (TheTransitClock / TfL definitions).

Pure functions over pandas frames compute each indicator; its docstring is the one
definition (units and formula) the report quotes. `section` reads the rows of a period
``[start, end)`` from the store (``stop_arrivals``, ``vehicle_positions``, the active GTFS
feed) and returns every indicator as ``{"unit", "definition", "value" | "rows", "reason"}``:
a period with too little data gives ``None`` with a reason, never a made-up 0.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from its.db import Database
from its.indicators import Indicator, indicator_table
from telematics.config import TelematicsSettings
from telematics.frequencies import instances
from telematics.gate import service_area
from telematics.gtfs import service_day_start
from telematics.plausibility import AREA, SPEED, ServiceArea, plausibility_flags
from telematics.prediction_kpi import read_prediction_indicators
from telematics.windows import MBTA_WINDOWS

__all__ = [
    "MBTA_WINDOWS",
    "OUTCOME_KNOWN_S",
    "avl_completeness",
    "delay_by_route_hour",
    "headway_regularity",
    "on_time_performance",
    "position_quality",
    "prediction_accuracy",
    "read_position_quality",
    "read_positions_flagged",
    "read_prediction_errors",
    "read_scheduled_stop_times",
    "read_service_area",
    "section",
    "service_delivered",
    "stale_vehicles",
    "vehicle_km",
]

#: A prediction is scored once the data reach this long (s, the widest late window) past its predicted arrival.
OUTCOME_KNOWN_S = float(max(w[3] for w in MBTA_WINDOWS))
EARTH_RADIUS_M = 6_371_008.8


def on_time_performance(arrivals: pd.DataFrame, by: str, early_s: float = 60.0, late_s: float = 300.0) -> pd.DataFrame:
    """On-time performance (share, 0-1) per ``by`` (``route_id`` or ``stop_id``).

    A departure is on time when ``-early_s <= delay_s <= late_s`` (default the [-1, +5] min
    window); ``on_time_share = on_time / departures`` over departures with a known delay.

    Parameters
    ----------
    arrivals : DataFrame
        ``by`` and ``delay_s`` (s, actual - scheduled; NaN when unknown).
    by : str
        Grouping column.
    early_s, late_s : float
        Window bounds (s), both inclusive.

    Returns
    -------
    DataFrame
        ``by, departures, early, on_time, late, on_time_share``.
    """
    d = arrivals[[by, "delay_s"]].dropna()
    delay = d["delay_s"].to_numpy(dtype=np.float64)
    frame = pd.DataFrame({by: d[by].to_numpy(), "early": delay < -early_s, "late": delay > late_s})
    frame["on_time"] = ~(frame["early"] | frame["late"])
    out = frame.groupby(by, sort=True).agg(departures=("on_time", "size"), early=("early", "sum"),
                                          on_time=("on_time", "sum"), late=("late", "sum")).reset_index()
    out["on_time_share"] = out["on_time"] / out["departures"]
    return out


def delay_by_route_hour(arrivals: pd.DataFrame, timezone: str = "UTC") -> pd.DataFrame:
    """Mean and 90th-percentile delay (s) per route and local hour of day.

    ``delay_s`` = actual - scheduled passing time (s, positive late); hour = the local
    (``timezone``) hour of the actual time; p90 by linear interpolation between order
    statistics (numpy default).

    Returns
    -------
    DataFrame
        ``route_id, hour, departures, mean_delay_s, p90_delay_s``.
    """
    d = arrivals[["route_id", "time", "delay_s"]].dropna()
    hour = pd.to_datetime(d["time"], utc=True).dt.tz_convert(ZoneInfo(timezone)).dt.hour
    frame = pd.DataFrame({"route_id": d["route_id"].to_numpy(), "hour": hour.to_numpy(),
                          "delay_s": d["delay_s"].to_numpy(dtype=np.float64)})
    grouped = frame.groupby(["route_id", "hour"], sort=True)["delay_s"]
    return grouped.agg(departures="size", mean_delay_s="mean",
                       p90_delay_s=lambda x: float(np.percentile(x, 90))).reset_index()


def _stop_headways(events: pd.DataFrame) -> pd.DataFrame:
    """Consecutive headways (s) of ``time_s`` within each (route_id, stop_id)."""
    e = events.sort_values(["route_id", "stop_id", "time_s"], kind="stable")
    t = e["time_s"].to_numpy(dtype=np.float64)
    route = e["route_id"].to_numpy()
    stop = e["stop_id"].to_numpy()
    same = (route[1:] == route[:-1]) & (stop[1:] == stop[:-1])
    return pd.DataFrame({"route_id": route[1:][same], "stop_id": stop[1:][same], "h": np.diff(t)[same]})


def _wait(h: pd.DataFrame) -> pd.DataFrame:
    """Average wait of random arrivals per (route, stop): sum(h^2) / (2 sum(h)), s."""
    g = h.assign(h2=h["h"] ** 2).groupby(["route_id", "stop_id"])
    out = g.agg(n=("h", "size"), sum_h=("h", "sum"), sum_h2=("h2", "sum"))
    out["wait_s"] = out["sum_h2"] / (2.0 * out["sum_h"])
    return out


def headway_regularity(actual: pd.DataFrame, scheduled: pd.DataFrame, frequent_headway_s: float = 720.0) -> pd.DataFrame:
    """Excess wait time (s) and headway coefficient of variation on frequent routes.

    Per (route, stop), headways ``h`` are the gaps between consecutive passings (s).
    Average wait of passengers arriving at random: ``W = sum(h^2) / (2 sum(h))`` (s).
    Excess wait time ``EWT = AWT - SWT`` with AWT from actual passings and SWT from the
    timetable (TfL); a route's EWT/AWT/SWT are the means over its stops weighted by scheduled
    headways. Headway CV = std / mean of all actual headways of the route (dimensionless).
    Frequent routes: mean scheduled headway <= ``frequent_headway_s`` (s); stops need at least
    two actual and two scheduled headways.

    Parameters
    ----------
    actual, scheduled : DataFrame
        ``route_id, stop_id, time_s`` (epoch s) of actual / scheduled passings.

    Returns
    -------
    DataFrame
        ``route_id, stops, scheduled_headway_s, swt_s, awt_s, ewt_s, headway_cv``.
    """
    cols = ["route_id", "stops", "scheduled_headway_s", "swt_s", "awt_s", "ewt_s", "headway_cv"]
    ha, hs = _stop_headways(actual), _stop_headways(scheduled)
    wa, ws = _wait(ha), _wait(hs)
    both = ws.add_suffix("_s").join(wa.add_suffix("_a"), how="inner")
    both = both[(both["n_s"] >= 2) & (both["n_a"] >= 2)].reset_index()
    if both.empty:
        return pd.DataFrame(columns=cols)
    both["w_swt"] = both["wait_s_s"] * both["n_s"]
    both["w_awt"] = both["wait_s_a"] * both["n_s"]
    r = both.groupby("route_id").agg(stops=("stop_id", "size"), n=("n_s", "sum"), sum_h=("sum_h_s", "sum"),
                                     w_swt=("w_swt", "sum"), w_awt=("w_awt", "sum"))
    r["scheduled_headway_s"] = r["sum_h"] / r["n"]
    r["swt_s"] = r["w_swt"] / r["n"]
    r["awt_s"] = r["w_awt"] / r["n"]
    r["ewt_s"] = r["awt_s"] - r["swt_s"]
    used = ha.merge(both[["route_id", "stop_id"]], on=["route_id", "stop_id"])
    cv = used.groupby("route_id")["h"].agg(lambda x: float(np.std(x) / np.mean(x)))
    r["headway_cv"] = cv
    r = r[r["scheduled_headway_s"] <= frequent_headway_s]
    return r.reset_index()[cols]


def service_delivered(scheduled_trips: pd.DataFrame, run_trips: pd.DataFrame) -> pd.DataFrame:
    """Trips run / trips scheduled (share, 0-1) per route.

    A scheduled trip (``service_date, trip_id`` whose first departure is in the period, on a
    service day with at least one detected passing of the agency: a day the platform observed)
    was run when at least one stop passing of it was detected.

    Returns
    -------
    DataFrame
        ``route_id, scheduled, run, delivered_share``.
    """
    key = ["service_date", "trip_id"]
    ran = run_trips[key].drop_duplicates().assign(ran=True)
    s = scheduled_trips[["route_id", *key]].drop_duplicates().merge(ran, on=key, how="left")
    s["ran"] = s["ran"].fillna(False).astype(bool)
    out = s.groupby("route_id").agg(scheduled=("ran", "size"), run=("ran", "sum")).reset_index()
    out["delivered_share"] = out["run"] / out["scheduled"]
    return out


def _haversine_m(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a)))


def vehicle_km(positions: pd.DataFrame, max_gap_s: float = 300.0, max_speed_mps: float = 50.0,
               gps_noise_m: float = 50.0) -> pd.DataFrame:
    """Vehicle-kilometres run in service (km) per route.

    Sum of great-circle distances between consecutive plausible pings of the same vehicle on
    the same trip (``trip_id`` not null), skipping gaps longer than ``max_gap_s`` (s) and steps
    longer than ``gps_noise_m`` + ``max_speed_mps`` x their duration (m; a vehicle taken to
    be somewhere else after a run of implausible fixes). Pings flagged by
    `telematics.plausibility` (column ``quality`` non-zero: an impossible speed, outside the
    service area) are left out.

    Returns
    -------
    DataFrame
        ``route_id, vehicle_km``.
    """
    p = positions[positions["trip_id"].notna()]
    if "quality" in p.columns:
        p = p[p["quality"].to_numpy() == 0]
    p = p.sort_values(["vehicle_id", "time_s"], kind="stable")
    v, trip = p["vehicle_id"].to_numpy(), p["trip_id"].to_numpy()
    t = p["time_s"].to_numpy(dtype=np.float64)
    lat, lon = p["lat"].to_numpy(dtype=np.float64), p["lon"].to_numpy(dtype=np.float64)
    d = _haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
    dt = np.diff(t)
    ok = (v[1:] == v[:-1]) & (trip[1:] == trip[:-1]) & (dt <= max_gap_s) & (d <= gps_noise_m + max_speed_mps * dt)
    route = p["route_id"].fillna("").to_numpy()[1:]
    frame = pd.DataFrame({"route_id": route[ok], "vehicle_km": d[ok] / 1000.0})
    return frame.groupby("route_id").agg(vehicle_km=("vehicle_km", "sum")).reset_index()


def _flag_positions(positions: pd.DataFrame, config: TelematicsSettings, area: ServiceArea | None) -> pd.DataFrame:
    """``positions`` (``vehicle_id, time_s, lat, lon``) with their plausibility flags in ``quality``
    (`telematics.plausibility.plausibility_flags` with the live service's thresholds; ``area``
    a `telematics.plausibility.ServiceArea` or None)."""
    flags = plausibility_flags(positions["vehicle_id"].to_numpy(), positions["time_s"].to_numpy(np.float64),
                               positions["lat"].to_numpy(np.float64), positions["lon"].to_numpy(np.float64),
                               max_speed_mps=config.max_speed_mps, area=area,
                               gps_noise_m=config.gps_noise_m, reanchor_fixes=config.reanchor_fixes)
    return positions.assign(quality=flags)


def position_quality(positions: pd.DataFrame, stale_after_s: float = 120.0) -> pd.DataFrame:
    """Positions stored, flagged implausible and stale vehicles per agency (positions; vehicles).

    ``stored`` = position rows of the agency in the period; ``flagged_speed`` = those whose
    vehicle could not have reached them from its last plausible position at
    ``ITS_TELEMATICS_MAX_SPEED_MPS`` (m/s); ``flagged_area`` = those outside the agency's
    service area (`telematics.plausibility`); flagged positions are stored but not applied
    live and left out of vehicle-km and AVL completeness. ``stale_devices`` = vehicles that
    went silent for longer than ``stale_after_s`` (s) between two plausible positions of the
    same trip (`stale_vehicles`).

    Parameters
    ----------
    positions : DataFrame
        ``agency, vehicle_id, time_s, trip_id, quality`` (flags, `telematics.plausibility`).

    Returns
    -------
    DataFrame
        ``source`` (agency), ``stored, flagged_speed, flagged_area, stale_devices``.
    """
    q = positions["quality"].to_numpy()
    frame = pd.DataFrame({"source": positions["agency"].to_numpy(), "stored": 1,
                          "flagged_speed": (q & SPEED) != 0, "flagged_area": (q & AREA) != 0})
    out = frame.groupby("source", sort=True).sum().astype(int)
    stale = stale_vehicles(positions, stale_after_s)
    out["stale_devices"] = stale.groupby("agency").size().reindex(out.index).fillna(0).astype(int) \
        if not stale.empty else 0
    return out.reset_index()


def stale_vehicles(positions: pd.DataFrame, stale_after_s: float = 120.0) -> pd.DataFrame:
    """Vehicles that went stale on a trip: silent longer than ``stale_after_s`` (s) between two
    consecutive plausible positions (``quality`` 0) of the same trip (the dispatcher's
    ``stale_vehicle`` alert), with their longest such silence (s).

    Returns
    -------
    DataFrame
        ``agency, vehicle_id, silences, longest_s``.
    """
    p = positions[positions["trip_id"].notna() & (positions["quality"].to_numpy() == 0)]
    p = p.sort_values(["agency", "vehicle_id", "time_s"], kind="stable")
    a, v, trip = p["agency"].to_numpy(), p["vehicle_id"].to_numpy(), p["trip_id"].to_numpy()
    gap = np.diff(p["time_s"].to_numpy(np.float64))
    hit = (a[1:] == a[:-1]) & (v[1:] == v[:-1]) & (trip[1:] == trip[:-1]) & (gap > stale_after_s)
    frame = pd.DataFrame({"agency": a[1:][hit], "vehicle_id": v[1:][hit], "gap": gap[hit]})
    return frame.groupby(["agency", "vehicle_id"], sort=True).agg(silences=("gap", "size"),
                                                                 longest_s=("gap", "max")).reset_index()


def avl_completeness(positions: pd.DataFrame, expected_interval_s: float = 30.0) -> pd.DataFrame:
    """AVL completeness (share, 0-1) per vehicle: pings received / pings expected on duty.

    A vehicle is on duty on a trip from its first to its last ping with that ``trip_id``;
    expected pings there = ``floor(span / expected_interval_s) + 1``; received pings are
    counted up to the expected number (a chattier unit does not hide a silent one).

    Returns
    -------
    DataFrame
        ``vehicle_id, on_duty_s, received, expected, completeness``.
    """
    p = positions[positions["trip_id"].notna()]
    ep = p.groupby(["vehicle_id", "trip_id"])["time_s"].agg(["min", "max", "size"])
    expected = np.floor((ep["max"] - ep["min"]) / expected_interval_s) + 1
    ep = ep.assign(on_duty_s=ep["max"] - ep["min"], expected=expected, received=np.minimum(ep["size"], expected))
    out = ep.groupby("vehicle_id").agg(on_duty_s=("on_duty_s", "sum"), received=("received", "sum"),
                                        expected=("expected", "sum")).reset_index()
    out["completeness"] = out["received"] / out["expected"]
    return out


def prediction_accuracy(horizon_s: np.ndarray, error_s: np.ndarray) -> pd.DataFrame:
    """Share of predictions within the MBTA windows (0-1) and mean absolute error (s) per horizon band.

    Over the stored samples of served predictions (``arrival_predictions``) whose stop
    passing was detected (``stop_arrivals``, the first passing of the trip's stop on its
    service date) and whose outcome is known (predicted arrival + 360 s, the widest late
    window, not after the agency's latest detected passing): error = actual - predicted
    arrival (s, positive: the bus came later than predicted); horizon = predicted arrival -
    issue time (s). Bands and allowed errors: 0-3 min [-60, +60] s, 3-6 min [-90, +120],
    6-12 min [-150, +210], 12-30 min [-240, +360]; a prediction already due (negative
    horizon) counts in 0-3 min. ``its eval arrivals`` scores with this same function
    (`telematics.evaluate.score_predictions`); it weights every ping of the replayed day,
    the live samples weight each vehicle once a minute.

    Returns
    -------
    DataFrame
        ``horizon, predictions, within, accuracy, mae_s, mean_error_s`` (one row per band;
        ``accuracy``, ``mae_s`` and ``mean_error_s`` None for a band without predictions).
    """
    h, e = np.asarray(horizon_s, np.float64), np.asarray(error_s, np.float64)
    rows = []
    for lo, hi, elo, ehi in MBTA_WINDOWS:
        m = (h >= lo) & (h < hi) if lo > 0 else h < hi
        n = int(m.sum())
        within = int(((e[m] >= elo) & (e[m] <= ehi)).sum())
        rows.append({"horizon": f"{int(lo // 60)}-{int(hi // 60)} min", "predictions": n, "within": within,
                     "accuracy": within / n if n else None,
                     "mae_s": float(np.abs(e[m]).mean()) if n else None,
                     "mean_error_s": float(e[m].mean()) if n else None})
    return pd.DataFrame(rows)


def read_prediction_errors(db: Database, start: datetime, end: datetime, agency: str | None = None,
                           settle_s: float = 7200.0) -> tuple[pd.DataFrame, int]:
    """Stored predictions issued in ``[start, end)`` joined with their detected arrivals.

    Arrivals are looked up until ``end + settle_s`` (s), so a prediction issued near the end
    of the period is scored when its bus came after it. A prediction is scored only when its
    outcome is known: its predicted arrival plus `OUTCOME_KNOWN_S` is not after the latest
    passing detected for its agency in that range (otherwise a report made right after the
    period would score only the buses that came early). Returns the frame ``agency,
    horizon_s, error_s`` (s, error = actual - predicted) and the number of predictions
    issued in the period (scored or not).
    """
    extra = " AND agency = %(agency)s" if agency is not None else ""
    params = {"start": start, "end": end, "until": end + timedelta(seconds=settle_s), "agency": agency,
              "known": timedelta(seconds=OUTCOME_KNOWN_S)}
    issued = db.fetchall("SELECT count(*) FROM arrival_predictions WHERE issued >= %(start)s"
                         " AND issued < %(end)s" + extra, params)[0][0]
    rows = db.fetchall(
        "WITH a AS (SELECT agency, service_date, trip_id, stop_sequence, min(time) AS time FROM stop_arrivals"
        "  WHERE time >= %(start)s AND time < %(until)s" + extra + " GROUP BY 1, 2, 3, 4),"
        " seen AS (SELECT agency, max(time) AS last FROM a GROUP BY 1)"
        " SELECT p.agency, p.horizon_s, extract(epoch FROM a.time - p.predicted_time)::float8"
        " FROM arrival_predictions p JOIN a USING (agency, service_date, trip_id, stop_sequence)"
        " JOIN seen ON seen.agency = p.agency AND p.predicted_time + %(known)s <= seen.last"
        " WHERE p.issued >= %(start)s AND p.issued < %(end)s" + extra.replace(" agency", " p.agency", 1), params)
    return pd.DataFrame.from_records(rows, columns=["agency", "horizon_s", "error_s"]), int(issued)


# --------------------------------------------------------------------------- SQL readers


def read_scheduled_stop_times(db: Database, agency: str, start: datetime, end: datetime,
                              service_dates: list[date] | None = None) -> pd.DataFrame:
    """Scheduled passings of ``agency``'s active feed with ``start <= time < end``.

    ``service_dates`` restricts the service days read (default: every day the period touches).
    Returns ``service_date, trip_id, route_id, stop_id, stop_sequence, time_s`` (epoch s of the
    scheduled departure) and ``trip_start_s`` (the trip's first departure, epoch s). A
    frequency-based trip (``gtfs_frequencies``) gives its instances
    (`telematics.frequencies.instances`: trip ids ``TEMPLATE#HH:MM:SS``, the template's times
    shifted to each start), as the live service runs and records them.
    """
    rows = db.fetchall("SELECT f.feed_version, f.timezone FROM gtfs_active a JOIN gtfs_feeds f USING (feed_version)"
                       " WHERE a.agency = %s", (agency,))
    cols = ["service_date", "trip_id", "route_id", "stop_id", "stop_sequence", "time_s", "trip_start_s"]
    if not rows:
        return pd.DataFrame(columns=cols)
    version, tz = rows[0]
    first = (start.astimezone(ZoneInfo(tz)).date() - timedelta(days=2))
    last = end.astimezone(ZoneInfo(tz)).date()
    if service_dates is None:
        service_dates = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    query = """
    WITH days AS (SELECT DISTINCT unnest(%(days)s::date[]) AS day),
    svc AS (
      (SELECT days.day, c.service_id FROM days JOIN gtfs_calendar c
         ON c.feed_version = %(v)s AND days.day BETWEEN c.start_date AND c.end_date
        WHERE (ARRAY[c.monday, c.tuesday, c.wednesday, c.thursday, c.friday, c.saturday, c.sunday])
              [extract(isodow FROM days.day)::int]
       UNION
       SELECT cd.date, cd.service_id FROM gtfs_calendar_dates cd JOIN days ON days.day = cd.date
        WHERE cd.feed_version = %(v)s AND cd.exception_type = 1)
      EXCEPT
      SELECT cd.date, cd.service_id FROM gtfs_calendar_dates cd
       WHERE cd.feed_version = %(v)s AND cd.exception_type = 2)
    SELECT svc.day, t.trip_id, t.route_id, st.stop_id, st.stop_sequence, st.departure_s,
           min(st.departure_s) OVER (PARTITION BY svc.day, t.trip_id)
    FROM svc JOIN gtfs_trips t ON t.feed_version = %(v)s AND t.service_id = svc.service_id
    JOIN gtfs_stop_times st ON st.feed_version = %(v)s AND st.trip_id = t.trip_id
    """
    res = db.fetchall(query, {"days": list(service_dates), "v": version})
    frame = pd.DataFrame.from_records(res, columns=["service_date", "trip_id", "route_id", "stop_id", "stop_sequence",
                                                    "dep_s", "first_s"])
    freq = pd.DataFrame.from_records(
        db.fetchall("SELECT trip_id, start_s, end_s, headway_s, exact_times FROM gtfs_frequencies"
                    " WHERE feed_version = %s", (version,)),
        columns=["trip_id", "start_time", "end_time", "headway_secs", "exact_times"])
    if not freq.empty and not frame.empty:
        frame = _expand_instances(frame, instances(freq))
    if frame.empty:
        return pd.DataFrame(columns=cols)
    base = {d: service_day_start(d, tz) for d in frame["service_date"].unique()}
    day0 = frame["service_date"].map(base).to_numpy(dtype=np.float64)
    frame["time_s"] = day0 + frame["dep_s"].to_numpy(dtype=np.float64)
    frame["trip_start_s"] = day0 + frame["first_s"].to_numpy(dtype=np.float64)
    lo, hi = start.timestamp(), end.timestamp()
    frame = frame[(frame["time_s"] >= lo) & (frame["time_s"] < hi)]
    return frame[cols].reset_index(drop=True)


def _expand_instances(frame: pd.DataFrame, inst: pd.DataFrame) -> pd.DataFrame:
    """Scheduled rows with each frequency template's rows replaced by its instances (times
    shifted by instance start - template's first departure, s)."""
    templated = frame["trip_id"].isin(set(inst["template_trip_id"]))
    rows = frame[templated].merge(inst[["template_trip_id", "start_s", "trip_id"]].rename(
        columns={"trip_id": "instance"}), left_on="trip_id", right_on="template_trip_id")
    shift = rows["start_s"].to_numpy(dtype=np.float64) - rows["first_s"].to_numpy(dtype=np.float64)
    rows["dep_s"] = rows["dep_s"].to_numpy(dtype=np.float64) + shift
    rows["first_s"] = rows["start_s"].to_numpy(dtype=np.float64)
    rows["trip_id"] = rows["instance"]
    return pd.concat([frame[~templated], rows[frame.columns]], ignore_index=True)


def _read_arrivals(db: Database, agency: str, start: datetime, end: datetime) -> pd.DataFrame:
    rows = db.fetchall("SELECT service_date, trip_id, stop_id, route_id, time, delay_s FROM stop_arrivals"
                       " WHERE agency = %s AND time >= %s AND time < %s", (agency, start, end))
    f = pd.DataFrame.from_records(rows, columns=["service_date", "trip_id", "stop_id", "route_id", "time", "delay_s"])
    f["delay_s"] = pd.to_numeric(f["delay_s"], errors="coerce")
    f["time_s"] = (pd.to_datetime(f["time"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return f


def read_service_area(db: Database, agency: str, config: TelematicsSettings) -> ServiceArea | None:
    """The service area of ``agency`` (`telematics.gate.service_area`: the configured box, else
    its active feed's stops widened by the margin; None without a feed)."""
    rows = db.fetchall("SELECT s.stop_lat, s.stop_lon FROM gtfs_stops s JOIN gtfs_active a USING (feed_version)"
                       " WHERE a.agency = %s", (agency,))
    return service_area(config, [r[0] for r in rows], [r[1] for r in rows])


def read_positions_flagged(db: Database, agency: str, start: datetime, end: datetime,
                           config: TelematicsSettings) -> pd.DataFrame:
    """``agency``'s positions in ``[start, end)`` with their plausibility flags (`_flag_positions`)."""
    positions = _read_positions(db, agency, start, end)
    return _flag_positions(positions, config, read_service_area(db, agency, config)).assign(agency=agency)


def _read_positions(db: Database, agency: str, start: datetime, end: datetime) -> pd.DataFrame:
    rows = db.fetchall("SELECT vehicle_id, extract(epoch FROM time)::float8, lat, lon, trip_id, route_id"
                       " FROM vehicle_positions WHERE agency = %s AND time >= %s AND time < %s",
                       (agency, start, end))
    return pd.DataFrame.from_records(rows, columns=["vehicle_id", "time_s", "lat", "lon", "trip_id", "route_id"])


# --------------------------------------------------------------------------- report section




def _agencies(db: Database, start: datetime, end: datetime, agency: str | None) -> list[str]:
    """Agencies with an active feed or positions in ``[start, end)`` (only ``agency`` when given)."""
    agencies = [a for (a,) in db.fetchall("SELECT agency FROM gtfs_active ORDER BY agency")]
    seen = [a for (a,) in db.fetchall("SELECT DISTINCT agency FROM vehicle_positions WHERE time >= %s AND time < %s",
                                      (start, end))]
    names = sorted(set(agencies) | set(seen))
    return [a for a in names if a == agency] if agency is not None else names


def read_position_quality(db: Database, start: datetime, end: datetime, agency: str | None = None,
                          config: TelematicsSettings | None = None) -> pd.DataFrame:
    """`position_quality` of every agency's positions in ``[start, end)`` (columns ``table,
    source, stored, flagged_speed, flagged_area, stale_devices``; the report's data-quality table)."""
    cfg = config or TelematicsSettings()
    frames = [read_positions_flagged(db, a, start, end, cfg) for a in _agencies(db, start, end, agency)]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=["table", "source", "stored", "flagged_speed", "flagged_area", "stale_devices"])
    out = position_quality(pd.concat(frames, ignore_index=True), cfg.stale_after_s)
    return out.assign(table="vehicle_positions")[["table", "source", "stored", "flagged_speed", "flagged_area",
                                                   "stale_devices"]]


def section(db: Database, start: datetime, end: datetime, *, agency: str | None = None, timezone: str = "UTC",
            early_s: float = 60.0, late_s: float = 300.0, frequent_headway_s: float = 720.0,
            expected_interval_s: float = 30.0, max_gap_s: float = 300.0,
            config: TelematicsSettings | None = None) -> dict[str, Indicator]:
    """Every public-transport indicator of ``[start, end)`` (all agencies, or ``agency``); positions
    flagged implausible (``config``'s thresholds, `telematics.plausibility`) are left out."""
    cfg = config or TelematicsSettings()
    names = _agencies(db, start, end, agency)
    arr, pos, sched = [], [], []
    for a in names:
        arr.append(_read_arrivals(db, a, start, end).assign(agency=a))
        pos.append(read_positions_flagged(db, a, start, end, cfg))
        observed = sorted(set(arr[-1]["service_date"]))  # days the platform saw this agency run
        if observed:
            sched.append(read_scheduled_stop_times(db, a, start, end, observed).assign(agency=a))
    arrivals = pd.concat(arr, ignore_index=True) if arr else pd.DataFrame(
        columns=["service_date", "trip_id", "stop_id", "route_id", "time", "delay_s", "time_s"])
    positions = pd.concat(pos, ignore_index=True) if pos else pd.DataFrame(
        columns=["vehicle_id", "time_s", "lat", "lon", "trip_id", "route_id", "quality"])
    plausible = positions[positions["quality"].to_numpy() == 0]
    scheduled = pd.concat(sched, ignore_index=True) if sched else pd.DataFrame(
        columns=["service_date", "trip_id", "route_id", "stop_id", "stop_sequence", "time_s", "trip_start_s"])
    no_arr = "no stop arrivals detected in the period"
    no_delay = "no stop arrivals with a scheduled time in the period"
    has_delay = not arrivals.empty and arrivals["delay_s"].notna().any()
    out: dict[str, Indicator] = {
        "on_time_by_route": indicator_table(on_time_performance(arrivals, "route_id", early_s, late_s) if has_delay else None,
                                   "share", on_time_performance, no_delay if not arrivals.empty else no_arr),
        "on_time_by_stop": indicator_table(on_time_performance(arrivals, "stop_id", early_s, late_s) if has_delay else None,
                                  "share", on_time_performance, no_delay if not arrivals.empty else no_arr),
        "delay_by_route_hour": indicator_table(delay_by_route_hour(arrivals, timezone) if has_delay else None, "s",
                                      delay_by_route_hour, no_delay if not arrivals.empty else no_arr),
    }
    if arrivals.empty or scheduled.empty:
        hw = None
        reason = no_arr if arrivals.empty else "no scheduled service in the period (no active GTFS feed covers it)"
    else:
        hw = headway_regularity(arrivals[["route_id", "stop_id", "time_s"]], scheduled, frequent_headway_s)
        reason = f"no route with a scheduled headway <= {frequent_headway_s:.0f} s and two observed headways at a stop"
    out["headway_regularity"] = indicator_table(hw, "s", headway_regularity, reason)
    trips = scheduled[(scheduled["trip_start_s"] >= start.timestamp()) & (scheduled["trip_start_s"] < end.timestamp())]
    out["service_delivered"] = indicator_table(
        service_delivered(trips, arrivals) if not trips.empty else None, "share", service_delivered,
        "no trip scheduled to start in the period on a service day with detected passings")
    out["vehicle_km"] = indicator_table(
        vehicle_km(plausible, max_gap_s, cfg.max_speed_mps, cfg.gps_noise_m) if not plausible.empty else None, "km",
        vehicle_km, "no plausible vehicle positions in the period")
    out["avl_completeness"] = indicator_table(
        avl_completeness(plausible, expected_interval_s) if plausible["trip_id"].notna().any() else None, "share",
        avl_completeness, "no plausible vehicle positions on a trip in the period")
    errors, issued = read_prediction_errors(db, start, end, agency)
    no_scored = ("no prediction stored in the period" if not issued else
                 "no stored prediction of the period has a detected stop arrival")
    out["prediction_accuracy"] = indicator_table(
        prediction_accuracy(errors["horizon_s"].to_numpy(), errors["error_s"].to_numpy()) if len(errors) else None,
        "share", prediction_accuracy, no_scored)
    out.update(read_prediction_indicators(db, start, end, agency, errors, no_scored, cfg.stale_after_s))
    return out

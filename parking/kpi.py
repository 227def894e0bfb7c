"""Parking efficiency indicators for reports.

Pure functions over pandas frames compute each indicator; its docstring is the one
definition (units and formula). `section` reads a period ``[start, end)`` from the store
(``parking_occupancy`` written by the parking service, ``parking_space_events``,
``parking_counts``, ``parking_sites``/``parking_spaces``) and returns every indicator as
``{"unit", "defined_by", "rows" | "value", "reason"}``; ``None`` with a reason when the period
has no data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from its.db import Database
from its.indicators import Indicator, indicator, indicator_table
from parking.config import ParkingSettings

__all__ = [
    "connected_share",
    "forecast_error",
    "hours_full",
    "occupancy_by_site_hour",
    "peak_occupancy",
    "section",
    "turnover_and_stay",
]


def occupancy_by_site_hour(occupancy: pd.DataFrame) -> pd.DataFrame:
    """Occupancy rate (share, 0-1) per site and clock hour (UTC hour start).

    Mean over the site's availability records in the hour of ``occupied / capacity``
    (records with unknown occupancy or zero capacity are left out).

    Returns
    -------
    DataFrame
        ``site_id, hour, readings, occupancy_rate``.
    """
    o = occupancy.dropna(subset=["occupied"])
    o = o[o["capacity"] > 0]
    frame = pd.DataFrame({"site_id": o["site_id"].to_numpy(),
                          "hour": pd.to_datetime(o["time"], utc=True).dt.floor("h").to_numpy(),
                          "rate": o["occupied"].to_numpy(np.float64) / o["capacity"].to_numpy(np.float64)})
    return (frame.groupby(["site_id", "hour"], sort=True)
            .agg(readings=("rate", "size"), occupancy_rate=("rate", "mean")).reset_index())


def peak_occupancy(occupancy: pd.DataFrame) -> pd.DataFrame:
    """Peak occupancy (share, 0-1) per site: the largest ``occupied / capacity`` in the period.

    Returns
    -------
    DataFrame
        ``site_id, peak_rate, peak_occupied, capacity, peak_time`` (first time it was reached).
    """
    o = occupancy.dropna(subset=["occupied"])
    o = o[o["capacity"] > 0].assign(rate=lambda f: f["occupied"].astype(float) / f["capacity"].astype(float))
    o = o.sort_values(["site_id", "rate", "time"], ascending=[True, False, True], kind="stable")
    top = o.drop_duplicates("site_id")
    return pd.DataFrame({"site_id": top["site_id"].to_numpy(), "peak_rate": top["rate"].to_numpy(),
                         "peak_occupied": top["occupied"].to_numpy(), "capacity": top["capacity"].to_numpy(),
                         "peak_time": top["time"].to_numpy()})


def hours_full(occupancy: pd.DataFrame, end_s: float, max_hold_s: float = 3600.0) -> pd.DataFrame:
    """Hours full (h) per site: time the site's status was ``full``.

    Each availability record holds from its time until the site's next record, at most
    ``max_hold_s`` (s, the counter staleness threshold) and not beyond the period end
    ``end_s`` (epoch s); hours full = sum of the holds of records with status ``full`` / 3600.

    Returns
    -------
    DataFrame
        ``site_id, observed_h, full_h``.
    """
    o = occupancy.sort_values(["site_id", "time"], kind="stable")
    t = (pd.to_datetime(o["time"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    site = o["site_id"].to_numpy()
    nxt = np.append(t[1:], np.inf)
    nxt[np.append(site[1:] != site[:-1], True)] = np.inf
    hold = np.minimum(np.minimum(nxt, t + max_hold_s), end_s) - t
    full = (o["status"].to_numpy() == "full")
    frame = pd.DataFrame({"site_id": site, "observed_h": hold / 3600.0, "full_h": np.where(full, hold, 0.0) / 3600.0})
    return frame.groupby("site_id", sort=True).sum().reset_index()


def turnover_and_stay(events: pd.DataFrame, spaces_per_site: pd.Series, period_s: float) -> pd.DataFrame:
    """Turnover (vehicles per space per day) and mean stay (s) per site with per-space sensors.

    A parking session starts when a space's reported state changes from free to occupied
    and ends at its next change to occupied = false. Turnover = sessions started /
    sensed spaces / (period_s / 86,400); mean stay = mean duration of the sessions that
    ended in the period (s).

    Parameters
    ----------
    events : DataFrame
        ``site_id, space_id, time_s`` (epoch s), ``occupied`` (bool), any order.
    spaces_per_site : Series
        Sensed spaces per ``site_id``.
    period_s : float
        Length of the period (s).

    Returns
    -------
    DataFrame
        ``site_id, spaces, sessions, turnover_per_space_day, completed, mean_stay_s``.
    """
    e = events.sort_values(["site_id", "space_id", "time_s"], kind="stable")
    key = (e["site_id"].astype(str) + "\x00" + e["space_id"].astype(str)).to_numpy()
    occ = e["occupied"].to_numpy(bool)
    t = e["time_s"].to_numpy(np.float64)
    same = key[1:] == key[:-1]
    start = same & ~occ[:-1] & occ[1:]  # row i+1 starts a session
    stop = same & occ[:-1] & ~occ[1:]   # row i+1 ends one
    site = e["site_id"].to_numpy()[1:]
    begin_idx = np.flatnonzero(start) + 1
    end_idx = np.flatnonzero(stop) + 1
    # the session an end closes began at the last start of the same space before it
    k = np.searchsorted(begin_idx, end_idx) - 1
    valid = k >= 0
    valid[valid] = key[begin_idx[k[valid]]] == key[end_idx[valid]]
    stays = t[end_idx[valid]] - t[begin_idx[k[valid]]]
    sessions = pd.Series(site[start]).value_counts()
    completed = pd.DataFrame({"site_id": e["site_id"].to_numpy()[end_idx[valid]], "stay": stays})
    stay = completed.groupby("site_id")["stay"].agg(["size", "mean"])
    out = pd.DataFrame({"spaces": spaces_per_site.astype(int)})
    out.index.name = "site_id"
    out["sessions"] = sessions.reindex(out.index).fillna(0).astype(int)
    out["turnover_per_space_day"] = out["sessions"] / out["spaces"] / (period_s / 86400.0)
    out["completed"] = stay["size"].reindex(out.index).fillna(0).astype(int)
    out["mean_stay_s"] = stay["mean"].reindex(out.index)
    return out.reset_index()


def connected_share(spaces: pd.DataFrame, reports: pd.DataFrame, checkpoints_s: np.ndarray, stale_s: np.ndarray | float
                    ) -> pd.DataFrame:
    """Share of paid spaces connected (0-1) per site, averaged over checkpoints.

    A reporting unit (a space sensor, or a site counter standing for all the site's spaces)
    is connected at checkpoint ``c`` when it reported in ``(c - stale_s, c]``;
    share = sum over checkpoints of connected spaces / (checkpoints x paid spaces). Reports
    check every ``ITS_REPORTS_PARKING_CHECKPOINT_S`` (s) and at the period end, from the first
    report of a paid unit in the period (or the staleness window before it) until now.

    Parameters
    ----------
    spaces : DataFrame
        ``unit, site_id, spaces``: each reporting unit, its site and how many spaces it reports.
    reports : DataFrame
        ``unit, time_s`` (epoch s) of every report.
    checkpoints_s : ndarray
        Times (epoch s) the state is checked at.
    stale_s : float or ndarray
        Staleness threshold (s), per unit (aligned with ``spaces``) or one for all.

    Returns
    -------
    DataFrame
        ``site_id, spaces, connected_share``.
    """
    units = spaces["unit"].to_numpy()
    idx = pd.Index(units)
    r = reports[reports["unit"].isin(idx)]
    ui = idx.get_indexer(r["unit"].to_numpy())
    t = r["time_s"].to_numpy(np.float64)
    c = np.asarray(checkpoints_s, np.float64)
    t0 = min(t.min(initial=np.inf), c.min()) - 1.0
    span = max(t.max(initial=-np.inf), c.max()) - t0 + 2.0
    comp = np.append(np.sort(ui * span + (t - t0)), np.inf)  # sentinel: never a unit's report
    # last report at or before each checkpoint, for every unit x checkpoint
    q = (np.arange(len(units))[:, None] * span + (c[None, :] - t0)).ravel()
    pos = np.searchsorted(comp, q, side="right") - 1
    has = pos >= 0
    last_unit = np.where(has, np.floor(comp[np.maximum(pos, 0)] / span), -1)
    last_t = comp[np.maximum(pos, 0)] - last_unit * span + t0
    unit_of_q = np.repeat(np.arange(len(units)), len(c))
    stale = np.broadcast_to(np.asarray(stale_s, np.float64), (len(units),))
    ok = has & (last_unit == unit_of_q) & (np.repeat(c[None, :], len(units), 0).ravel() - last_t < np.repeat(stale, len(c)))
    per_unit = ok.reshape(len(units), len(c)).mean(axis=1) * spaces["spaces"].to_numpy(np.float64)
    frame = pd.DataFrame({"site_id": spaces["site_id"].to_numpy(), "spaces": spaces["spaces"].to_numpy(),
                          "connected": per_unit})
    out = frame.groupby("site_id", sort=True).sum().reset_index()
    out["connected_share"] = out["connected"] / out["spaces"]
    return out[["site_id", "spaces", "connected_share"]]


def forecast_error(forecasts: pd.DataFrame, observed: pd.DataFrame, max_age_s: float) -> pd.DataFrame:
    """Error (spaces) of the free-space forecasts the platform issued, per site (reports: +60 min).

    Every forecast the parking service stored (``parking_forecasts``: issued every
    ``ITS_PARKING_FORECAST_ISSUE_INTERVAL_S`` from each new observation, target time =
    observation time + horizon, in the period) is scored against the free spaces observed at
    its target time: ``free`` of the site's latest availability record (``parking_occupancy``)
    at or before the target time, when that record is at most ``max_age_s`` (s, the counter
    staleness threshold) old and its free spaces are known; other forecasts are not scored.
    Error = predicted - observed free spaces; MAE = mean |error| (spaces); bias = mean error
    (spaces, positive: more free spaces promised than found); band coverage = share of scored
    forecasts whose observation lies in ``[free_low, free_high]`` (0-1). The overall MAE is the
    mean |error| over all scored forecasts of all sites.

    Parameters
    ----------
    forecasts : DataFrame
        ``site_id, target_time`` (UTC), ``free_predicted, free_low, free_high`` (spaces).
    observed : DataFrame
        ``site_id, time`` (UTC), ``free`` (spaces; missing when unknown).
    max_age_s : float
        Oldest record (s before the target time) that still counts as the observation.

    Returns
    -------
    DataFrame
        ``site_id, forecasts, scored, mae_spaces, bias_spaces, band_coverage`` (one row per site
        with a forecast; NaN errors when none was scored), sorted by site.
    """
    f = forecasts.assign(target=pd.to_datetime(forecasts["target_time"], utc=True).astype("datetime64[ns, UTC]"),
                         site_id=forecasts["site_id"].astype(str)).sort_values("target", kind="stable")
    o = pd.DataFrame({"site_id": observed["site_id"].astype(str),
                      "obs_time": pd.to_datetime(observed["time"], utc=True).astype("datetime64[ns, UTC]"),
                      "free_observed": pd.to_numeric(observed["free"], errors="coerce").astype(np.float64)})
    m = pd.merge_asof(f, o.sort_values("obs_time", kind="stable"), left_on="target", right_on="obs_time",
                      by="site_id", direction="backward", tolerance=pd.Timedelta(seconds=max_age_s))
    seen = m["free_observed"].to_numpy(np.float64)
    scored = ~np.isnan(seen)
    err = np.where(scored, m["free_predicted"].to_numpy(np.float64) - seen, np.nan)
    inside = np.where(scored, (seen >= m["free_low"].to_numpy(np.float64))
                      & (seen <= m["free_high"].to_numpy(np.float64)), np.nan)
    frame = pd.DataFrame({"site_id": m["site_id"].to_numpy(), "scored": scored, "abs": np.abs(err), "err": err,
                          "inside": inside})
    out = frame.groupby("site_id", sort=True).agg(
        forecasts=("scored", "size"), scored=("scored", "sum"), mae_spaces=("abs", "mean"),
        bias_spaces=("err", "mean"), band_coverage=("inside", "mean")).reset_index()
    out["scored"] = out["scored"].astype(int)
    return out


# --------------------------------------------------------------------------- SQL readers and section


def _frame(db: Database, query: str, params: tuple[Any, ...], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame.from_records(db.fetchall(query, params), columns=columns)




def paid_units(db: Database) -> tuple[pd.DataFrame, str]:
    """Reporting units of paid spaces: sensors of sensed spaces, counters of other sites.

    Paid sites are those with a ``tariff``; when no site states one every site counts (the
    returned note says which basis was used).
    """
    sites = _frame(db, "SELECT site_id, capacity, coalesce(tariff, '') FROM parking_sites", (),
                   ["site_id", "capacity", "tariff"])
    paid = sites[sites["tariff"].str.strip() != ""]
    note = "sites with a tariff"
    if paid.empty:
        paid, note = sites, "every site (no site states a tariff)"
    spaces = _frame(db, "SELECT site_id, space_id FROM parking_spaces", (), ["site_id", "space_id"])
    spaces = spaces[spaces["site_id"].isin(paid["site_id"])]
    sensed = pd.DataFrame({"unit": "space:" + spaces["site_id"] + "/" + spaces["space_id"],
                           "site_id": spaces["site_id"], "spaces": 1, "kind": "space"})
    counted = paid[~paid["site_id"].isin(spaces["site_id"])]
    counters = pd.DataFrame({"unit": "site:" + counted["site_id"], "site_id": counted["site_id"],
                             "spaces": counted["capacity"].astype(int), "kind": "counter"})
    return pd.concat([sensed, counters], ignore_index=True), note


def section(db: Database, start: datetime, end: datetime, settings: ParkingSettings | None = None,
            checkpoint_s: float = 3600.0, now: datetime | None = None) -> dict[str, Indicator]:
    """Every parking indicator of ``[start, end)`` (``now``: the current time, default the clock)."""
    s = settings or ParkingSettings()
    occ = _frame(db, "SELECT site_id, time, capacity, occupied, status FROM parking_occupancy"
                 " WHERE time >= %s AND time < %s", (start, end), ["site_id", "time", "capacity", "occupied", "status"])
    no_occ = "no site availability records in the period"
    out: dict[str, Indicator] = {
        "occupancy_by_site_hour": indicator_table(occupancy_by_site_hour(occ) if not occ.empty else None, "share",
                                         occupancy_by_site_hour, no_occ),
        "peak_occupancy": indicator_table(peak_occupancy(occ) if not occ.empty else None, "share", peak_occupancy, no_occ),
        "hours_full": indicator_table(hours_full(occ, end.timestamp(), s.counter_stale_s) if not occ.empty else None, "h",
                             hours_full, no_occ),
    }
    ev = _frame(db, "SELECT site_id, space_id, extract(epoch FROM time)::float8, occupied FROM parking_space_events"
                " WHERE time >= %s AND time < %s", (start, end), ["site_id", "space_id", "time_s", "occupied"])
    sensed = _frame(db, "SELECT site_id, count(*) FROM parking_spaces GROUP BY 1", (), ["site_id", "n"])
    sensed = sensed[sensed["site_id"].isin(ev["site_id"].unique())]
    period_s = (end - start).total_seconds()
    out["turnover_and_stay"] = indicator_table(
        turnover_and_stay(ev, sensed.set_index("site_id")["n"], period_s) if not ev.empty else None,
        "vehicles/space/day; s", turnover_and_stay, "no per-space sensor events in the period")
    units, note = paid_units(db)
    lookback = start.timestamp() - max(s.sensor_stale_s, s.counter_stale_s)
    reports = pd.concat([
        _frame(db, "SELECT 'space:' || site_id || '/' || space_id, extract(epoch FROM time)::float8"
               " FROM parking_space_events WHERE time >= to_timestamp(%s) AND time < %s", (lookback, end),
               ["unit", "time_s"]),
        _frame(db, "SELECT 'site:' || site_id, extract(epoch FROM time)::float8 FROM parking_counts"
               " WHERE time >= to_timestamp(%s) AND time < %s", (lookback, end), ["unit", "time_s"]),
    ], ignore_index=True)
    # checkpoints every checkpoint_s and at the period end, from the first report of a paid
    # unit (before it the platform was not receiving) up to now (the future is not measured)
    last = min(end.timestamp(), (now or datetime.now(UTC)).timestamp())
    checkpoints = np.append(np.arange(start.timestamp() + checkpoint_s, last, checkpoint_s), last)
    paid_reports = reports[reports["unit"].isin(units["unit"])]
    if not paid_reports.empty:
        checkpoints = checkpoints[checkpoints >= paid_reports["time_s"].min()]
    if units.empty or paid_reports.empty or not len(checkpoints):
        share = None
    else:
        stale = np.where(units["kind"].to_numpy() == "space", s.sensor_stale_s, s.counter_stale_s)
        share = connected_share(units, reports, checkpoints, stale)
    reason = ("no paid parking sites" if units.empty else "no paid parking unit reported in the period"
              if paid_reports.empty else "the period ends before the first report")
    out["paid_spaces_connected_by_site"] = indicator_table(share, "share", connected_share, reason, basis=note)
    total = None if share is None else float((share["connected_share"] * share["spaces"]).sum() / share["spaces"].sum())
    out["paid_spaces_connected"] = indicator("share", connected_share, value=total, reason=reason, basis=note)
    out.update(_forecast_section(db, start, end, s.counter_stale_s))
    return out


def _forecast_section(db: Database, start: datetime, end: datetime, max_age_s: float) -> dict[str, Indicator]:
    """``forecast_error_60min`` (overall MAE) and its per-site table."""
    # target = observation + 60 min > issue time >= observation: issued in [start - 60 min, end)
    fc = _frame(db, "SELECT site_id, target_time, free_predicted, free_low, free_high FROM parking_forecasts"
                " WHERE horizon_min = 60 AND target_time >= %s AND target_time < %s"
                " AND issued_at >= %s AND issued_at < %s",
                (start, end, start - timedelta(minutes=60), end),
                ["site_id", "target_time", "free_predicted", "free_low", "free_high"])
    by_site: pd.DataFrame | None = None
    value: float | None = None
    scored = 0
    if fc.empty:
        reason = ("no +60 min forecast with a target time in the period (the parking service stores them every"
                  " ITS_PARKING_FORECAST_ISSUE_INTERVAL_S once sites have ITS_PARKING_FORECAST_MIN_DAYS of history)")
    else:
        obs = _frame(db, "SELECT site_id, time, free FROM parking_occupancy WHERE time >= %s AND time < %s"
                     " AND site_id = ANY(%s)", (start - timedelta(seconds=max_age_s), end,
                                                 sorted(fc["site_id"].unique())), ["site_id", "time", "free"])
        by_site = forecast_error(fc, obs, max_age_s)
        scored = int(by_site["scored"].sum())
        reason = "no observation within the staleness threshold of any forecast's target time"
        if scored:
            value = float((by_site["mae_spaces"].fillna(0) * by_site["scored"]).sum() / scored)
            reason = ""
    return {
        "forecast_error_60min": indicator("spaces", forecast_error, value=value, reason=reason,
                                          horizon_min=60, forecasts_scored=scored),
        "forecast_error_60min_by_site": indicator_table(by_site, "spaces; share", forecast_error, reason,
                                                        horizon_min=60),
    }

"""Road-network efficiency indicators for reports: speeds, travel time index, congestion,
incidents and the network's operating mode over the day.

Pure functions over pandas frames compute each indicator (the docstring is its one
definition, with units). `section` reads the stored per-edge probe speeds
(``traffic_probe_speeds`` joined to ``road_edges``) and the ``traffic_incident`` alerts of a
period ``[start, end)``; an area is a stored road network, a corridor a named street of it.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from its.db import Database
from its.indicators import Indicator, indicator_table
from traffic.config import TrafficSettings
from traffic.congestion import LEVELS, classify_levels

__all__ = ["congested_length_share", "incidents", "operating_mode", "section", "speed_and_tti_by_hour"]

INCIDENT_KIND = "traffic_incident"


def _hourly(obs: pd.DataFrame) -> pd.DataFrame:
    return obs.assign(hour=pd.to_datetime(obs["time"], utc=True).dt.floor("h"),
                      cur_s=obs["length_m"] / obs["speed_mps"], free_s=obs["length_m"] / obs["freeflow_mps"],
                      travel_s=obs["covered_m"] / obs["speed_mps"])


def speed_and_tti_by_hour(obs: pd.DataFrame, group: str) -> pd.DataFrame:
    """Mean speed (m/s) and travel time index per ``group`` (area or corridor) and hour.

    Over the probe observations (edge, bin) of the hour: space-mean speed =
    ``sum(covered_m) / sum(covered_m / speed_mps)``; ``TTI = sum(length_m / speed_mps) /
    sum(length_m / freeflow_mps)`` (1.0 = free flow; 1.5 = trips take 50 % longer).

    Parameters
    ----------
    obs : DataFrame
        ``group``, ``time``, ``length_m``, ``freeflow_mps``, ``speed_mps``, ``covered_m``.

    Returns
    -------
    DataFrame
        ``group, hour, observations, mean_speed_mps, tti``.
    """
    h = _hourly(obs)
    g = h.groupby([group, "hour"], sort=True).agg(observations=("speed_mps", "size"), covered=("covered_m", "sum"),
                                                  travel=("travel_s", "sum"), cur=("cur_s", "sum"),
                                                  free=("free_s", "sum"))
    g["mean_speed_mps"] = g["covered"] / g["travel"]
    g["tti"] = g["cur"] / g["free"]
    return g.reset_index()[[group, "hour", "observations", "mean_speed_mps", "tti"]]


def congested_length_share(obs: pd.DataFrame, settings: TrafficSettings | None = None) -> pd.DataFrame:
    """Share of observed road length (0-1) at level ``heavy`` or ``jammed`` per network and hour.

    An edge's speed in the hour is its space-mean speed over its observations there; its
    level comes from speed / free-flow speed and the ``ITS_TRAFFIC_LEVEL_*`` thresholds
    (``heavy`` below ``level_moderate_ratio``, ``jammed`` below ``level_heavy_ratio``);
    share = length of heavy or jammed edges / length of observed edges.

    Returns
    -------
    DataFrame
        ``network, hour, observed_m, congested_m, congested_share``.
    """
    h = _hourly(obs)
    e = h.groupby(["network", "hour", "edge"], sort=True).agg(
        covered=("covered_m", "sum"), travel=("travel_s", "sum"), length_m=("length_m", "first"),
        freeflow=("freeflow_mps", "first")).reset_index()
    level = classify_levels((e["covered"] / e["travel"] / e["freeflow"]).to_numpy(), settings)
    e["congested_m"] = np.where(level >= LEVELS.index("heavy"), e["length_m"], 0.0)
    out = e.groupby(["network", "hour"], sort=True).agg(observed_m=("length_m", "sum"),
                                                        congested_m=("congested_m", "sum")).reset_index()
    out["congested_share"] = out["congested_m"] / out["observed_m"]
    return out


def incidents(alerts: pd.DataFrame, end: datetime) -> pd.DataFrame:
    """Traffic incidents with start, end and duration (s).

    One row per ``traffic_incident`` alert overlapping the period: start = raised, end =
    cleared (``None`` while still active), duration = (end, or the period end if active) -
    start.

    Returns
    -------
    DataFrame
        ``subject, severity, message, start, end, duration_s, active``.
    """
    a = alerts.copy()
    raised = pd.to_datetime(a["raised_at"], utc=True)
    cleared = pd.to_datetime(a["cleared_at"], utc=True)
    a["start"], a["end"] = raised, cleared
    a["active"] = cleared.isna()
    a["duration_s"] = (cleared.fillna(pd.Timestamp(end)) - raised).dt.total_seconds()
    return a[["subject", "severity", "message", "start", "end", "duration_s", "active"]].reset_index(drop=True)


def operating_mode(hours: pd.DatetimeIndex, network_tti: pd.Series, incident_spans: pd.DataFrame,
                   peak_tti: float = 1.3) -> pd.DataFrame:
    """The network's operating mode (category) per hour: ``incident``, ``peak``, ``normal`` or unknown.

    ``incident`` when a traffic incident was active at any time in the hour; else ``peak``
    when the hour's network travel time index >= ``peak_tti`` (ratio, ``ITS_REPORTS_PEAK_TTI``,
    default 1.3); else ``normal`` when the TTI is known; hours with neither evidence have mode
    ``None``.

    Parameters
    ----------
    hours : DatetimeIndex
        Hour starts (UTC) of the period.
    network_tti : Series
        TTI indexed by hour start (hours without probes absent).
    incident_spans : DataFrame
        ``start``, ``stop`` (UTC timestamps) of every incident.

    Returns
    -------
    DataFrame
        ``hour, tti, incidents, mode``.
    """
    epoch = pd.Timestamp(0, tz="UTC")
    h0 = np.asarray((hours - epoch).total_seconds(), dtype=np.float64)
    h1 = h0 + 3600.0
    s = (pd.to_datetime(incident_spans["start"], utc=True) - epoch).dt.total_seconds().to_numpy()
    e = (pd.to_datetime(incident_spans["stop"], utc=True) - epoch).dt.total_seconds().to_numpy()
    active = ((s[None, :] < h1[:, None]) & (e[None, :] > h0[:, None])).sum(axis=1)
    tti = network_tti.reindex(hours).to_numpy(np.float64)
    return pd.DataFrame({"hour": hours, "tti": tti, "incidents": active, "mode": classify_mode(tti, active, peak_tti)})


def classify_mode(tti: npt.ArrayLike, incidents: npt.ArrayLike, peak_tti: float = 1.3) -> npt.NDArray[np.object_]:
    """The operating mode of each (travel time index, active incident count) pair (not an
    indicator of its own, so not in ``__all__``: the glossary lists `operating_mode`).

    The one rule of `operating_mode` (per report hour) and of the live mode
    (`traffic.playbook.live_situation`, now): ``incident`` when at least one traffic
    incident is active; else ``peak`` when the network TTI (ratio) >= ``peak_tti``; else
    ``normal`` when the TTI is known (finite); else ``None``.
    """
    t = np.asarray(tti, dtype=np.float64)
    n = np.asarray(incidents, dtype=np.int64)
    mode = np.full(t.shape, None, dtype=object)
    mode[np.isfinite(t)] = "normal"
    mode[np.nan_to_num(t, nan=-np.inf) >= peak_tti] = "peak"
    mode[n > 0] = "incident"
    return mode


# --------------------------------------------------------------------------- SQL and section




def read_observations(db: Database, start: datetime, end: datetime, network: str | None = None) -> pd.DataFrame:
    """Probe observations of ``[start, end)`` with their edge's length, free-flow speed and street name."""
    rows = db.fetchall(
        "SELECT p.network, p.edge, p.time, p.speed_mps, p.covered_m, e.length_m, e.freeflow_mps, e.name"
        " FROM traffic_probe_speeds p JOIN road_edges e ON e.network = p.network AND e.edge = p.edge"
        " WHERE p.time >= %s AND p.time < %s AND (%s::text IS NULL OR p.network = %s)",
        (start, end, network, network))
    return pd.DataFrame.from_records(rows, columns=["network", "edge", "time", "speed_mps", "covered_m", "length_m",
                                                    "freeflow_mps", "name"])


def section(db: Database, start: datetime, end: datetime, *, network: str | None = None,
            settings: TrafficSettings | None = None, peak_tti: float = 1.3) -> dict[str, Indicator]:
    """Every road-network indicator of ``[start, end)`` (all networks, or ``network``)."""
    obs = read_observations(db, start, end, network)
    no_obs = "no probe speed observations in the period"
    corridor = obs[obs["name"].fillna("") != ""].rename(columns={"name": "corridor"})
    by_area = speed_and_tti_by_hour(obs, "network") if not obs.empty else None
    al = pd.DataFrame.from_records(db.fetchall(
        "SELECT subject, severity, message, raised_at, cleared_at FROM alerts WHERE kind = %s"
        " AND raised_at < %s AND (cleared_at IS NULL OR cleared_at >= %s)", (INCIDENT_KIND, end, start)),
        columns=["subject", "severity", "message", "raised_at", "cleared_at"])
    inc = incidents(al, end) if not al.empty else None
    hours = pd.date_range(pd.Timestamp(start).tz_convert("UTC").floor("h"), pd.Timestamp(end).tz_convert("UTC"),
                          freq="h", inclusive="left")
    spans = (pd.DataFrame({"start": inc["start"], "stop": inc["end"].fillna(pd.Timestamp(end))}) if inc is not None
             else pd.DataFrame({"start": pd.Series(dtype="datetime64[ns, UTC]"),
                                "stop": pd.Series(dtype="datetime64[ns, UTC]")}))
    net_tti = (speed_and_tti_by_hour(obs.assign(all="network"), "all").set_index("hour")["tti"] if not obs.empty
               else pd.Series(dtype=float))
    mode = operating_mode(hours, net_tti, spans, peak_tti) if len(hours) else None
    if mode is not None and mode["mode"].isna().all():
        mode = None
    return {
        "speed_tti_by_area_hour": indicator_table(by_area, "m/s; ratio", speed_and_tti_by_hour, no_obs),
        "speed_tti_by_corridor_hour": indicator_table(
            speed_and_tti_by_hour(corridor, "corridor") if not corridor.empty else None, "m/s; ratio",
            speed_and_tti_by_hour, no_obs if obs.empty else "no probe observations on named streets"),
        "congested_length_share": indicator_table(congested_length_share(obs, settings) if not obs.empty else None,
                                         "share", congested_length_share, no_obs),
        "incidents": indicator_table(inc, "s", incidents, "no traffic incident alert in the period"),
        "operating_mode": indicator_table(mode, "mode", operating_mode, "neither probe speeds nor incidents in the period"),
    }

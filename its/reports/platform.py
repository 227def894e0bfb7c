"""Platform indicators: messages stored and rejected per feed, device uptime, API availability."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from psycopg2 import sql

from its.db import Database
from its.ingest import Route, Router

__all__ = ["api_availability", "device_uptime", "messages_per_feed", "section"]


def messages_per_feed(stored: pd.DataFrame, rejected_topics: pd.Series, routes: list[Route]) -> pd.DataFrame:
    """Messages ingested and rejected per feed (messages), and the rejected share (0-1).

    Ingested = rows stored in the feed's table whose source time falls in the period (one
    row per accepted message); rejected = ``rejected_messages`` received in the period,
    attributed to a feed by matching their topic to the ingestion routes (``unrouted`` when
    no route matches); rejected share = rejected / (ingested + rejected).

    Parameters
    ----------
    stored : DataFrame
        ``table, rows``.
    rejected_topics : Series
        Topic of every rejected message.

    Returns
    -------
    DataFrame
        ``feed, table, ingested, rejected, rejected_share``.
    """
    router = Router(routes)
    feed_of_table: dict[str, str] = {}
    for r in routes:
        feed_of_table.setdefault(r.table, r.feed)
    names = [(route.feed if (route := router.route(t)) is not None else "unrouted") for t in rejected_topics]
    rej = pd.Series(names, dtype=object).value_counts()
    frame = stored.assign(feed=stored["table"].map(feed_of_table))
    out = frame.groupby(["feed", "table"], sort=True)["rows"].sum().rename("ingested").reset_index()
    out["rejected"] = out["feed"].map(rej).fillna(0).astype(int)
    extra = rej[~rej.index.isin(out["feed"])]
    if len(extra):
        out = pd.concat([out, pd.DataFrame({"feed": extra.index, "table": None, "ingested": 0,
                                            "rejected": extra.to_numpy()})], ignore_index=True)
    total = out["ingested"] + out["rejected"]
    out["rejected_share"] = np.where(total > 0, out["rejected"] / total.where(total > 0, 1), np.nan)
    return out


def device_uptime(status: pd.DataFrame, start_s: float, end_s: float) -> pd.DataFrame:
    """Device uptime (share, 0-1) per device over the time its state is known.

    Each ``device_status`` record holds until the device's next record (or the period end);
    the state before the first record in the period is the device's last earlier record
    (clamped to the period start). Uptime = time online / time with a known state.

    Parameters
    ----------
    status : DataFrame
        ``kind, device_id, time_s`` (epoch s), ``online`` (bool), including each device's last
        record before the period.

    Returns
    -------
    DataFrame
        ``kind, device_id, known_s, online_s, uptime``.
    """
    s = status.sort_values(["kind", "device_id", "time_s"], kind="stable")
    key = (s["kind"].astype(str) + "\x00" + s["device_id"].astype(str)).to_numpy()
    t = np.clip(s["time_s"].to_numpy(np.float64), start_s, end_s)
    nxt = np.append(t[1:], end_s)
    nxt[np.append(key[1:] != key[:-1], True)] = end_s
    hold = nxt - t
    frame = pd.DataFrame({"kind": s["kind"].to_numpy(), "device_id": s["device_id"].to_numpy(), "known_s": hold,
                          "online_s": np.where(s["online"].to_numpy(bool), hold, 0.0)})
    out = frame.groupby(["kind", "device_id"], sort=True).sum().reset_index()
    out = out[out["known_s"] > 0]
    out["uptime"] = out["online_s"] / out["known_s"]
    return out.reset_index(drop=True)


def api_availability(heartbeats: pd.DataFrame, start_s: float, end_s: float, bin_s: float = 60.0) -> pd.DataFrame:
    """API availability (share, 0-1): share of the minutes in which the API was up, per UTC hour.

    Every API process records a heartbeat at least once a minute
    (``ITS_REPORTS_HEARTBEAT_INTERVAL_S``, s) saying whether it was ready (``/readyz``: database,
    broker and every service ready). A minute (a UTC-aligned bin of ``bin_s`` s, 60 by
    default) is available when at least one process recorded a ready heartbeat in it; a minute
    without one (every process down, stuck or not ready) is not. Measured minutes are the
    whole minutes in ``[start_s, end_s)`` (epoch s; callers pass the period, starting no earlier
    than the first heartbeat ever recorded and ending no later than now). Availability =
    available minutes / measured minutes; an hour's row covers its measured minutes.

    Parameters
    ----------
    heartbeats : DataFrame
        ``time_s`` (epoch s), ``ready`` (bool): heartbeats of every process in the period.

    Returns
    -------
    DataFrame
        ``hour`` (UTC), ``measured_min, available_min`` (min), ``availability`` (0-1); empty
        when the period holds no whole minute.
    """
    first = int(np.ceil(start_s / bin_s))
    last = int(np.floor(end_s / bin_s))  # bins [first, last) lie wholly inside the period
    if last <= first:
        return pd.DataFrame(columns=["hour", "measured_min", "available_min", "availability"])
    bins = np.arange(first, last, dtype=np.int64)
    t = heartbeats["time_s"].to_numpy(np.float64)
    ready = heartbeats["ready"].to_numpy(bool)
    up_bins = np.unique(np.floor(t[ready] / bin_s).astype(np.int64))
    up = np.isin(bins, up_bins)
    hour = pd.to_datetime(bins * bin_s, unit="s", utc=True).floor("h")
    frame = pd.DataFrame({"hour": hour, "measured_min": bin_s / 60.0, "available_min": np.where(up, bin_s / 60.0, 0.0)})
    out = frame.groupby("hour", sort=True).sum().reset_index()
    out["availability"] = out["available_min"] / out["measured_min"]
    return out


def _availability_entries(db: Database, start: datetime, end: datetime, now: datetime | None,
                          bin_s: float) -> dict[str, dict[str, Any]]:
    """``api_availability`` (the period's share) and ``api_availability_by_hour``."""
    hi = min(end, now or datetime.now(UTC))
    earlier = db.fetchall("SELECT 1 FROM api_heartbeats WHERE time < %s LIMIT 1", (start,))
    lo = start
    if not earlier:  # before its first heartbeat the API did not exist: not measured
        first = db.fetchall("SELECT min(time) FROM api_heartbeats WHERE time >= %s AND time < %s", (start, hi))
        lo = first[0][0] if first and first[0][0] is not None else hi
        lo = datetime.fromtimestamp(np.floor(lo.timestamp() / bin_s) * bin_s, UTC)  # its whole minute counts
    rows = None
    if lo < hi:
        beats = pd.DataFrame.from_records(db.fetchall(
            "SELECT extract(epoch FROM time)::float8, ready FROM api_heartbeats WHERE time >= %s AND time < %s",
            (lo, hi)), columns=["time_s", "ready"])
        rows = api_availability(beats, max(lo.timestamp(), start.timestamp()), hi.timestamp(), bin_s)
    ok = rows is not None and not rows.empty
    reason = None if ok else ("no API heartbeat recorded in the period (or before it)" if lo >= hi
                              else "the period holds no whole minute since the first API heartbeat")
    value = float(rows["available_min"].sum() / rows["measured_min"].sum()) if ok and rows is not None else None
    return {
        "api_availability": {"unit": "share", "defined_by": api_availability, "value": value, "reason": reason,
                             "measured_min": float(rows["measured_min"].sum()) if ok and rows is not None else 0.0},
        "api_availability_by_hour": {"unit": "share; min", "defined_by": api_availability,
                                     "rows": rows if ok else None, "reason": reason},
    }


def _stored_rows(db: Database, start: datetime, end: datetime, tables: list[str]) -> pd.DataFrame:
    known = dict(db.fetchall("SELECT table_name, time_column FROM its_timeseries"))
    rows = []
    for table in tables:
        if table not in known:
            continue
        q = sql.SQL("SELECT count(*) FROM {} WHERE {} >= %s AND {} < %s").format(
            sql.Identifier(table), sql.Identifier(known[table]), sql.Identifier(known[table]))
        rows.append((table, int(db.fetchall(q, (start, end))[0][0])))
    return pd.DataFrame(rows, columns=["table", "rows"])


def section(db: Database, start: datetime, end: datetime, routes: list[Route], now: datetime | None = None,
            availability_bin_s: float = 60.0) -> dict[str, dict[str, Any]]:
    """Every platform indicator of ``[start, end)`` (``now``: the current time, default the clock;
    ``availability_bin_s``: the API availability bin, s, a minute unless a test shortens it)."""
    stored = _stored_rows(db, start, end, sorted({r.table for r in routes}))
    rejected = pd.Series([t for (t,) in db.fetchall(
        "SELECT topic FROM rejected_messages WHERE received_at >= %s AND received_at < %s", (start, end))], dtype=object)
    msgs = messages_per_feed(stored, rejected, routes)
    any_msgs = bool((msgs["ingested"] + msgs["rejected"]).sum() > 0)
    status = pd.DataFrame.from_records(db.fetchall(
        "(SELECT DISTINCT ON (kind, device_id) kind, device_id, extract(epoch FROM time)::float8, online"
        "   FROM device_status WHERE time < %s ORDER BY kind, device_id, time DESC)"
        " UNION ALL SELECT kind, device_id, extract(epoch FROM time)::float8, online FROM device_status"
        " WHERE time >= %s AND time < %s", (start, start, end)), columns=["kind", "device_id", "time_s", "online"])
    uptime = device_uptime(status, start.timestamp(), end.timestamp()) if not status.empty else None
    return {
        "messages_per_feed": {"unit": "messages; share", "defined_by": messages_per_feed,
                              "rows": msgs if any_msgs else None,
                              "reason": None if any_msgs else "no message stored or rejected in the period"},
        "device_uptime": {"unit": "share", "defined_by": device_uptime,
                          "rows": uptime if uptime is not None and not uptime.empty else None,
                          "reason": None if uptime is not None and not uptime.empty
                          else "no device status known in the period"},
        **_availability_entries(db, start, end, now, availability_bin_s),
    }

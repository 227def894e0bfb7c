"""Platform indicators: messages stored and rejected per feed, data quality per source, device
uptime, API availability."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from psycopg2 import sql

from its.db import Database
from its.dead_letters import REASON_CLASSES, reason_class
from its.indicators import Indicator, indicator, indicator_table
from its.ingest import Route, Router

__all__ = ["api_availability", "data_quality", "device_uptime", "messages_per_feed", "section"]

log = logging.getLogger(__name__)
#: Counts a domain may add to the data-quality table (`its.domain.ReportSection.quality`).
DOMAIN_QUALITY_COLUMNS = ("flagged_speed", "flagged_area", "stale_devices")


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


def data_quality(stored: pd.DataFrame, dead_letters: pd.DataFrame, domain: pd.DataFrame) -> pd.DataFrame:
    """Messages stored, flagged implausible and dead-lettered by reason, and stale devices, per source (messages; devices).

    A source is a table's data of one owner: the agency of vehicle positions, the car park of
    parking rows, the camera of camera counts, the device kind of device status (the first
    column of the table's route, the first ``+`` level of its topic). ``stored`` = rows whose
    own time falls in the period. ``flagged_speed``, ``flagged_area`` = stored rows the
    domain flags implausible (an impossible move from the vehicle's last plausible position,
    outside the service area): kept in the store, left out of live state and indicators.
    ``dead_lettered`` = ``rejected_messages`` received in the period, attributed by topic
    (table ``unrouted`` for a topic no route knows, its source the topic level after
    ``its/v1``), then split by reason (`its.dead_letters.reason_class`): ``future`` (stamped
    more than ``ITS_INGEST_MAX_FUTURE_S`` ahead of the clock), ``too_old`` (older than
    ``ITS_INGEST_MAX_AGE_S`` at receipt), ``invalid``, ``unsafe``, ``oversized``,
    ``unknown_topic``, ``parser_error``, ``database_refused``. ``stale_devices`` = devices of
    the source that went stale, as the domain defines it (vehicles silent longer than
    ``ITS_TELEMATICS_STALE_AFTER_S`` mid-trip; device status: devices whose last status says
    offline).

    Parameters
    ----------
    stored : DataFrame
        ``table, source, stored``.
    dead_letters : DataFrame
        ``table, source, reason`` (kind of reason), one row per dead letter.
    domain : DataFrame
        ``table, source`` and any of ``flagged_speed, flagged_area, stale_devices``.

    Returns
    -------
    DataFrame
        ``table, source, stored, flagged_speed, flagged_area, dead_lettered``, one column per
        kind of reason, ``stale_devices``; sorted by table and source.
    """
    key = ["table", "source"]
    dead = pd.crosstab([dead_letters["table"], dead_letters["source"]], dead_letters["reason"]) \
        if not dead_letters.empty else pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=key))
    dead = dead.reindex(columns=list(REASON_CLASSES), fill_value=0)
    dead.insert(0, "dead_lettered", dead.sum(axis=1))
    extra = domain.reindex(columns=[*key, *DOMAIN_QUALITY_COLUMNS]).groupby(key, sort=False).sum(min_count=1)
    out = stored.set_index(key)[["stored"]].join(extra, how="outer").join(dead.reset_index().set_index(key),
                                                                             how="outer")
    cols = ["stored", "flagged_speed", "flagged_area", "dead_lettered", *REASON_CLASSES, "stale_devices"]
    out = out.reindex(columns=cols).fillna(0).astype(np.int64)
    return out.sort_index().reset_index()


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
                          bin_s: float) -> dict[str, Indicator]:
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
        "api_availability": indicator("share", api_availability, value=value, reason=reason or "",
                                      measured_min=float(rows["measured_min"].sum()) if ok and rows is not None else 0.0),
        "api_availability_by_hour": indicator_table(rows if ok else None, "share; min", api_availability, reason or ""),
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


def _stored_by_source(db: Database, start: datetime, end: datetime, routes: Sequence[Route]) -> pd.DataFrame:
    """``table, source, stored``: rows in ``[start, end)`` per table and source (its route's first column)."""
    known = dict(db.fetchall("SELECT table_name, time_column FROM its_timeseries"))
    source_of: dict[str, str] = {}
    for r in routes:
        source_of.setdefault(r.table, r.columns[0])
    rows: list[tuple[str, str, int]] = []
    for table, column in sorted(source_of.items()):
        if table not in known:
            continue
        q = sql.SQL("SELECT {}::text, count(*) FROM {} WHERE {} >= %s AND {} < %s GROUP BY 1").format(
            sql.Identifier(column), sql.Identifier(table), sql.Identifier(known[table]), sql.Identifier(known[table]))
        rows += [(table, src, int(n)) for src, n in db.fetchall(q, (start, end))]
    return pd.DataFrame(rows, columns=["table", "source", "stored"])


def _dead_letter_sources(topics: Sequence[str], reasons: Sequence[str], routes: Sequence[Route]) -> pd.DataFrame:
    """``table, source, reason`` of each dead letter (see `data_quality`)."""
    router = Router(list(routes))
    out = []
    for topic, reason in zip(topics, reasons, strict=True):
        levels = topic.split("/")
        route = router.route(topic)
        if route is None:
            out.append(("unrouted", levels[2] if len(levels) > 2 else topic, reason_class(reason)))
            continue
        slot = route.topic_filter.split("/").index("+") if "+" in route.topic_filter else -1
        out.append((route.table, levels[slot] if 0 <= slot < len(levels) else "", reason_class(reason)))
    return pd.DataFrame(out, columns=["table", "source", "reason"])


def _offline_devices(status: pd.DataFrame) -> pd.DataFrame:
    """``table, source, stale_devices``: per device kind, devices whose last known status is offline."""
    if status.empty:
        return pd.DataFrame(columns=["table", "source", "stale_devices"])
    last = status.sort_values("time_s", kind="stable").groupby(["kind", "device_id"]).tail(1)
    off = last[~last["online"].to_numpy(bool)].groupby("kind").size()
    return pd.DataFrame({"table": "device_status", "source": off.index.astype(str), "stale_devices": off.to_numpy()})


def section(db: Database, start: datetime, end: datetime, routes: list[Route], now: datetime | None = None,
            availability_bin_s: float = 60.0, quality: Sequence[pd.DataFrame] = ()) -> dict[str, Indicator]:
    """Every platform indicator of ``[start, end)`` (``now``: the current time, default the clock;
    ``availability_bin_s``: the API availability bin, s, a minute unless a test shortens it;
    ``quality``: the domains' data-quality frames, `its.domain.ReportSection.quality`)."""
    stored = _stored_rows(db, start, end, sorted({r.table for r in routes}))
    dead = db.fetchall("SELECT topic, reason FROM rejected_messages WHERE received_at >= %s AND received_at < %s",
                       (start, end))
    rejected = pd.Series([t for t, _r in dead], dtype=object)
    msgs = messages_per_feed(stored, rejected, routes)
    any_msgs = bool((msgs["ingested"] + msgs["rejected"]).sum() > 0)
    status = pd.DataFrame.from_records(db.fetchall(
        "(SELECT DISTINCT ON (kind, device_id) kind, device_id, extract(epoch FROM time)::float8, online"
        "   FROM device_status WHERE time < %s ORDER BY kind, device_id, time DESC)"
        " UNION ALL SELECT kind, device_id, extract(epoch FROM time)::float8, online FROM device_status"
        " WHERE time >= %s AND time < %s", (start, start, end)), columns=["kind", "device_id", "time_s", "online"])
    uptime = device_uptime(status, start.timestamp(), end.timestamp()) if not status.empty else None
    frames = [f for f in (*quality, _offline_devices(status)) if not f.empty]
    domain = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["table", "source"])
    dq = data_quality(_stored_by_source(db, start, end, routes),
                      _dead_letter_sources([t for t, _r in dead], [r for _t, r in dead], routes), domain)
    return {
        "messages_per_feed": indicator_table(msgs if any_msgs else None, "messages; share", messages_per_feed,
                                             "no message stored or rejected in the period"),
        "data_quality": indicator_table(dq, "messages; devices", data_quality,
                                        "no message stored, flagged or dead-lettered in the period"),
        "device_uptime": indicator_table(uptime, "share", device_uptime, "no device status known in the period"),
        **_availability_entries(db, start, end, now, availability_bin_s),
    }

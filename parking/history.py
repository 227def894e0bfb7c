"""Backfilled occupancy history: a recorded parking history moved to just before now.

The forecaster needs days of occupancy history per site, which a freshly loaded demo has not
got. :func:`backfill_history` takes a real history (e.g. the UCI Parking Birmingham CSV),
shifts each site's readings by a whole number of weeks *in the site's local time* so that they
end just before ``end`` (weekday and time of day kept, so the history lines up with the live
readings that follow), and appends them to ``parking_occupancy`` (whose 15-minute rollup the
forecaster is fitted on) in one COPY. Rows already stored are skipped (key ``site_id, time``),
so running it again for the same week adds nothing.

Sites with no recorded history (on a clean machine: every demo car park, since the Birmingham
history lives in ``../shared/data``) get a *generated* one instead,
:func:`backfill_simulated_history`: the daily curve the demo's live simulator follows, with its
noise (:func:`parking.simulator.simulated_history`), so they are forecast from the first live
reading too. It is synthetic data and logged as such.

:func:`shift_history` is the pure part (no I/O).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from its.db import Database, copy_rows, refresh_aggregate, timeseries_backend
from parking.availability import ParkingStatus
from parking.cleaning import clean_history, read_history_csv
from parking.config import ParkingSettings
from parking.simulator import DEFAULT_PROFILE, simulated_history
from parking.sites import Site, read_sites
from parking.store import OCCUPANCY_COLUMNS

__all__ = ["BIRMINGHAM_CSV", "SIMULATED_DAYS", "backfill_demo_history", "backfill_history", "backfill_recorded_demo_history",
           "backfill_simulated_history", "occupancy_rows", "shift_history", "sites_without_history", "store_history"]

log = logging.getLogger(__name__)
WEEK = pd.Timedelta(weeks=1)
ROLLUP = "parking_occupancy_15m"
#: The Birmingham history inside the shared data directory (``ITS_SHARED_DATA``).
BIRMINGHAM_CSV = Path("parking") / "birmingham" / "birmingham_occupancy.csv"
#: Days of generated history a demo car park without a recorded one gets (4 weeks: the
#: forecaster needs 7 days and learns its blend weights and bands on the days after those).
SIMULATED_DAYS = 28


def shift_history(history: pd.DataFrame, zones: Mapping[str, str], end: datetime) -> pd.DataFrame:
    """Move each site's readings by whole weeks so they end before ``end``, keeping their
    recorded local wall-clock time in the site's zone.

    Parameters
    ----------
    history : DataFrame
        Columns ``site_id``, ``local_time`` (naive datetime64: the wall-clock time the reading
        was recorded at, in the recording's own zone) and any others (kept).
    zones : mapping
        IANA time zone of each site to shift; sites not in it are dropped.
    end : datetime
        Timezone-aware instant; every shifted reading is strictly before it.

    Returns
    -------
    DataFrame
        The kept rows plus ``time`` (UTC instant), sorted by site and time. Each site is
        moved by the largest whole number of weeks that puts its last reading before ``end``
        as seen in the site's zone, so weekday and local time of day are those recorded
        (a reading recorded at 09:00 on a Monday is stored at 09:00 on a Monday in the
        site's zone). Readings that fall into a DST gap or overlap of the zone are dropped.
    """
    end_ts = pd.Timestamp(end)
    if end_ts.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    parts = []
    for site_id, part in history[history["site_id"].isin(list(zones))].groupby("site_id", sort=True):
        zone = zones[str(site_id)]
        local = part["local_time"]
        end_local = end_ts.tz_convert(zone).tz_localize(None)
        weeks = (end_local - local.max()) // WEEK  # floor: last reading <= end_local
        if local.max() + weeks * WEEK >= end_local:
            weeks -= 1
        shifted = (local + weeks * WEEK).dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        moved = part.assign(time=shifted.dt.tz_convert("UTC"))
        parts.append(moved[moved["time"].notna() & (moved["time"] < end_ts)])
    if not parts:
        return history.iloc[0:0].assign(time=pd.Series(dtype="datetime64[ns, UTC]"))
    return pd.concat(parts, ignore_index=True).sort_values(["site_id", "time"], kind="stable").reset_index(drop=True)


def occupancy_rows(
    shifted: pd.DataFrame, capacities: Mapping[str, int], settings: ParkingSettings
) -> list[tuple[object, ...]]:
    """``parking_occupancy`` rows (``OCCUPANCY_COLUMNS`` order) of shifted readings.

    Occupancy is clamped into ``[0, capacity]`` (spaces; the site's capacity, not the
    recorded one); no space is unknown; the status follows the ``full_free_spaces`` and
    ``almost_full_ratio`` thresholds as live (sites are taken as open).
    """
    if shifted.empty:
        return []
    cap = shifted["site_id"].map(capacities).to_numpy(np.int64)
    occ = np.clip(shifted["occupied"].to_numpy(np.int64), 0, cap)
    free = cap - occ
    status = np.where(
        free <= settings.full_free_spaces, ParkingStatus.FULL.value,
        np.where(occ >= settings.almost_full_ratio * cap, ParkingStatus.ALMOST_FULL.value,
                 ParkingStatus.SPACES_AVAILABLE.value),
    )
    times = shifted["time"].dt.to_pydatetime()
    return list(zip(shifted["site_id"].tolist(), times, cap.tolist(), occ.tolist(), free.tolist(),
                    [0] * len(cap), status.tolist(), strict=True))


def store_history(db: Database, rows: Sequence[tuple[object, ...]], lo: datetime | None,
                  hi: datetime | None) -> int:
    """COPY occupancy rows (:data:`parking.store.OCCUPANCY_COLUMNS`, duplicates skipped) and, on
    TimescaleDB, refresh the ``parking_occupancy_15m`` continuous aggregate over ``[lo, hi)``
    (None: unbounded) so readers of the rollup (the forecaster) see them at once.

    Returns
    -------
    int
        Rows inserted.
    """
    with db.connection() as conn:
        inserted = copy_rows(conn, "parking_occupancy", OCCUPANCY_COLUMNS, rows)
    if inserted and timeseries_backend(db) == "timescaledb":
        refresh_aggregate(db.url, ROLLUP, lo, hi)
    return inserted


def backfill_history(
    db: Database, sites: Sequence[Site], history_csv: str | Path, end: datetime,
    settings: ParkingSettings | None = None,
) -> int:
    """Append the recorded history of ``sites`` to ``parking_occupancy``, shifted to end before ``end``.

    Sites without readings in the CSV are ignored. Runs one COPY (duplicates skipped) and,
    on TimescaleDB, refreshes the ``parking_occupancy_15m`` continuous aggregate over the
    backfilled span so the forecaster sees it at once.

    Returns
    -------
    int
        Rows inserted (0 when they were all there already).
    """
    settings = settings or ParkingSettings()
    cleaned, _ = clean_history(read_history_csv(history_csv))
    zones = {s.site_id: s.timezone or settings.timezone for s in sites}
    recorded = cleaned.assign(
        local_time=cleaned["local_date"] + pd.to_timedelta((cleaned["local_min"] * 60).round(), unit="s"))
    shifted = shift_history(recorded[["site_id", "local_time", "occupied"]], zones, end)
    rows = occupancy_rows(shifted, {s.site_id: s.capacity for s in sites}, settings)
    if not rows:
        return 0
    inserted = store_history(db, rows, shifted["time"].min().to_pydatetime(), end)
    log.info("parking history: %d of %d rows backfilled for %d sites", inserted, len(rows), shifted["site_id"].nunique())
    return inserted


def backfill_recorded_demo_history(db: Database, sites_file: Path, shared_data: Path | None, end: datetime) -> int:
    """Backfill the demo's replay sites (those of ``sites_file`` found in the Birmingham
    history under ``shared_data``) up to ``end``; 0 when the history is absent."""
    history = shared_data / BIRMINGHAM_CSV if shared_data is not None else None
    if history is None or not history.is_file():
        log.info("parking history: no recorded (Birmingham) history at hand")
        return 0
    return backfill_history(db, read_sites(sites_file), history, end)




def sites_without_history(db: Database, sites: Sequence[Site], end: datetime) -> list[Site]:
    """The sites of ``sites`` with no stored occupancy reading before ``end``."""
    rows = db.fetchall("SELECT DISTINCT site_id FROM parking_occupancy WHERE site_id = ANY(%s) AND time < %s",
                       ([s.site_id for s in sites], end))
    have = {str(r[0]) for r in rows}
    return [s for s in sites if s.site_id not in have]


def backfill_simulated_history(
    db: Database, sites: Sequence[Site], end: datetime, days: int = SIMULATED_DAYS, profile: str = DEFAULT_PROFILE,
    seed: int = 0, settings: ParkingSettings | None = None,
) -> int:
    """Store a generated history (synthetic, see :func:`parking.simulator.simulated_history`)
    of ``sites`` over the ``days`` days before ``end``: 15-minute readings on the ``profile``
    curve the live simulator follows, through the same rows and rollup refresh as a recorded
    history (:func:`occupancy_rows`, :func:`store_history`).

    Returns
    -------
    int
        Rows inserted (duplicates of stored readings skipped).
    """
    settings = settings or ParkingSettings()
    generated = simulated_history(sites, profile, end, days, seed=seed, default_zone=settings.timezone)
    rows = occupancy_rows(generated, {s.site_id: s.capacity for s in sites}, settings)
    if not rows:
        return 0
    inserted = store_history(db, rows, generated["time"].min().to_pydatetime(), end)
    log.info("parking history: %d rows of SIMULATED history (%d days, %r curve, synthetic data) for %d car "
             "park(s) without a recorded one: %s", inserted, days, profile, len(sites),
             ", ".join(s.site_id for s in sites))
    return inserted


def backfill_demo_history(db: Database, sites_file: Path, shared_data: Path | None, end: datetime,
                          simulate: bool = True) -> int:
    """Backfill the demo car parks of ``sites_file`` up to ``end``: the replay sites from the
    Birmingham history under ``shared_data`` when it is there, then (``simulate``) every site
    still without history from :func:`backfill_simulated_history`. Returns rows inserted."""
    inserted = backfill_recorded_demo_history(db, sites_file, shared_data, end)
    if simulate:
        missing = sites_without_history(db, read_sites(sites_file), end)
        if missing:
            inserted += backfill_simulated_history(db, missing, end)
    return inserted

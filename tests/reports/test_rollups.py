"""Reports read rollups (``date_bin`` views on native PostgreSQL, continuous aggregates on
TimescaleDB) and must count every stored row on both paths, including rows stored late, after
the aggregate was last materialised; each checked against pandas over the raw rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pandas as pd

from its.app.reports.gather import build_report, refresh_aggregate, refresh_rollups
from its.db import Database, copy_rows, timeseries_backend
from parking.store import OCCUPANCY_COLUMNS
from video.ingest import COUNT_COLUMNS, parse_counts

DAY = datetime(2026, 2, 16, tzinfo=UTC)


def _counts(first_minute: int, minutes: int, line: str, rng: np.random.Generator) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for m in range(first_minute, first_minute + minutes):
        payload = orjson.dumps({"interval_start": (DAY + timedelta(hours=16, minutes=m)).isoformat(), "interval_s": 60,
                                "line_id": line, "direction": "in", "vehicle_class": "car",
                                "count": int(rng.poisson(6))})
        rows.extend(parse_counts("its/v1/cameras/cam-1/counts", payload))
    return rows


def _materialise_all(db: Database) -> None:
    """What the refresh policy does on TimescaleDB (no-op on native PostgreSQL): materialise
    every aggregate, which moves its watermark past the rows stored so far."""
    if timeseries_backend(db) != "timescaledb":
        return
    for (view,) in db.fetchall("SELECT view_name FROM its_rollups"):
        refresh_aggregate(db.url, view, None, None)


def test_camera_counts_include_rows_stored_after_materialisation(db: Database) -> None:
    rng = np.random.default_rng(7)
    with db.connection() as conn:
        copy_rows(conn, "traffic_counts", COUNT_COLUMNS, _counts(0, 60, "a", rng))
    _materialise_all(db)
    late = _counts(0, 90, "b", rng) + _counts(60, 30, "a", rng)  # below and above the watermark
    with db.connection() as conn:
        copy_rows(conn, "traffic_counts", COUNT_COLUMNS, late)
    raw = pd.DataFrame.from_records(db.fetchall("SELECT line_id, interval_start, count FROM traffic_counts"),
                                    columns=["line_id", "interval_start", "count"])
    raw["interval_start"] = pd.to_datetime(raw["interval_start"], utc=True).dt.floor("15min")
    want = raw.groupby(["line_id", "interval_start"])["count"].sum()
    report = build_report(db, DAY, DAY + timedelta(days=1))
    got = report["sections"]["camera_counts"]["counts_15min"]["rows"]
    got = got.assign(interval_start=pd.to_datetime(got["interval_start"], utc=True)).set_index(
        ["line_id", "interval_start"])["vehicles"]
    assert len(want) == 6 + 6 and len(got) == len(want)
    np.testing.assert_array_equal(got.loc[want.index].to_numpy(), want.to_numpy())


def test_parking_rollup_equals_raw_occupancy_after_refresh(db: Database) -> None:
    base = DAY + timedelta(hours=9)
    first = [("S1", base + timedelta(minutes=7 * k), 100, 20 + k, 80 - k, 0, "spacesAvailable") for k in range(20)]
    with db.connection() as conn:
        copy_rows(conn, "parking_occupancy", OCCUPANCY_COLUMNS, first)
    _materialise_all(db)
    late = [("S1", base + timedelta(minutes=7 * k + 3), 100, 60, 40, 0, "spacesAvailable") for k in range(20)]
    with db.connection() as conn:
        copy_rows(conn, "parking_occupancy", OCCUPANCY_COLUMNS, late)
    refreshed = refresh_rollups(db, DAY, DAY + timedelta(days=1))
    assert refreshed == (["parking_occupancy_15m", "traffic_counts_15m"]
                         if timeseries_backend(db) == "timescaledb" else [])
    raw = pd.DataFrame(first + late, columns=list(OCCUPANCY_COLUMNS))
    raw["bucket"] = pd.to_datetime(raw["time"], utc=True).dt.floor("15min")
    want = raw.groupby("bucket").agg(mean=("occupied", "mean"), n=("occupied", "size"), lo=("free", "min"))
    view = pd.DataFrame.from_records(
        db.fetchall("SELECT bucket, mean_occupied, readings, min_free FROM parking_occupancy_15m"
                    " WHERE site_id = 'S1' ORDER BY bucket"), columns=["bucket", "mean", "n", "lo"]).set_index("bucket")
    view.index = pd.to_datetime(view.index, utc=True)
    assert list(view.index) == list(want.index)
    np.testing.assert_allclose(view["mean"].to_numpy(), want["mean"].to_numpy())
    np.testing.assert_array_equal(view["n"].to_numpy(), want["n"].to_numpy())
    np.testing.assert_array_equal(view["lo"].to_numpy(), want["lo"].to_numpy())

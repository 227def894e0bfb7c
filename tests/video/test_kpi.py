"""Camera count indicators: count messages parsed by the video ingest route and stored with
COPY as the collector does, read back through the ``traffic_counts_15m`` rollup, checked
against an independent computation over the messages sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from its.db import Database, copy_rows
from video.ingest import COUNT_COLUMNS, parse_counts
from video.kpi import section

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
END = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def kdb(module_db: Database) -> Iterator[dict[str, Any]]:
    db = module_db
    rng = np.random.default_rng(7)
    sent = []
    rows = []
    # two cameras, 60-s intervals from 06:00 to 10:00 with a morning peak around 08:00
    for minute in range(240):
        t = START + timedelta(minutes=minute)
        level = 2 + 10 * np.exp(-(((minute - 120) / 30) ** 2))
        for cam, line in (("cam-a", "north"), ("cam-b", "l1")):
            for direction in ("in", "out"):
                for cls, share in (("car", 1.0), ("truck_bus", 0.15)):
                    n = int(rng.poisson(level * share))
                    if n == 0 and rng.random() < 0.5:
                        continue  # workers skip some empty intervals
                    payload = {"interval_start": t.isoformat(), "interval_s": 60, "line_id": line,
                               "direction": direction, "vehicle_class": cls, "count": n}
                    rows.extend(parse_counts(f"its/v1/cameras/{cam}/counts", orjson.dumps(payload)))
                    sent.append({"camera_id": cam, **payload, "time": t})
    with db.connection() as conn:
        assert copy_rows(conn, "traffic_counts", COUNT_COLUMNS, rows) == len(rows)
    yield {"db": db, "sent": pd.DataFrame(sent), "kpi": section(db, START, END)}


def test_counts_per_15min_hour_and_day(kdb: dict[str, Any]) -> None:
    sent = kdb["sent"]
    keys = ["camera_id", "line_id", "direction", "vehicle_class"]
    for name, minutes in (("counts_15min", 15), ("counts_hour", 60), ("counts_day", 1440)):
        bucket = sent["time"].map(lambda t, m=minutes: t - timedelta(minutes=(t.hour * 60 + t.minute) % m))
        want = sent.groupby([*keys, bucket])["count"].sum()
        got = kdb["kpi"][name]["rows"].set_index([*keys, "interval_start"])["vehicles"]
        assert len(got) == len(want)
        assert got.sum() == sent["count"].sum()
        np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())


def test_peak_hour_volume_and_factor(kdb: dict[str, Any]) -> None:
    sent = kdb["sent"]
    got = kdb["kpi"]["peak_hour"]["rows"].set_index(["camera_id", "line_id", "direction"])
    assert len(got) == 4
    for key, g in sent.groupby(["camera_id", "line_id", "direction"]):
        per_min = g.groupby("time")["count"].sum()
        q = [int(per_min[(per_min.index >= START + timedelta(minutes=15 * i))
                         & (per_min.index < START + timedelta(minutes=15 * (i + 1)))].sum()) for i in range(16)]
        best = max(range(13), key=lambda i: sum(q[i:i + 4]))
        volume = sum(q[best:best + 4])
        assert got.loc[key, "peak_hour_volume"] == volume
        assert got.loc[key, "phf"] == pytest.approx(volume / (4 * max(q[best:best + 4])))
        assert got.loc[key, "peak_start"].hour in (7, 8)
        assert 0.25 < got.loc[key, "phf"] <= 1


def test_empty_period(kdb: dict[str, Any]) -> None:
    kpi = section(kdb["db"], datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC))
    for name, entry in kpi.items():
        assert entry["rows"] is None and entry["reason"] == "no camera counts in the period", name

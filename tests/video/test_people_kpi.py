"""Pedestrian report indicators: people messages parsed by the video ingest route and stored with
COPY as the collector does, read back by the camera report section, checked against an
independent computation over the messages sent."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from its.db import Database, copy_rows
from its.domain import ReportRequest
from its.report_settings import ReportSettings
from video.domain import DOMAIN
from video.ingest import PEOPLE_COLUMNS, parse_people

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
END = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def kdb(module_db: Database) -> Iterator[dict[str, Any]]:
    db = module_db
    rng = np.random.default_rng(11)
    zones, lines, rows = [], [], []
    # 60-s intervals from 06:00 to 10:00 with a pedestrian peak around 08:30
    for minute in range(240):
        t = START + timedelta(minutes=minute)
        level = 3 + 20 * np.exp(-(((minute - 150) / 25) ** 2))
        for zone, share in (("all", 1.0), ("entrance", 0.3)):
            if minute % 17 == 5:
                continue  # a lost interval: the zone's hour means use what was estimated
            samples = int(rng.integers(100, 121))
            mean = float(rng.gamma(20, level * share / 20))
            body = {"interval_start": t.isoformat(), "interval_s": 60, "zone_id": zone, "people_mean": round(mean, 2),
                    "people_max": round(mean * 1.4 + 1, 2), "samples": samples}
            rows += parse_people("its/v1/cameras/mall-1/people", orjson.dumps(body))
            zones.append({"camera_id": "mall-1", **body, "time": t})
        for direction, share in (("in", 1.0), ("out", 0.6)):
            n = round(float(rng.poisson(level * share)) * float(rng.uniform(0.9, 1.1)), 2)
            body = {"interval_start": t.isoformat(), "interval_s": 60, "line_id": "doors", "direction": direction,
                    "crossings": n}
            rows += parse_people("its/v1/cameras/plaza/people", orjson.dumps(body))
            lines.append({"camera_id": "plaza", **body, "time": t})
    with db.connection() as conn:
        assert copy_rows(conn, "people_counts", PEOPLE_COLUMNS, rows) == len(rows)
    (section,) = DOMAIN.report_sections
    kpi = section.build(ReportRequest(db, START, END, None, ReportSettings()))
    yield {"zones": pd.DataFrame(zones), "lines": pd.DataFrame(lines), "kpi": kpi, "db": db}


def test_pedestrians_sit_next_to_the_vehicle_indicators(kdb: dict[str, Any]) -> None:
    kpi = kdb["kpi"]
    assert {"counts_hour", "peak_hour", "pedestrians_hour", "pedestrians_peak_hour", "people_present_hour",
            "people_present_peak"} <= set(kpi)
    assert kpi["counts_hour"]["rows"] is None and kpi["counts_hour"]["reason"]  # no vehicles stored
    assert kpi["pedestrians_hour"]["unit"] == "people/h" and kpi["people_present_hour"]["unit"] == "people"


def test_pedestrian_volume_per_hour(kdb: dict[str, Any]) -> None:
    sent = kdb["lines"]
    hour = sent["time"].map(lambda t: t.replace(minute=0))
    want = sent.groupby(["direction", hour])["crossings"].sum()
    got = kdb["kpi"]["pedestrians_hour"]["rows"].set_index(["direction", "interval_start"])["people"]
    assert len(got) == 8 and set(kdb["kpi"]["pedestrians_hour"]["rows"]["line_id"]) == {"doors"}
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), atol=1e-6)


def test_pedestrian_peak_hour(kdb: dict[str, Any]) -> None:
    sent = kdb["lines"]
    per_min = sent.groupby("time")["crossings"].sum()
    q = [float(per_min[(per_min.index >= START + timedelta(minutes=15 * i))
                       & (per_min.index < START + timedelta(minutes=15 * (i + 1)))].sum()) for i in range(16)]
    best = max(range(13), key=lambda i: sum(q[i:i + 4]))
    (row,) = kdb["kpi"]["pedestrians_peak_hour"]["rows"].to_dict("records")
    assert (row["camera_id"], row["line_id"]) == ("plaza", "doors")
    assert row["peak_start"] == START + timedelta(minutes=15 * best) and row["peak_start"].hour in (7, 8)
    assert row["peak_hour_volume"] == pytest.approx(sum(q[best:best + 4]))
    window = sent[(sent["time"] >= row["peak_start"]) & (sent["time"] < row["peak_start"] + timedelta(hours=1))]
    for direction in ("in", "out"):
        assert row[direction] == pytest.approx(window[window["direction"] == direction]["crossings"].sum())


def test_people_present_per_hour_and_peak(kdb: dict[str, Any]) -> None:
    sent = kdb["zones"]
    hour = sent["time"].map(lambda t: t.replace(minute=0))
    g = sent.assign(ps=sent["people_mean"] * sent["samples"], hour=hour).groupby(["zone_id", "hour"])
    want_mean = g["ps"].sum() / g["samples"].sum()
    rows = kdb["kpi"]["people_present_hour"]["rows"].set_index(["zone_id", "interval_start"])
    np.testing.assert_allclose(rows["people_mean"].to_numpy(), want_mean.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(rows["people_max"].to_numpy(), g["people_max"].max().to_numpy())
    peak = kdb["kpi"]["people_present_peak"]["rows"].set_index("zone_id")
    for zone, z in sent.groupby("zone_id"):
        bins = [z[(z["time"] >= START + timedelta(minutes=15 * i)) & (z["time"] < START + timedelta(minutes=15 * (i + 1)))]
                for i in range(16)]
        means = [sum((b["people_mean"] * b["samples"]).sum() for b in bins[i:i + 4])
                 / sum(b["samples"].sum() for b in bins[i:i + 4]) for i in range(13)]
        best = int(np.argmax(means))
        assert peak.loc[zone, "peak_start"] == START + timedelta(minutes=15 * best)
        assert peak.loc[zone, "peak_hour_mean"] == pytest.approx(means[best])
        assert peak.loc[zone, "people_max"] == z["people_max"].max()
        top = z.loc[z["people_max"].idxmax(), "time"]
        assert peak.loc[zone, "max_at"] == top - timedelta(minutes=top.minute % 15)


def test_an_empty_period_says_why(kdb: dict[str, Any]) -> None:
    from video.people_kpi import section

    empty = section(kdb["db"], END, END + timedelta(days=1))
    assert all(v["rows"] is None for v in empty.values())
    assert "zone only" in empty["pedestrians_hour"]["reason"] and "no people estimates" in empty["people_present_hour"]["reason"]


def test_the_report_renders_the_pedestrian_tables(kdb: dict[str, Any], tmp_path: Any) -> None:
    from its.app.reports.gather import build_report, report_json
    from its.app.reports.render import render

    report = build_report(kdb["db"], START, END)
    plain = report_json(report)["sections"]["camera_counts"]
    assert plain["pedestrians_peak_hour"]["rows"][0]["line_id"] == "doors"
    assert len(plain["people_present_hour"]["rows"]) == 8  # 2 zones x 4 hours
    for fmt in ("html", "xlsx"):
        assert render(report, fmt, tmp_path).stat().st_size > 0
    page = (tmp_path / next(p.name for p in tmp_path.iterdir() if p.suffix == ".html")).read_text()
    assert "pedestrians_peak_hour" in page
    # the pedestrian charts sit in the camera section, next to the vehicles' (a PNG each)
    camera = page.split("<h2>Camera counts</h2>")[1].split("<h2>")[0]
    for caption in ("Pedestrians per hour by camera people line and direction",
                    "People present per hour by camera zone (mean of the estimates)"):
        figure = camera.split(f"<img alt='{caption}' src='data:image/png;base64,")
        assert len(figure) == 2 and base64.b64decode(figure[1].split("'")[0])[:8] == b"\x89PNG\r\n\x1a\n"

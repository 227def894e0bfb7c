"""Gathering and rendering: every section of a day's report, platform indicators against
independent counts, JSON/CSV/XLSX/HTML outputs opened and parsed, CLI, API and nightly job."""

from __future__ import annotations

import base64
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from its.app.control import control_routers
from its.app.factory import create_app
from its.app.reports.gather import (
    build_report,
    definition,
    parse_period,
    report_json,
    report_tables,
    sections,
)
from its.app.reports.nightly import list_reports, next_run, nightly_report_loop, write_report
from its.app.reports.render import render
from its.auth import create_user
from its.db import Database
from its.report_settings import ReportSettings
from its.settings import Settings, load_settings
from tests.reports.conftest import DAY

END = DAY + timedelta(days=1)


@pytest.fixture(scope="module")
def report(day_db: dict[str, Any]) -> dict[str, Any]:
    return build_report(day_db["db"], DAY, END)


def test_every_section_has_real_values_or_reasons(report: dict[str, Any]) -> None:
    plain = report_json(report)
    orjson.dumps(plain)  # plain JSON throughout
    assert list(plain["sections"]) == sections()
    for section, entries in plain["sections"].items():
        for name, item in entries.items():
            value = item.get("rows", item.get("value"))
            assert (value is None) == (item["reason"] is not None), (section, name)
            assert item["unit"] is not None
            if item["defined_in"]:
                assert item["definition"], (section, name)
    s = plain["sections"]
    for section, name in (("public_transport", "on_time_by_route"), ("public_transport", "avl_completeness"),
                          ("parking", "occupancy_by_site_hour"), ("camera_counts", "peak_hour"),
                          ("platform", "messages_per_feed"), ("platform", "device_uptime")):
        assert s[section][name]["rows"], (section, name)
    assert s["traffic"]["speed_tti_by_area_hour"]["reason"] == "no probe speed observations in the period"
    assert s["platform"]["api_availability"]["value"] is None
    assert "[-1, +5] min" in s["public_transport"]["on_time_by_route"]["definition"]


def test_messages_per_feed_and_device_uptime(day_db: dict[str, Any], report: dict[str, Any]) -> None:
    msgs = report["sections"]["platform"]["messages_per_feed"]["rows"].set_index("feed")
    assert msgs.loc["vehicle_positions", "ingested"] == day_db["positions"]
    assert msgs.loc["parking_counts", "ingested"] == day_db["counts"]
    assert msgs.loc["camera_counts", "ingested"] == day_db["cams"]
    assert msgs.loc["parking_counts", "rejected"] == len(day_db["rejected"]) > 0  # malformed counter messages
    assert msgs.loc["parking_counts", "rejected_share"] == pytest.approx(
        len(day_db["rejected"]) / (len(day_db["rejected"]) + day_db["counts"]))
    up = report["sections"]["platform"]["device_uptime"]["rows"].set_index("device_id")
    # cam-1 online since before the day: 24 h of 24; cam-2 known from 01:00, offline 10:00-12:00
    assert up.loc["cam-1", "uptime"] == pytest.approx(1.0)
    assert up.loc["cam-2", "known_s"] == pytest.approx(23 * 3600)
    assert up.loc["cam-2", "uptime"] == pytest.approx(21 / 23)


def test_renderings_open_and_parse(report: dict[str, Any], tmp_path: Path) -> None:
    tables = report_tables(report)
    html_path = render(report, "html", tmp_path)
    text = html_path.read_text()
    assert "<script" not in text and "http://" not in text and "https://" not in text
    images = text.count("src='data:image/png;base64,")
    assert images >= 4
    first = text.split("src='data:image/png;base64,")[1].split("'")[0]
    assert base64.b64decode(first)[:8] == b"\x89PNG\r\n\x1a\n"
    folder = render(report, "csv", tmp_path)
    for name, frame in tables.items():
        back = pd.read_csv(folder / f"{name}.csv")
        assert len(back) == len(frame) and list(back.columns) == list(map(str, frame.columns))
    wb = openpyxl.load_workbook(render(report, "xlsx", tmp_path), read_only=True)
    assert wb.sheetnames[0] == "summary" and len(wb.sheetnames) == len(tables)
    sheet = wb["summary"]
    assert sheet.max_row == len(tables["summary"]) + 1
    doc = orjson.loads(render(report, "json", tmp_path).read_bytes())
    assert doc["period"]["from"].startswith("2026-02-16")


def test_period_parsing() -> None:
    lo, hi = parse_period("2026-02-16", "2026-02-16", "America/New_York")
    assert (lo.isoformat(), hi.isoformat()) == ("2026-02-16T05:00:00+00:00", "2026-02-17T05:00:00+00:00")
    last_day = (DAY + timedelta(hours=4), END + timedelta(hours=4))
    assert parse_period(None, None, "UTC", now=datetime(2026, 2, 17, 3, 10, tzinfo=UTC)) == last_day
    with pytest.raises(ValueError, match="from"):
        parse_period("yesterday", None, "UTC")
    with pytest.raises(ValueError, match="not after"):
        parse_period("2026-02-17T00:00Z", "2026-02-16T00:00Z", "UTC")
    with pytest.raises(ValueError, match="out of range"):
        parse_period(None, "9999-12-31", "UTC")
    with pytest.raises(ValueError, match="longer"):
        parse_period("2026-01-01", "2026-12-31", "UTC", max_days=92)


def _settings(day_db: dict[str, Any], broker_url: str, tmp_path: Path) -> Settings:
    return load_settings(database_url=day_db["url"], mqtt_url=broker_url, data_dir=tmp_path / "data")


def test_cli_report_json_last_line(day_db: dict[str, Any], broker_url: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from its.app.reports.cli import report as report_command
    from its.settings import get_settings

    monkeypatch.setenv("ITS_DATABASE_URL", day_db["url"])
    monkeypatch.setenv("ITS_MQTT_URL", broker_url)
    monkeypatch.setenv("ITS_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    import typer

    app = typer.Typer()
    app.command()(report_command)
    result = CliRunner().invoke(app, ["--from", "2026-02-16", "--to", "2026-02-16", "--format", "xlsx",
                                      "--out", str(tmp_path), "--json"])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    doc = orjson.loads(lines[-1])
    assert doc["period"] == {"from": "2026-02-16T00:00:00+00:00", "to": "2026-02-17T00:00:00+00:00"}
    assert any("public_transport.on_time_by_route: " in line for line in lines)
    assert list(tmp_path.glob("*.xlsx"))
    bad = CliRunner().invoke(app, ["--from", "16/02/2026"])
    assert bad.exit_code == 2 and "from" in bad.output


def test_api_kpis_and_tables(day_db: dict[str, Any], broker_url: str, tmp_path: Path) -> None:
    from its.app.reports.api import reports_router

    settings = _settings(day_db, broker_url, tmp_path)
    create_user(day_db["db"], "report-reader", "reader-pass-1", "dispatcher")
    write_report(day_db["db"], DAY, END, tmp_path / "data" / "reports", ["html"])
    with TestClient(create_app(settings, [], extra_routers=[*control_routers(), reports_router])) as client:
        assert client.get("/v1/reports/kpis?from=2026-02-16&to=2026-02-16").status_code == 401
        r = client.post("/v1/auth/login", json={"username": "report-reader", "password": "reader-pass-1"})
        headers = {"Authorization": f"Bearer {r.cookies['its_session']}"}
        r = client.get("/v1/reports/kpis?from=2026-02-16&to=2026-02-16", headers=headers)
        assert r.status_code == 200
        assert r.json()["sections"]["public_transport"]["on_time_by_route"]["rows"]
        r = client.get("/v1/reports/tables/public_transport.on_time_by_route.csv?from=2026-02-16&to=2026-02-16",
                       headers=headers)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.text.splitlines()[0] == "route_id,departures,early,on_time,late,on_time_share"
        r = client.get("/v1/reports/tables/traffic.incidents.csv?from=2026-02-16", headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "no_data"
        assert client.get("/v1/reports/tables/nope.csv", headers=headers).status_code == 404
        r = client.get("/v1/reports/kpis?from=16.02.2026", headers=headers)
        assert r.status_code == 422 and "from" in r.json()["error"]["message"]
        listing = client.get("/v1/reports", headers=headers).json()["reports"]
        assert [x["format"] for x in listing] == ["html"]
        r = client.get(f"/v1/reports/files/{listing[0]['name']}", headers=headers)
        assert r.status_code == 200 and b"ITS efficiency report" in r.content
        assert client.get("/v1/reports/files/..%2Fsecrets", headers=headers).status_code == 404


def test_nightly_loop_writes_yesterday(day_db: dict[str, Any], broker_url: str, tmp_path: Path) -> None:
    rs = ReportSettings(nightly_time="02:00", nightly_formats="json,html")
    assert next_run(datetime(2026, 2, 17, 1, 59, tzinfo=UTC), rs) == datetime(2026, 2, 17, 2, 0, tzinfo=UTC)
    assert next_run(datetime(2026, 2, 17, 2, 0, tzinfo=UTC), rs) == datetime(2026, 2, 18, 2, 0, tzinfo=UTC)
    # the loop itself, on a clock that stands half a second before 02:00 on 2026-02-17
    started = time.monotonic()

    def clock() -> datetime:
        return datetime(2026, 2, 17, 1, 59, 59, 500_000, tzinfo=UTC) + timedelta(seconds=time.monotonic() - started)

    settings = _settings(day_db, broker_url, tmp_path)
    stop = threading.Event()
    worker = threading.Thread(target=nightly_report_loop, args=(settings, day_db["db"], stop, rs, clock),
                              daemon=True)
    worker.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(list_reports(settings.data_dir)) < 2:
        time.sleep(0.5)
    stop.set()
    worker.join(timeout=10)
    assert not worker.is_alive()
    stored = list_reports(settings.data_dir)
    assert sorted(r["format"] for r in stored) == ["html", "json"]
    assert all(r["name"].startswith("its-report-2026-02-16-2026-02-17") for r in stored)


def test_empty_database_period(day_db: dict[str, Any]) -> None:
    plain = report_json(build_report(day_db["db"], datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC)))
    for section, entries in plain["sections"].items():
        for name, item in entries.items():
            assert item.get("rows", item.get("value")) is None and item["reason"], (section, name)
    with pytest.raises(ValueError, match="empty period"):
        build_report(day_db["db"], END, DAY)


def test_missing_data_source_is_a_reason_not_an_error(tmp_path: Path, day_db: dict[str, Any]) -> None:
    db: Database = day_db["db"]
    db.execute("ALTER TABLE traffic_probe_speeds RENAME TO traffic_probe_speeds_away")
    try:
        plain = report_json(build_report(db, DAY, END))
    finally:
        db.execute("ALTER TABLE traffic_probe_speeds_away RENAME TO traffic_probe_speeds")
    entry = plain["sections"]["traffic"]["section"]
    assert entry["reason"].startswith("no data source") and "traffic_probe_speeds" in entry["reason"]


def test_glossary_defines_every_indicator_once() -> None:
    from its.app.reports.glossary import glossary_markdown, indicator_functions

    fns = indicator_functions()
    assert len(fns) >= 20
    assert len({f"{f.__module__}.{f.__name__}" for f in fns}) == len(fns)
    table = glossary_markdown()
    for fn in fns:
        text = definition(fn)
        assert text and "(" in text, fn.__name__  # every definition states its unit in parentheses
        assert text.replace("|", "\\|") in table


def test_area_scopes_public_transport_and_traffic(day_db: dict[str, Any], report: dict[str, Any]) -> None:
    same = build_report(day_db["db"], DAY, END, area="wmata")["sections"]
    assert same["public_transport"]["on_time_by_route"]["rows"].equals(
        report["sections"]["public_transport"]["on_time_by_route"]["rows"])
    other = build_report(day_db["db"], DAY, END, area="elsewhere")["sections"]
    assert other["public_transport"]["on_time_by_route"]["rows"] is None
    assert other["public_transport"]["on_time_by_route"]["reason"] == "no stop arrivals detected in the period"
    assert other["parking"]["occupancy_by_site_hour"]["rows"] is not None  # parking is not area-scoped


def test_data_quality_of_the_day(day_db: dict[str, Any], report: dict[str, Any]) -> None:
    """Per source, against the rows the fixture wrote: positions per agency, counts per car park,
    camera counts per camera, device status per kind, and the malformed counter messages."""
    rows = report["sections"]["platform"]["data_quality"]["rows"].set_index(["table", "source"])
    assert rows.loc[("vehicle_positions", "wmata"), "stored"] == day_db["positions"]
    assert rows.loc[("vehicle_positions", "wmata"), ["flagged_speed", "flagged_area"]].tolist() == [0, 0]
    parking = rows.loc["parking_counts"]
    assert parking["stored"].sum() == day_db["counts"]
    for topic, n in pd.Series([r[1] for r in day_db["rejected"]]).value_counts().items():
        assert parking.loc[str(topic).split("/")[3], "dead_lettered"] == n
    # {"ts": 1} is dated 1970 (too old); a missing ts and a non-JSON payload are invalid
    assert parking.loc[["BAD0", "BAD1", "BAD2"], ["too_old", "invalid"]].to_numpy().tolist() == [[1, 0], [0, 1], [0, 1]]
    assert rows.loc["traffic_counts", "stored"].to_dict() == {"cam-1": day_db["cams"] // 2, "cam-2": day_db["cams"] // 2}
    assert rows.loc[("device_status", "camera"), "stored"] == sum(1 for s in day_db["status"] if s[2] >= DAY)
    assert rows.loc[("device_status", "camera"), "stale_devices"] == 0  # both cameras online at the end

"""``its demo --duration 60`` on the machine's services: every headline endpoint serves live data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from its.app.demo import demo_timezone
from its.broker import free_port
from telematics.gtfs import read_feed, rebase_calendar, trips_running_at

from ..conftest import create_database, drop_database, shared_data_path


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def _wait(predicate: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.5)
    return False


def _wait_text(path: Path, text: str, timeout_s: float) -> bool:
    return _wait(lambda: text in path.read_text(errors="replace"), timeout_s)


def test_the_demo_clock_shows_buses_at_any_hour(sample_data: Path) -> None:
    """The demo keeps Cairns' own zone while its timetable runs buses, and moves to a zone
    where it is mid-morning when it does not (a Sunday dawn, a night)."""
    feed = read_feed(sample_data / "gtfs" / "cairns_gtfs.zip")
    cairns = ZoneInfo("Australia/Brisbane")
    friday_morning = datetime(2026, 12, 4, 8, 30, tzinfo=cairns)
    assert demo_timezone(feed, friday_morning) == "Australia/Brisbane"
    for quiet in (datetime(2026, 12, 6, 6, 30, tzinfo=cairns), datetime(2026, 12, 5, 2, 0, tzinfo=cairns)):
        zone = demo_timezone(feed, quiet)
        assert zone.startswith("Etc/GMT")
        local = quiet.astimezone(ZoneInfo(zone))
        assert local.hour in (9, 10, 11)
        moved = rebase_calendar(replace(feed, agency=feed.agency.assign(agency_timezone=zone)),
                                local.date())
        assert trips_running_at(moved, quiet.astimezone(UTC).timestamp()) >= 10


def test_demo_serves_live_data_within_a_minute(tmp_path: Path, sample_data: Path, broker_url: str) -> None:
    """With ``../shared/data`` (real camera clip, recorded parking history) or, under
    ``make test-noshared``, without it (rendered camera, simulated parking history): the same
    endpoints serve live data, forecasts for every kind of car park among them."""
    db_url = create_database()
    port = free_port()
    env = {**os.environ, "ITS_DATABASE_URL": db_url, "ITS_MQTT_URL": broker_url, "ITS_DATA_DIR": str(tmp_path / "data"),
           "ITS_API_PORT": str(port), "ITS_SHARED_DATA": str(shared_data_path())}
    out = open(tmp_path / "demo.out", "wb")  # noqa: SIM115
    demo = subprocess.Popen([sys.executable, "-m", "its.app.cli", "demo", "--duration", "150"], env=env, stdout=out,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    found: dict[str, bool] = {}
    try:
        deadline = time.monotonic() + 240  # setup (imports) + 60 s of live running
        ready_at = None
        while time.monotonic() < deadline and not all(found.get(k) for k in ("arrivals", "parking", "forecast", "cameras", "people", "congestion")):
            if ready_at is None and _get(base + "/readyz")[0] == 200:
                ready_at = time.monotonic()
            if ready_at is not None:
                creds = dict(line.split("=", 1) for line in (tmp_path / "data" / "demo-credentials.txt").read_text().splitlines())
                headers = {"X-API-Key": creds["app_key"]}
                # each endpoint is asked until it has served live data (the app key has a quota)
                if not found.get("arrivals"):
                    _, stops = _get(base + "/v1/stops?lat=-16.925&lon=145.775&radius_m=1500", headers)
                    for stop in (stops or {}).get("stops", [])[:15]:  # type: ignore[union-attr]
                        _, arr = _get(f"{base}/v1/stops/{stop['stop_id']}/arrivals?minutes=60", headers)
                        if any(a.get("predicted") for a in (arr or {}).get("arrivals", [])):  # type: ignore[union-attr]
                            found["arrivals"] = True
                            break
                if not found.get("parking"):
                    _, avail = _get(base + "/v1/parking/availability", headers)
                    found["parking"] = any(s.get("status") not in (None, "unknown")
                                           for s in (avail or {}).get("sites", []))  # type: ignore[union-attr]
                if not found.get("forecast"):
                    # every car park comes with weeks of history (the replay ones time-shifted real
                    # history when ../shared/data is there, all others simulated): forecast at once
                    fcs = [_get(f"{base}/v1/parking/sites/{site}/forecast", headers)[1]
                           for site in ("BHMBCCMKT01", "CNS-CENTRAL")]
                    found["forecast"] = all(
                        isinstance(fc, dict) and len(fc.get("forecasts", [])) == 3
                        and all(f.get("free") is not None for f in fc["forecasts"]) for fc in fcs)
                if not found.get("cameras"):
                    _, cams = _get(base + "/v1/cameras", headers)
                    found["cameras"] = any(c.get("observed_at") and c.get("lines") and c.get("lat") is not None
                                           for c in (cams or {}).get("cameras", []))  # type: ignore[union-attr]
                if not found.get("people"):  # the rendered walkway (synthetic) counts its pedestrians
                    _, walk = _get(base + "/v1/cameras/walkway-1", headers)
                    people = (walk or {}).get("people") or {}  # type: ignore[union-attr]
                    found["people"] = bool((walk or {}).get("synthetic") and people.get("crossings_measured")  # type: ignore[union-attr]
                                           and any(z["people_mean"] > 0 for z in people.get("zones", [])))
                if not found.get("congestion"):
                    _, cong = _get(base + "/v1/traffic/congestion", headers)
                    found["congestion"] = bool((cong or {}).get("features"))  # type: ignore[union-attr]
            time.sleep(2)
        assert ready_at is not None, (tmp_path / "demo.out").read_text()[-3000:]
        assert found == {"arrivals": True, "parking": True, "forecast": True, "cameras": True, "people": True,
                         "congestion": True}, found
        assert time.monotonic() - ready_at < 90
        # a component that dies is restarted, and the demo says so
        import psutil

        fleet = [c for c in psutil.Process(demo.pid).children(recursive=True)
                 if "simulate" in c.cmdline() and "fleet" in c.cmdline()]
        assert len(fleet) == 1
        fleet[0].kill()
        assert _wait_text(tmp_path / "demo.out", "component fleet exited", 30)
        assert "restarting it" in (tmp_path / "demo.out").read_text()
        assert _wait(lambda: any("simulate" in c.cmdline() and "fleet" in c.cmdline() and c.pid != fleet[0].pid
                                 for c in psutil.Process(demo.pid).children(recursive=True)), 30)
        # the demo stops by itself after --duration; a report over its data has every section
        assert demo.wait(240) == 0, (tmp_path / "demo.out").read_text()[-3000:]
        rep = subprocess.run([sys.executable, "-m", "its.app.cli", "report", "--json", "--format", "json",
                              "--out", str(tmp_path / "reports")], env=env, capture_output=True, timeout=300)
        assert rep.returncode == 0, rep.stderr.decode()[-3000:]
        sections = orjson.loads(rep.stdout.splitlines()[-1])["sections"]
        real = {name: sorted(k for k, e in entries.items() if e.get("rows") or e.get("value") is not None)
                for name, entries in sections.items()}
        assert set(real) == {"public_transport", "parking", "traffic", "camera_counts", "platform"}, real
        assert all(real.values()), real  # every section has indicators with real values
        assert "api_availability" in real["platform"], real
        # nothing null without its reason (e.g. a prediction is scored only 360 s after its arrival)
        nulls = {f"{n}.{k}": e.get("reason") for n, entries in sections.items() for k, e in entries.items()
                 if not (e.get("rows") or e.get("value") is not None)}
        assert all(nulls.values()), nulls
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            assert demo.wait(60) == 0  # clean shutdown on Ctrl-C
        finally:
            if demo.poll() is None:
                demo.kill()
            drop_database(db_url)

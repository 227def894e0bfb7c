"""A car park fills and the dispatcher sees it: counter messages over MQTT -> parking service ->
``parking_full`` alert -> the control centre's stream, parking panel and map.

The parking package's demo sites (made-up sites in Cairns, see its description) are imported;
the counts are published on the broker like a car-park counter would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest
from playwright.sync_api import expect

from its.db import Database
from its.mqtt import connect
from its.settings import Settings

from .browser import PageOpener, log_in, screenshot
from .server import LiveServer, close_server, start_server

parking_service = pytest.importorskip("parking.service", reason="parking service not landed yet")
parking_sites = pytest.importorskip("parking.sites")
parking_store = pytest.importorskip("parking.store")

pytestmark = pytest.mark.browser
SITE = "CNS-HOSPITAL"  # open 24/7, 320 spaces
SITES_FILE = Path(parking_sites.__file__).resolve().parent / "data" / "demo_sites.geojson"


HISTORY_SITE = "BHMBCCMKT01"  # a demo site carrying the id and capacity of a Birmingham car park


def store_real_history(db: Database, history_csv: Path) -> int:
    """The last recorded day of HISTORY_SITE's Birmingham occupancy, shifted to the last 24 h."""
    frame = pd.read_csv(history_csv)
    frame = frame[frame["site_id"] == HISTORY_SITE].copy()
    frame["time"] = pd.to_datetime(frame["timestamp"], utc=True)
    last_day = frame["time"].dt.floor("D").max()
    day = frame[frame["time"] >= last_day]
    shift = datetime.now(UTC) - timedelta(hours=1) - day["time"].max().to_pydatetime()
    rows = [(HISTORY_SITE, t.to_pydatetime() + shift, int(c), int(o), max(int(c) - int(o), 0), 0, "spacesAvailable")
            for t, c, o in zip(day["time"], day["capacity"], day["occupied"], strict=True)]
    return parking_store.save_occupancy(db, rows)


@pytest.fixture
def parking_server(settings: Settings, db: Database, sample_data: Path) -> Iterator[LiveServer]:
    from tests.conftest import shared_data_path
    from tests.standins import birmingham_standin

    sites = parking_sites.read_sites(SITES_FILE)
    parking_store.upsert_sites(db, sites, datetime.now(UTC))
    real = shared_data_path() / "parking" / "birmingham" / "birmingham_occupancy.csv"
    history = real if real.is_file() else birmingham_standin(sample_data, SITES_FILE)  # the real history, else its stand-in
    assert store_real_history(db, history) >= 10
    service = parking_service.create_service()
    server = start_server(settings, db, [service])
    deadline = time.monotonic() + 60
    while not service.ready() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert service.ready()
    yield server
    close_server(server)


def publish_count(broker_url: str, site: str, occupied: int) -> None:
    pub = connect(broker_url, f"ui-test-counter-{time.time_ns()}")
    info = pub.client.publish(f"its/v1/parking/{site}/counts",
                              orjson.dumps({"ts": time.time(), "occupied": occupied}), qos=1)
    info.wait_for_publish(10)
    pub.close()


def test_car_park_fills_alert_appears_and_is_acknowledged(parking_server: LiveServer, broker_url: str,
                                                         open_page: PageOpener) -> None:
    page, console = open_page(1920, 1080)
    publish_count(broker_url, SITE, 100)
    log_in(page, parking_server.url)
    row = page.locator(f'#parking tr[data-site-id="{SITE}"]')
    expect(row).to_contain_text("220/320", timeout=20_000)
    page.wait_for_function(f"() => window.itsControl.map.layers.parking.some(p => p.id === '{SITE}' && p.lat < -16)")

    publish_count(broker_url, SITE, 320)
    alert = page.locator(f'li[data-alert-id="parking_full:{SITE}"]')
    expect(alert).to_be_visible(timeout=5000)
    expect(alert).to_contain_text("is full (320 spaces)")
    alert.get_by_role("button", name=f"Show {SITE} on the map").click()
    expect(page.locator("#map-details")).to_contain_text("is full")
    screenshot(page, "parking-full-1920x1080")
    alert.get_by_role("button", name=f"Acknowledge parking_full {SITE}").click()
    expect(alert).to_contain_text("acknowledged by dana")
    found = parking_server.ctx.alerts.get(f"parking_full:{SITE}")
    assert found is not None and found.acked_by == "dana"
    expect(row).to_contain_text("0/320", timeout=5000)  # refreshed on the parking alert, not at the 10 s poll
    # the site with a stored day of real occupancy gets its 24 h sparkline (free spaces per 15 min)
    history_row = page.locator(f'#parking tr[data-site-id="{HISTORY_SITE}"]')
    expect(history_row.locator("canvas.spark")).to_be_visible()
    series = page.evaluate(f"() => window.itsControl.panels[1].history.get('{HISTORY_SITE}')")
    assert len(series) >= 10 and all(0 <= v <= 577 for v in series)
    assert console.errors == []

"""A dispatcher accepts and dismisses holding advice in the control centre (Chromium).

Real data: the WMATA feed of the recorded day (2026-02-16) is imported and its recorded
positions from 18:40 to 19:08 UTC are stored; the arrivals service starts from the store on
a clock stopped at 19:08, when C53 buses are bunched, and advises holds at the timepoints.
The holding panel lists the advice per bus; the dispatcher accepts one and dismisses
another, and the audit log records both with who and when.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from its.db import Database
from its.settings import Settings

from .browser import PageOpener, log_in, screenshot
from .server import LiveServer, close_server, start_server

telematics_service = pytest.importorskip("telematics.service", reason="telematics service not landed yet")
telematics_config = pytest.importorskip("telematics.config")
telematics_db = pytest.importorskip("telematics.gtfs.database")
telematics_store = pytest.importorskip("telematics.store")
fixtures = pytest.importorskip("tests.telematics.holding_fixtures")

pytestmark = pytest.mark.browser


@pytest.fixture
def holding_server(settings: Settings, db: Database, wmata_dir: Path, tmp_path: Path) -> Iterator[LiveServer]:
    wmata = wmata_dir  # the real WMATA day, else its stand-in (timepoints, frequent and timetabled routes)
    telematics_db.import_feed_file(db, fixtures.day_feed(wmata / "wmata_gtfs.zip", fixtures.DAY, tmp_path / "day.zip"),
                                   "wmata")
    rows = fixtures.avl_rows(wmata / "wmata_avl.csv", fixtures.T_ADVICE, fixtures.REPLAY_FROM)
    assert telematics_store.write_positions(db, rows) == len(rows)
    now = fixtures.epoch(fixtures.T_ADVICE)
    config = telematics_config.TelematicsSettings(history_days=0, recent_positions_min=30, board_refresh_s=1.0)
    service = telematics_service.ArrivalsService(config, clock=lambda: now)
    server = start_server(settings, db, [service])
    deadline = time.monotonic() + 120
    while not service.ready() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert service.ready()
    assert len(service.advice.entries(now)) >= 2
    yield server
    close_server(server)


def test_dispatcher_accepts_and_dismisses_holding_advice(holding_server: LiveServer, db: Database,
                                                          open_page: PageOpener) -> None:
    page, console = open_page(1920, 1080)
    log_in(page, holding_server.url)
    rows = page.locator("#holding tr[data-advice-id]")
    expect(rows.first).to_be_visible(timeout=20_000)
    assert rows.count() >= 2
    first, second = rows.nth(0), rows.nth(1)
    first_id, second_id = first.get_attribute("data-advice-id"), second.get_attribute("data-advice-id")
    bus = first.get_attribute("data-vehicle-id")
    expect(first).to_contain_text("advised")
    assert "behind the bus ahead" in (first.get_attribute("title") or "")  # the reason, on hover
    first.get_by_role("button", name="Accept").click()
    expect(page.locator(f'#holding tr[data-advice-id="{first_id}"]')).to_contain_text("accepted by dana")
    page.locator(f'#holding tr[data-advice-id="{second_id}"]').get_by_role("button", name="Dismiss").click()
    expect(page.locator(f'#holding tr[data-advice-id="{second_id}"]')).to_contain_text("dismissed by dana")
    expect(page.locator("#holding .audit li")).to_have_count(2, timeout=10_000)
    expect(page.locator("#holding .audit li").first).to_contain_text("dana dismissed")
    logged = db.fetchall("SELECT action, actor, advice_id FROM holding_advice_log ORDER BY log_id")
    assert logged == [("accepted", "dana", first_id), ("dismissed", "dana", second_id)]
    # the bus's name locates it on the map
    expect(page.locator(f'#holding tr[data-advice-id="{first_id}"] button.link')).to_have_text(bus or "")
    panel = page.locator("section.holding-panel")
    panel.scroll_into_view_if_needed()
    screenshot(page, "holding-advice-1920x1080")
    panel.screenshot(path=str(screenshot(page, "holding-advice-page").with_name("holding-advice-panel.png")))
    assert console.errors == []

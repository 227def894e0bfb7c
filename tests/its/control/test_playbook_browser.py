"""A dispatcher sees the operating mode turn to `incident` and applies playbook actions (Chromium).

The city of `tests.its.control.playbook_city` (real WMATA buses bunched at 19:08, a
camera-reported jam next to the advised stop, a full car park there): the playbook panel
shows the mode, the holds of the affected route, the diversion away from the full car park
and the detour around the jammed edge, each with its expected effect; the dispatcher
applies the detour and the diversion, the panel and the log show who and when.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from its.db import Database

from .browser import PageOpener, log_in, screenshot
from .playbook_city import FULL, City, incident_city_fixture

__all__ = ["incident_city_fixture"]

pytestmark = pytest.mark.browser



def test_dispatcher_applies_playbook_actions_in_incident_mode(incident_city: City, db: Database,
                                                               open_page: PageOpener) -> None:
    city = incident_city
    page, console = open_page(1920, 1080)
    log_in(page, city.server.url)
    panel = page.locator("#playbook")
    expect(panel.locator("p.mode")).to_have_attribute("data-mode", "incident", timeout=20_000)
    expect(panel.locator("p.mode")).to_contain_text("1 incident")
    rows = panel.locator("tr[data-action-id]")
    for kind in ("headway", "guidance", "detour"):
        expect(panel.locator(f'tr[data-kind="{kind}"]').first).to_be_visible()
    headway = panel.locator('tr[data-kind="headway"]').first
    expect(headway).to_contain_text("excess wait time")
    expect(headway).to_contain_text("per passenger")
    guidance = panel.locator('tr[data-kind="guidance"]').first
    expect(guidance).to_contain_text("probability of a free space")
    expect(guidance).to_contain_text("FULL")
    detour = panel.locator('tr[data-kind="detour"]').first
    expect(detour).to_contain_text(f"edge {city.jam_edge}")
    expect(detour).to_contain_text("saves")
    assert rows.count() >= 3

    detour.get_by_role("button", name="Apply").click()
    expect(detour).to_contain_text("applied by dana")
    guidance.get_by_role("button", name="Apply").click()
    expect(guidance).to_contain_text("applied by dana")
    expect(headway).to_contain_text("recommended")
    expect(panel.locator(".audit li")).to_have_count(2, timeout=10_000)
    expect(panel.locator(".audit li").first).to_contain_text("dana applied (incident): Guide drivers away")
    logged = db.fetchall("SELECT actor, kind, subject FROM playbook_log ORDER BY log_id")
    assert logged == [("dana", "detour", f"wmata:{city.jam_edge}"), ("dana", "guidance", FULL)]
    section = page.locator("section.playbook-panel")
    section.scroll_into_view_if_needed()
    screenshot(page, "playbook-incident-1920x1080")
    section.screenshot(path=str(screenshot(page, "playbook-page").with_name("playbook-panel.png")))
    assert console.errors == []

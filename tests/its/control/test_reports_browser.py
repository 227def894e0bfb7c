"""The Reports view of the control centre in headless Chromium against a real API server (PostgreSQL, Mosquitto)."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from .browser import PageOpener, log_in, screenshot
from .server import LiveServer

FROM, TO = "2026-03-01", "2026-03-02"


def test_dispatcher_shows_indicators_of_a_range_and_downloads(live_server: LiveServer, open_page: PageOpener) -> None:
    page, console = open_page(1366, 768)
    log_in(page, live_server.url)
    body = page.locator("#reports-body")
    expect(body).to_be_hidden()

    # reachable with the keyboard: focus the toggle and press Enter
    toggle = page.get_by_role("button", name="Reports", exact=True)
    toggle.focus()
    page.keyboard.press("Enter")
    expect(body).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    # default range: yesterday .. today (local dates of the browser)
    default_from = page.locator("#reports-from").input_value()
    default_to = page.locator("#reports-to").input_value()
    assert len(default_from) == 10 and default_from < default_to
    expect(page.locator("#reports-files")).to_contain_text("No stored reports yet.")

    page.fill("#reports-from", FROM)
    page.fill("#reports-to", TO)
    page.get_by_role("button", name="Show", exact=True).click()
    sections = page.locator("#reports-sections .report-section")
    expect(sections.first).to_be_visible(timeout=20000)
    expect(page.locator("#reports-status")).to_contain_text("2026-03")

    # the rendered sections are the API's, each indicator a row
    with live_server.login() as client:
        kpis = client.get("/v1/reports/kpis", params={"from": FROM, "to": TO}).json()
    names = list(kpis["sections"])
    assert names and sections.count() == len(names)
    indicators = [(s, k, item) for s, entries in kpis["sections"].items() for k, item in entries.items()]
    expect(page.locator("#reports-sections tr[data-indicator]")).to_have_count(len(indicators))
    # an empty database: null indicators show their reason (muted), not a blank cell
    nulls = [(s, k, item) for s, k, item in indicators if item.get("value", item.get("rows")) is None]
    assert nulls, "an empty database should leave some indicators without a value"
    for s, k, item in nulls[:5]:
        assert item["reason"]
        expect(page.locator(f'tr[data-indicator="{s}.{k}"] .reason')).to_have_text(item["reason"])
    # every table indicator with rows (possibly none) links its own CSV; the others show no link
    for s, k, item in indicators:
        links = page.locator(f'tr[data-indicator="{s}.{k}"] a.csv-link')
        if isinstance(item.get("rows"), list):
            expect(links).to_have_attribute("href", f"/v1/reports/tables/{s}.{k}.csv?from={FROM}&to={TO}")
        else:
            expect(links).to_have_count(0)
    screenshot(page, "reports-1366x768")

    # the summary download link points at the CSV route with the chosen range, and that route answers CSV
    link = page.get_by_role("link", name="Summary (CSV)")
    href = link.get_attribute("href")
    assert href == f"/v1/reports/tables/summary.csv?from={FROM}&to={TO}"
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    r = httpx.get(f"{live_server.url}{href}", cookies=cookies, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "section" in r.text.splitlines()[0] and "indicator" in r.text.splitlines()[0]
    assert console.errors == []


def test_api_error_is_shown_not_thrown(live_server: LiveServer, open_page: PageOpener) -> None:
    page, console = open_page(1366, 768)
    log_in(page, live_server.url)
    page.get_by_role("button", name="Reports", exact=True).click()
    page.fill("#reports-from", "2026-03-05")
    page.fill("#reports-to", "2026-03-01")  # before from: the API answers 400
    page.get_by_role("button", name="Show", exact=True).click()
    status = page.locator("#reports-status")
    expect(status).to_contain_text("Cannot load the report")
    expect(status).to_contain_text("is not after from")
    expect(page.locator("#reports-sections .report-section")).to_have_count(0)
    # the browser logs the failed request itself; the page throws nothing
    assert [e for e in console.errors if "pageerror" in e] == []

"""The control centre in headless Chromium and Firefox against a real API server (PostgreSQL, Mosquitto)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from .browser import BROWSERS, PageOpener, log_in, screenshot
from .server import ADMIN, LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("browser", BROWSERS, indirect=True)]

ALERT_ID = "car_park_full:bham-bullring"
BULL_RING = (52.4775, -1.8936)  # lat, lon


def map_view(page: Page) -> dict[str, float]:
    return page.evaluate("() => window.itsControl.map.view()")  # type: ignore[no-any-return]


def test_dispatcher_sees_alert_live_acknowledges_it_and_logs_out(live_server: LiveServer, open_page: PageOpener) -> None:
    page, console = open_page(1920, 1080)
    log_in(page, live_server.url)
    expect(page.locator("#user-name")).to_have_text("dana (dispatcher)")
    for panel in ("fleet", "parking", "cameras", "traffic", "playbook"):  # no domain service mounted
        expect(page.locator(f"#{panel} .empty")).to_have_text("no data yet")
    box = page.locator("#map").bounding_box()
    assert box is not None and box["width"] > 1000 and box["height"] > 500

    # an alert raised in the server appears without reloading, and on the map
    sink = live_server.ctx.alerts
    sink.raise_alert("car_park_full", "bham-bullring", "Bull Ring car park is full (0 of 540 free)",
                     severity="critical", lat=BULL_RING[0], lon=BULL_RING[1])
    item = page.locator(f'li[data-alert-id="{ALERT_ID}"]')
    expect(item).to_be_visible(timeout=5000)
    expect(item).to_contain_text("Bull Ring car park is full")
    expect(page.locator("#alerts-count")).to_have_text("(1 open / 1)")
    expect(page.locator("#map-summary")).to_have_text("1 alert")
    screenshot(page, "alert-raised-1920x1080")

    # "Show on map" pans there and selects the alert
    item.get_by_role("button", name="Show bham-bullring on the map").click()
    view = map_view(page)
    assert view["lat"] == pytest.approx(BULL_RING[0], abs=1e-4) and view["lon"] == pytest.approx(BULL_RING[1], abs=1e-4)
    assert view["zoom"] >= 15
    expect(page.locator("#map-details")).to_contain_text("Bull Ring car park is full")

    # acknowledge: recorded with user and time, shown as such
    item.get_by_role("button", name="Acknowledge car_park_full bham-bullring").click()
    expect(item.get_by_role("button", name="Acknowledge car_park_full bham-bullring")).to_have_text("Acknowledged")
    expect(item).to_contain_text("acknowledged by dana")
    acked = sink.get(ALERT_ID)
    assert acked is not None and acked.acked_by == "dana" and acked.acked_at is not None
    rows = live_server.ctx.db.fetchall("SELECT acked_by, acked_at FROM alerts WHERE alert_id = %s", (ALERT_ID,))
    assert rows[0][0] == "dana" and rows[0][1] is not None
    expect(page.locator("#alerts-count")).to_have_text("(0 open / 1)")

    # cleared on the server: gone from the list
    sink.clear("car_park_full", "bham-bullring")
    expect(item).to_have_count(0)
    expect(page.locator("#alerts-empty")).to_be_visible()
    assert "stale" not in (page.locator("#feed-status").get_attribute("class") or "")

    # log out: back to the login page, the session no longer opens the page nor the API
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{live_server.url}/control/login")
    page.goto(f"{live_server.url}/control")
    page.wait_for_url(f"{live_server.url}/control/login")
    assert page.request.get(f"{live_server.url}/v1/control/config").status == 401
    assert console.errors == []


def test_map_pans_zooms_and_picks_roads(live_server: LiveServer, open_page: PageOpener) -> None:
    page, console = open_page(1920, 1080)
    log_in(page, live_server.url)
    # two roads as the congestion route serves them (GeoJSON LineStrings with a level)
    page.evaluate("""() => window.itsControl.map.setRoads({type: "FeatureCollection", features: [
        {type: "Feature", id: 1, geometry: {type: "LineString", coordinates: [[-1.90, 52.47], [-1.88, 52.48]]},
         properties: {edge: 1, name: "Moor Street Queensway", level: "jammed", speed_mps: 2.5, freeflow_mps: 13.9,
                      length_m: 1700, road_class: "primary"}},
        {type: "Feature", id: 2, geometry: {type: "LineString", coordinates: [[-1.90, 52.49], [-1.88, 52.49]]},
         properties: {edge: 2, name: "Snow Hill", level: 0, speed_mps: 12.0, freeflow_mps: 13.9,
                      length_m: 1400, road_class: "secondary"}}]})""")
    page.click("#zoom-fit")
    expect(page.locator("#map-summary")).to_have_text("2 roads")
    view = map_view(page)
    assert -1.90 < view["lon"] < -1.88 and 52.47 < view["lat"] < 52.49
    # click the middle of the first road: its details are shown
    point = page.evaluate("""() => { const m = window.itsControl.map;
        const [x, y] = m.toScreen(m.layers.roads[0].xs[0], m.layers.roads[0].ys[0]);
        const [x2, y2] = m.toScreen(m.layers.roads[0].xs[1], m.layers.roads[0].ys[1]);
        return [(x + x2) / 2, (y + y2) / 2]; }""")
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    details = page.locator("#map-details")
    expect(details).to_contain_text("Moor Street Queensway")
    expect(details).to_contain_text("jammed")
    expect(details).to_contain_text("9 km/h")
    screenshot(page, "map-roads-1920x1080")

    # wheel zooms in, +/- buttons zoom, drag pans
    z0 = map_view(page)["zoom"]
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"() => window.itsControl.map.zoom > {z0 + 0.5}")
    z1 = map_view(page)["zoom"]
    page.click("#zoom-out")
    assert map_view(page)["zoom"] == pytest.approx(z1 - 1)
    before = map_view(page)
    page.mouse.move(box["x"] + 400, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(box["x"] + 600, box["y"] + 300, steps=5)
    page.mouse.up()
    after = map_view(page)
    assert after["lon"] < before["lon"] and after["lat"] == pytest.approx(before["lat"], abs=1e-6)
    # keyboard: the map takes focus and arrow keys pan it
    page.focus("#map")
    page.keyboard.press("ArrowLeft")
    assert map_view(page)["lon"] < after["lon"]
    assert console.errors == []


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_layout_fits_screen_and_is_keyboard_reachable(live_server: LiveServer, open_page: PageOpener,
                                                      size: tuple[int, int]) -> None:
    width, height = size
    page, console = open_page(width, height)
    log_in(page, live_server.url)
    live_server.ctx.alerts.raise_alert("camera_offline", "cam-7", "camera cam-7 offline", lat=52.48, lon=-1.90)
    expect(page.locator('li[data-alert-id="camera_offline:cam-7"]')).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    for selector in ("#map", "#alerts", "#logout", "#zoom-in"):
        b = page.locator(selector).bounding_box()
        assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= width + 1, selector
    map_box = page.locator("#map").bounding_box()
    assert map_box is not None and map_box["y"] + map_box["height"] <= height  # the map is above the fold
    font_px = page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
    assert font_px >= 13
    screenshot(page, f"control-{width}x{height}")
    # Tab walks the controls in order, each with a visible focus ring
    reached, outlines = [], []
    for _ in range(7):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.id || document.activeElement.className"))
        outlines.append(page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle"))
    assert reached == ["logout", "map", "zoom-in", "zoom-out", "zoom-fit", "ack", "locate"], reached
    assert "none" not in outlines, outlines
    assert console.errors == []


def test_anonymous_browser_is_sent_to_login_and_bad_password_refused(live_server: LiveServer, open_page: PageOpener) -> None:
    page, _console = open_page(1366, 768)
    page.goto(f"{live_server.url}/control")
    page.wait_for_url(f"{live_server.url}/control/login")
    assert page.request.get(f"{live_server.url}/v1/control/stream").status == 401
    page.fill("#username", "dana")
    page.fill("#password", "not-the-password")
    page.click("#login-button")
    expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")
    assert page.url == f"{live_server.url}/control/login"
    assert httpx.get(f"{live_server.url}/control", follow_redirects=False).status_code == 303


def test_feed_turns_red_when_stale_and_reconnects(live_server: LiveServer, open_page: PageOpener) -> None:
    page, console = open_page(1366, 768)
    page.clock.install()  # the page's timers and Date, fast-forwarded below instead of waiting
    log_in(page, live_server.url)
    status = page.locator("#feed-status")
    expect(status).not_to_have_class(re.compile(r"\bstale\b"))

    live_server.stop()  # the server goes away: the stream drops, the client retries with backoff
    expect(status).to_contain_text("reconnecting", timeout=10_000)
    page.clock.fast_forward(20_000)
    expect(status).to_have_class(re.compile(r"\bstale\b"))
    expect(status).to_contain_text(re.compile(r"last update 2\d s ago"))
    screenshot(page, "feed-stale-1366x768")

    live_server.start()
    page.clock.fast_forward(60_000)  # past the longest pending backoff
    expect(status).not_to_have_class(re.compile(r"\bstale\b"), timeout=10_000)
    expect(status).to_contain_text(re.compile(r"last update \d s ago"))
    live_server.ctx.alerts.raise_alert("sensor_offline", "p9/s1", "sensor s1 silent")
    expect(page.locator('li[data-alert-id="sensor_offline:p9/s1"]')).to_be_visible()
    # only the deliberate outage may have logged errors: the cut stream and the refused retries
    unexpected = [e for e in console.errors if "net::ERR_" not in e]
    assert unexpected == []


def test_basemap_tiles_are_drawn_when_configured(live_server: LiveServer, open_page: PageOpener) -> None:
    # an XYZ template served by this same server (any image will do), set by an admin
    template = f"{live_server.url}/control/static/icon.svg?tile={{z}}/{{x}}/{{y}}"
    with live_server.login(ADMIN) as admin:
        assert admin.put("/v1/control/config", json={"basemap_tile_url": template}).status_code == 200
    page, console = open_page(1366, 768)
    log_in(page, live_server.url)
    page.wait_for_function("() => [...window.itsControl.map.tiles.values()].some(i => i.complete && i.naturalWidth > 0)")
    keys = page.evaluate("() => [...window.itsControl.map.tiles.keys()]")
    zoom = round(map_view(page)["zoom"])
    assert keys and all(k.startswith(f"{zoom}/") for k in keys)
    assert console.errors == []
